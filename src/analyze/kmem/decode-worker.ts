/**
 * A kmem decode worker (see parallel.ts): parses one byte range of a text trace into an event
 * batch (columns.ts) and sends it back with what it could not read. The main thread replays
 * the batches in order, so the account is exactly the sequential one.
 */
import { closeSync, openSync } from 'node:fs';
import { readAt } from '../../io.js';
import { parentPort, workerData } from 'node:worker_threads';
import { Kallsyms } from '../../events/symbols.js';
import { BatchBuilder } from './columns.js';
import { KmemTextParser } from './text.js';
import type { TextJob, TextResult } from './parallel.js';

const { symbols: symbolsPath } = workerData as { symbols: string | null };
const symbols = symbolsPath ? Kallsyms.load(symbolsPath) : null;

parentPort!.on('message', (job: TextJob) => {
  try {
    const fd = openSync(job.file, 'r');
    let buf: Buffer;
    try {
      buf = readAt(fd, job.start, job.end - job.start);
    } finally {
      closeSync(fd);
    }
    const builder = new BatchBuilder(Math.max(1024, Math.ceil(buf.length / 120)));
    const parser = new KmemTextParser((ev) => builder.push(ev), symbols);
    parser.push(buf);
    if (job.last) parser.end();
    const { batch, transfer } = builder.finish();
    const p = parser.problems;
    const result: TextResult = { id: job.id, batch, problems: { ...p, unknown: [...p.unknown] } };
    parentPort!.postMessage(result, transfer);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).message });
  }
});
