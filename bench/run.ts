/**
 * `npm run bench`: what an event costs, against the baselines named in issue #3, trace.dat
 * writing and decoding (#4), the control tree's memory and FUSE latency (#5), and the flight
 * recorder's filters, snapshot swaps, crash dumps and persist worker (#6), and the kmem
 * analyzer's speed and memory (#7), in one run.
 * Prints a table and writes bench/results/core-<timestamp>.json.
 */
import { mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Tracer } from '../src/index.js';
import { monoNow } from '../src/instance/clock.js';
import { eventfsBench } from './eventfs.js';
import { traceDatBench } from './tracedat.js';
import { flightBench } from './flight.js';
import { kmemBench } from './kmem.js';
import { probeBench } from './probes.js';
import { realBench } from './real.js';

interface Row { name: string; nsPerOp: number; note?: string }
const rows: Row[] = [];
const quick = process.argv.includes('--quick');

type Case = [name: string, fn: (n: number) => void, n: number, note?: string];

/**
 * Median ns/op of each case over repeated timed runs, after a warm-up. The cases' runs are
 * interleaved, so a slow stretch of a noisy machine hits all of them alike (the ratios between
 * a clock read and an event are what the targets are about).
 */
function measureTogether(cases: Case[]): void {
  const iterations = cases.map(([, , n]) => (quick ? Math.max(1, Math.floor(n / 10)) : n));
  cases.forEach(([, fn], i) => fn(Math.min(iterations[i]!, 100_000)));
  const samples: number[][] = cases.map(() => []);
  for (let r = 0; r < (quick ? 3 : 9); r++) {
    cases.forEach(([, fn], i) => {
      const start = process.hrtime.bigint();
      fn(iterations[i]!);
      samples[i]!.push(Number(process.hrtime.bigint() - start) / iterations[i]!);
    });
  }
  cases.forEach(([name, , , note], i) => {
    const sorted = samples[i]!.sort((a, b) => a - b);
    rows.push({ name, nsPerOp: sorted[Math.floor(sorted.length / 2)]!, note });
  });
}

function measure(...c: Case): void {
  measureTogether([c]);
}

let sink = 0;

function nftraceCases() {
  const tracer = new Tracer();
  const off = tracer.defineEvent('bench', 'off', { a: 'u32', b: 'u32', c: 'u32' });
  const num = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
  const str = tracer.defineEvent('bench', 'str', { a: 'u32', s: 'string' });
  tracer.write('events/bench/num/enable', '1');
  tracer.write('events/bench/str/enable', '1');
  const counting = new Tracer();
  const counted = counting.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
  counting.write('events/bench/num/enable', '1');
  counting.write('trace_clock', 'counter');
  const text = 'GET /api/v1/users/42';
  measureTogether([
    ['empty loop (the harness itself)', (n) => { let x = 0; for (let i = 0; i < n; i++) x += i; sink += x; }, 50_000_000],
    ['disabled event', (n) => { for (let i = 0; i < n; i++) off.emit({ a: i, b: 2, c: 3 }); }, 50_000_000],
  ]);
  measureTogether([
    ['clock read: performance.now()', (n) => { for (let i = 0; i < n; i++) sink += performance.now(); }, 2_000_000],
    ['clock read: nftrace monoNow()', (n) => { for (let i = 0; i < n; i++) sink += monoNow(); }, 2_000_000],
    ['enabled, 3 numeric fields (local clock)', (n) => { for (let i = 0; i < n; i++) num.emit({ a: i, b: 2, c: 3 }); }, 2_000_000],
    ['enabled, u32 + 20-char string', (n) => { for (let i = 0; i < n; i++) str.emit({ a: i, s: text }); }, 2_000_000],
    ['enabled, 3 numeric fields (counter clock)', (n) => { for (let i = 0; i < n; i++) counted.emit({ a: i, b: 2, c: 3 }); }, 2_000_000],
  ]);
  return { tracer, num };
}

