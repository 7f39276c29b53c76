/**
 * `nftrace kmem` speed (issue #7): events/s on a ≥10^6-event ftrace text made by replaying the
 * 5,000-event fixture with shifted pointers, and on the same events as a trace.dat; peak RSS of
 * each run (a process of its own); `trace-cmd report` on the same trace.dat for reference.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Tracer } from '../src/index.js';

export interface KmemFigures {
  events: number;
  textMB: number;
  textEventsPerSec: number;
  textMaxRssMB: number;
  datEventsPerSec: number;
  datMaxRssMB: number;
  traceCmdSec: number | null;
  live: number;
}

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/kmem/kmem_head5000.txt.gz', import.meta.url));
const RUN = fileURLToPath(new URL('./kmem-run.js', import.meta.url));

/** The fixture's event lines, replayed `rounds` times: each round's pointers moved out of the others' way. */
export function synthesize(rounds: number): string[] {
  const lines = gunzipSync(readFileSync(FIXTURE)).toString('latin1').split('\n').filter((l) => l && !l.startsWith('#'));
  const out: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const shift = BigInt(r) << 32n;
    for (const l of lines) {
      out.push(l.replace(/ptr=([0-9a-f]{16})/, (_m, p: string) => `ptr=${(BigInt(`0x${p}`) + shift).toString(16).padStart(16, '0')}`)
        .replace(/ (\d+)\.(\d{6}): /, (_m, s: string, us: string) => ` ${Number(s) + r}.${us}: `));
    }
  }
  return out;
}

const FIELD = /(\w+)=(\S+)/g;

/** The same events as a trace.dat, through a Tracer with the kernel's kmem field layout. */
export async function toTraceDat(lines: string[], file: string): Promise<void> {
  const tracer = new Tracer({ env: {} });
  tracer.write('buffer_size_kb', String(256 * 1024));
  const u64 = 'u64' as const;
  const kmalloc = tracer.defineEvent('kmem', 'kmalloc', { call_site: u64, ptr: u64, bytes_req: u64, bytes_alloc: u64, gfp_flags: u64, node: 's32' });
  const cacheAlloc = tracer.defineEvent('kmem', 'kmem_cache_alloc', { call_site: u64, ptr: u64, name: 'string', bytes_req: u64, bytes_alloc: u64, gfp_flags: u64, node: 's32' });
  const kfree = tracer.defineEvent('kmem', 'kfree', { call_site: u64, ptr: u64 });
  const cacheFree = tracer.defineEvent('kmem', 'kmem_cache_free', { call_site: u64, ptr: u64, name: 'string' });
  tracer.write('events/kmem/enable', '1');
  const sites = new Map<string, bigint>();
  const site = (s: string) => {
    let a = sites.get(s);
    if (a === undefined) sites.set(s, (a = 0xffffffff81000000n + BigInt(sites.size * 64)));
    return a;
  };
  for (const line of lines) {
    const name = / (kmalloc|kmem_cache_alloc|kfree|kmem_cache_free): /.exec(line)?.[1];
    const f: Record<string, string> = {};
    for (const m of line.matchAll(FIELD)) f[m[1]!] = m[2]!;
    const ptr = BigInt(`0x${f.ptr}`);
    const cs = site(f.call_site!);
    if (name === 'kmalloc') kmalloc.emit({ call_site: cs, ptr, bytes_req: Number(f.bytes_req), bytes_alloc: Number(f.bytes_alloc), gfp_flags: 0xcc0, node: -1 });
    else if (name === 'kmem_cache_alloc') cacheAlloc.emit({ call_site: cs, ptr, name: f.name!, bytes_req: Number(f.bytes_req), bytes_alloc: Number(f.bytes_alloc), gfp_flags: 0xcc0, node: -1 });
    else if (name === 'kfree') kfree.emit({ call_site: cs, ptr });
    else if (name === 'kmem_cache_free') cacheFree.emit({ call_site: cs, ptr, name: f.name! });
  }
  await tracer.saveTraceDat(file, { version: 7, compression: 'none' });
}

function run(file: string): { events: number; seconds: number; maxRssKB: number; live: number } {
  const r = spawnSync(process.execPath, [RUN, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`kmem-run ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function kmemBench(rounds: number): Promise<KmemFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-kmem-'));
  try {
    const lines = synthesize(rounds);
    const text = join(dir, 'kmem.txt');
    writeFileSync(text, `${lines.join('\n')}\n`);
    const dat = join(dir, 'kmem.dat');
    await toTraceDat(lines, dat);
    // Best of three runs each.
    const best = (file: string) => [run(file), run(file), run(file)].sort((a, b) => a.seconds - b.seconds)[0]!;
    const t = best(text);
    const d = best(dat);
    const start = process.hrtime.bigint();
    const tc = spawnSync('sh', ['-c', 'trace-cmd report -i "$0" > /dev/null', dat]);
    const traceCmdSec = tc.status === 0 ? Number(process.hrtime.bigint() - start) / 1e9 : null;
    return {
      events: t.events,
      textMB: statSync(text).size / 1e6,
      textEventsPerSec: t.events / t.seconds,
      textMaxRssMB: t.maxRssKB / 1024,
      datEventsPerSec: d.events / d.seconds,
      datMaxRssMB: d.maxRssKB / 1024,
      traceCmdSec,
      live: t.live,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
