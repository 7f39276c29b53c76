/** Emits checksummed events as fast as it can (stress test worker). */
import { workerData, parentPort } from 'node:worker_threads';
import { attach } from '../../src/index.js';

const { handle, count, worker } = workerData as { handle: Parameters<typeof attach>[0]; count: number; worker: number };
const tracer = attach(handle);
const ev = tracer.defineEvent('stress', 'ev', { seq: 'u32', worker: 'u16', check: 'u32', tag: 'string' });
const tags = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
parentPort!.postMessage('ready');
for (let seq = 0; seq < count; seq++) {
  const tag = tags[seq % 5]!;
  ev.emit({ seq, worker, check: (Math.imul(seq, 2654435761) ^ worker ^ tag.length) >>> 0, tag });
}
parentPort!.postMessage('done');
