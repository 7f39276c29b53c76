/**
 * Benchmarks on real kernel recordings (issue #14): a kmem capture made on this machine's live
 * kernel by bench/capture-kmem.sh (`nftrace record -e kmem` around a find/tar/git workload, and
 * the ftrace text of the same run), then in one run:
 *   - `nftrace report -N` against `trace-cmd report -N` on the same trace.dat, into a file and
 *     into /dev/null, each a process of its own, best of 3, with peak RSS; outputs compared line
 *     by line (libtraceevent's known misreadings aside, docs/tracedat.md);
 *   - `nftrace kmem` on the text and on the trace.dat (zstd as recorded, and converted to v6
 *     uncompressed) against a naive readline + regex pass over the same text.
 * Captures are generated (bench/captures, ignored by git), never committed. Without root or
 * tracefs, or without trace-cmd, the parts that need them are skipped and say why.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const KMEM_RUN = fileURLToPath(new URL('./kmem-run.js', import.meta.url));
const CAPTURES = join(ROOT, 'bench/captures');

export interface Timed {
  seconds: number;
  maxRssMB: number | null;
}

export interface ReportFigures {
  events: number;
  datMB: number;
  ours: { file: Timed; devnull: Timed };
  traceCmd: { file: Timed; devnull: Timed };
  /** Lines that differ, and those of them that are a documented libtraceevent difference. */
  differing: number;
  documented: number;
  firstUndocumented: string | null;
}

export interface KmemRealFigures {
  textEvents: number;
  textEventsPerSec: number;
  textMaxRssMB: number;
  datEvents: number;
  datEventsPerSec: number;
  datMaxRssMB: number;
  dat6EventsPerSec: number;
  naiveEventsPerSec: number;
  live: number;
}

export interface RealFigures {
  skipped: string | null;
  report: ReportFigures | null;
  reportSkipped: string | null;
  kmem: KmemRealFigures | null;
}

/** Events whose print fmt libtraceevent misreads (we print what C evaluates): docs/tracedat.md. */
const DOCUMENTED = [/ mm_page_alloc_extfrag: /, / timer_start: /];

function hasTraceCmd(): boolean {
  return spawnSync('trace-cmd', ['--help'], { stdio: 'ignore' }).error === undefined;
}

