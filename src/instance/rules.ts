/**
 * Filters and triggers of one instance. The main thread keeps their text and state (what the
 * `filter` and `trigger` files read back, the error_log) and publishes each change to every
 * thread as text; each thread compiles it into closures for its own emit path (see
 * thread.ts). Counts live in a SharedArrayBuffer so `traceoff:3` fires three times in all,
 * whichever threads hit it.
 */
import { fail } from '../errno.js';
import { EventDef, type EventType } from '../events/event.js';
import {
  FilterError, compileFilter, failedFilterText, operandFor, type FieldLookup, type Predicate,
} from '../events/filter.js';
import { PRINT_FIELDS, STACK_EVENT } from '../events/ftrace.js';
import type { FieldLayout } from '../events/fields.js';
import { IDENTIFIER } from '../events/fields.js';
import type { EventRegistry } from '../events/registry.js';
import {
  TRIGGER_HELP, parseTrigger, triggerLine, triggerSlot, type TriggerCommand, type TriggerSpec,
} from '../events/trigger.js';
import { HistError, exprRefs, fieldText, histText, parseHist, resolveHist, type HistFieldVar, type HistSpec } from '../events/hist.js';
import { HistMap, histShow } from './hist-map.js';
import type { ControlBlock } from './control.js';

/** A thread's constants, folded into its filters: the kernel's CPU, COMM and common_pid. */
export interface ThreadConstants {
  cpu: number;
  pid: number;
  comm: string;
}

/** One trigger as threads receive it. `count` holds the remaining count (-1: unlimited). */
export interface TriggerPlan {
  command: TriggerCommand;
  /** enable_event/disable_event: the target's event index. */
  target: number;
  count: Int32Array;
  filter: string | null;
  /** hist: the spec text and the shared table (hist-map.ts); where its `$var`s come from; what its actions write. */
  hist?: { param: string; sab: SharedArrayBuffer; lanes: SharedArrayBuffer[]; refs: HistRef[]; synths: number[] };
}

/** A `$var` a hist trigger reads: the hist that assigns it (its event, spec, table) and which of its variables. */
export interface HistRef {
  name: string;
  event: number;
  param: string;
  sab: SharedArrayBuffer;
  index: number;
  /** The variable holds text. */
  string: boolean;
}

/** The rules of one (instance, event), sent to every thread when they change. */
export interface RulesUpdate {
  kind: 'rules';
  instance: number;
  event: number;
  /** The active filter (null: none, or a failed one: nothing is filtered). */
  filter: string | null;
  /** Newest first. */
  triggers: TriggerPlan[];
}

const NO_FILTER = 'none\n';
const ERROR_LOG_ENTRIES = 8;
/** What `events/SYS/filter` always reads. */
export const SYSTEM_FILTER_HELP = '### global filter ###\n# Use this to set filters for multiple events.\n'
  + '# Only events with the given fields will be affected.\n'
  + '# If no events are modified, an error message will be displayed here\n';

/** enable_event/disable_event put their target in soft mode; enable_hist/disable_hist do not. */
function switchesEvent(spec: TriggerSpec): boolean {
  return spec.command === 'enable_event' || spec.command === 'disable_event';
}

function switchesHists(spec: TriggerSpec): boolean {
  return spec.command === 'enable_hist' || spec.command === 'disable_hist';
}

/** A hist trigger's readback line: the normalized spec, its filter, and whether it is paused. */
function histLine(t: TriggerEntry): string {
  return `${histText(t.hist!.spec)}${t.spec.filter !== null ? ` if ${t.spec.filter}` : ''} [${t.hist!.map.paused ? 'paused' : 'active'}]\n`;
}

export function fieldsOf(type: EventType): readonly FieldLayout[] {
  if (type instanceof EventDef) return type.layout.fields;
  return type.index === 0 ? PRINT_FIELDS : [];
}

function accessor(name: string): (p: any) => unknown {
  if (!IDENTIFIER.test(name)) throw new TypeError(`bad field name ${name}`);
  // eslint-disable-next-line no-new-func -- a checked identifier, see events/codegen.ts
  return new Function('p', `return p.${name};`) as (p: any) => unknown;
}

