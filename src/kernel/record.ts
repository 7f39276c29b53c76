/**
 * Recording the kernel's events into a trace.dat, as `trace-cmd record` does: a private instance
 * (or a named one), the chosen events enabled, every CPU's trace_pipe_raw read page by page while
 * the workload runs, then everything put back and the file written.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuStatOptions, localUname, writeTraceDat, type CpuPages, type FilePages, type TraceDatContent } from '../format/tracedat/writer.js';
import { selectedClock } from '../format/tracedat/layout.js';
import { COMMIT_SIZE_MASK, MISSED_EVENTS, MISSED_STORED } from '../ring/layout.js';
import { ControlClient } from '../tracefs/socket.js';
import type { CompressionName } from '../format/tracedat/compress.js';
import { KernelInstance, KernelTracefs, findTracefs, selectEvents } from './tracefs.js';

export interface RecordOptions {
  /** trace-cmd style selections: SYSTEM, SYSTEM:EVENT, EVENT, globs, `all`. */
  events: string[];
  /** Record in this instance (created if missing, kept if it existed) instead of a private one. */
  instance?: string;
  /** buffer_size_kb for the instance (per CPU). */
  bufferKb?: number;
  output: string;
  /** Run this and stop when it exits. */
  command?: string[];
  /** Stop after this many seconds. */
  durationSec?: number;
  version?: 6 | 7;
  compression?: CompressionName;
  /** The tracefs mount (default: found through /proc/mounts). */
  tracefs?: string;
  /**
   * Also record this Node process (it serves its control tree: tracer.listen()): its thread
   * buffers become a buffer `node-PID` beside the kernel's CPUs, both on the `mono` clock.
   */
  pid?: number;
  /** Stops the recording (the CLI aborts it on SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Progress and notices, a line at a time. */
  log?: (line: string) => void;
}

export interface CpuFigures {
  cpu: number;
  pages: number;
  bytes: number;
  /** Events the kernel reported missing before a page it handed us (commit flags). */
  lost: number;
  /** Pages flagged as following lost events whose count the kernel could not store. */
  lostUnknown: number;
  /** The CPU's `stats` file at the end, as name → value. */
  stats: Map<string, string>;
}

export interface RecordResult {
  file: string;
  fileBytes: number;
  cpus: CpuFigures[];
  events: string[];
  /** The workload's exit status (a signal name when it was killed). */
  exit?: number | string;
}

// Each read of a CPU with a partly filled page takes that page as it is, so a quiet CPU is
// polled less and less often (fewer, fuller pages), and a busy one at once again.
const MIN_POLL_MS = 10;
const MAX_POLL_MS = 200;
const CHUNK_PAGES = 256;

/**
 * One CPU's trace_pipe_raw, read without blocking a page at a time into a buffer, and spooled
 * to a file beside the output (as trace-cmd's trace.dat.cpuN), so a long recording does not
 * have to fit in memory.
 */
class CpuPipe {
  readonly cpu: number;
  private readonly fd: number;
  private readonly pageSize: number;
  private readonly chunk: Buffer;
  private readonly spool: string;
  private readonly spoolFd: number;
  private spooled = 0;
  readonly figures: CpuFigures;

  constructor(inst: KernelInstance, cpu: number, pageSize: number, spoolDir: string) {
    this.cpu = cpu;
    this.pageSize = pageSize;
    this.chunk = Buffer.alloc(CHUNK_PAGES * pageSize);
    this.spool = join(spoolDir, `cpu${cpu}`);
    this.spoolFd = openSync(this.spool, 'w', 0o600);
    this.fd = openSync(inst.path(`per_cpu/cpu${cpu}/trace_pipe_raw`), constants.O_RDONLY | constants.O_NONBLOCK);
    this.figures = { cpu, pages: 0, bytes: 0, lost: 0, lostUnknown: 0, stats: new Map() };
  }

