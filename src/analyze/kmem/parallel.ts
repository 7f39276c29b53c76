/**
 * Text traces decoded on every core: the file is cut into byte ranges at line boundaries, a
 * pool of workers (decode-worker.ts) parses them into event batches, and the main thread
 * replays the batches strictly in file order into the account, which stays single-threaded and
 * so exactly what a sequential read gives. Parsing is most of the cost; replaying a batch is
 * cheap. Used for plain files large enough to pay for the workers; gzip'd input and pipes are
 * read on one thread (they cannot be cut).
 */
import { availableParallelism } from 'node:os';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { KmemEvent } from './account.js';
import { replay, type EventBatch } from './columns.js';
import { newProblems, type ParseProblems } from './text.js';

export interface TextJob {
  id: number;
  file: string;
  start: number;
  end: number;
  /** The range ends at the end of the file (a last line without a newline is parsed too). */
  last: boolean;
}

export interface TextResult {
  id: number;
  batch?: EventBatch;
  problems?: Omit<ParseProblems, 'unknown'> & { unknown: [string, number][] };
  error?: string;
}

/** Worth the workers only from this size on. */
export const PARALLEL_MIN_BYTES = 16 << 20;
const CHUNK = 8 << 20;

/** Byte ranges growing to `chunk` bytes, each ending just after a newline (the last at the end). */
function ranges(file: string, size: number, chunk: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  const fd = openSync(file, 'r');
  try {
    const probe = Buffer.alloc(64 << 10);
    let start = 0;
    // Small ranges first, so the first batch is back soon after the workers start.
    let next = Math.min(chunk, 1 << 20);
    while (start < size) {
      let end = Math.min(size, start + next);
      next = Math.min(chunk, next * 2);
      while (end < size) {
        const n = readSync(fd, probe, 0, probe.length, end);
        const nl = probe.subarray(0, n).indexOf(10);
        if (nl >= 0) {
          end += nl + 1;
          break;
        }
        end += n;
      }
      out.push({ start, end });
      start = end;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export async function readTextParallel(
  file: string,
  onEvent: (ev: KmemEvent) => void,
  options: { symbolsPath?: string | null; progress?: (done: number, total: number) => void; workers?: number; chunkBytes?: number },
): Promise<ParseProblems> {
  const size = statSync(file).size;
  const jobs: TextJob[] = ranges(file, size, options.chunkBytes ?? CHUNK).map((r, id, all) => ({ id, file, ...r, last: id === all.length - 1 }));
  const count = Math.max(1, Math.min(options.workers ?? availableParallelism(), jobs.length));
  const pool = Array.from({ length: count }, () => new Worker(new URL('./decode-worker.js', import.meta.url), { workerData: { symbols: options.symbolsPath ?? null }, execArgv: [] }));
  const results = new Map<number, TextResult>();
  const waiting = new Map<number, (r: TextResult) => void>();
  let failed: Error | null = null;
  const deliver = (r: TextResult) => {
    const w = waiting.get(r.id);
    if (w) {
      waiting.delete(r.id);
      w(r);
    } else results.set(r.id, r);
  };
  let queued = 0;
  const submit = (worker: Worker) => {
    if (queued < jobs.length) worker.postMessage(jobs[queued++]);
  };
  for (const w of pool) {
    w.on('message', (r: TextResult) => {
      deliver(r);
      submit(w);
    });
    w.on('error', (err) => {
      failed ??= err;
      for (const [id, fn] of waiting) fn({ id, error: err.message });
    });
    // Two ranges each in flight: one parsing, one waiting its turn.
    submit(w);
    submit(w);
  }
  const problems = newProblems();
  try {
    for (let id = 0; id < jobs.length; id++) {
      const r = results.get(id) ?? await new Promise<TextResult>((resolve) => waiting.set(id, resolve));
      results.delete(id);
      if (failed || r.error) throw new Error(`reading ${file}: ${r.error ?? (failed as Error | null)?.message}`);
      replay(r.batch!, onEvent);
      const p = r.problems!;
      for (const e of p.examples) if (problems.examples.length < 5) problems.examples.push({ ...e, line: e.line + problems.lines });
      problems.lines += p.lines;
      problems.events += p.events;
      problems.malformed += p.malformed;
      problems.unresolved += p.unresolved;
      problems.lostEvents += p.lostEvents;
      for (const [name, n] of p.unknown) problems.unknown.set(name, (problems.unknown.get(name) ?? 0) + n);
      options.progress?.(jobs[id]!.end, size);
    }
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return problems;
}