/**
 * Fields a filter may name, in the kernel's order: the event's own, then CPU and COMM (the
 * thread's, as constants), STACKTRACE, then the common fields (type, flags, preempt count, pid).
 */
export function fieldLookup(type: EventType, thread: ThreadConstants): FieldLookup {
  const own = fieldsOf(type);
  return (name) => {
    const f = own.find((x) => x.name === name);
    if (f) return operandFor(f, accessor(f.name));
    const constant = (value: number, size: number, signed: boolean) => ({ kind: 'number' as const, size, signed, read: () => value });
    switch (name) {
      case 'CPU':
      case 'cpu':
      case 'common_cpu':
        return { kind: 'cpu', value: thread.cpu };
      case 'COMM':
      case 'comm':
        return { kind: 'const-string', value: thread.comm };
      case 'STACKTRACE':
        return constant(0, 8, false);
      case 'common_type':
        return constant(type.id, 2, false);
      case 'common_flags':
      case 'common_preempt_count':
        return constant(0, 1, false);
      case 'common_pid':
        return constant(thread.pid, 4, true);
      default:
        return undefined;
    }
  };
}

/** A compiled filter, or null when it cannot be (it never fails after passing on the main thread). */
export function compileOrNull(text: string | null, type: EventType, thread: ThreadConstants): Predicate | null {
  if (text === null) return null;
  try {
    return compileFilter(text, fieldLookup(type, thread));
  } catch {
    return null;
  }
}

interface TriggerEntry {
  spec: TriggerSpec;
  slot: string;
  target: number;
  count: Int32Array;
  hist?: { spec: HistSpec; map: HistMap; refs: HistRef[]; synths: number[] };
  /** A field variable's hidden hist trigger (see fieldVar()): how many triggers use it. */
  hidden?: { users: number };
  /** The field variables this trigger's onmatch params use, on their events. */
  fieldVars?: { event: number; entry: TriggerEntry }[];
}

interface EventRules {
  /** What `filter` reads (a failed filter with its caret and message), or null for `none`. */
  filterShown: string | null;
  filterActive: string | null;
  triggers: TriggerEntry[];
}

/** What the rules need of their instance. */
export interface RulesHost {
  slot: number;
  control: ControlBlock;
  registry: EventRegistry;
  /** Send an update to every thread writing this instance. */
  publish(update: RulesUpdate): void;
  /** Threads writing this instance (their cpu numbers are below it): each gets a lane in every hist table. */
  threadCount(): number;
  allocateSnapshot(): void;
  /** Timestamp for error_log, in ns. */
  now(): number;
  /** The constants of the thread doing the parsing (the main thread). */
  thread: ThreadConstants;
}

export class InstanceRules {
  private readonly host: RulesHost;
  private readonly events = new Map<number, EventRules>();
  /** How many enable_event/disable_event triggers target each event (their `enable` shows `*`). */
  private readonly softRefs = new Map<number, number>();
  private readonly errors: string[] = [];

  constructor(host: RulesHost) {
    this.host = host;
  }

  private rules(event: number): EventRules {
    let r = this.events.get(event);
    if (!r) this.events.set(event, (r = { filterShown: null, filterActive: null, triggers: [] }));
    return r;
  }

  private type(event: number): EventType {
    const t = this.host.registry.byIndex(event);
    if (!t) fail('ENOENT', `no event ${event}`);
    return t;
  }

  // ---- error_log ------------------------------------------------------------------------

  errorLog(): string {
    return this.errors.join('');
  }

  clearErrorLog(): void {
    this.errors.length = 0;
  }

  /** tracing_log_err(): `[sec.usec] loc: error: text`, the command, a caret under `pos`. */
  logEntry(location: string, command: string, text: string, pos: number): void {
    const ns = Math.max(0, Math.floor(this.host.now()));
    const sec = Math.floor(ns / 1e9);
    const usec = Math.floor((ns % 1e9) / 1e3);
    const stamp = `[${String(sec).padStart(5)}.${String(usec).padStart(6, '0')}]`;
    this.errors.push(`${stamp} ${location}: error: ${text}\n  Command: ${command}\n${' '.repeat(11 + pos)}^\n`);
    if (this.errors.length > ERROR_LOG_ENTRIES) this.errors.shift();
  }

