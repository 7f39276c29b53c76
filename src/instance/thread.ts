/**
 * What one thread (the main thread or a worker) needs to write events: its ring writers, one per
 * instance, and the events it defined. Configuration reaches it as a new generation in the
 * control block (see control.ts) plus ring updates in its inbox; the first write that sees a new
 * generation rebuilds every event's list of sinks, so the emit path never checks configuration.
 */
import { fail } from '../errno.js';
import { EventDef, type EventOptions, type EventType } from '../events/event.js';
import { ENCODER_HELPERS } from '../events/codegen.js';
import type { Predicate } from '../events/filter.js';
import type { FieldSpec, Payload } from '../events/fields.js';
import { MARKER_OVERHEAD, PRINT_BUF_OFFSET, PRINT_ID, STACK_EVENT } from '../events/ftrace.js';
import type { EventRegistry } from '../events/registry.js';
import { snapshotRing, writeEvents } from '../ring/reader.js';
import { RingView, RingWriter } from '../ring/ring.js';
import { CLOCK_COUNTER, counterNow, monoNow } from './clock.js';
import { ControlBlock, I_COUNTER } from './control.js';
import { compileOrNull, type RulesUpdate, type TriggerPlan } from './rules.js';
import type { HistMap } from './hist-map.js';
import { compileHist } from './hist-fire.js';

/** A ring handed to a thread: for instance slot `instance`, buffer set `set` (live or spare), `sab` null to remove. */
export interface RingUpdate {
  kind?: 'ring';
  instance: number;
  set: number;
  sab: SharedArrayBuffer | null;
  /** Copy the unread events of the ring being replaced into the new one (a resize). */
  migrate: boolean;
}

export type ThreadUpdate = RingUpdate | RulesUpdate;

/** A trigger compiled for this thread. */
interface Trigger {
  cond: Predicate | null;
  /** Runs after the record is committed (traceoff, stacktrace), as the kernel's post-triggers. */
  post: boolean;
  /** hist needs the record's values and timestamp (mono ns, -1 when not recorded); the others only that it fired. */
  fire: (p: any, ts: number) => void;
  /** A hist trigger's table: what enable_hist/disable_hist pause and continue. */
  histMap: HistMap | null;
}

/** A (instance, event)'s filter and triggers, compiled for this thread. */
interface Rules {
  filter: Predicate | null;
  /** Newest first. */
  triggers: Trigger[];
  /** Some trigger has a condition or runs after the commit: all run after the record is built. */
  late: boolean;
}

/**
 * Where an event goes: the live ring of an instance that records it (tracing on) or has
 * triggers on it. `record` false: only the triggers run (the kernel's soft mode).
 */
interface Sink {
  writer: RingWriter;
  clock: number;
  record: boolean;
  filter: Predicate | null;
  rules: Rules | null;
}

const NO_SINKS: Sink[] = [];

/**
 * A typed event as the code that emits it sees it. emit() has two paths, chosen when the
 * configuration changes (not per event): with exactly one sink it writes in line; otherwise it
 * goes through ThreadContext.write(), which also notices configuration changes.
 *
 * emit() is compiled per event (see buildEmit) so that each has its own type feedback: V8
 * inlines it at the call site with the event's encoder in line, however many event types a
 * program defines, and a disabled event costs one load and one branch.
 */
export class TraceEvent<F extends FieldSpec = FieldSpec> {
  readonly def: EventDef;
  /** Byte lengths of the dynamic fields, measured by the sizer and reused by the encoder. */
  readonly lens: Int32Array;
  /**
   * Record `payload` in every instance that enables this event (with tracing on). Rebuilt
   * when a filter is set or cleared, so an unfiltered event never tests for one.
   */
  emit: (payload: Payload<F>) => void;
  sinks: Sink[] = NO_SINKS;
  /** The single sink's writer, or null to take the general path. Read by emit(). */
  single: RingWriter | null = null;
  singleCounter = false;
  /** The single sink's filter; read only by the filtered emit(). */
  filter: Predicate | null = null;
  private readonly thread: ThreadContext;
  /** Control generation the sinks were built for (0: never). Read by emit(). */
  built = 0;
  private readonly active: Uint32Array;
  private readonly index: number;