/** Run a shell command line; wall seconds and (with GNU time) peak RSS. */
function timed(command: string): Timed {
  const gnuTime = existsSync('/usr/bin/time');
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-time-'));
  try {
    const rssFile = join(dir, 'rss');
    const start = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', gnuTime ? `/usr/bin/time -o '${rssFile}' -f %M sh -c "$0"` : command, command], { stdio: ['ignore', 'ignore', 'pipe'] });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (r.status !== 0) throw new Error(`${command}: exit ${r.status}: ${r.stderr}`);
    const rss = gnuTime ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : NaN;
    return { seconds, maxRssMB: Number.isFinite(rss) ? rss / 1024 : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Make the captures if they are not there yet (root and tracefs needed). */
function ensureCaptures(): string | null {
  if (existsSync(join(CAPTURES, 'kmem.dat')) && existsSync(join(CAPTURES, 'kmem.txt'))) return null;
  if (process.getuid?.() !== 0) return 'not root: bench/capture-kmem.sh needs root to record the live kernel';
  const r = spawnSync('sh', [join(ROOT, 'bench/capture-kmem.sh'), CAPTURES, process.env.NFTRACE_BENCH_ROUNDS ?? '2'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  if (r.status !== 0) return `bench/capture-kmem.sh failed (exit ${r.status ?? r.signal}); see its output above`;
  return null;
}

/** Both outputs read line by line together (they are hundreds of MB: never whole in memory). */
async function compareOutputs(ours: string, theirs: string): Promise<Pick<ReportFigures, 'differing' | 'documented' | 'firstUndocumented'>> {
  const a = createInterface({ input: createReadStream(ours, 'latin1'), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const b = createInterface({ input: createReadStream(theirs, 'latin1'), crlfDelay: Infinity })[Symbol.asyncIterator]();
  let differing = 0;
  let documented = 0;
  let firstUndocumented: string | null = null;
  for (let n = 1; ; n++) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done && y.done) break;
    if (x.done || y.done) {
      differing++;
      firstUndocumented ??= `line ${n}: only ${x.done ? 'trace-cmd' : 'nftrace'} has it`;
      continue;
    }
    if (x.value === y.value) continue;
    differing++;
    if (DOCUMENTED.some((re) => re.test(y.value))) documented++;
    else firstUndocumented ??= `line ${n}:\n  trace-cmd: ${y.value}\n  nftrace:   ${x.value}`;
  }
  return { differing, documented, firstUndocumented };
}

async function reportBench(dat: string): Promise<ReportFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-report-'));
  try {
    const ourFile = join(dir, 'ours.txt');
    const theirFile = join(dir, 'trace-cmd.txt');
    const ours = `'${process.execPath}' '${CLI}' report -N -i '${dat}'`;
    const theirs = `trace-cmd report -N -i '${dat}'`;
    // Interleaved, so a slow stretch of the machine hits both alike.
    const runs = { oursFile: [] as Timed[], oursNull: [] as Timed[], tcFile: [] as Timed[], tcNull: [] as Timed[] };
    for (let i = 0; i < 3; i++) {
      runs.tcFile.push(timed(`${theirs} > '${theirFile}'`));
      runs.oursFile.push(timed(`${ours} > '${ourFile}'`));
      runs.tcNull.push(timed(`${theirs} > /dev/null`));
      runs.oursNull.push(timed(`${ours} > /dev/null`));
    }
    const min = (t: Timed[]) => t.sort((a, b) => a.seconds - b.seconds)[0]!;
    return {
      events: Number(spawnSync('sh', ['-c', `tail -n +2 '${ourFile}' | wc -l`], { encoding: 'utf8' }).stdout.trim()),
      datMB: statSync(dat).size / 1e6,
      ours: { file: min(runs.oursFile), devnull: min(runs.oursNull) },
      traceCmd: { file: min(runs.tcFile), devnull: min(runs.tcNull) },
      ...(await compareOutputs(ourFile, theirFile)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function kmemRun(file: string): { events: number; seconds: number; maxRssKB: number; live: number } {
  const runs = Array.from({ length: 3 }, () => {
    const r = spawnSync(process.execPath, [KMEM_RUN, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`kmem-run ${file}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { events: number; seconds: number; maxRssKB: number; live: number };
  });
  return runs.sort((a, b) => a.seconds - b.seconds)[0]!;
}

/** The baseline: what anyone would write first, a readline loop with a regex per line. */
async function naivePass(file: string): Promise<{ events: number; seconds: number }> {
  const line = /^\s*(.+)-(\d+)\s+\[(\d+)\].*?(\d+\.\d+): (kmalloc|kfree|kmem_cache_alloc|kmem_cache_free): call_site=(\S+) ptr=(\S+)(?: name=(\S+))?(?: bytes_req=(\d+) bytes_alloc=(\d+) gfp_flags=(\S+))?/;
  const live = new Map<string, { site: string; bytes: number }>();
  const sites = new Map<string, number>();
  let events = 0;
  const start = process.hrtime.bigint();
  for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    const m = line.exec(text);
    if (!m) continue;
    events++;
    if (m[5] === 'kmalloc' || m[5] === 'kmem_cache_alloc') {
      live.set(m[7]!, { site: m[6]!, bytes: Number(m[10]) });
      sites.set(m[6]!, (sites.get(m[6]!) ?? 0) + Number(m[10]));
    } else {
      const l = live.get(m[7]!);
      if (l) {
        sites.set(l.site, sites.get(l.site)! - l.bytes);
        live.delete(m[7]!);
      }
    }
  }
  return { events, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

async function kmemBenchReal(text: string, dat: string): Promise<KmemRealFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-kmem-real-'));
  try {
    const dat6 = join(dir, 'kmem6.dat');
    const c = spawnSync(process.execPath, [CLI, 'convert', '-i', dat, '--to', 'dat6', '-o', dat6], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`convert to v6: ${c.stderr}`);
    const t = kmemRun(text);
    const d = kmemRun(dat);
    const d6 = kmemRun(dat6);
    const naive = await naivePass(text);
    return {
      textEvents: t.events,
      textEventsPerSec: t.events / t.seconds,
      textMaxRssMB: t.maxRssKB / 1024,
      datEvents: d.events,
      datEventsPerSec: d.events / d.seconds,
      datMaxRssMB: d.maxRssKB / 1024,
      dat6EventsPerSec: d6.events / d6.seconds,
      naiveEventsPerSec: naive.events / naive.seconds,
      live: t.live,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function realBench(): Promise<RealFigures> {
  const skipped = ensureCaptures();
  if (skipped) return { skipped, report: null, reportSkipped: null, kmem: null };
  const dat = join(CAPTURES, 'kmem.dat');
  const text = join(CAPTURES, 'kmem.txt');
  const report = hasTraceCmd() ? await reportBench(dat) : null;
  return { skipped: null, report, reportSkipped: report ? null : 'trace-cmd is not installed (apt-get install trace-cmd)', kmem: await kmemBenchReal(text, dat) };
}