  /** Compile on the main thread to validate; a FilterError is logged and rethrown with its errno. */
  private check(text: string, type: EventType): void {
    try {
      compileFilter(text, fieldLookup(type, this.host.thread));
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      this.logError(text, err);
      throw err;
    }
  }

  private logError(text: string, err: FilterError): void {
    this.logEntry('event filter parse error', text, err.text, err.error ? err.pos : 0);
  }

  // ---- filters --------------------------------------------------------------------------

  readFilter(event: number): string {
    return this.events.get(event)?.filterShown ?? NO_FILTER;
  }

  /**
   * Write `events/SYS/EV/filter`. `0` clears. A filter that does not parse replaces the active
   * one with nothing (the event is no longer filtered), shows the error in the file, logs it
   * in error_log, and fails with the kernel's errno for that error.
   */
  writeFilter(event: number, data: string): void {
    const text = data.replace(/[ \t\n]+$/, '');
    const r = this.rules(event);
    if (text.trim() === '0') {
      r.filterShown = null;
      this.setFilter(event, null);
      return;
    }
    try {
      this.check(text, this.type(event));
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      r.filterShown = failedFilterText(text, err);
      this.setFilter(event, null);
      fail(err.code, `filter: ${err.text} (at byte ${err.pos}): ${text}`);
    }
    r.filterShown = `${text}\n`;
    this.setFilter(event, text);
  }

  /**
   * Write `events/SYS/filter`: every event of the system with the fields gets the filter; each
   * other one shows (and logs) the subsystem error and is left unfiltered. The write succeeds
   * even when no event could take it, and the file keeps reading its help text (Linux 6.18).
   */
  writeSystemFilter(system: string, events: EventType[], data: string): void {
    const text = data.replace(/[ \t\n]+$/, '');
    if (events.length === 0) fail('ENODEV', `system ${system} has no events`);
    for (const e of events) {
      if (text.trim() === '0') {
        this.writeFilter(e.index, '0');
        continue;
      }
      const r = this.rules(e.index);
      try {
        compileFilter(text, fieldLookup(e, this.host.thread));
        r.filterShown = `${text}\n`;
        this.setFilter(e.index, text);
      } catch (err) {
        if (!(err instanceof FilterError)) throw err;
        const subsystem = new FilterError('EINVAL', 'BAD_SUBSYS_FILTER', 0);
        r.filterShown = failedFilterText(text, subsystem);
        this.logError(text, subsystem);
        this.setFilter(e.index, null);
      }
    }
  }

  private setFilter(event: number, text: string | null): void {
    const r = this.rules(event);
    if (r.filterActive === text) return;
    r.filterActive = text;
    this.publish(event);
  }

  // ---- triggers -------------------------------------------------------------------------

  readTriggers(event: number): string {
    const list = this.events.get(event)?.triggers ?? [];
    if (list.length === 0) return TRIGGER_HELP;
    return list.filter((t) => !t.hidden).map((t) => (t.hist ? histLine(t) : triggerLine(t.spec, Atomics.load(t.count, 0)))).join('');
  }

  /** The `hist` file: each hist trigger's table, newest first, as hist_trigger_show() prints it. */
  readHist(event: number): string {
    const hists = (this.events.get(event)?.triggers ?? []).filter((t) => t.hist && !t.hidden);
    const comm = () => this.host.thread.comm;
    return hists.map((t, i) => `${i > 0 ? '\n\n' : ''}${histShow(t.hist!.spec, t.hist!.map, histLine(t), comm)}`).join('');
  }

  /**
   * O_TRUNC on `trigger` removes the hist family and only it, as in the kernel: the
   * enable_hist/disable_hist triggers, and the hist triggers unless another trigger reads one's
   * variables (then none of them, as hist_unreg_all()).
   */
  removeHists(event: number): void {
    const r = this.events.get(event);
    if (!r) return;
    const hists = r.triggers.filter((t) => t.hist && !t.hidden);
    const kept = hists.some((t) => this.referenced(t)) ? hists : [];
    const gone = r.triggers.filter((t) => ((t.hist && !t.hidden) || switchesHists(t.spec)) && !kept.includes(t));
    if (gone.length === 0) return;
    r.triggers = r.triggers.filter((t) => !gone.includes(t));
    this.publish(event);
    for (const t of gone) this.releaseFieldVars(t.fieldVars);
  }

