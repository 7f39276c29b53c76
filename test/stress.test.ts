/**
 * 4 workers x 10^6 checksummed events into small rings while the main thread consumes them
 * concurrently: every event read is intact, none is read twice, and for every ring
 * emitted = read + overrun + dropped, exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { setImmediate as tick } from 'node:timers/promises';
import { Tracer } from '../src/index.js';
import { RingConsumer, copyPageImage, pageSpan } from '../src/ring/reader.js';
import { forEachEvent } from '../src/ring/ring.js';
import { COMMIT_SIZE_MASK } from '../src/ring/layout.js';
import { message } from './helpers/wait.js';

const WORKER = fileURLToPath(new URL('./helpers/stress-worker.js', import.meta.url));

async function run(overwrite: boolean, workers: number, count: number, bufferKb: number) {
  const tracer = new Tracer();
  tracer.defineEvent('stress', 'ev', { seq: 'u32', worker: 'u16', check: 'u32', tag: 'string' });
  tracer.write('buffer_size_kb', String(bufferKb));
  tracer.write('options/overwrite', overwrite ? '1' : '0');
  tracer.write('events/stress/enable', '1');
  const top = tracer.instance();
  const threads = Array.from({ length: workers }, (_, w) => {
    const { handle, transferList } = tracer.threadHandle(`stress-${w}`);
    return { cpu: handle.cpu, worker: new Worker(WORKER, { workerData: { handle, count, worker: w }, transferList }) };
  });
  const consumers = threads.map((t) => new RingConsumer(top.ring(t.cpu)));
  const lastSeq = threads.map(() => -1);
  let read = 0;
  let corrupt = 0;
  let outOfOrder = 0;
  const finished = threads.map((t) => new Promise<void>((resolve, reject) => {
    t.worker.on('message', (m) => m === 'done' && resolve());
    t.worker.on('error', reject);
    t.worker.on('exit', (code) => reject(new Error(`writer worker exited (${code}) before it was done`)));
  }));
  let done = false;
  void Promise.all(finished).then(() => (done = true));
  const drain = () => {
    let got = 0;
    for (let i = 0; i < consumers.length; i++) {
      const c = consumers[i]!;
      while (c.fill()) {
        const list = c.pending;
        while (c.hasPending) {
          const k = c.shift();
          const off = list.off[k]!;
          const dv = list.dv;
          const seq = dv.getUint32(off + 8, true);
          const worker = dv.getUint16(off + 12, true);
          const check = dv.getUint32(off + 16, true);
          const loc = dv.getUint32(off + 20, true);
          const tagLen = (loc >>> 16) - 1;
          const tagOk = tagLen === (seq % 5) + 1 && dv.getUint8(off + (loc & 0xffff)) === 97 + (seq % 5);
          if (worker !== i || check !== ((Math.imul(seq, 2654435761) ^ worker ^ tagLen) >>> 0) || !tagOk) corrupt++;
          if (seq <= lastSeq[i]!) outOfOrder++;
          lastSeq[i] = seq;
          got++;
        }
      }
    }
    read += got;
    return got;
  };
  while (!done) {
    if (drain() === 0) await tick();
  }
  await Promise.all(threads.map((t) => t.worker.terminate()));
  drain();
  let overrun = 0;
  let dropped = 0;
  for (const t of threads) {
    const c = top.ring(t.cpu).counters();
    assert.equal(c.committed + c.dropped, count, `cpu${t.cpu}: every emit was written or dropped`);
    assert.equal(c.committed, c.read + c.overrun + c.entries, `cpu${t.cpu}: committed = read + overrun + entries`);
    assert.equal(c.entries, 0);
    overrun += c.overrun;
    dropped += c.dropped;
  }
  return { written: workers * count, read, overrun, dropped, corrupt, outOfOrder };
}

test('overwrite mode: 4 workers x 10^6 events, concurrent consumer', async () => {
  const r = await run(true, 4, 1_000_000, 64);
  console.log(`# overwrite: ${JSON.stringify(r)}`);
  assert.equal(r.corrupt, 0);
  assert.equal(r.outOfOrder, 0);
  assert.equal(r.written, r.read + r.overrun + r.dropped);
});

test('producer/consumer mode: 4 workers x 2*10^5 events, concurrent consumer', async () => {
  const r = await run(false, 4, 200_000, 16);
  console.log(`# producer/consumer: ${JSON.stringify(r)}`);
  assert.equal(r.corrupt, 0);
  assert.equal(r.outOfOrder, 0);
  assert.equal(r.written, r.read + r.overrun + r.dropped);
  assert.equal(r.overrun, 0);
});

test('page copies taken while a worker writes the page decode cleanly (the copy\'s commit is what it holds)', async () => {
  const tracer = new Tracer();
  tracer.defineEvent('stress', 'ev', { seq: 'u32', worker: 'u16', check: 'u32', tag: 'string' });
  tracer.write('events/stress/enable', '1');
  const { handle, transferList } = tracer.threadHandle('copier');
  const worker = new Worker(WORKER, { workerData: { handle, count: 3_000_000, worker: 0 }, transferList });
  await message(worker);
  const done = message(worker, 120_000);
  let finished = false;
  void done.then(() => (finished = true));
  const view = () => tracer.instance().ring(1);
  const out = new Uint8Array(view().subbuf);
  let copies = 0;
  while (!finished) {
    const v = view();
    const span = pageSpan(v);
    if (span && copyPageImage(v, span.tail % v.pages, 0, out, 0) > 0) {
      const commit = new DataView(out.buffer).getUint32(8, true) & COMMIT_SIZE_MASK;
      forEachEvent(new DataView(out.buffer), 0, commit, () => {});
      copies++;
    }
    if (copies % 1000 === 0) await tick();
  }
  await worker.terminate();
  assert.ok(copies > 100, `${copies} copies`);
});