  constructor(def: EventDef, thread: ThreadContext) {
    this.def = def;
    this.index = def.index;
    this.lens = new Int32Array(Math.max(1, def.dynamicCount));
    this.active = thread.control.active;
    this.thread = thread;
    this.emit = buildEmit(this, thread, false);
  }

  /** Called by the thread when the configuration changed. */
  rebuild(sinks: Sink[], generation: number): void {
    this.sinks = sinks;
    this.built = generation;
    const one = sinks.length === 1 && sinks[0]!.record && !sinks[0]!.rules ? sinks[0]! : null;
    this.single = one ? one.writer : null;
    this.singleCounter = one ? one.clock === CLOCK_COUNTER : false;
    const filter = one ? one.filter : null;
    if ((filter === null) !== (this.filter === null)) this.emit = buildEmit(this, this.thread, filter !== null);
    this.filter = filter;
  }

  get system(): string {
    return this.def.system;
  }

  get name(): string {
    return this.def.name;
  }

  get id(): number {
    return this.def.id;
  }

  /**
   * emit() with a timestamp the caller already read with monoNow() (a return probe's end time):
   * one clock read less, through the general path. Instances on the counter clock count as usual.
   */
  emitAt(payload: Payload<F>, mono: number): void {
    const generation = this.active[this.index]!;
    if (generation !== 0) this.thread.write(this, payload, generation, mono);
  }

  /** True when some instance records this event: guard expensive payloads with it. */
  get enabled(): boolean {
    return this.active[this.index] !== 0;
  }
}

/**
 * Compile an event's emit(). The source is the fixed text below, integers, and the encoder
 * statements of events/codegen.ts, under that file's safety rule: no user text.
 */
function buildEmit<F extends FieldSpec>(ev: TraceEvent<F>, thread: ThreadContext, filtered: boolean): (payload: Payload<F>) => void {
  const def = ev.def;
  const size = def.layout.fixed ? String((def.layout.fixedSize + 3) & ~3) : '(size(p, lens) + 3) & ~3';
  const source = `"use strict"; return function emit(p) {
  const generation = active[${def.index}];
  if (generation === 0) return;
  const w = ev.single;
  if (w === null || generation !== ev.built) {
    thread.write(ev, p, generation);
    return;
  }${filtered ? '\n  if (!ev.filter(p)) return;' : ''}
  const ts = ev.singleCounter ? counterNow(words, ${I_COUNTER}) : monoNow();
  const at = w.reserve(${size}, ts);
  if (at < 0) return;
  const dv = w.dv, u8 = w.u8;
${def.encoderSource}
  w.commit();
};`;
  const scope = { active: thread.control.active, ev, thread, words: thread.control.i32, counterNow, monoNow, size: def.size, lens: ev.lens, pid: thread.pid, ...ENCODER_HELPERS };
  // eslint-disable-next-line no-new-func -- see the comment above
  return new Function(...Object.keys(scope), source)(...Object.values(scope));
}

/**
 * Copy the unread events of `from` into a fresh ring `to` (kept in order and with their
 * timestamps), and return the writer of `to`. Counters carry over, so totals stay exact.
 */
export function migrateRing(from: RingView, to: RingView): RingWriter {
  const events = snapshotRing(from);
  to.seedCounters(from, events.count);
  const writer = new RingWriter(to);
  writeEvents(events, writer);
  return writer;
}

export class ThreadContext {
  readonly cpu: number;
  readonly pid: number;
  readonly comm: string;
  readonly control: ControlBlock;
  readonly registry: EventRegistry;
  private readonly i32: Int32Array;
  private readonly takeUpdates: () => ThreadUpdate[];
  private generation = -1;
  /** Per instance slot, the writers of its two buffer sets (see control.ts, snapshot). */
  private readonly writers: [RingWriter | null, RingWriter | null][] = [];
  private readonly events = new Map<number, TraceEvent<any>>();
  /** Compiled rules by instance slot, then event index. */
  private readonly rules: Map<number, Rules>[] = [];

