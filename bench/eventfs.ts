/**
 * Issue #5's memory table: heap after GC for 1, 10 and 100 instances over an event set shaped
 * like the kernel's (105 systems, 2,300 events, 14,000+ entries), untouched, after a full
 * `ls -R`, and after reading every file and letting go; for eventfs and for an eager baseline
 * that builds every node up front. Plus lookup latency through the FUSE mount.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { Tracer } from '../src/index.js';

const SYSTEMS = 105;
const EVENTS = 2300;

declare const gc: () => void;

/**
 * Heap after full collections on fresh turns of the event loop (no stack references), repeated
 * because V8 lets some of its own bookkeeping (retained maps, feedback) age out over several GCs.
 */
async function heap(): Promise<number> {
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 5));
    gc();
  }
  // Data only: code space (bytecode, optimized code) comes and goes with V8's own housekeeping.
  return getHeapSpaceStatistics().filter((s) => s.space_name !== 'code_space').reduce((n, s) => n + s.space_used_size, 0);
}

function kernelShapedTracer(): Tracer {
  // Small buffers: the rings are SharedArrayBuffers outside the JS heap, and not what this measures.
  const tracer = new Tracer({ maxInstances: 128, env: { NFTRACE_BUF_SIZE: '4' } });
  for (let i = 0; i < EVENTS; i++) {
    const fields = i % 3 === 0 ? { a: 'u32' } : i % 3 === 1 ? { a: 'u64', b: 's32' } : { a: 'u32', b: 'u16', c: 'string' };
    tracer.defineEvent(`sys${i % SYSTEMS}`, `event_${i}`, fields as { a: 'u32' });
  }
  return tracer;
}

type Walk = (visitDir: (path: string, names: string[]) => void, visitFile: (path: string) => void) => void;

/** `ls -R` (with a stat of every entry) over a directory of the tree. */
function walker(tracer: Tracer, root: string): Walk {
  return (visitDir, visitFile) => {
    const walk = (path: string) => {
      const names = tracer.readdir(path);
      visitDir(path, names);
      for (const name of names) {
        const child = `${path}/${name}`;
        if ((tracer.stat(child).mode & 0o170000) === 0o040000) walk(child);
        else visitFile(child);
      }
    };
    walk(root);
  };
}

interface EagerNode {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  parent: EagerNode | null;
  children?: Map<string, EagerNode>;
  open?: () => unknown;
}

/** The baseline: every directory and file of an instance's events/ as an object, made up front. */
function buildEager(tracer: Tracer, root: string): EagerNode {
  const make = (path: string, name: string, parent: EagerNode | null): EagerNode => {
    const s = tracer.stat(path);
    const node: EagerNode = { name, ino: s.ino, mode: s.mode, uid: s.uid, gid: s.gid, nlink: s.nlink, parent };
    if ((s.mode & 0o170000) === 0o040000) {
      node.children = new Map();
      for (const child of tracer.readdir(path)) node.children.set(child, make(`${path}/${child}`, child, node));
    } else {
      node.open = () => tracer.open(path);
    }
    return node;
  };
  return make(root, 'events', null);
}

export interface EventfsRow {
  tree: 'eventfs' | 'eager';
  instances: number;
  untouchedKB: number;
  afterLsKB: number;
  afterReadKB: number;
}

export interface EventfsFigures {
  entriesPerInstance: number;
  rows: EventfsRow[];
  perInstanceKB: { eventfs: number; eager: number };
  fuse: { coldMedianUs: number; coldP99Us: number; warmMedianUs: number; warmP99Us: number } | null;
}

export async function eventfsBench(counts: number[] = [1, 10, 100]): Promise<EventfsFigures> {
  const rows: EventfsRow[] = [];
  let entries = 0;
  for (const kind of ['eventfs', 'eager'] as const) {
    const tracer = kernelShapedTracer();
    const eager: EagerNode[] = [];
    // Warm up on throwaway instances, so what first use compiles, caches or later lets go
    // (code, V8's tables) is settled before the base is taken.
    for (let i = 0; i < 10; i++) {
      tracer.mkdir(`instances/warmup${i}`);
      if (kind === 'eager') buildEager(tracer, `instances/warmup${i}/events`);
      walker(tracer, `instances/warmup${i}/events`)(() => {}, (path) => tracer.open(path).close());
    }
    for (let i = 0; i < 10; i++) tracer.rmdir(`instances/warmup${i}`);
    const base = await heap();
    let made = 0;
    for (const n of counts) {
      for (; made < n; made++) {
        tracer.mkdir(`instances/i${made}`);
        if (kind === 'eager') eager.push(buildEager(tracer, `instances/i${made}/events`));
      }
      const untouched = (await heap()) - base;
      const roots = Array.from({ length: n }, (_, i) => `instances/i${i}/events`);
      let count = 0;
      for (const root of roots) walker(tracer, root)((_p, names) => (count += names.length), () => {});
      entries = count / n;
      const afterLs = (await heap()) - base;
      for (const root of roots) {
        walker(tracer, root)(() => {}, (path) => {
          const f = tracer.open(path);
          try {
            f.read();
          } catch {
            // write-only files: opened and released all the same
          }
          f.close();
        });
      }
      const afterRead = (await heap()) - base;
      rows.push({ tree: kind, instances: n, untouchedKB: untouched / 1024, afterLsKB: afterLs / 1024, afterReadKB: afterRead / 1024 });
    }
    if (eager.length === 0 && kind === 'eager') throw new Error('no eager trees were built');
  }
  const perInstance = (kind: 'eventfs' | 'eager') => {
    const r = rows.filter((x) => x.tree === kind);
    const first = r[0]!;
    const last = r[r.length - 1]!;
    return (last.untouchedKB - first.untouchedKB) / (last.instances - first.instances);
  };
  return {
    entriesPerInstance: entries + 1,
    rows,
    perInstanceKB: { eventfs: perInstance('eventfs'), eager: perInstance('eager') },
    fuse: await fuseLatency(),
  };
}

/** stat() latency through the mount, from another process (this one serves the requests). */
async function fuseLatency(): Promise<EventfsFigures['fuse']> {
  if (!existsSync('/dev/fuse')) return null;
  const tracer = kernelShapedTracer();
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-bench-mnt-'));
  try {
    await tracer.mount(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  const script = `
    const { statSync } = require('node:fs');
    const t = () => process.hrtime.bigint();
    const cold = [], warm = [];
    for (let i = 0; i < 2000; i++) {
      const p = ${JSON.stringify(dir)} + '/events/sys' + (i % ${SYSTEMS}) + '/event_' + i + '/enable';
      const s = t(); statSync(p); cold.push(Number(t() - s) / 1000);
    }
    const w = ${JSON.stringify(dir)} + '/events/sys0/event_0/enable';
    for (let i = 0; i < 2000; i++) { const s = t(); statSync(w); warm.push(Number(t() - s) / 1000); }
    const q = (a, f) => a.sort((x, y) => x - y)[Math.floor(a.length * f)];
    console.log(JSON.stringify({ coldMedianUs: q(cold, 0.5), coldP99Us: q(cold, 0.99), warmMedianUs: q(warm, 0.5), warmP99Us: q(warm, 0.99) }));
  `;
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    return JSON.parse(out) as NonNullable<EventfsFigures['fuse']>;
  } finally {
    await tracer.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
}