  /**
   * A field of the matching event used as an onmatch param (`sched.sched_waking.prio`): a hidden
   * hist trigger on that event, with the keys of its visible one, keeps the field per key in a
   * variable (the kernel's field variables). Shared by the triggers that name the same field;
   * gone with the last of them. Not in that event's `trigger` or `hist` files.
   */
  private fieldVar(matching: number, fv: HistFieldVar, pos: number): TriggerEntry {
    const r = this.rules(matching);
    const existing = r.triggers.find((t) => t.hidden && t.hist!.spec.vars[0]!.name === fv.name);
    if (existing) {
      existing.hidden!.users++;
      return existing;
    }
    const type = this.type(matching);
    const visible = r.triggers.find((t) => t.hist && !t.hidden);
    if (!visible) throw new HistError('Matching event histogram not found', pos, `${type.system}.${type.name} needs a hist trigger to keep ${fv.field} in for each key`);
    if (!fieldsOf(type).some((f) => f.name === fv.field)) throw new HistError("Couldn't find field", pos, `${type.system}.${type.name}.${fv.field}`);
    const param = `:keys=${visible.hist!.spec.keys.map(fieldText).join(',')}:${fv.name}=${fv.field}`;
    const hs = parseHist(param, 0, true);
    resolveHist(hs, fieldsOf(type));
    const entry: TriggerEntry = {
      spec: parseTrigger(`hist${param}`), slot: `hist:${histText(hs)}`, target: -1, count: new Int32Array(new SharedArrayBuffer(4)).fill(-1),
      hist: { spec: hs, map: new HistMap(hs), refs: [], synths: [] }, hidden: { users: 1 },
    };
    r.triggers.push(entry);
    this.publish(matching);
    return entry;
  }

  /** Whether another hist trigger of the instance reads this one's variables (`$ts0` from elsewhere). */
  private referenced(entry: TriggerEntry): boolean {
    const sab = entry.hist!.map.sab;
    for (const rules of this.events.values()) {
      for (const t of rules.triggers) {
        if (t !== entry && t.hist?.map.sab !== sab && t.hist?.refs.some((ref) => ref.sab === sab)) return true;
      }
    }
    return false;
  }

  /** A trigger is gone (or was never added): let go of its field variables. */
  private releaseFieldVars(fieldVars: TriggerEntry['fieldVars']): void {
    for (const { event, entry } of fieldVars ?? []) {
      if (--entry.hidden!.users > 0) continue;
      const r = this.rules(event);
      r.triggers = r.triggers.filter((x) => x !== entry);
      this.publish(event);
    }
  }