function baselineCases() {
  const devnull = openSync('/dev/null', 'w');
  const log = pino(pino.destination({ dest: devnull, sync: true }));
  measure('pino info (sync, /dev/null)', (n) => { for (let i = 0; i < n; i++) log.info({ a: i, b: 2, c: 3 }, 'req'); }, 200_000);
  const nullSync = new Writable({ write(chunk, _enc, cb) { writeSync(devnull, chunk); cb(); } });
  const con = new Console({ stdout: nullSync });
  measure('console.log (/dev/null)', (n) => { for (let i = 0; i < n; i++) con.log('req', i, 2, 3); }, 200_000);
  const exporter = { export: (_spans: unknown, cb: (r: { code: number }) => void) => cb({ code: 0 }), shutdown: async () => {} };
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter as never)] });
  const otel = provider.getTracer('bench');
  measure('OpenTelemetry SDK span (batch, no-op exporter)', (n) => {
    for (let i = 0; i < n; i++) { const s = otel.startSpan('req'); s.setAttribute('a', i); s.end(); }
  }, 200_000);
  const channel = diagnostics_channel.channel('nftrace-bench');
  const subscriber = (m: unknown) => { sink += (m as { a: number }).a; };
  channel.subscribe(subscriber);
  measure('diagnostics_channel publish, 1 subscriber', (n) => { for (let i = 0; i < n; i++) channel.publish({ a: i, b: 2, c: 3 }); }, 5_000_000);
  channel.unsubscribe(subscriber);
  void provider.shutdown();
}

async function workerCase(workers: number, count: number): Promise<number> {
  const tracer = new Tracer();
  tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
  tracer.write('events/bench/num/enable', '1');
  const file = fileURLToPath(new URL('./emit-worker.js', import.meta.url));
  const list = Array.from({ length: workers }, () => {
    const { handle, transferList } = tracer.threadHandle();
    return new Worker(file, { workerData: { handle, count }, transferList });
  });
  await Promise.all(list.map((w) => new Promise((r) => w.once('message', r))));
  const start = process.hrtime.bigint();
  const times = await Promise.all(list.map((w) => new Promise<number>((r) => { w.once('message', r); w.postMessage('go'); })));
  const wall = Number(process.hrtime.bigint() - start);
  await Promise.all(list.map((w) => w.terminate()));
  void times;
  return (workers * count) / (wall / 1e9);
}

function heapCase(num: { emit(p: { a: number; b: number; c: number }): void }): { before: number; after: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return { before: NaN, after: NaN };
  for (let i = 0; i < 1e5; i++) num.emit({ a: i, b: 2, c: 3 });
  gc(); gc();
  const before = process.memoryUsage().heapUsed;
  const n = quick ? 1e6 : 1e7;
  for (let i = 0; i < n; i++) num.emit({ a: i, b: 2, c: 3 });
  gc(); gc();
  return { before, after: process.memoryUsage().heapUsed };
}

