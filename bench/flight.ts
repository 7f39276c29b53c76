/**
 * Flight-recorder figures (issue #6): what a filter adds to an event, snapshot swap time for
 * small and large buffers, crash-dump write speed, and what the persist worker costs at
 * 1 M events/s against plain overwrite mode.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TraceDatEvents, Tracer, flightRecorder, readTraceDatFile } from '../src/index.js';
import { recoverPersistFile } from '../src/flight/recover.js';
import { writeTraceDat } from '../src/format/tracedat/writer.js';

export interface FlightFigures {
  unfilteredNs: number;
  filteredInNs: number;
  filteredOutNs: number;
  swap1MBNs: number;
  swap64MBNs: number;
  dumpMB: number;
  dumpMBps: number;
  persist: { plainCpuNsPerEvent: number; persistCpuNsPerEvent: number; plainEmitNs: number; persistEmitNs: number; eventsPerSec: number };
  /** Newest persisted event before a SIGKILL mid-burst, ms, per run (10 ms passes). */
  persistWindowMs: number[];
}

let sink = 0;

function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** ns per call of each case, interleaved runs, median. */
function timeCases(cases: ((n: number) => void)[], n: number, runs: number): number[] {
  cases.forEach((fn) => fn(Math.min(n, 100_000)));
  const samples = cases.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    cases.forEach((fn, i) => {
      const start = process.hrtime.bigint();
      fn(n);
      samples[i]!.push(Number(process.hrtime.bigint() - start) / n);
    });
  }
  return samples.map(median);
}

function filterCosts(quick: boolean): [number, number, number] {
  const make = (filter: string | null) => {
    const tracer = new Tracer({ env: {} });
    const ev = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
    tracer.write('events/bench/num/enable', '1');
    if (filter) tracer.write('events/bench/num/filter', filter);
    return ev;
  };
  const plain = make(null);
  const passes = make('b == 2');
  const fails = make('b == 3');
  const n = quick ? 200_000 : 2_000_000;
  return timeCases([
    (k) => { for (let i = 0; i < k; i++) plain.emit({ a: i, b: 2, c: 3 }); },
    (k) => { for (let i = 0; i < k; i++) passes.emit({ a: i, b: 2, c: 3 }); },
    (k) => { for (let i = 0; i < k; i++) fails.emit({ a: i, b: 2, c: 3 }); },
  ], n, quick ? 3 : 9) as [number, number, number];
}

function swapTime(kb: number): number {
  const tracer = new Tracer({ env: {} });
  const ev = tracer.defineEvent('bench', 'num', { a: 'u32' });
  tracer.write('events/bench/num/enable', '1');
  tracer.write('buffer_size_kb', String(kb));
  tracer.write('snapshot', '1');
  const inst = tracer.instance();
  const samples: number[] = [];
  for (let r = 0; r < 200; r++) {
    ev.emit({ a: r });
    const start = process.hrtime.bigint();
    inst.snapshot();
    samples.push(Number(process.hrtime.bigint() - start));
  }
  return median(samples);
}

function dumpSpeed(quick: boolean): { mb: number; mbps: number } {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-dump-'));
  try {
    const tracer = new Tracer({ env: {} });
    const ev = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
    tracer.write('events/bench/num/enable', '1');
    tracer.write('buffer_size_kb', String(quick ? 16 * 1024 : 64 * 1024));
    const fill = quick ? 1_500_000 : 6_000_000;
    for (let i = 0; i < fill; i++) ev.emit({ a: i, b: 2, c: 3 });
    const rec = flightRecorder(tracer, { dir, signals: [] });
    const samples: number[] = [];
    let bytes = 0;
    for (let r = 0; r < 5; r++) {
      const start = process.hrtime.bigint();
      const [file] = rec.dump('bench');
      samples.push(Number(process.hrtime.bigint() - start));
      bytes = statSync(file!).size;
      rmSync(file!);
    }
    void rec.close();
    return { mb: bytes / 1e6, mbps: bytes / 1e6 / (median(samples) / 1e9) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Emit at `rate` events/s for `seconds`, in 1 ms batches; CPU ns per event (all threads) and emit ns per event. */
async function pacedRun(persist: string | null, rate: number, seconds: number): Promise<{ cpuNs: number; emitNs: number; events: number }> {
  const tracer = new Tracer({ env: {} });
  const ev = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
  tracer.write('events/bench/num/enable', '1');
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-persist-'));
  const rec = flightRecorder(tracer, { dir, signals: [], persist: persist ? join(dir, persist) : undefined });
  await rec.ready();
  const perMs = rate / 1000;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let emitNs = 0;
  let events = 0;
  for (let ms = 0; ms < seconds * 1000; ms++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perMs; i++) ev.emit({ a: i, b: 2, c: 3 });
    emitNs += Number(process.hrtime.bigint() - t0);
    events += perMs;
    const due = start + BigInt((ms + 1) * 1e6);
    // Yield to the event loop now and then so timers (the metadata watch) run, then wait for the next ms.
    if (ms % 50 === 49) await new Promise((r) => setImmediate(r));
    while (process.hrtime.bigint() < due) sink++;
  }
  const cpu = process.cpuUsage(cpu0);
  await rec.close();
  rmSync(dir, { recursive: true, force: true });
  // process.cpuUsage counts every thread of the process, the persist worker included; the
  // busy-wait between batches is the same in both runs, so the difference is the worker.
  return { cpuNs: ((cpu.user + cpu.system) * 1000) / events, emitNs: emitNs / events, events };
}

/** Kill a child mid-burst and see how old the newest event `nftrace recover` finds is. */
async function persistWindow(runs: number): Promise<number[]> {
  const child = fileURLToPath(new URL('./persist-child.js', import.meta.url));
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-window-'));
    try {
      const file = join(dir, 'p.persist');
      const run = spawnSync(process.execPath, [child, join(dir, 'd'), file, '10'], { encoding: 'utf8' });
      const death = Number(run.stdout.trim());
      const dat = join(dir, 'r.dat');
      await writeTraceDat(dat, recoverPersistFile(file).content, { version: 7, compression: 'none' });
      let newest = 0;
      for (const rec of new TraceDatEvents(await readTraceDatFile(dat)).records()) newest = Math.max(newest, rec.ts);
      out.push((death - newest) / 1e6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

export async function flightBench(quick: boolean): Promise<FlightFigures> {
  const [unfilteredNs, filteredInNs, filteredOutNs] = filterCosts(quick);
  const swap1MBNs = swapTime(1024);
  const swap64MBNs = swapTime(64 * 1024);
  const dump = dumpSpeed(quick);
  const seconds = quick ? 1 : 3;
  const plain = await pacedRun(null, 1e6, seconds);
  const persisted = await pacedRun('bench.persist', 1e6, seconds);
  const persistWindowMs = await persistWindow(quick ? 3 : 10);
  void sink;
  return {
    unfilteredNs, filteredInNs, filteredOutNs, swap1MBNs, swap64MBNs, dumpMB: dump.mb, dumpMBps: dump.mbps,
    persist: {
      plainCpuNsPerEvent: plain.cpuNs,
      persistCpuNsPerEvent: persisted.cpuNs,
      plainEmitNs: plain.emitNs,
      persistEmitNs: persisted.emitNs,
      eventsPerSec: 1e6,
    },
    persistWindowMs,
  };
}
