/**
 * The demo's worker thread: hashes request bodies handed over by the HTTP server and records
 * each job in its own ring buffer (it appears as CPU 1 in the trace).
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { attach, type ThreadHandle } from '../index.js';
import { HASH_EVENT } from './demo.js';

const tracer = attach((workerData as { handle: ThreadHandle }).handle);
const job = tracer.defineEvent(...HASH_EVENT);

parentPort!.on('message', (m: { id: number; body: Uint8Array }) => {
  const digest = createHash('sha256').update(m.body).digest('hex').slice(0, 11);
  job.emit({ id: m.id, bytes: m.body.length, digest });
  parentPort!.postMessage({ id: m.id, digest });
});
