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
 * enables), and ending in a new generation, so emitters built for the old one rebuild.
 */
export const I_GENERATION = 0;
export const I_COUNTER = 1; // and 2
const I_LOCK = 3;
const I_INSTANCES = 8;

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
  /** Nesting depth of change() on this thread: inner calls neither lock nor publish. */
  private depth = 0;

  constructor(limits: ControlLimits, sab?: SharedArrayBuffer) {
    this.maxInstances = limits.maxInstances;
    this.maxEvents = limits.maxEvents;
    const words = I_INSTANCES + 2 * limits.maxInstances;
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
    }
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

  /** Call inside change(). */
  setTracingOn(instance: number, on: boolean): void {
    if (this.tracingOn(instance) === on) return;
    Atomics.store(this.i32, this.tracingOnIndex + instance, on ? 1 : 0);
    const base = instance * this.maxEvents;
    for (let e = 0; e < this.maxEvents; e++) if (this.enabled[base + e]) this.recorders[e] += on ? 1 : -1;
  }

  clock(instance: number): number {
    return Atomics.load(this.i32, this.clockIndex + instance);
  }

  /** Call inside change(). */
  setClock(instance: number, clock: number): void {
    Atomics.store(this.i32, this.clockIndex + instance, clock);
  }

  isEnabled(instance: number, event: number): boolean {
    return this.enabled[instance * this.maxEvents + event] !== 0;
  }

  /** Call inside change(). */
  setEnabled(instance: number, event: number, on: boolean): void {
    const at = instance * this.maxEvents + event;
    if ((this.enabled[at] !== 0) === on) return;
    this.enabled[at] = on ? 1 : 0;
    if (this.tracingOn(instance)) this.recorders[event] += on ? 1 : -1;
  }

  /** Forget an instance slot's enables and stop it (rmdir). Call inside change(). */
  clearInstance(instance: number): void {
    for (let e = 0; e < this.maxEvents; e++) this.setEnabled(instance, e, false);
    this.setTracingOn(instance, false);
  }
}