  /**
   * A hist trigger: a new one (EEXIST if the same spec is there), or, for an existing spec,
   * `:pause`, `:cont` and `:clear` act on it; `!` removes it. Errors are logged as
   * `hist:SYS:EV`; a write that fails lets go of the field variables it made.
   */
  private writeHist(event: number, spec: TriggerSpec, text: string): void {
    const type = this.type(event);
    const r = this.rules(event);
    const fieldVars: { event: number; entry: TriggerEntry }[] = [];
    let hs: HistSpec;
    let key: string;
    let refs: HistRef[];
    let synths: number[];
    let existing: TriggerEntry | undefined;
    let map: HistMap | null = null;
    try {
      hs = parseHist(spec.hist!.param, spec.hist!.offset);
      resolveHist(hs, fieldsOf(type));
      if (!spec.remove) {
        for (const a of hs.actions) {
          const matching = this.host.registry.get(a.system, a.event);
          for (const fv of a.fieldVars) if (matching) fieldVars.push({ event: matching.index, entry: this.fieldVar(matching.index, fv, a.pos) });
        }
      }
      refs = this.histRefs(event, hs);
      synths = this.synthTargets(type, hs, refs);
      if (spec.filter !== null) this.check(spec.filter, type);
      key = histText(hs);
      existing = r.triggers.find((t) => t.hist && !t.hidden && histText(t.hist.spec) === key);
      if (existing && !spec.remove && !hs.pause && !hs.cont && !hs.clear) fail('EEXIST', `a ${key} trigger is already set`);
      if (!existing && !spec.remove && hs.name) map = this.namedTable(hs.name, key, spec.hist!.offset);
    } catch (err) {
      this.releaseFieldVars(fieldVars);
      if (!(err instanceof HistError)) throw err;
      this.logEntry(`hist:${type.system}:${type.name}`, text.trim(), err.text, err.pos);
      fail(err.code, `hist: ${err.summary}`);
    }
    if (spec.remove) {
      if (!existing) return;
      if (this.referenced(existing)) fail('EBUSY', `${key}: another hist trigger reads its variables`);
      r.triggers = r.triggers.filter((t) => t !== existing);
      this.publish(event);
      this.releaseFieldVars(existing.fieldVars);
      return;
    }
    if (existing) {
      this.releaseFieldVars(fieldVars);
      if (hs.clear) existing.hist!.map.clear();
      if (hs.pause) existing.hist!.map.paused = true;
      if (hs.cont) existing.hist!.map.paused = false;
      return;
    }
    if (!map) {
      map = new HistMap(hs);
      map.paused = hs.pause;
    }
    if (hs.trackers.some((t) => t.action === 'snapshot')) this.host.allocateSnapshot();
    // A variable this hist reads from itself points at its own table.
    for (const ref of refs) if (ref.event === event && ref.sab.byteLength === 0) ref.sab = map.sab;
    r.triggers.unshift({ spec, slot: `hist:${key}`, target: -1, count: new Int32Array(new SharedArrayBuffer(4)).fill(-1), hist: { spec: hs, map, refs, synths }, fieldVars });
    this.publish(event);
  }

  /** Each onmatch action's synthetic event, checked against its params' count and kinds. */
  private synthTargets(type: EventType, hs: HistSpec, refs: HistRef[]): number[] {
    const own = fieldsOf(type);
    const isText = (kind: string | undefined) => kind === 'string' || kind === 'chars';
    return hs.actions.map((a) => {
      const synth = this.host.registry.get('synthetic', a.synth);
      if (!synth || this.host.registry.isHidden(synth.index)) throw new HistError("Couldn't find synthetic event", a.pos, a.synth);
      const params = fieldsOf(synth);
      if (params.length !== a.args.length) throw new HistError("Param count doesn't match synthetic event field count", a.pos, `${a.synth} has ${params.length}`);
      a.args.forEach((arg, i) => {
        const text = arg.startsWith('$') ? refs.find((r) => `$${r.name}` === arg)!.string : isText(own.find((f) => f.name === arg)?.kind);
        if (text !== isText(params[i]!.kind)) throw new HistError("Param type doesn't match synthetic event field type", a.pos, `${arg} is ${text ? 'text' : 'a number'}, ${a.synth}.${params[i]!.name} is not`);
      });
      if (!this.host.registry.get(a.system, a.event)) throw new HistError('Invalid subsystem or event name', a.pos, `${a.system}.${a.event}`);
      return synth.index;
    });
  }

  /** `name=X`: triggers of that name (on any event of the instance) share one table, and must have the same spec. */
  private namedTable(name: string, key: string, pos: number): HistMap | null {
    let map: HistMap | null = null;
    for (const rules of this.events.values()) {
      const named = rules.triggers.find((t) => t.hist?.spec.name === name);
      if (!named) continue;
      if (histText(named.hist!.spec) !== key) throw new HistError("Named hist trigger doesn't match existing named trigger (includes variables)", pos);
      map = named.hist!.map;
    }
    return map;
  }

