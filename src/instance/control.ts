/**
 * The state every thread of a tracer must see at once, in one SharedArrayBuffer: the
 * configuration generation, the counter clock, each instance's tracing_on and clock, one enable
 * byte per (instance, event), and per event one `active` word that the emit path reads:
 *
 *   active[event] = 0            the event is recorded nowhere (disabled, or tracing_on is 0
 *                                in every instance that enables it): emit returns at once;
 *   active[event] = generation   it is recorded somewhere, and this is the configuration
 *                                generation: an emitter built for another one rebuilds.
 *
 * Configuration changes go through change(): under a small lock (a worker may apply start-up
 * enables, and any thread may run a trigger), and ending in a new generation, so emitters built
 * for the old one rebuild.
 *
 * The (instance, event) byte holds two bits: ENABLED (recorded, when tracing_on) and TRIGGERED
 * (the event has triggers there, which run whether or not it is recorded or tracing is on, as
 * the kernel's soft mode does). An event is active when some instance records it or triggers on it.
 *
 * Per instance a snapshot word says whether the spare buffer set exists and which of the two
 * sets is live: a snapshot swap is one flip of that bit (each thread then writes the other set).
 */
export const I_GENERATION = 0;
export const I_COUNTER = 1; // and 2
const I_LOCK = 3;
const I_INSTANCES = 8;

export const ENABLED = 1;
export const TRIGGERED = 2;
const SNAPSHOT_LIVE = 1;
const SNAPSHOT_ALLOCATED = 2;

export interface ControlLimits {
  maxInstances: number;
  maxEvents: number;
}

export class ControlBlock {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  /** See the module comment: 0, or the generation. The emit fast-path test. */
  readonly active: Uint32Array;
  /** Instances that record each event with tracing on. */
  private readonly recorders: Uint16Array;
  readonly enabled: Uint8Array;
  readonly maxInstances: number;
  readonly maxEvents: number;
  private readonly tracingOnIndex: number;
  private readonly clockIndex: number;
  private readonly snapshotIndex: number;
  private readonly swapsIndex: number;
  /** Nesting depth of change() on this thread: inner calls neither lock nor publish. */
  private depth = 0;
  private readonly listeners: (() => void)[] = [];

  constructor(limits: ControlLimits, sab?: SharedArrayBuffer) {
    this.maxInstances = limits.maxInstances;
    this.maxEvents = limits.maxEvents;
    const words = I_INSTANCES + 4 * limits.maxInstances;
    const activeAt = words * 4;
    const recordersAt = activeAt + limits.maxEvents * 4;
    const enabledAt = recordersAt + limits.maxEvents * 2;
    this.sab = sab ?? new SharedArrayBuffer(enabledAt + limits.maxEvents * limits.maxInstances);
    this.i32 = new Int32Array(this.sab, 0, words);
    this.active = new Uint32Array(this.sab, activeAt, limits.maxEvents);
    this.recorders = new Uint16Array(this.sab, recordersAt, limits.maxEvents);
    this.enabled = new Uint8Array(this.sab, enabledAt, limits.maxEvents * limits.maxInstances);
    this.tracingOnIndex = I_INSTANCES;
    this.clockIndex = I_INSTANCES + limits.maxInstances;
    this.snapshotIndex = I_INSTANCES + 2 * limits.maxInstances;
    this.swapsIndex = I_INSTANCES + 3 * limits.maxInstances;
  }

