/**
 * Function probe definitions in the kernel's fprobe syntax (Documentation/trace/fprobetrace.rst),
 * adapted to JavaScript modules:
 *
 *   f[:[GROUP/]EVENT] MODULE:FUNCTION [NAME=FETCHARG[:TYPE] ...]
 *   f[:[GROUP/]EVENT] MODULE:FUNCTION%return [NAME=FETCHARG[:TYPE] ...]
 *   -:[GROUP/]EVENT
 *
 * FUNCTION may be a path: `Class.prototype.method`. FETCHARG: `$argN` (from 1), `$retval`,
 * `$this` (the receiver: JavaScript's own), each with an optional property path
 * (`$arg1.headers.host`, `$this.req.url`), `$comm`, or a literal
 * (`\123`, `\"text"`). TYPE: u8..u64, s8..s64, x8..x64 (printed in hex), string; the default,
 * as in the kernel, is x64. Only text is handled here; probes.ts attaches them.
 */
import type { FieldType } from './fields.js';

export const DEFAULT_GROUP = 'fprobes';
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TYPES = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'x8', 'x16', 'x32', 'x64', 'string'] as const;
export type ProbeType = (typeof TYPES)[number];

export interface FetchArg {
  name: string;
  /** `arg` (with index), `retval`, `this`, `comm`, or a literal. */
  source: 'arg' | 'retval' | 'this' | 'comm' | 'literal';
  index: number;
  path: string[];
  literal: string | number | null;
  type: ProbeType;
  /** As written, for the readback. */
  text: string;
}

export interface ProbeDef {
  group: string;
  event: string;
  module: string;
  /** The function's path from the module's exports (`fn`, `Class.prototype.method`). */
  func: string[];
  isReturn: boolean;
  args: FetchArg[];
}

export interface ProbeRemoval {
  group: string | null;
  event: string;
}

/** A bad definition: the kernel's error_log text and the caret's byte offset. */
export class ProbeError extends Error {
  readonly text: string;
  readonly pos: number;
  constructor(text: string, pos: number) {
    super(`EINVAL: ${text}`);
    this.name = 'ProbeError';
    this.text = text;
    this.pos = pos;
  }
}

/** The field type an event gets for a fetch type (x types are unsigned, printed in hex). */
export function fieldType(t: ProbeType): FieldType {
  if (t === 'string') return 'string';
  const bits = t.slice(1);
  return (t[0] === 's' ? `s${bits}` : `u${bits}`) as FieldType;
}

function parseFetch(token: string, at: number, isReturn: boolean): FetchArg {
  const eq = token.indexOf('=');
  if (eq <= 0) throw new ProbeError('Invalid argument: NAME=FETCHARG expected', at);
  const name = token.slice(0, eq);
  if (!NAME.test(name)) throw new ProbeError('Invalid argument name', at);
  let rest = token.slice(eq + 1);
  let type: ProbeType = 'x64';
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.startsWith('\\"')) {
    const t = rest.slice(colon + 1);
    if (!(TYPES as readonly string[]).includes(t)) throw new ProbeError('Unknown type is specified', at + eq + 1 + colon + 1);
    type = t as ProbeType;
    rest = rest.slice(0, colon);
  }
  const argAt = at + eq + 1;
  const base: Omit<FetchArg, 'source' | 'index' | 'path' | 'literal'> = { name, type, text: token };
  if (rest === '$comm' || rest === '$COMM') return { ...base, source: 'comm', index: 0, path: [], literal: null, type: colon >= 0 ? type : 'string' };
  let m = /^\\"(.*)"$/.exec(rest);
  if (m) return { ...base, source: 'literal', index: 0, path: [], literal: m[1]!, type: colon >= 0 ? type : 'string' };
  m = /^\\(-?\d+)$/.exec(rest);
  if (m) return { ...base, source: 'literal', index: 0, path: [], literal: Number(m[1]), type };
  m = /^\$(arg(\d+)|retval|this)((?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)$/.exec(rest);
  if (!m) throw new ProbeError('Invalid fetch argument', argAt);
  const path = m[3] ? m[3].slice(1).split('.') : [];
  if (m[1] === 'this') return { ...base, source: 'this', index: 0, path, literal: null };
  if (m[1] === 'retval') {
    if (!isReturn) throw new ProbeError('$retval can be used only on retprobe', argAt);
    return { ...base, source: 'retval', index: 0, path, literal: null };
  }
  const index = Number(m[2]);
  if (index < 1 || index > 128) throw new ProbeError('Invalid $argN index', argAt);
  return { ...base, source: 'arg', index, path, literal: null };
}

/** Parse one line written to dynamic_events. */
export function parseProbe(line: string): ProbeDef | ProbeRemoval {
  const text = line.trim();
  const tokens: { t: string; at: number }[] = [];
  const re = /\S+/g;
  for (let m = re.exec(text); m; m = re.exec(text)) tokens.push({ t: m[0], at: m.index });
  if (tokens.length === 0) throw new ProbeError('Empty definition', 0);
  const head = tokens[0]!.t;
  if (head.startsWith('-:')) {
    if (tokens.length > 1) throw new ProbeError('Too many arguments for removal', tokens[1]!.at);
    const { group, event } = groupEvent(head.slice(2), 2);
    return { group, event: event! };
  }
  if (head !== 'f' && !head.startsWith('f:')) throw new ProbeError('Unknown probe type (only f is supported)', 0);
  const named = head.length > 2 ? groupEvent(head.slice(2), 2) : { group: null, event: null };
  const target = tokens[1];
  if (!target) throw new ProbeError('Missing MODULE:FUNCTION', text.length);
  const sep = target.t.lastIndexOf(':');
  if (sep <= 0 || sep === target.t.length - 1) throw new ProbeError('MODULE:FUNCTION expected', target.at);
  const module = target.t.slice(0, sep);
  let fn = target.t.slice(sep + 1);
  const isReturn = fn.endsWith('%return');
  if (isReturn) fn = fn.slice(0, -'%return'.length);
  const func = fn.split('.');
  if (!func.every((p) => /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p))) throw new ProbeError('Invalid function name', target.at + sep + 1);
  const args = tokens.slice(2).map(({ t, at }) => parseFetch(t, at, isReturn));
  const names = new Set<string>();
  for (const a of args) {
    if (names.has(a.name) || a.name === 'duration_ns') throw new ProbeError('Argument name is used twice', tokens.find((x) => x.t === a.text)!.at);
    names.add(a.name);
  }
  if (args.length > 128) throw new ProbeError('Too many arguments', tokens[130]!.at);
  const event = named.event ?? `${func[func.length - 1]}__${isReturn ? 'exit' : 'entry'}`;
  return { group: named.group ?? DEFAULT_GROUP, event, module, func, isReturn, args };
}

function groupEvent(text: string, at: number): { group: string | null; event: string | null } {
  const slash = text.indexOf('/');
  const group = slash >= 0 ? text.slice(0, slash) : null;
  const event = slash >= 0 ? text.slice(slash + 1) : text;
  if (group !== null && !NAME.test(group)) throw new ProbeError('Group name must follow the same rules as C identifiers', at);
  if (!NAME.test(event)) throw new ProbeError('Event name must follow the same rules as C identifiers', at + (slash + 1));
  return { group, event };
}

/** The readback line, as the kernel's dynamic_events shows a definition. */
export function probeLine(d: ProbeDef): string {
  const args = d.args.map((a) => ` ${a.text}`).join('');
  return `f:${d.group}/${d.event} ${d.module}:${d.func.join('.')}${d.isReturn ? '%return' : ''}${args}\n`;
}