async function main() {
  const { num } = nftraceCases();
  baselineCases();
  const perWorker = quick ? 500_000 : 5_000_000;
  const w1 = await workerCase(1, perWorker);
  const w2 = await workerCase(2, perWorker);
  const heap = heapCase(num);
  const dat = await traceDatBench(quick ? 1_000_000 : 10_000_000);
  const tree = await eventfsBench(quick ? [1, 10] : [1, 10, 100]);
  const flight = await flightBench(quick);
  const probes = probeBench(quick);
  const kmem = await kmemBench(quick ? 40 : 200);
  const kmemLarge = quick ? null : await kmemBench(600);
  const real = await realBench();
  const get = (name: string) => rows.find((r) => r.name.startsWith(name))!.nsPerOp;
  const numeric = get('enabled, 3 numeric');
  const clock = get('clock read: nftrace');
  const pinoNs = get('pino');
  const loop = get('empty loop');
  const disabled = get('disabled event');
  const checks = {
    'disabled <= 1.5 ns': disabled <= 1.5,
    'disabled <= 1.5 ns beyond the empty loop': disabled - loop <= 1.5,
    'enabled numeric <= clock + 10 ns': numeric <= clock + 10,
    'pino / nftrace >= 35': pinoNs / numeric >= 35,
    'heap flat across 10^7 events (< 1 MB growth)': heap.after - heap.before < 1 << 20,
  };
  console.log(`\nnftrace core benchmark (node ${process.version}, ${quick ? 'quick' : 'full'} run)\n`);
  console.log('| case | ns/op | vs nftrace enabled numeric |');
  console.log('|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${r.nsPerOp.toFixed(2)} | ${(r.nsPerOp / numeric).toFixed(2)}x |`);
  console.log(`\ndisabled - empty loop: ${(disabled - loop).toFixed(2)} ns`);
  console.log(`enabled numeric - clock read: ${(numeric - clock).toFixed(2)} ns`);
  console.log(`pino / nftrace: ${(pinoNs / numeric).toFixed(1)}x; console.log / nftrace: ${(get('console.log') / numeric).toFixed(1)}x; OTel span / nftrace: ${(get('OpenTelemetry') / numeric).toFixed(1)}x`);
  console.log(`events/s, 1 worker: ${(w1 / 1e6).toFixed(2)} M; 2 workers: ${(w2 / 1e6).toFixed(2)} M`);
  console.log(`heap after GC: ${(heap.before / 1e6).toFixed(2)} MB before, ${(heap.after / 1e6).toFixed(2)} MB after ${quick ? '10^6' : '10^7'} events`);
  console.log(`trace.dat (${dat.events} events, ${dat.fileMB.toFixed(0)} MB, v6): write ${dat.writeMBps.toFixed(0)} MB/s; decode ${(dat.decodeEventsPerSec / 1e6).toFixed(2)} M events/s; trace-cmd report > /dev/null ${dat.traceCmdReportSec === null ? 'n/a' : `${dat.traceCmdReportSec.toFixed(1)} s (${(dat.events / dat.traceCmdReportSec / 1e6).toFixed(2)} M events/s, ours ${((dat.decodeEventsPerSec * dat.traceCmdReportSec) / dat.events).toFixed(1)}x faster at decoding)`}`);
  Object.assign(checks, { 'trace.dat decode >= 5 M events/s': dat.decodeEventsPerSec >= 5e6, 'trace.dat write >= 500 MB/s': dat.writeMBps >= 500 });
  console.log(`\ncontrol tree memory: heap after GC relative to the tracer without instances, KB (${tree.entriesPerInstance} entries per instance's events/)\n`);
  console.log('| tree | instances | untouched | after ls -R | after reading every file |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of tree.rows) console.log(`| ${r.tree} | ${r.instances} | ${r.untouchedKB.toFixed(0)} | ${r.afterLsKB.toFixed(0)} | ${r.afterReadKB.toFixed(0)} |`);
  const { eventfs, eager } = tree.perInstanceKB;
  console.log(`\nper added instance, untouched: eventfs ${eventfs.toFixed(1)} KB, eager ${eager.toFixed(0)} KB (${(100 * (1 - eventfs / eager)).toFixed(1)}% less); kernel 6.18: ~540 KB of slab`);
  if (tree.fuse) {
    const f = tree.fuse;
    console.log(`stat through FUSE: cold file median ${f.coldMedianUs.toFixed(0)} us, p99 ${f.coldP99Us.toFixed(0)} us; warm median ${f.warmMedianUs.toFixed(0)} us, p99 ${f.warmP99Us.toFixed(0)} us`);
  }
  const walked = tree.rows.filter((r) => r.tree === 'eventfs');
  Object.assign(checks, {
    'eventfs <= 64 kB per added instance (untouched)': eventfs <= 64,
    'eventfs >= 95% below the eager tree': eventfs <= 0.05 * eager,
    // 64 KB of slack: at these sizes V8's own housekeeping moves the heap by about that much.
    'eventfs memory back within 10% of untouched after the walk': walked.every((r) => r.afterReadKB <= r.untouchedKB * 1.1 + 64),
  });
  const fl = flight;
  console.log('\nflight recorder\n');
  console.log('| case | value | vs |');
  console.log('|---|---:|---|');
  console.log(`| emit, no filter | ${fl.unfilteredNs.toFixed(2)} ns | |`);
  console.log(`| emit, filter \`b == 2\` passes | ${fl.filteredInNs.toFixed(2)} ns | +${(fl.filteredInNs - fl.unfilteredNs).toFixed(2)} ns |`);
  console.log(`| emit, filter \`b == 3\` drops it | ${fl.filteredOutNs.toFixed(2)} ns | ${(fl.filteredOutNs - fl.unfilteredNs).toFixed(2)} ns |`);
  console.log(`| snapshot swap, 1 MB per thread | ${(fl.swap1MBNs / 1e3).toFixed(1)} us | |`);
  console.log(`| snapshot swap, 64 MB per thread | ${(fl.swap64MBNs / 1e3).toFixed(1)} us | ${(fl.swap64MBNs / fl.swap1MBNs).toFixed(2)}x the 1 MB swap |`);
  console.log(`| crash dump (sync trace.dat v7, ${fl.dumpMB.toFixed(0)} MB) | ${fl.dumpMBps.toFixed(0)} MB/s | |`);
  const p = fl.persist;
  console.log(`| 1 M events/s, overwrite mode: CPU per event (all threads) | ${p.plainCpuNsPerEvent.toFixed(0)} ns | emit ${p.plainEmitNs.toFixed(1)} ns |`);
  console.log(`| 1 M events/s, persist mode: CPU per event (all threads) | ${p.persistCpuNsPerEvent.toFixed(0)} ns | emit ${p.persistEmitNs.toFixed(1)} ns; +${(p.persistCpuNsPerEvent - p.plainCpuNsPerEvent).toFixed(0)} ns CPU |`);
  const windows = [...fl.persistWindowMs].sort((a, b) => a - b);
  console.log(`| persist: newest recovered event before a SIGKILL mid-burst (10 ms passes, ${windows.length} runs) | median ${windows[Math.floor(windows.length / 2)]!.toFixed(1)} ms | max ${windows.at(-1)!.toFixed(1)} ms |`);
  Object.assign(checks, {
    'persist window <= 50 ms (max over runs)': windows.at(-1)! <= 50,
    'filter adds <= 5 ns (simple numeric, passes)': fl.filteredInNs - fl.unfilteredNs <= 5,
    'snapshot swap independent of size (64 MB <= 2x 1 MB)': fl.swap64MBNs <= 2 * fl.swap1MBNs,
    'crash dump >= 500 MB/s': fl.dumpMBps >= 500,
  });
  console.log('\nfunction probes (dynamic_events): ns per call of exports.add(a, b)\n');
  console.log('| case | ns/call | over the plain call |');
  console.log('|---|---:|---:|');
  for (const [name, ns] of [['plain function', probes.plainNs], ['probe defined, never armed (original in place)', probes.probedOffNs], ['armed, then disarmed: a call site that ran while armed', probes.disarmedSeenNs], ['armed, then disarmed: a call site that never saw the wrapper', probes.disarmedFreshNs], ['entry probe, 2 s32 args, recorded', probes.entryNs], ['return probe, $retval, recorded', probes.returnNs], ['return probe feeding a hist trigger (not recorded)', probes.histNs]] as const) {
    const over = ns - probes.plainNs;
    console.log(`| ${name} | ${ns.toFixed(1)} | ${over < 0 ? '' : '+'}${over.toFixed(1)} |`);
  }
  console.log(`\nhist trigger keys=k:vals=v on a static event, not recorded: ${probes.histEventNs.toFixed(1)} ns per emit (${probes.eventOffNs.toFixed(1)} with the event off)`);
  const clockNs = get('clock read: nftrace monoNow()');
  Object.assign(checks, {
    'probe with its event off <= 2 ns over the plain call': probes.probedOffNs - probes.plainNs <= 2,
    'disarmed probe, at a call site that never saw the wrapper, <= 2 ns over the plain call': probes.disarmedFreshNs - probes.plainNs <= 2,
    'entry probe, 2 numeric args <= clock + 30 ns over the plain call': probes.entryNs - probes.plainNs <= clockNs + 30,
    'hist trigger, 1 key + 1 val <= 40 ns per event': probes.histEventNs - probes.eventOffNs <= 40,
  });
  console.log('\nnftrace kmem (the 5,000-event fixture replayed with shifted pointers; each run a process of its own, best of 3)\n');
  console.log('| input | events | events/s | peak RSS | trace-cmd report, same trace.dat |');
  console.log('|---|---:|---:|---:|---|');
  for (const k of [kmem, kmemLarge].filter((x) => x !== null)) {
    console.log(`| ftrace text (${k.textMB.toFixed(0)} MB) | ${k.events} | ${(k.textEventsPerSec / 1e6).toFixed(2)} M | ${k.textMaxRssMB.toFixed(0)} MB | |`);
    const tc = k.traceCmdSec === null ? 'n/a' : `${k.traceCmdSec.toFixed(2)} s = ${(k.events / k.traceCmdSec / 1e6).toFixed(2)} M events/s (ours ${((k.datEventsPerSec * k.traceCmdSec) / k.events).toFixed(1)}x)`;
    console.log(`| trace.dat | ${k.events} | ${(k.datEventsPerSec / 1e6).toFixed(2)} M | ${k.datMaxRssMB.toFixed(0)} MB | ${tc} |`);
  }
  // The issue's inputs are ≥ 10^6 events: the larger run is the one without start-up in it.
  const kmemTarget = kmemLarge ?? kmem;
  Object.assign(checks, {
    [`kmem text >= 2 M events/s (${kmemTarget.events} events)`]: kmemTarget.textEventsPerSec >= 2e6,
    [`kmem trace.dat >= 5 M events/s (${kmemTarget.events} events)`]: kmemTarget.datEventsPerSec >= 5e6,
  });
  if (real.skipped) console.log(`\nreal kernel recordings: skipped (${real.skipped})`);
  if (real.report) {
    const r = real.report;
    const mb = (t: { maxRssMB: number | null }) => (t.maxRssMB === null ? 'n/a' : `${t.maxRssMB.toFixed(0)} MB`);
    console.log(`\nreport on a real kmem recording (bench/capture-kmem.sh: ${r.events} events, ${r.datMB.toFixed(1)} MB v7 zstd; each run a process of its own, best of 3)\n`);
    console.log('| output | trace-cmd report -N | nftrace report -N | ratio | peak RSS (trace-cmd / ours) |');
    console.log('|---|---:|---:|---:|---|');
    for (const [name, key] of [['file', 'file'], ['/dev/null', 'devnull']] as const) {
      console.log(`| ${name} | ${r.traceCmd[key].seconds.toFixed(2)} s | ${r.ours[key].seconds.toFixed(2)} s | ${(r.traceCmd[key].seconds / r.ours[key].seconds).toFixed(2)}x | ${mb(r.traceCmd[key])} / ${mb(r.ours[key])} |`);
    }
    console.log(`lines differing: ${r.differing}, of them libtraceevent's documented misreadings: ${r.documented}${r.firstUndocumented ? `\nfirst other difference: ${r.firstUndocumented}` : ''}`);
    Object.assign(checks, {
      'report -N into a file >= 3x faster than trace-cmd report -N': r.traceCmd.file.seconds / r.ours.file.seconds >= 3,
      'report -N into /dev/null >= 3x faster than trace-cmd report -N': r.traceCmd.devnull.seconds / r.ours.devnull.seconds >= 3,
      'report -N output identical to trace-cmd (documented differences aside)': r.differing === r.documented,
    });
  } else if (real.reportSkipped) {
    console.log(`\nreport vs trace-cmd on a real recording: skipped (${real.reportSkipped})`);
  }
  if (real.kmem) {
    const k = real.kmem;
    console.log('\nnftrace kmem on the real capture (each run a process of its own, best of 3; time from open to account)\n');
    console.log('| input | events | events/s | peak RSS | vs naive readline + regex |');
    console.log('|---|---:|---:|---:|---:|');
    console.log(`| ftrace text | ${k.textEvents} | ${(k.textEventsPerSec / 1e6).toFixed(2)} M | ${k.textMaxRssMB.toFixed(0)} MB | ${(k.textEventsPerSec / k.naiveEventsPerSec).toFixed(1)}x |`);
    console.log(`| trace.dat v7 zstd (as recorded) | ${k.datEvents} | ${(k.datEventsPerSec / 1e6).toFixed(2)} M | ${k.datMaxRssMB.toFixed(0)} MB | |`);
    console.log(`| trace.dat v6 (same events, uncompressed) | ${k.datEvents} | ${(k.dat6EventsPerSec / 1e6).toFixed(2)} M | | |`);
    console.log(`| naive readline + regex over the text | | ${(k.naiveEventsPerSec / 1e6).toFixed(2)} M | | 1.0x |`);
    Object.assign(checks, {
      'kmem real text >= 2 M events/s': k.textEventsPerSec >= 2e6,
      'kmem real trace.dat (v6) >= 5 M events/s': k.dat6EventsPerSec >= 5e6,
      'kmem real text >= 6x the naive pass': k.textEventsPerSec >= 6 * k.naiveEventsPerSec,
    });
  }
  for (const [k, ok] of Object.entries(checks)) console.log(`${ok ? 'PASS' : 'MISS'}  ${k}`);
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const out = `${dir}core-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(out, JSON.stringify({ node: process.version, quick, rows, workers: { one: w1, two: w2 }, heap, traceDat: dat, controlTree: tree, flight, probes, kmem: { small: kmem, large: kmemLarge }, real, checks, sink }, null, 2));
  console.log(`\nsaved ${out}`);
}

await main();
