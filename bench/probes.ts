/**
 * What a function probe costs a call (issue #8): the plain function, probed with its event off,
 * an entry probe recording two numbers, a return probe with $retval, and a hist trigger on it;
 * and what a hist trigger (one key, one value) adds to a static event that is not recorded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer } from '../src/index.js';

export interface ProbeFigures {
  plainNs: number;
  probedOffNs: number;
  /** Disarmed again, at the call site that ran while the probe was armed. */
  disarmedSeenNs: number;
  /** Disarmed again, at a call site that never called the wrapper. */
  disarmedFreshNs: number;
  entryNs: number;
  returnNs: number;
  histNs: number;
  /** emit() of a static event whose only use is a hist trigger keys=k:vals=v. */
  histEventNs: number;
  /** The same emit() with the event off: what the hist trigger adds is the difference. */
  eventOffNs: number;
}

let sink = 0;

function time(fn: (n: number) => void, n: number): number {
  fn(Math.min(n, 100_000));
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    fn(n);
    runs.push(Number(process.hrtime.bigint() - start) / n);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

export function probeBench(quick: boolean): ProbeFigures {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-probe-'));
  try {
    const file = join(dir, 'lib.cjs');
    writeFileSync(file, 'exports.add = (a, b) => a + b;\n');
    const lib = createRequire(join(dir, 'x.js'))(file) as { add: (a: number, b: number) => number };
    const n = quick ? 200_000 : 2_000_000;
    const call = (k: number) => {
      for (let i = 0; i < k; i++) sink += lib.add(i, 2);
    };
    const plainNs = time(call, n);
    const tracer = new Tracer({ env: {} });
    tracer.write('buffer_size_kb', '4096');
    tracer.write('dynamic_events', `f:bench/add ${file}:add a=$arg1:s32 b=$arg2:s32`);
    const probedOffNs = time(call, n);
    tracer.write('events/bench/add/enable', '1');
    const entryNs = time(call, n);
    tracer.write('events/bench/add/enable', '0');
    // The original is back in the property; what a call costs now depends on whether the call
    // site saw the wrapper (its call feedback keeps both targets) or not.
    const disarmedSeenNs = time(call, n);
    const fresh = (k: number) => {
      for (let i = 0; i < k; i++) sink += lib.add(i, 2);
    };
    const disarmedFreshNs = time(fresh, n);
    tracer.append('dynamic_events', '-:bench/add');
    tracer.append('dynamic_events', `f:bench/add_ret ${file}:add%return r=$retval:s64`);
    tracer.write('events/bench/add_ret/enable', '1');
    const returnNs = time(call, n);
    tracer.write('events/bench/add_ret/enable', '0');
    tracer.write('events/bench/add_ret/trigger', 'hist:keys=r.log2');
    const histNs = time(call, quick ? 20_000 : 200_000);
    const ev = tracer.defineEvent('bench', 'kv', { k: 'u32', v: 'u32' });
    const emit = (k: number) => {
      for (let i = 0; i < k; i++) ev.emit({ k: i & 63, v: i });
    };
    const eventOffNs = time(emit, n);
    tracer.write('events/bench/kv/trigger', 'hist:keys=k:vals=v');
    const histEventNs = time(emit, n);
    return { plainNs, probedOffNs, disarmedSeenNs, disarmedFreshNs, entryNs, returnNs, histNs, histEventNs, eventOffNs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    void sink;
  }
}