  constructor(cpu: number, comm: string, control: ControlBlock, registry: EventRegistry, takeUpdates: () => ThreadUpdate[]) {
    this.cpu = cpu;
    this.pid = process.pid;
    this.comm = comm;
    this.control = control;
    this.registry = registry;
    this.i32 = control.i32;
    this.takeUpdates = takeUpdates;
  }

  defineEvent<F extends FieldSpec>(system: string, name: string, fields: F, options?: EventOptions): TraceEvent<F> {
    if (system === 'ftrace') fail('EINVAL', "the 'ftrace' system is the tracer's own");
    return this.emitter(this.registry.define(system, name, fields, options)) as TraceEvent<F>;
  }

  /** This thread's emitter for a definition, made on first use (sinks are built at the next write). */
  private emitter(def: EventDef): TraceEvent<any> {
    let ev = this.events.get(def.index);
    if (!ev) {
      ev = new TraceEvent(def, this);
      this.events.set(def.index, ev);
      this.generation = -1;
    }
    return ev;
  }

  /**
   * The slow half of emit(): the event is recorded or triggered somewhere; filter, write, run
   * triggers. `generation` is the event's active word, which emit() just read; `mono`, when
   * not -1, is the time to record (see TraceEvent.emitAt) instead of a clock read.
   */
  write(ev: TraceEvent<any>, p: unknown, generation: number, mono = -1): void {
    if (generation !== this.generation) this.refresh();
    const sinks = ev.sinks;
    const count = sinks.length;
    if (count === 0) return;
    const def = ev.def;
    let aligned = -1;
    for (let i = 0; i < count; i++) {
      const s = sinks[i]!;
      const rules = s.rules;
      if (rules !== null && !rules.late) runTriggers(rules.triggers, p, false, -1);
      if (s.record && (s.filter === null || s.filter(p))) {
        if (aligned < 0) aligned = (def.size(p, ev.lens) + 3) & ~3;
        const ts = s.clock === CLOCK_COUNTER ? counterNow(this.i32, I_COUNTER) : mono < 0 ? (mono = monoNow()) : mono;
        const w = s.writer;
        const at = w.reserve(aligned, ts);
        if (at >= 0) {
          def.encode(w.dv, w.u8, at, p, this.pid, ev.lens);
          w.commit();
        }
      }
      if (rules !== null && rules.late) {
        // The record's own timestamp is the hist's common_timestamp, as in the kernel.
        runTriggers(rules.triggers, p, false, mono);
        runTriggers(rules.triggers, p, true, mono);
      }
    }
  }

  /**
   * Record a trace_marker write in instance `instance`, as the kernel's tracing_mark_write():
   * text too long for a sub-buffer is cut to what fits and the short count returned; EBADF while
   * tracing_on is 0; EIO when a full buffer refuses it in producer/consumer mode. Then the
   * triggers of ftrace/print run, as in the kernel.
   */
  mark(instance: number, text: Uint8Array): number {
    this.refresh();
    const w = this.liveWriter(instance);
    if (!w || !this.control.tracingOn(instance)) fail('EBADF', 'tracing is off for this instance');
    const room = w.view.dataSize - 8 - PRINT_BUF_OFFSET - MARKER_OVERHEAD;
    const count = Math.min(text.length, room);
    const newline = count > 0 && text[count - 1] === 0x0a ? 0 : 1;
    const payload = PRINT_BUF_OFFSET + count + newline + 1;
    const clock = this.control.clock(instance);
    const ts = clock === CLOCK_COUNTER ? counterNow(this.i32, I_COUNTER) : monoNow();
    const at = w.reserve((payload + 3) & ~3, ts);
    if (at < 0) fail('EIO', 'the ring buffer is full (producer/consumer mode)');
    const dv = w.dv;
    dv.setUint32(at, PRINT_ID, true);
    dv.setInt32(at + 4, this.pid, true);
    dv.setUint32(at + 8, 0, true);
    dv.setUint32(at + 12, 0, true);
    w.u8.set(text.subarray(0, count), at + PRINT_BUF_OFFSET);
    if (newline) w.u8[at + PRINT_BUF_OFFSET + count] = 0x0a;
    w.u8.fill(0, at + payload - 1, at + ((payload + 3) & ~3));
    w.commit();
    const rules = this.rules[instance]?.get(0);
    if (rules) {
      // The record's buf: the text as stored, with the newline the marker adds.
      const p = { ip: 0, buf: `${Buffer.from(text.subarray(0, count)).toString('utf8')}${newline ? '\n' : ''}` };
      runTriggers(rules.triggers, p, false, clock === CLOCK_COUNTER ? -1 : ts);
      runTriggers(rules.triggers, p, true, clock === CLOCK_COUNTER ? -1 : ts);
    }
    return count;
  }