  /** Where each `$var` of a hist comes from: this spec's own variables, or another hist trigger's. */
  private histRefs(event: number, hs: HistSpec): HistRef[] {
    const refs: HistRef[] = [];
    const actionRefs = hs.actions.flatMap((a) => a.args.filter((x) => x.startsWith('$')).map((x) => ({ name: x.slice(1), pos: a.pos })));
    for (const list of [...hs.vars.map((v) => exprRefs(v.expr)), actionRefs]) {
      for (const ref of list) {
        if (refs.some((r) => r.name === ref.name)) continue;
        const own = hs.vars.findIndex((x) => x.name === ref.name);
        if (own >= 0) {
          refs.push({ name: ref.name, event, param: '', sab: new SharedArrayBuffer(0), index: own, string: hs.vars[own]!.string === true });
          continue;
        }
        let found: HistRef | null = null;
        for (const [e, rules] of this.events) {
          for (const t of rules.triggers) {
            const index = t.hist?.spec.vars.findIndex((x) => x.name === ref.name) ?? -1;
            if (index >= 0) found = { name: ref.name, event: e, param: t.spec.hist!.param, sab: t.hist!.map.sab, index, string: t.hist!.spec.vars[index]!.string === true };
          }
        }
        if (!found) throw new HistError("Couldn't find variable", ref.pos, `$${ref.name}`);
        // Text goes only to an action's parameters, never into an expression.
        if (found.string && list !== actionRefs) throw new HistError('String type can not be an operand in expression', ref.pos, `$${ref.name}`);
        refs.push(found);
      }
    }
    return refs;
  }

  /** Soft mode: the event has triggers, or is the target of an enable/disable_event trigger. */
  isSoft(event: number): boolean {
    return (this.events.get(event)?.triggers.length ?? 0) > 0 || (this.softRefs.get(event) ?? 0) > 0;
  }

  /** Write `events/SYS/EV/trigger` (`>` and `>>` alike): add one trigger, or remove one with `!`. */
  writeTrigger(event: number, data: string): void {
    const spec = parseTrigger(data);
    if (spec.command === 'hist') return this.writeHist(event, spec, data);
    let target = -1;
    if (spec.target) {
      const t = this.host.registry.get(spec.target.system, spec.target.event);
      if (!t || t.index === 0 || t.system === 'ftrace') fail('EINVAL', `no event ${spec.target.system}:${spec.target.event}`);
      target = t.index;
    }
    const r = this.rules(event);
    const slot = triggerSlot(spec);
    const at = r.triggers.findIndex((t) => t.slot === slot);
    if (spec.remove) {
      if (at < 0) return;
      const [gone] = r.triggers.splice(at, 1);
      if (gone!.target >= 0 && switchesEvent(gone!.spec)) this.softRefs.set(gone!.target, (this.softRefs.get(gone!.target) ?? 1) - 1);
      this.publish(event);
      return;
    }
    // The kernel parses the `if` filter before it looks for a duplicate.
    if (spec.filter !== null) this.check(spec.filter, this.type(event));
    if (at >= 0) fail('EEXIST', `a ${slot === 'traceonoff' ? 'traceon/traceoff' : spec.command} trigger is already set`);
    if (spec.command === 'snapshot') this.host.allocateSnapshot();
    if (spec.command === 'stacktrace') this.host.registry.define(STACK_EVENT.system, STACK_EVENT.name, STACK_EVENT.fields, STACK_EVENT.options);
    const count = new Int32Array(new SharedArrayBuffer(4));
    count[0] = spec.count;
    r.triggers.unshift({ spec, slot, target, count });
    if (target >= 0 && switchesEvent(spec)) this.softRefs.set(target, (this.softRefs.get(target) ?? 0) + 1);
    this.publish(event);
  }

  /** What a new thread needs: every rule in force. */
  updates(): RulesUpdate[] {
    return [...this.events.keys()].map((e) => this.update(e));
  }

  private update(event: number): RulesUpdate {
    const r = this.rules(event);
    return {
      kind: 'rules',
      instance: this.host.slot,
      event,
      filter: r.filterActive,
      triggers: r.triggers.map((t) => ({
        command: t.spec.command, target: t.target, count: t.count, filter: t.spec.filter,
        hist: t.hist ? { param: t.spec.hist!.param, sab: t.hist.map.sab, lanes: t.hist.map.lanesFor(this.host.threadCount()), refs: t.hist.refs, synths: t.hist.synths } : undefined,
      })),
    };
  }

  private publish(event: number): void {
    const { control, slot } = this.host;
    const triggered = (this.events.get(event)?.triggers.length ?? 0) > 0;
    control.change(() => {
      this.host.publish(this.update(event));
      control.setTriggered(slot, event, triggered);
    });
  }
}
