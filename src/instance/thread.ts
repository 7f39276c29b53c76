/**
 * What one thread (the main thread or a worker) needs to write events: its ring writers, one per
 * instance, and the events it defined. Configuration reaches it as a new generation in the
 * control block (see control.ts) plus ring updates in its inbox; the first write that sees a new
 * generation rebuilds every event's list of sinks, so the emit path never checks configuration.
 */
import { fail } from '../errno.js';
import { EventDef, type EventOptions } from '../events/event.js';
import { ENCODER_HELPERS } from '../events/codegen.js';
import type { FieldSpec, Payload } from '../events/fields.js';
import { MARKER_OVERHEAD, PRINT_BUF_OFFSET, PRINT_ID } from '../events/ftrace.js';
import type { EventRegistry } from '../events/registry.js';
import { snapshotRing, writeEvents } from '../ring/reader.js';
import { RingView, RingWriter } from '../ring/ring.js';
import { CLOCK_COUNTER, counterNow, monoNow } from './clock.js';
import { ControlBlock, I_COUNTER } from './control.js';

/** A ring handed to a thread: for instance slot `instance`, `sab` null to remove. */
export interface RingUpdate {
  instance: number;
  sab: SharedArrayBuffer | null;
  /** Copy the unread events of the ring being replaced into the new one (a resize). */
  migrate: boolean;
}

/** Where an event goes: the ring of an instance that enables it and has tracing on. */
interface Sink {
  writer: RingWriter;
  clock: number;
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
  /** Record `payload` in every instance that enables this event (with tracing on). */
  readonly emit: (payload: Payload<F>) => void;
  sinks: Sink[] = NO_SINKS;
  /** The single sink's writer, or null to take the general path. Read by emit(). */
  single: RingWriter | null = null;
  singleCounter = false;
  /** Control generation the sinks were built for (0: never). Read by emit(). */
  built = 0;
  private readonly active: Uint32Array;
  private readonly index: number;

  constructor(def: EventDef, thread: ThreadContext) {
    this.def = def;
    this.index = def.index;
    this.lens = new Int32Array(Math.max(1, def.dynamicCount));
    this.active = thread.control.active;
    this.emit = buildEmit(this, thread);
  }

  /** Called by the thread when the configuration changed. */
  rebuild(sinks: Sink[], generation: number): void {
    this.sinks = sinks;
    this.built = generation;
    const one = sinks.length === 1 ? sinks[0]! : null;
    this.single = one ? one.writer : null;
    this.singleCounter = one ? one.clock === CLOCK_COUNTER : false;
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

  /** True when some instance records this event: guard expensive payloads with it. */
  get enabled(): boolean {
    return this.active[this.index] !== 0;
  }
}

/**
 * Compile an event's emit(). The source is the fixed text below, integers, and the encoder
 * statements of events/codegen.ts, under that file's safety rule: no user text.
 */
function buildEmit<F extends FieldSpec>(ev: TraceEvent<F>, thread: ThreadContext): (payload: Payload<F>) => void {
  const def = ev.def;
  const size = def.layout.fixed ? String((def.layout.fixedSize + 3) & ~3) : '(size(p, lens) + 3) & ~3';
  const source = `"use strict"; return function emit(p) {
  const generation = active[${def.index}];
  if (generation === 0) return;
  const w = ev.single;
  if (w === null || generation !== ev.built) {
    thread.write(ev, p);
    return;
  }
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
  readonly control: ControlBlock;
  readonly registry: EventRegistry;
  private readonly i32: Int32Array;
  private readonly takeUpdates: () => RingUpdate[];
  private generation = -1;
  private readonly writers: (RingWriter | null)[] = [];
  private readonly events = new Map<number, TraceEvent<any>>();

  constructor(cpu: number, control: ControlBlock, registry: EventRegistry, takeUpdates: () => RingUpdate[]) {
    this.cpu = cpu;
    this.pid = process.pid;
    this.control = control;
    this.registry = registry;
    this.i32 = control.i32;
    this.takeUpdates = takeUpdates;
  }

  defineEvent<F extends FieldSpec>(system: string, name: string, fields: F, options?: EventOptions): TraceEvent<F> {
    const def = this.registry.define(system, name, fields, options);
    let ev = this.events.get(def.index);
    if (!ev) {
      ev = new TraceEvent<F>(def, this);
      this.events.set(def.index, ev);
      this.generation = -1;
    }
    return ev as TraceEvent<F>;
  }

  /** The slow half of emit(): the event is recorded somewhere; write it to this thread's rings. */
  write(ev: TraceEvent<any>, p: unknown): void {
    if (this.control.generation !== this.generation) this.refresh();
    const sinks = ev.sinks;
    const count = sinks.length;
    if (count === 0) return;
    const def = ev.def;
    const aligned = (def.size(p, ev.lens) + 3) & ~3;
    let mono = -1;
    for (let i = 0; i < count; i++) {
      const s = sinks[i]!;
      const ts = s.clock === CLOCK_COUNTER ? counterNow(this.i32, I_COUNTER) : mono < 0 ? (mono = monoNow()) : mono;
      const w = s.writer;
      const at = w.reserve(aligned, ts);
      if (at < 0) continue;
      def.encode(w.dv, w.u8, at, p, this.pid, ev.lens);
      w.commit();
    }
  }

  /**
   * Record a trace_marker write in instance `instance`, as the kernel's tracing_mark_write():
   * text too long for a sub-buffer is cut to what fits and the short count returned; EBADF while
   * tracing_on is 0; EIO when a full buffer refuses it in producer/consumer mode.
   */
  mark(instance: number, text: Uint8Array): number {
    this.refresh();
    const w = this.writers[instance];
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
    return count;
  }

  /** Apply pending ring updates and rebuild every event's sinks. */
  refresh(): void {
    this.generation = this.control.generation;
    for (const u of this.takeUpdates()) this.apply(u);
    for (const ev of this.events.values()) ev.rebuild(this.sinksFor(ev.def.index), this.generation);
  }

  private apply(u: RingUpdate): void {
    const old = this.writers[u.instance] ?? null;
    if (!u.sab) {
      this.writers[u.instance] = null;
      old?.view.retire();
      return;
    }
    const view = new RingView(u.sab);
    this.writers[u.instance] = old && u.migrate ? migrateRing(old.view, view) : new RingWriter(view);
    old?.view.retire();
  }

  private sinksFor(index: number): Sink[] {
    const sinks: Sink[] = [];
    for (let inst = 0; inst < this.writers.length; inst++) {
      const writer = this.writers[inst];
      if (!writer || !this.control.isEnabled(inst, index) || !this.control.tracingOn(inst)) continue;
      sinks.push({ writer, clock: this.control.clock(inst) });
    }
    return sinks.length ? sinks : NO_SINKS;
  }
}
