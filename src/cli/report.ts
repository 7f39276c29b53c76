/** `nftrace report` and `nftrace convert`: trace.dat files (the kernel's or ours) as text. */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { CHUNK_BYTES, report, statReport } from '../format/report.js';
import { recoverPersistFile } from '../flight/recover.js';
import { readTraceDatFile } from '../format/tracedat/reader.js';
import { TraceDatEvents } from '../format/tracedat/records.js';
import { contentOf, writeTraceDat } from '../format/tracedat/writer.js';

export interface ReportArgs {
  input: string;
  plugins: boolean;
  raw: boolean;
  nanoseconds: boolean;
  latency: boolean;
  cpus?: number[];
  events?: string[];
  stat: boolean;
}

/** Write text chunks to a stream, waiting when it is full (a pipe to `head` or `less`). */
async function writeChunks(out: Writable, chunks: Iterable<string | Uint8Array>): Promise<void> {
  for (const chunk of chunks) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

export async function runReport(args: ReportArgs, out: Writable): Promise<void> {
  const events = new TraceDatEvents(await readTraceDatFile(args.input));
  if (args.stat) {
    out.write(statReport(events.dat));
    return;
  }
  const chunks = report(events, { plugins: args.plugins, raw: args.raw, nanoseconds: args.nanoseconds, latency: args.latency, cpus: args.cpus, eventNames: args.events });
  for (let step = chunks.next(); !step.done;) {
    if (!out.write(step.value)) await once(out, 'drain');
    // Written already (a file or pipe is written synchronously): its buffer can take the next chunk.
    step = chunks.next(out.writableLength === 0);
  }
  const lost = events.losses.filter((l) => l.pagesWithMisses > 0);
  for (const l of lost) process.stderr.write(`${l.buffer || 'top'} cpu${l.cpu}: ${l.pagesWithMisses} pages after lost events, ${l.missed} events known lost\n`);
  for (const e of events.formatErrors) process.stderr.write(`format not read: ${e}\n`);
}

export type ConvertTarget = 'chrome-json' | 'text' | 'dat6' | 'dat7';

/**
 * Chrome trace-event JSON (opens in Perfetto UI and chrome://tracing): each record an instant
 * event on its CPU's track, with the printed payload as an argument.
 */
export async function runConvert(input: string, to: ConvertTarget, output: string | undefined, stdout: Writable): Promise<void> {
  const dat = await readTraceDatFile(input);
  if (to === 'dat6' || to === 'dat7') {
    if (!output) throw new Error(`--to ${to} needs -o FILE`);
    await writeTraceDat(output, contentOf(dat), { version: to === 'dat6' ? 6 : 7, compression: to === 'dat6' ? 'none' : 'zstd' });
    return;
  }
  const events = new TraceDatEvents(dat);
  const out = output ? createWriteStream(output, { mode: 0o600 }) : stdout;
  if (to === 'text') {
    await writeChunks(out, report(events, { plugins: true }));
  } else {
    const chunks = (function* () {
      let chunk = '{"traceEvents":[\n';
      let first = true;
      for (const r of events.records()) {
        const name = r.event ? `${r.event.system}:${r.event.name}` : `id ${r.id}`;
        const args = r.event ? { fields: r.event.print(r, { symbols: events.symbols }) } : {};
        const ts = (r.ts / 1000).toFixed(3); // microseconds, as the format wants
        chunk += `${first ? '' : ','}{"name":${JSON.stringify(name)},"ph":"i","s":"t","ts":${ts},"pid":${JSON.stringify(r.buffer || 'top')},"tid":${r.cpu},"args":${JSON.stringify({ ...args, comm: events.comm(r.pid), pid: r.pid })}}\n`;
        first = false;
        if (chunk.length >= CHUNK_BYTES) {
          yield chunk;
          chunk = '';
        }
      }
      yield `${chunk}],"displayTimeUnit":"ns"}\n`;
    })();
    await writeChunks(out, chunks);
  }
  if (output) {
    (out as ReturnType<typeof createWriteStream>).end();
    await once(out, 'close');
  }
}

/** `nftrace recover`: a persist file back into a trace.dat, with what came back per buffer. */
export async function runRecover(input: string, output: string, version: 6 | 7, stdout: Writable): Promise<void> {
  const got = recoverPersistFile(input);
  await writeTraceDat(output, got.content, { version, compression: version === 6 ? 'none' : 'zstd' });
  const lines = [`${input}: process ${got.pid}, ${got.closed ? 'closed cleanly' : 'not closed (the process died with the recorder running)'}`];
  for (const c of got.cpus) {
    if (c.pages === 0 && c.bad === 0) continue;
    const notes = [
      c.tailCut ? 'newest page was still being filled (events after the last mirror pass are missing)' : 'newest page complete',
      ...(c.gaps ? [`${c.gaps} pages overwritten before they were saved`] : []),
      ...(c.bad ? [`${c.bad} torn slots skipped`] : []),
    ];
    lines.push(`  ${c.instance || 'top level'} cpu${c.cpu}: ${c.pages} pages recovered; ${notes.join('; ')}`);
  }
  const total = got.cpus.reduce((n, c) => n + c.pages, 0);
  lines.push(`wrote ${output}: ${total} pages`);
  stdout.write(`${lines.join('\n')}\n`);
}