  /** Apply pending updates and rebuild every event's sinks. */
  refresh(): void {
    this.generation = this.control.generation;
    for (const u of this.takeUpdates()) {
      if (u.kind === 'rules') this.applyRules(u);
      else this.apply(u);
    }
    for (const ev of this.events.values()) ev.rebuild(this.sinksFor(ev.def.index), this.generation);
  }

  private liveWriter(instance: number): RingWriter | null {
    return this.writers[instance]?.[this.control.liveSet(instance)] ?? null;
  }

  private apply(u: RingUpdate): void {
    const sets = (this.writers[u.instance] ??= [null, null]);
    const old = sets[u.set] ?? null;
    if (!u.sab) {
      sets[u.set] = null;
      old?.view.retire();
      // Both sets gone: the instance was removed, and its slot may be reused by a new one.
      if (!sets[0] && !sets[1]) this.rules[u.instance]?.clear();
      return;
    }
    const view = new RingView(u.sab);
    sets[u.set] = old && u.migrate ? migrateRing(old.view, view) : new RingWriter(view);
    old?.view.retire();
  }

  private applyRules(u: RulesUpdate): void {
    const byEvent = (this.rules[u.instance] ??= new Map());
    const type = this.registry.byIndex(u.event);
    if (!type || (u.filter === null && u.triggers.length === 0)) {
      byEvent.delete(u.event);
      return;
    }
    const triggers = u.triggers.map((t) => this.compileTrigger(u.instance, t, type));
    byEvent.set(u.event, {
      filter: compileOrNull(u.filter, type, this),
      triggers,
      // hist needs the record: with one, all run after it is built (as in the kernel).
      late: triggers.some((t) => t.cond !== null || t.post) || u.triggers.some((t) => t.command === 'hist'),
    });
  }

  private compileTrigger(slot: number, plan: TriggerPlan, type: EventType): Trigger {
    const { control } = this;
    const count = plan.count;
    const cond = compileOrNull(plan.filter, type, this);
    const swap = () => control.change(() => control.swapSnapshot(slot));
    let fire: (p: any, ts: number) => void;
    let post = false;
    let histMap: HistMap | null = null;
    switch (plan.command) {
      case 'traceon':
      case 'traceoff': {
        const on = plan.command === 'traceon';
        post = !on;
        fire = () => {
          if (control.tracingOn(slot) === on || !take(count)) return;
          control.change(() => control.setTracingOn(slot, on));
        };
        break;
      }
      case 'snapshot':
        fire = () => {
          if (control.snapshotAllocated(slot) && take(count)) swap();
        };
        break;
      case 'stacktrace':
        post = true;
        fire = () => {
          if (take(count)) this.writeStack(slot);
        };
        break;
      case 'hist':
        ({ fire, map: histMap } = compileHist(plan.hist!, type, {
          cpu: this.cpu,
          pid: this.pid,
          registry: this.registry,
          eventFor: (index) => this.eventFor(index),
          // onmax(…).snapshot(): a new maximum over all keys freezes the instance's buffer, as the kernel's.
          snapshot: () => {
            if (control.snapshotAllocated(slot)) swap();
          },
        }));
        break;
      case 'enable_hist':
      case 'disable_hist': {
        // The target's hist triggers in this instance, as this thread compiled them; their
        // paused flags live in the shared tables, so one thread's switch is every thread's.
        const paused = plan.command === 'disable_hist';
        const target = plan.target;
        fire = () => {
          const maps = (this.rules[slot]?.get(target)?.triggers ?? []).flatMap((t) => (t.histMap ? [t.histMap] : []));
          if (!maps.some((m) => m.paused !== paused) || !take(count)) return;
          for (const m of maps) m.paused = paused;
        };
        break;
      }
      default: {
        const on = plan.command === 'enable_event';
        const target = plan.target;
        fire = () => {
          if (control.isEnabled(slot, target) === on || !take(count)) return;
          control.change(() => control.setEnabled(slot, target, on));
        };
      }
    }
    return { cond, post, fire, histMap };
  }

