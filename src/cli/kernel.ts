/** `nftrace record`, `list` and `stat`: the kernel's tracing from the command line. */
import { recordKernel, type RecordResult } from '../kernel/record.js';
import { eventLines, statText, systemLines } from '../kernel/state.js';
import { KernelTracefs, findTracefs } from '../kernel/tracefs.js';
import type { CompressionName } from '../format/tracedat/compress.js';

type Write = (text: string) => void;

export interface RecordArgs {
  events: string[];
  instance?: string;
  bufferKb?: number;
  pid?: number;
  output: string;
  command: string[];
  durationSec?: number;
  version: 6 | 7;
  compression: CompressionName;
}

export async function runRecord(args: RecordArgs, out: Write, err: Write): Promise<number> {
  const stop = new AbortController();
  // The first Ctrl-C ends the recording cleanly (the workload gets its own SIGINT from the
  // terminal); the handlers stay until the instance is put back, so a second one can't cut cleanup short.
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: RecordResult;
  try {
    result = await recordKernel({
      ...args,
      command: args.command.length ? args.command : undefined,
      signal: stop.signal,
      log: (line) => err(`${line}\n`),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  out(recordSummary(result));
  return typeof result.exit === 'number' ? result.exit : 0;
}

/** Per-CPU figures after a recording: what was read, and every kind of loss the kernel counts. */
export function recordSummary(r: RecordResult): string {
  const rows = [['CPU', 'pages', 'bytes', 'entries', 'overrun', 'commit overrun', 'dropped', 'lost']];
  const total = [0, 0, 0, 0, 0, 0, 0];
  for (const c of r.cpus) {
    const stat = (name: string) => Number(c.stats.get(name) ?? 0);
    const lost = c.lostUnknown ? `${c.lost}+?` : String(c.lost);
    const values = [c.pages, c.bytes, stat('read events'), stat('overrun'), stat('commit overrun'), stat('dropped events'), c.lost];
    values.forEach((v, i) => (total[i] += v));
    rows.push([String(c.cpu), ...values.slice(0, 6).map(String), lost]);
  }
  rows.push(['all', ...total.map(String)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => cell.padStart(widths[i]!)).join('  '));
  const mb = (r.fileBytes / 1e6).toFixed(2);
  const status = r.exit !== undefined && r.exit !== 0 ? `; the command exited with ${r.exit}` : '';
  return `${lines.join('\n')}\nwrote ${r.file} (${mb} MB, ${r.events.length} event types)${status}\n`;
}

function kernel(): KernelTracefs {
  return new KernelTracefs(findTracefs());
}

export function runList(args: { events: boolean; pattern?: string; instances: boolean; clocks: boolean }, out: Write): void {
  const fs = kernel();
  if (args.instances) {
    const names = fs.instanceNames();
    out(names.length ? `${names.join('\n')}\n` : 'No buffer instances defined\n');
  } else if (args.clocks) {
    out(fs.top.read('trace_clock'));
  } else if (args.events || args.pattern !== undefined) {
    const lines = eventLines(fs, args.pattern);
    out(lines.length ? `${lines.join('\n')}\n` : '');
  } else {
    out(`${systemLines(fs).join('\n')}\n`);
  }
}

export function runStat(args: { instance?: string }, out: Write): void {
  const fs = kernel();
  const inst = fs.instance(args.instance ?? null);
  if (!inst.exists('trace')) throw new Error(`no instance '${args.instance}' (see 'nftrace list -B')`);
  out(statText(fs, inst));
}
