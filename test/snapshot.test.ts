/**
 * Snapshot: the kernel's write table (0/1/other on a freed, allocated and swapped snapshot),
 * the pure exchange, per-CPU files, what resizes and clock changes do, the help text, and a
 * snapshot saved as trace.dat. The development kernel has no snapshot; expectations are the
 * behaviour recorded on Linux 6.12 (ftrace reference, section 1.4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TraceDatEvents, Tracer, readTraceDatFile } from '../src/index.js';
import { reportText } from '../src/format/report.js';
import type { TraceError } from '../src/errno.js';
import { message } from './helpers/wait.js';

function setup() {
  const tracer = new Tracer({ env: {} });
  const mark = tracer.defineEvent('test', 'mark', { n: 'u32' });
  tracer.write('events/test/mark/enable', '1');
  const lines = (path: string) => tracer.read(path).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => /n=(\d+)/.exec(l)?.[1]);
  return { tracer, emit: (...ns: number[]) => ns.forEach((n) => mark.emit({ n })), trace: () => lines('trace'), snap: () => lines('snapshot') };
}

const FREED = '# tracer: nop\n#\n#\n# * Snapshot is freed *\n#\n# Snapshot commands:\n# echo 0 > snapshot : Clears and frees snapshot buffer\n';

test('an empty snapshot reads the status and the help lines', () => {
  const { tracer } = setup();
  assert.ok(tracer.read('snapshot').startsWith(FREED));
  assert.match(tracer.read('snapshot'), /# echo 2 > snapshot : Clears snapshot buffer \(but does not allocate or free\)\n# {22}\(Doesn't have to be '2' works with any number that\n# {23}is not a '0' or '1'\)\n$/);
  tracer.write('snapshot', '1');
  assert.match(tracer.read('snapshot'), /# \* Snapshot is allocated \*/);
  assert.match(tracer.read('per_cpu/cpu0/snapshot'), /# echo 0 > snapshot : Invalid for per_cpu snapshot file\.\n# echo 1 > snapshot : Not supported with this kernel\./);
});

test('writes follow the kernel table on freed, allocated and swapped snapshots', () => {
  const { tracer, emit, trace, snap } = setup();
  const inst = tracer.instance();
  // Not allocated: 0 and 2 do nothing.
  emit(1, 2, 3);
  tracer.write('snapshot', '0');
  tracer.write('snapshot', '2');
  assert.equal(inst.snapshotAllocated, false);
  assert.deepEqual(trace(), ['1', '2', '3']);
  // 1 allocates and swaps: a pure exchange.
  tracer.write('snapshot', '1');
  assert.deepEqual(snap(), ['1', '2', '3']);
  assert.deepEqual(trace(), []);
  emit(4);
  tracer.write('snapshot', '1');
  assert.deepEqual(snap(), ['4']);
  assert.deepEqual(trace(), ['1', '2', '3'], 'the old live buffer is live again');
  // Another number clears the snapshot and keeps it allocated.
  tracer.write('snapshot', '2');
  assert.deepEqual(snap(), []);
  assert.equal(inst.snapshotAllocated, true);
  assert.match(tracer.read('snapshot'), /Snapshot is allocated/);
  // 0 frees it.
  tracer.write('snapshot', '0');
  assert.equal(inst.snapshotAllocated, false);
  assert.ok(tracer.read('snapshot').startsWith(FREED));
  // Bad values change nothing.
  for (const bad of ['abc', '-1', '', ' 1']) {
    assert.throws(() => tracer.write('snapshot', bad), (e: TraceError) => e.code === 'EINVAL', bad);
  }
  assert.equal(inst.snapshotAllocated, false);
  assert.equal(inst.snapshotCount, 2);
  // A swap keeps tracing_on.
  tracer.write('tracing_on', '0');
  inst.snapshot();
  assert.equal(tracer.read('tracing_on'), '0\n');
});

test('per-CPU snapshot files: 0 and 1 are EINVAL, other numbers clear that CPU', () => {
  const { tracer, emit, snap } = setup();
  emit(1);
  tracer.write('snapshot', '1');
  assert.throws(() => tracer.write('per_cpu/cpu0/snapshot', '1'), (e: TraceError) => e.code === 'EINVAL');
  assert.throws(() => tracer.write('per_cpu/cpu0/snapshot', '0'), (e: TraceError) => e.code === 'EINVAL');
  assert.deepEqual(snap(), ['1']);
  tracer.write('per_cpu/cpu0/snapshot', '2');
  assert.deepEqual(snap(), []);
  assert.throws(() => tracer.write('per_cpu/cpu5/snapshot', '2'), (e: TraceError) => e.code === 'ENOENT');
});

test('the snapshot follows resizes and is cleared by a clock change', () => {
  const { tracer, emit, snap } = setup();
  emit(7, 8);
  tracer.write('snapshot', '1');
  tracer.write('buffer_size_kb', '64');
  assert.deepEqual(snap(), ['7', '8'], 'a resize keeps the snapshot');
  emit(9);
  tracer.write('snapshot', '1');
  assert.deepEqual(snap(), ['9']);
  tracer.write('trace_clock', 'mono');
  assert.deepEqual(snap(), []);
  assert.equal(tracer.instance().snapshotAllocated, true);
});

test('a snapshot swap takes the same time for 1 MB and 64 MB buffers (no copy)', () => {
  const { tracer, emit } = setup();
  emit(1);
  const time = (kb: number) => {
    tracer.write('buffer_size_kb', String(kb));
    tracer.write('snapshot', '1');
    const start = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) tracer.instance().snapshot();
    return Number(process.hrtime.bigint() - start) / 100;
  };
  const small = time(1024);
  const large = time(64 * 1024);
  // Not a timing assertion (see bench/): only that nothing proportional to the size happens.
  assert.ok(large < small * 20 + 1e6, `1 MB ${small} ns, 64 MB ${large} ns`);
});

test('a worker\'s events are swapped with the main thread\'s, and a snapshot saves as trace.dat', async () => {
  const { tracer, emit } = setup();
  const { handle, transferList } = tracer.threadHandle('snapw');
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)}).then(({ attach }) => {
      const t = attach(workerData.handle);
      const ev = t.defineEvent('test', 'mark', { n: 'u32' });
      parentPort.on('message', (n) => { ev.emit({ n }); parentPort.postMessage('ok'); });
      parentPort.postMessage('ready');
    });`;
  const worker = new Worker(src, { eval: true, workerData: { handle }, transferList });
  const next = () => message(worker);
  await next();
  emit(1);
  worker.postMessage(100);
  await next();
  tracer.write('snapshot', '1');
  worker.postMessage(101);
  await next();
  const snap = tracer.read('snapshot');
  assert.match(snap, /n=1\n/);
  assert.match(snap, /n=100\n/);
  assert.doesNotMatch(snap, /n=101/);
  assert.match(tracer.read('trace'), /n=101\n/);
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-snap-'));
  try {
    const file = join(dir, 'snap.dat');
    await tracer.saveTraceDat(file, { snapshot: true });
    const events = new TraceDatEvents(await readTraceDatFile(file));
    const lines = reportText(events, {});
    assert.match(lines, /mark: +n=1\n/);
    assert.match(lines, /mark: +n=100\n/);
    assert.doesNotMatch(lines, /n=101/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await worker.terminate();
  }
});