  /** Read what the CPU has (at most `limit` pages) and spool it; returns the pages read. */
  drain(limit: number): number {
    let total = 0;
    while (total < limit) {
      let n = 0;
      for (; n < CHUNK_PAGES && total + n < limit; n++) {
        const at = n * this.pageSize;
        let got: number;
        try {
          got = readSync(this.fd, this.chunk, at, this.pageSize, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw err;
        }
        if (got === 0) break;
        // A short read still takes a page's room: whole pages are what the file holds.
        this.chunk.fill(0, at + got, at + this.pageSize);
        this.account(this.chunk, at);
      }
      if (n === 0) break;
      writeSync(this.spoolFd, this.chunk, 0, n * this.pageSize);
      this.spooled += n * this.pageSize;
      total += n;
      if (n < CHUNK_PAGES) break;
    }
    return total;
  }

  private account(page: Buffer, at: number): void {
    const commit = page.readUInt32LE(at + 8);
    const size = commit & COMMIT_SIZE_MASK;
    const f = this.figures;
    f.pages++;
    f.bytes += size;
    if (commit & MISSED_EVENTS) {
      const countAt = at + 16 + size;
      if (commit & MISSED_STORED && countAt + 8 <= at + this.pageSize) f.lost += Number(page.readBigUInt64LE(countAt));
      else f.lostUnknown++;
    }
  }

  /** Everything read, as the spool file's whole pages. */
  data(): FilePages {
    return { path: this.spool, size: this.spooled };
  }

  /** The CPU's stats file text at the end of the recording. */
  statsText = '';

  setStats(text: string): void {
    this.statsText = text;
    this.figures.stats = parseStats(text);
  }

  close(): void {
    closeSync(this.fd);
    closeSync(this.spoolFd);
  }
}

/** `name: value` lines of a per_cpu stats file. */
export function parseStats(text: string): Map<string, string> {
  const stats = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) stats.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return stats;
}

export async function recordKernel(options: RecordOptions): Promise<RecordResult> {
  const log = options.log ?? (() => {});
  const fs = new KernelTracefs(options.tracefs ?? findTracefs());
  // Check everything that can be wrong with the request before changing anything.
  const selected = selectEvents(fs.availableEvents(), options.events);
  const names = [...selected].flatMap(([s, evs]) => evs.map((e) => `${s}:${e}`));
  let inst: KernelInstance;
  let created = false;
  if (options.instance !== undefined) {
    inst = fs.instance(options.instance);
    if (!inst.exists('trace')) {
      inst = fs.createInstance(options.instance);
      created = true;
    }
  } else {
    inst = fs.createInstance(`nftrace-record-${process.pid}`);
    created = true;
  }

  const restore: Array<[string, string]> = [];
  const pipes: CpuPipe[] = [];
  let exit: number | string | undefined;
  const wasOn = inst.read('tracing_on').trim();
  let node: NodeSide | null = null;
  let spoolDir: string | null = null;
  try {
    inst.write('tracing_on', '0');
    if (options.pid !== undefined) {
      // One clock for both sides: the kernel's mono is CLOCK_MONOTONIC, as is nftrace's.
      if (!created) restore.push(['trace_clock', inst.clock()]);
      inst.write('trace_clock', 'mono');
      node = await NodeSide.attach(options.pid, inst.subbufSize());
    }
    if (options.bufferKb !== undefined) inst.write('buffer_size_kb', String(options.bufferKb));
    inst.write('trace', '');
    for (const name of names) {
      const file = `events/${name.replace(':', '/')}/enable`;
      const before = inst.read(file).trim();
      if (!created) restore.push([file, before.startsWith('1') ? '1' : '0']);
      if (before !== '1') inst.write(file, '1');
    }
    const pageSize = inst.subbufSize();
    spoolDir = mkdtempSync(join(dirname(resolve(options.output)), '.nftrace-spool-'));
    for (const cpu of inst.cpus()) pipes.push(new CpuPipe(inst, cpu, pageSize, spoolDir));
    inst.write('tracing_on', '1');
    exit = await runWorkload(options, pipes, log, names);
    inst.write('tracing_on', '0');
    for (const pipe of pipes) while (pipe.drain(CHUNK_PAGES) > 0);
    await node?.finish();
    for (const pipe of pipes) pipe.setStats(inst.read(`per_cpu/cpu${pipe.cpu}/stats`));

    const content = fileContent(fs, inst, selected, pipes, pageSize, options.instance);
    if (node) node.addTo(content);
    const fileBytes = await writeTraceDat(options.output, content, {
      version: options.version ?? 7,
      compression: options.compression ?? 'zstd',
    });
    return { file: options.output, fileBytes, cpus: pipes.map((p) => p.figures), events: names, exit };
  } finally {
    for (const pipe of pipes) pipe.close();
    if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
    await node?.close().catch((err: Error) => log(`nftrace: process ${options.pid}: ${err.message}`));
    // Put back what we changed even when recording failed; report, but don't mask, errors.
    const undo = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        log(`nftrace: cleanup: ${(err as Error).message}`);
      }
    };
    if (created) {
      undo(() => fs.removeInstance(inst));
    } else {
      for (const [file, value] of restore) undo(() => inst.write(file, value));
      undo(() => inst.write('tracing_on', wasOn));
    }
  }
}

