/**
 * trace.dat figures for issue #4: write a file from full buffers (MB/s), decode it into a
 * callback (events/s), and `trace-cmd report > /dev/null` on the same file as the reference.
 * The write figure is the median of five saves of the same buffers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer } from '../src/index.js';
import { readTraceDatFile } from '../src/format/tracedat/reader.js';
import { TraceDatEvents } from '../src/format/tracedat/records.js';

export interface TraceDatFigures {
  events: number;
  fileMB: number;
  writeMBps: number;
  decodeEventsPerSec: number;
  traceCmdReportSec: number | null;
}

export async function traceDatBench(events: number): Promise<TraceDatFigures> {
  const tracer = new Tracer();
  const ev = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
  tracer.write('buffer_size_kb', String(Math.ceil((events * 24) / 1024 / 0.95) + 64));
  tracer.write('events/bench/num/enable', '1');
  for (let i = 0; i < events; i++) ev.emit({ a: i, b: 2, c: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-'));
  try {
    const file = join(dir, 'bench.dat');
    // The median of several saves: one write into the page cache varies a lot on a VM.
    const writes: number[] = [];
    let start = 0n;
    for (let i = 0; i < 5; i++) {
      start = process.hrtime.bigint();
      await tracer.saveTraceDat(file, { version: 6 });
      writes.push(Number(process.hrtime.bigint() - start));
    }
    const writeNs = writes.sort((a, b) => a - b)[2]!;
    const bytes = statSync(file).size;
    start = process.hrtime.bigint();
    const decoded = new TraceDatEvents(await readTraceDatFile(file));
    let count = 0;
    for (const r of decoded.records()) count += r.id > 0 ? 1 : 0;
    const decodeNs = Number(process.hrtime.bigint() - start);
    if (count !== events) throw new Error(`decoded ${count} of ${events} events`);
    start = process.hrtime.bigint();
    const tc = spawnSync('sh', ['-c', `trace-cmd report -i '${file}' > /dev/null`]);
    const tcNs = Number(process.hrtime.bigint() - start);
    return {
      events,
      fileMB: bytes / 1e6,
      writeMBps: bytes / 1e6 / (writeNs / 1e9),
      decodeEventsPerSec: count / (decodeNs / 1e9),
      traceCmdReportSec: tc.status === 0 ? tcNs / 1e9 : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
