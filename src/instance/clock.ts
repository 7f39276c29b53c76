/**
 * Trace clocks. `local` and `mono` both read CLOCK_MONOTONIC in nanoseconds (what
 * process.hrtime() reads), so Node and kernel recordings made with trace_clock=mono line up;
 * `counter` is a tracer-wide atomic count, cheaper than any clock read.
 */
import { performance } from 'node:perf_hooks';

export const CLOCKS = ['local', 'counter', 'mono'] as const;
export type ClockName = (typeof CLOCKS)[number];
export const CLOCK_LOCAL = 0;
export const CLOCK_COUNTER = 1;
export const CLOCK_MONO = 2;

/** Whether timestamps of this clock are nanoseconds (printed as seconds.micros) or raw counts. */
export function isNanoClock(clock: number): boolean {
  return clock !== CLOCK_COUNTER;
}

/**
 * performance.now() is relative to this thread's time origin; find the CLOCK_MONOTONIC value of
 * that origin once, from the tightest of a few paired reads, so all threads share one timebase.
 */
function monotonicOrigin(): number {
  let best = Infinity;
  let origin = 0;
  for (let i = 0; i < 16; i++) {
    const before = performance.now();
    const mono = Number(process.hrtime.bigint());
    const after = performance.now();
    if (after - before < best) {
      best = after - before;
      origin = mono - ((before + after) / 2) * 1e6;
    }
  }
  return origin;
}

const origin = monotonicOrigin();

/** CLOCK_MONOTONIC in integer nanoseconds. */
export function monoNow(): number {
  return Math.floor(origin + performance.now() * 1e6);
}

/** The `counter` clock: one tracer-wide sequence in two Int32 words of a shared block. */
export function counterNow(words: Int32Array, lo: number): number {
  const low = Atomics.add(words, lo, 1) >>> 0;
  const high = words[lo + 1]!;
  if (low === 0xffffffff) Atomics.add(words, lo + 1, 1);
  return high * 4294967296 + low + 1;
}