/** A traced Node process recorded through its control socket (record -P). */
class NodeSide {
  private readonly client: ControlClient;
  private readonly pid: number;
  private readonly previousClock: string;
  private readonly pages: Uint8Array[][];
  private readonly finishers: (() => Promise<void>)[];
  private formats: { name: string; formats: string[] }[] = [];

  private constructor(client: ControlClient, pid: number, previousClock: string, cpus: number) {
    this.client = client;
    this.pid = pid;
    this.previousClock = previousClock;
    this.pages = Array.from({ length: cpus }, () => []);
    this.finishers = this.pages.map((list, cpu) => client.rawPages(`per_cpu/cpu${cpu}/trace_pipe_raw`, (page) => list.push(page)));
  }

  static async attach(pid: number, pageSize: number): Promise<NodeSide> {
    const client = await ControlClient.connect(pid);
    try {
      const subbuf = Number(String(await client.request('read', 'buffer_subbuf_size_kb')).trim()) * 1024;
      if (subbuf !== pageSize) throw new Error(`process ${pid} uses ${subbuf}-byte sub-buffers, the kernel ${pageSize}: set its buffer_subbuf_size_kb`);
      const clock = selectedClock(String(await client.request('read', 'trace_clock')));
      await client.request('write', 'trace_clock', { data: 'mono' });
      const cpus = ((await client.request('readdir', 'per_cpu')) as string[]).length;
      return new NodeSide(client, pid, clock, cpus);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Drain what the process still holds, and read its event formats. */
  async finish(): Promise<void> {
    await Promise.all(this.finishers.map((finish) => finish()));
    const roots = new Set(['enable', 'header_page', 'header_event', 'ftrace']);
    for (const system of (await this.client.request('readdir', 'events')) as string[]) {
      if (roots.has(system)) continue;
      const formats: string[] = [];
      for (const event of (await this.client.request('readdir', `events/${system}`)) as string[]) {
        if (event === 'filter' || event === 'enable') continue;
        formats.push(String(await this.client.request('read', `events/${system}/${event}/format`)));
      }
      this.formats.push({ name: system, formats });
    }
  }

  /** Put the process beside the kernel in a file: its own buffer, its formats, its name. */
  addTo(content: TraceDatContent): void {
    const cpuCount = Math.max(content.cpuCount, this.pages.length);
    const pad = (cpus: CpuPages[]) => [...cpus, ...Array.from({ length: cpuCount - cpus.length }, () => new Uint8Array(0))];
    content.buffers = content.buffers.map((b) => ({ ...b, cpus: pad(b.cpus) }));
    content.buffers.push({ name: `node-${this.pid}`, clock: 'mono', cpus: pad(this.pages.map((list) => Buffer.concat(list))) });
    content.cpuCount = cpuCount;
    content.systems = [...content.systems, ...this.formats];
    let comm = 'node';
    try {
      comm = readFileSync(`/proc/${this.pid}/comm`, 'utf8').trim() || comm;
    } catch {
      // the process is gone: keep the generic name
    }
    content.cmdlines += `${this.pid} ${comm}\n`;
  }

  /** Put the process's clock back and let go of the connection. */
  async close(): Promise<void> {
    try {
      await this.client.request('write', 'trace_clock', { data: this.previousClock });
    } finally {
      this.client.close();
    }
  }
}

/** Wait for the workload, the duration or the signal, reading the pipes meanwhile. */
async function runWorkload(options: RecordOptions, pipes: CpuPipe[], log: (line: string) => void, names: string[]): Promise<number | string | undefined> {
  const stop = new AbortController();
  options.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  if (options.signal?.aborted) stop.abort();
  let timer: NodeJS.Timeout | undefined;
  if (options.durationSec !== undefined) timer = setTimeout(() => stop.abort(), options.durationSec * 1000);
  let exit: number | string | undefined;
  let failed: Error | undefined;
  const kernelWhat = names.length > 3 ? `${names.length} events` : names.join(', ');
  const what = options.pid === undefined ? kernelWhat : `${kernelWhat ? `${kernelWhat} and ` : ''}process ${options.pid}`;
  if (options.command?.length) {
    const [file, ...args] = options.command;
    const child = spawn(file!, args, { stdio: 'inherit' });
    child.on('error', (err) => {
      failed = new Error(`cannot run '${file}': ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      stop.abort();
    });
    child.on('exit', (code, signal) => {
      exit = code ?? signal ?? undefined;
      stop.abort();
    });
  } else if (options.durationSec !== undefined) {
    log(`recording ${what} for ${options.durationSec} s`);
  } else {
    log(`recording ${what}; press Ctrl-C to stop`);
  }
  try {
    let interval = MIN_POLL_MS;
    while (!stop.signal.aborted) {
      let got = 0;
      for (const pipe of pipes) got += pipe.drain(CHUNK_PAGES);
      interval = got > pipes.length ? MIN_POLL_MS : Math.min(MAX_POLL_MS, interval * 2);
      await sleep(interval, undefined, { signal: stop.signal }).catch(() => {});
    }
  } finally {
    clearTimeout(timer);
  }
  if (failed) throw failed;
  return exit;
}

function fileContent(
  fs: KernelTracefs,
  inst: KernelInstance,
  selected: Map<string, string[]>,
  pipes: CpuPipe[],
  pageSize: number,
  bufferName: string | undefined,
): TraceDatContent {
  const top = fs.top;
  const cpuCount = pipes.length ? pipes[pipes.length - 1]!.cpu + 1 : 0;
  const cpus: CpuPages[] = Array.from({ length: cpuCount }, () => new Uint8Array(0));
  for (const pipe of pipes) cpus[pipe.cpu] = pipe.data();
  const clock = inst.clock();
  const named = bufferName !== undefined;
  const buffer = { name: bufferName ?? '', clock, cpus };
  return {
    pageSize,
    headerPage: top.read('events/header_page'),
    headerEvent: top.read('events/header_event'),
    ftraceFormats: ftraceFormats(top),
    systems: [...selected].map(([name, events]) => ({ name, formats: events.map((e) => fs.format(name, e)) })),
    kallsyms: readOptional('/proc/kallsyms'),
    printk: top.read('printk_formats'),
    cmdlines: top.read('saved_cmdlines'),
    cpuCount,
    buffers: named ? [{ name: '', clock, cpus: cpus.map(() => new Uint8Array(0)) }, buffer] : [buffer],
    traceClock: inst.read('trace_clock'),
    cpuStats: cpuStatOptions(bufferName ?? '', pipes.map((p) => ({ cpu: p.cpu, text: p.statsText }))),
    uname: localUname(),
    version: `nftrace ${process.version}`,
  };
}

/** The ftrace system's formats (function, print, ...), which trace-cmd always stores. */
function ftraceFormats(top: KernelInstance): string[] {
  const dir = top.path('events/ftrace');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'format')))
    .map((d) => top.read(join('events/ftrace', d.name, 'format')));
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
