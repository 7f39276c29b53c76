/** Emits `count` numeric events as fast as it can, for the events/s-per-worker benchmark. */
import { parentPort, workerData } from 'node:worker_threads';
import { attach } from '../src/index.js';

const { handle, count } = workerData as { handle: Parameters<typeof attach>[0]; count: number };
const ev = attach(handle).defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
parentPort!.once('message', () => {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) ev.emit({ a: i, b: 2, c: 3 });
  parentPort!.postMessage(Number(process.hrtime.bigint() - start));
});
parentPort!.postMessage('ready');