  /** This thread's emitter for an event defined by index (a synthetic event written by an action). */
  private eventFor(index: number): TraceEvent<any> {
    const def = this.registry.byIndex(index);
    if (!(def instanceof EventDef)) throw new Error(`event ${index} has no definition`);
    return this.emitter(def);
  }

  /**
   * The stacktrace trigger: the JavaScript stack of the emitting code as an ftrace/js_stack
   * record. A stack that does not fit a sub-buffer is cut at a frame boundary, and the record
   * says how many frames were cut.
   */
  private writeStack(slot: number): void {
    const w = this.liveWriter(slot);
    const def = this.registry.get(STACK_EVENT.system, STACK_EVENT.name);
    if (!w || !(def instanceof EventDef) || !this.control.tracingOn(slot)) return;
    const frames = captureFrames();
    const room = w.view.dataSize - 16 - def.layout.fixedSize - 64;
    let dropped = 0;
    let text = frames.map((f) => `\n => ${f}`).join('');
    while (Buffer.byteLength(text) > room && frames.length > 0) {
      frames.pop();
      dropped++;
      text = frames.map((f) => `\n => ${f}`).join('') + `\n => ... ${dropped} frame${dropped === 1 ? '' : 's'} cut`;
    }
    const p = { dropped, frames: text };
    const lens = new Int32Array(Math.max(1, def.dynamicCount));
    const size = (def.size(p, lens) + 3) & ~3;
    const clock = this.control.clock(slot);
    const at = w.reserve(size, clock === CLOCK_COUNTER ? counterNow(this.i32, I_COUNTER) : monoNow());
    if (at < 0) return;
    def.encode(w.dv, w.u8, at, p, this.pid, lens);
    w.commit();
  }

  private sinksFor(index: number): Sink[] {
    const sinks: Sink[] = [];
    for (let inst = 0; inst < this.writers.length; inst++) {
      const writer = this.liveWriter(inst);
      if (!writer) continue;
      const record = this.control.isEnabled(inst, index) && this.control.tracingOn(inst);
      const triggered = this.control.isTriggered(inst, index);
      if (!record && !triggered) continue;
      const rules = this.rules[inst]?.get(index) ?? null;
      sinks.push({
        writer,
        clock: this.control.clock(inst),
        record,
        filter: rules?.filter ?? null,
        rules: triggered && rules && rules.triggers.length ? rules : null,
      });
    }
    return sinks.length ? sinks : NO_SINKS;
  }
}

/** Take one from a shared trigger count (-1: unlimited); false once it is spent. */
function take(count: Int32Array): boolean {
  for (;;) {
    const c = Atomics.load(count, 0);
    if (c < 0) return true;
    if (c === 0) return false;
    if (Atomics.compareExchange(count, 0, c, c - 1) === c) return true;
  }
}

/** Run the post-triggers (`post`) or the others, newest first, each if its condition holds. */
function runTriggers(triggers: Trigger[], p: unknown, post: boolean, ts: number): void {
  for (let i = 0; i < triggers.length; i++) {
    const t = triggers[i]!;
    if (t.post !== post) continue;
    if (t.cond !== null && !t.cond(p)) continue;
    t.fire(p, ts);
  }
}

const STACK_DEPTH = 64;
/** Frames of our own code at the top of a captured stack, skipped. */
const OWN_FRAMES = /\/(?:instance\/thread|instance\/rules)\.[jt]s:|TraceEvent\.emit|at emit \(/;

function captureFrames(): string[] {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = STACK_DEPTH + 8;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder);
  Error.stackTraceLimit = limit;
  const lines = (holder.stack ?? '').split('\n').slice(1).map((l) => l.trim().replace(/^at /, ''));
  let first = 0;
  while (first < lines.length && OWN_FRAMES.test(`at ${lines[first]}`)) first++;
  return lines.slice(first, first + STACK_DEPTH);
}
