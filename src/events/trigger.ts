/**
 * Event trigger commands as the kernel parses them (kernel/trace/trace_events_trigger.c):
 * `[!]<cmd>[:<count>] [if <filter>]`, and for enable_event/disable_event and
 * enable_hist/disable_hist `[!]<cmd>:<sys>:<event>[:<count>] [if <filter>]`. Only the text is handled here; the filter
 * after `if` is compiled by filter.ts against the event's fields and run by the instance.
 */
import { fail } from '../errno.js';
import { parseKernelInteger } from './filter.js';

export const TRIGGER_COMMANDS = ['traceon', 'traceoff', 'snapshot', 'stacktrace', 'enable_event', 'disable_event', 'enable_hist', 'disable_hist', 'hist'] as const;
export type TriggerCommand = (typeof TRIGGER_COMMANDS)[number];

/** What `trigger` reads when it has none: the commands this tracer knows, in the kernel's order. */
export const TRIGGER_HELP = `# Available triggers:\n# ${TRIGGER_COMMANDS.join(' ')}\n`;

export interface TriggerSpec {
  command: TriggerCommand;
  /** `!cmd…`: remove the matching trigger. */
  remove: boolean;
  /** enable_event/disable_event: the event switched; enable_hist/disable_hist: the event whose hist triggers are. */
  target?: { system: string; event: string };
  /** Times it may still fire; -1 is unlimited. */
  count: number;
  /** The filter text after `if`, or null. */
  filter: string | null;
  /** hist: the spec after `hist:` (parsed by hist.ts), and where it starts in the write. */
  hist?: { param: string; offset: number };
}

const isBlank = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n';

/**
 * Triggers of one kind share a slot: at most one of each per event (enable/disable_event: one
 * per target), and `!` removes whichever holds the slot (`!traceon` removes a traceoff).
 */
export function triggerSlot(spec: Pick<TriggerSpec, 'command' | 'target'>): string {
  switch (spec.command) {
    case 'traceon':
    case 'traceoff':
      return 'traceonoff';
    case 'enable_event':
    case 'disable_event':
      return `event:${spec.target!.system}:${spec.target!.event}`;
    case 'enable_hist':
    case 'disable_hist':
      return `histonoff:${spec.target!.system}:${spec.target!.event}`;
    default:
      return spec.command;
  }
}

/** Parse one trigger write; EINVAL for anything the kernel refuses before looking at the filter. */
export function parseTrigger(text: string): TriggerSpec {
  let buff = text.replace(/^[ \t\n]+/, '').replace(/[ \t\n]+$/, '');
  if (!buff) fail('EINVAL', 'empty trigger');
  const remove = buff.startsWith('!');
  if (remove) buff = buff.slice(1);
  // The command ends at ':', space or tab (strsep(": \t")); the rest is param and filter.
  let end = 0;
  while (end < buff.length && buff[end] !== ':' && !isBlank(buff[end])) end++;
  const name = buff.slice(0, end);
  let rest: string | null = end < buff.length ? buff.slice(end + 1).replace(/^[ \t\n]+/, '') : null;
  if (rest === '') rest = null;
  const command = TRIGGER_COMMANDS.find((c) => c === name);
  if (!command) fail('EINVAL', `unknown trigger command '${name}' (have: ${TRIGGER_COMMANDS.join(' ')})`);
  if (command === 'hist') return parseHistTrigger(buff, end, remove);
  const needsParam = command === 'enable_event' || command === 'disable_event' || command === 'enable_hist' || command === 'disable_hist';
  let param: string | null = null;
  let filter: string | null = null;
  if (rest === null) {
    if (needsParam) fail('EINVAL', `${command} needs SYSTEM:EVENT`);
  } else if (!needsParam && !/^[0-9]/.test(rest)) {
    filter = rest;
  } else {
    let i = 0;
    while (i < rest.length && !isBlank(rest[i])) i++;
    param = rest.slice(0, i);
    const after = rest.slice(i + 1).replace(/^[ \t\n]+/, '');
    filter = i < rest.length && after ? after : null;
  }
  let target: TriggerSpec['target'];
  let countText: string | null = param;
  if (needsParam) {
    const parts = param!.split(':');
    if (parts.length < 2) fail('EINVAL', `${command} needs SYSTEM:EVENT`);
    target = { system: parts[0]!, event: parts[1]! };
    countText = parts.length > 2 ? parts.slice(2).join(':') : null;
  }
  let count = -1;
  if (countText !== null && !remove) {
    const number = countText.split(':')[0]!;
    const value = number ? parseKernelInteger(number, false) : null;
    if (value === null || value > 0x7fffffffn) fail('EINVAL', `trigger count '${number}' is not a number`);
    count = Number(value);
  }
  // A removal matches by command (and target) alone: its count and filter are not even parsed.
  if (remove) filter = null;
  if (filter !== null) {
    const m = /^if[ \t]+(.*)$/s.exec(filter);
    if (!m || !m[1]!.trim()) fail('EINVAL', `expected 'if FILTER' after the trigger, got '${filter}'`);
    filter = m[1]!.replace(/[ \t\n]+$/, '');
  }
  return { command, remove, target, count, filter };
}

/** `hist:SPEC [if FILTER]`: the spec runs to the first blank; hist has no count. */
function parseHistTrigger(buff: string, end: number, remove: boolean): TriggerSpec {
  if (buff[end] !== ':') fail('EINVAL', 'hist needs keys: hist:keys=FIELD[,FIELD...]');
  let stop = end + 1;
  while (stop < buff.length && !isBlank(buff[stop])) stop++;
  const param = buff.slice(end + 1, stop);
  let filter: string | null = buff.slice(stop).replace(/^[ \t\n]+/, '') || null;
  if (filter !== null) {
    const m = /^if[ \t]+(.*)$/s.exec(filter);
    if (!m || !m[1]!.trim()) fail('EINVAL', `expected 'if FILTER' after the hist spec, got '${filter}'`);
    filter = m[1]!.replace(/[ \t\n]+$/, '');
  }
  return { command: 'hist', remove, count: -1, filter: remove ? null : filter, hist: { param, offset: (remove ? 1 : 0) + end + 1 } };
}

/** The line `trigger` reads back for one trigger, as the kernel prints it. */
export function triggerLine(spec: TriggerSpec, remaining: number): string {
  const name = spec.target ? `${spec.command}:${spec.target.system}:${spec.target.event}` : spec.command;
  const count = remaining < 0 ? 'unlimited' : `count=${remaining}`;
  return `${name}:${count}${spec.filter !== null ? ` if ${spec.filter}` : ''}\n`;
}
