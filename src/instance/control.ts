/**
 * The state every thread of a tracer must see at once, in one SharedArrayBuffer: a generation
 * number bumped on every configuration change, the counter clock, each instance's tracing_on and
 * clock, and one enable byte per (instance, event) plus one "recorded anywhere" byte per event
 * that the emit fast path tests.
 */
export const I_GENERATION = 0;
export const I_COUNTER = 1; // and 2
export const I_NEXT_THREAD = 3;
const I_INSTANCES = 8;

export interface ControlLimits {
  maxInstances: number;
  maxEvents: number;
}

export class ControlBlock {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  /** active[event index] !== 0 when some instance records the event: the emit fast-path test. */
  readonly active: Uint8Array;
  readonly enabled: Uint8Array;
  readonly maxInstances: number;
  readonly maxEvents: number;
  private readonly tracingOnIndex: number;
  private readonly clockIndex: number;

  constructor(limits: ControlLimits, sab?: SharedArrayBuffer) {
    this.maxInstances = limits.maxInstances;
    this.maxEvents = limits.maxEvents;
    const words = I_INSTANCES + 2 * limits.maxInstances;
    const bytes = words * 4 + limits.maxEvents * (1 + limits.maxInstances);
    this.sab = sab ?? new SharedArrayBuffer(bytes);
    this.i32 = new Int32Array(this.sab, 0, words);
    this.active = new Uint8Array(this.sab, words * 4, limits.maxEvents);
    this.enabled = new Uint8Array(this.sab, words * 4 + limits.maxEvents, limits.maxEvents * limits.maxInstances);
    this.tracingOnIndex = I_INSTANCES;
    this.clockIndex = I_INSTANCES + limits.maxInstances;
  }

  get generation(): number {
    return Atomics.load(this.i32, I_GENERATION);
  }

  /** Tell every thread to rebuild its emit paths. */
  bump(): void {
    Atomics.add(this.i32, I_GENERATION, 1);
  }

  tracingOn(instance: number): boolean {
    return Atomics.load(this.i32, this.tracingOnIndex + instance) !== 0;
  }

  setTracingOn(instance: number, on: boolean): void {
    Atomics.store(this.i32, this.tracingOnIndex + instance, on ? 1 : 0);
  }

  /** Index into i32 of an instance's tracing_on word (read on every write). */
  tracingOnWord(instance: number): number {
    return this.tracingOnIndex + instance;
  }

  clock(instance: number): number {
    return Atomics.load(this.i32, this.clockIndex + instance);
  }

  setClock(instance: number, clock: number): void {
    Atomics.store(this.i32, this.clockIndex + instance, clock);
  }

  isEnabled(instance: number, event: number): boolean {
    return this.enabled[instance * this.maxEvents + event] !== 0;
  }

  /** Returns whether anything changed. */
  setEnabled(instance: number, event: number, on: boolean): boolean {
    const at = instance * this.maxEvents + event;
    if ((this.enabled[at] !== 0) === on) return false;
    this.enabled[at] = on ? 1 : 0;
    let any = 0;
    for (let i = 0; i < this.maxInstances && !any; i++) any = this.enabled[i * this.maxEvents + event]!;
    this.active[event] = any ? 1 : 0;
    return true;
  }

  /** Forget an instance slot's enables (rmdir). */
  clearInstance(instance: number): void {
    for (let e = 0; e < this.maxEvents; e++) {
      if (this.enabled[instance * this.maxEvents + e]) this.setEnabled(instance, e, false);
    }
    this.setTracingOn(instance, false);
  }
}
