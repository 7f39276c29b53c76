/** `nftrace report` and `nftrace convert`: trace.dat files (the kernel's or ours) as text. */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { report } from '../format/report.js';
import { OPT } from '../format/tracedat/layout.js';
import { optionText, readTraceDatFile, type TraceDat } from '../format/tracedat/reader.js';
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

/** Write lines to a stream, waiting when it is full (a pipe to `head` or `less`). */
async function writeLines(out: Writable, lines: Iterable<string>): Promise<void> {
  for (const line of lines) {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
}

/**
 * `trace-cmd report --stat`: the kernel's per-CPU stats saved at record time, then where the
 * top-level buffer's data lies, if the file has one. For compressed data trace-cmd reports
 * the place and size of its decompressed copy, which starts one page in.
 */
export function statReport(dat: TraceDat): string {
  let text = `cpus=${dat.cpuCount}\n\nKernel buffer statistics:\n`
    + '  Note: "entries" are the entries left in the kernel ring buffer and are not\n'
    + '        recorded in the trace data. They should all be zero.\n\n';
  const stats = dat.options.filter((o) => o.id === OPT.CPUSTAT);
  for (const o of stats) text += `${optionText(o.data)}\n`;
  text += stats.length ? '\n' : ' No stats in this file\n';
  const top = dat.buffers.find((b) => b.name === '');
  let unpackedAt = dat.pageSize;
  for (const cpu of top?.cpus ?? []) {
    let { offset, size } = cpu;
    if (dat.compression !== 'none') {
      size = dat.cpuData(top!, cpu).length;
      offset = unpackedAt;
      unpackedAt += size;
    }
    text += `CPU${cpu.cpu} data recorded at offset=0x${offset.toString(16)}\n    ${size} bytes in size\n`;
  }
  return text;
}

export async function runReport(args: ReportArgs, out: Writable): Promise<void> {
  const events = new TraceDatEvents(await readTraceDatFile(args.input));
  if (args.stat) {
    out.write(statReport(events.dat));
    return;
  }
  await writeLines(out, report(events, { plugins: args.plugins, raw: args.raw, nanoseconds: args.nanoseconds, latency: args.latency, cpus: args.cpus, eventNames: args.events }));
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
    await writeLines(out, report(events, { plugins: true }));
  } else {
    const lines = (function* () {
      yield '{"traceEvents":[';
      let first = true;
      for (const r of events.records()) {
        const name = r.event ? `${r.event.system}:${r.event.name}` : `id ${r.id}`;
        const args = r.event ? { fields: r.event.print(r, { symbols: events.symbols }) } : {};
        const ts = (r.ts / 1000).toFixed(3); // microseconds, as the format wants
        yield `${first ? '' : ','}{"name":${JSON.stringify(name)},"ph":"i","s":"t","ts":${ts},"pid":${JSON.stringify(r.buffer || 'top')},"tid":${r.cpu},"args":${JSON.stringify({ ...args, comm: events.comm(r.pid), pid: r.pid })}}`;
        first = false;
      }
      yield '],"displayTimeUnit":"ns"}';
    })();
    await writeLines(out, lines);
  }
  if (output) {
    (out as ReturnType<typeof createWriteStream>).end();
    await once(out, 'close');
  }
}