  /** Run a configuration change and publish it to every thread. */
  change<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    for (let spins = 0; Atomics.compareExchange(this.i32, I_LOCK, 0, 1) !== 0; spins++) {
      if (spins > 1e8) throw new Error('tracer control lock is stuck');
    }
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      this.publish();
      Atomics.store(this.i32, I_LOCK, 0);
      for (const listener of this.listeners) listener();
    }
  }

  /** Call `listener` after each change this thread makes (the main thread's probes re-arm). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  get generation(): number {
    return Atomics.load(this.i32, I_GENERATION) >>> 0;
  }

  /** New generation (never 0), then every active word: emitters built earlier rebuild. */
  private publish(): void {
    let gen = (Atomics.load(this.i32, I_GENERATION) + 1) >>> 0;
    if (gen === 0) gen = 1;
    Atomics.store(this.i32, I_GENERATION, gen | 0);
    for (let e = 0; e < this.maxEvents; e++) this.active[e] = this.recorders[e] ? gen : 0;
  }

  tracingOn(instance: number): boolean {
    return Atomics.load(this.i32, this.tracingOnIndex + instance) !== 0;
  }

  /** Whether (instance, event) makes the event active: recorded with tracing on, or triggered. */
  private contributes(instance: number, event: number): boolean {
    const b = this.enabled[instance * this.maxEvents + event]!;
    return (b & TRIGGERED) !== 0 || ((b & ENABLED) !== 0 && this.tracingOn(instance));
  }

  /** Change (instance, event)'s byte, keeping the active counts right. Call inside change(). */
  private setBits(instance: number, event: number, bits: number, on: boolean): void {
    const at = instance * this.maxEvents + event;
    const before = this.contributes(instance, event);
    this.enabled[at] = on ? this.enabled[at]! | bits : this.enabled[at]! & ~bits;
    const after = this.contributes(instance, event);
    if (before !== after) this.recorders[event] += after ? 1 : -1;
  }

  /** Call inside change(). Only events recorded and not triggered there change activity. */
  setTracingOn(instance: number, on: boolean): void {
    if (this.tracingOn(instance) === on) return;
    Atomics.store(this.i32, this.tracingOnIndex + instance, on ? 1 : 0);
    const base = instance * this.maxEvents;
    for (let e = 0; e < this.maxEvents; e++) {
      if ((this.enabled[base + e]! & (ENABLED | TRIGGERED)) === ENABLED) this.recorders[e] += on ? 1 : -1;
    }
  }

  clock(instance: number): number {
    return Atomics.load(this.i32, this.clockIndex + instance);
  }

  /** Call inside change(). */
  setClock(instance: number, clock: number): void {
    Atomics.store(this.i32, this.clockIndex + instance, clock);
  }

  /** Recorded (the `enable` switch), whether or not tracing is on. */
  isEnabled(instance: number, event: number): boolean {
    return (this.enabled[instance * this.maxEvents + event]! & ENABLED) !== 0;
  }

  /** Call inside change(). */
  setEnabled(instance: number, event: number, on: boolean): void {
    this.setBits(instance, event, ENABLED, on);
  }

  isTriggered(instance: number, event: number): boolean {
    return (this.enabled[instance * this.maxEvents + event]! & TRIGGERED) !== 0;
  }

  /** Call inside change(). */
  setTriggered(instance: number, event: number, on: boolean): void {
    this.setBits(instance, event, TRIGGERED, on);
  }

  /** Which of the instance's two buffer sets is live (0 or 1). */
  liveSet(instance: number): number {
    return Atomics.load(this.i32, this.snapshotIndex + instance) & SNAPSHOT_LIVE;
  }

  snapshotAllocated(instance: number): boolean {
    return (Atomics.load(this.i32, this.snapshotIndex + instance) & SNAPSHOT_ALLOCATED) !== 0;
  }

  /** Call inside change(); the spare set must be handed to the threads first. */
  setSnapshotAllocated(instance: number, on: boolean): void {
    const at = this.snapshotIndex + instance;
    const word = Atomics.load(this.i32, at);
    // Freeing keeps the live set where it is; the spare is simply gone.
    Atomics.store(this.i32, at, on ? word | SNAPSHOT_ALLOCATED : word & ~SNAPSHOT_ALLOCATED);
  }

  /** Swap live and spare (a snapshot). Call inside change(). */
  swapSnapshot(instance: number): void {
    Atomics.xor(this.i32, this.snapshotIndex + instance, SNAPSHOT_LIVE);
    Atomics.add(this.i32, this.swapsIndex + instance, 1);
  }

  /** Swaps so far: the flight recorder notices trigger-taken snapshots by this count. */
  swaps(instance: number): number {
    return Atomics.load(this.i32, this.swapsIndex + instance);
  }

  /** Forget an instance slot's enables, triggers and snapshot, and stop it (rmdir). Call inside change(). */
  clearInstance(instance: number): void {
    for (let e = 0; e < this.maxEvents; e++) this.setBits(instance, e, ENABLED | TRIGGERED, false);
    this.setTracingOn(instance, false);
    Atomics.store(this.i32, this.snapshotIndex + instance, 0);
  }
}
