/**
 * `nftrace kmem`: kernel memory allocation analysis (trace_analyze's successor). Reads kmem
 * events from ftrace or trace-cmd text (gzip'd or not, or stdin), a trace.dat, or records them
 * live; accounts them per call site; writes the summary, trace_analyze's account and callers
 * files, JSON, CSV, a ring chart (SVG) and an HTML report.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kallsyms } from '../events/symbols.js';
import { KmemAccount, sortedSites, type DuplicatePolicy, type OrderBy } from '../analyze/kmem/account.js';
import { readKmemEvents } from '../analyze/kmem/input.js';
import { buildRings, ringsSvg, type RingAttr } from '../analyze/kmem/rings.js';
import {
  accountCsv, accountFile, accountHtml, accountJson, byFunction, callersFile, summaryText, type Summary,
} from '../analyze/kmem/report.js';
import { loadTreeDb, objectOf, saveTreeDb, scanTree, type TreeDb } from '../analyze/kmem/tree.js';
import { vmlinuxDb } from '../analyze/kmem/vmlinux.js';
import { recordKernel } from '../kernel/record.js';

export interface KmemCliOptions {
  file?: string;
  kernel?: string;
  vmlinux?: string;
  kallsyms?: string;
  branch?: string;
  ringsFile?: string;
  ringsAttr: RingAttr;
  malloc: boolean;
  cache: boolean;
  accountFile?: string;
  callersFile?: string;
  orderBy: OrderBy;
  saveDb?: string;
  dbFile?: string;
  byFunction: boolean;
  json: boolean;
  csv: boolean;
  html?: string;
  time?: [number, number];
  duplicates: DuplicatePolicy;
  top: number;
  live: boolean;
  durationSec?: number;
  command?: string[];
}

const LIVE_EVENTS = ['kmem:kmalloc', 'kmem:kfree', 'kmem:kmem_cache_alloc', 'kmem:kmem_cache_free', 'kmem:mm_page_alloc', 'kmem:mm_page_free', 'kmem:mm_page_free_batched'];

/** A progress bar on stderr, only when it is a terminal; cleared at the end. */
function progressBar(label: string): { update: (done: number, total: number) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return {
    update: (done, total) => {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const bar = total > 0 ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}%` : '';
      process.stderr.write(`\r${label} ${bar} ${(done / 1e6).toFixed(1)} MB`);
    },
    done: () => {
      if (tty && last) process.stderr.write('\r\x1b[K');
    },
  };
}

function loadTree(o: KmemCliOptions, log: (line: string) => void): TreeDb | null {
  if (o.dbFile) return loadTreeDb(o.dbFile);
  if (o.vmlinux) return vmlinuxDb(o.vmlinux);
  if (!o.kernel) return null;
  const bar = progressBar(`scanning ${o.kernel}`);
  const db = scanTree(o.kernel, (n) => bar.update(n, 0));
  bar.done();
  log(`tree ${o.kernel}: ${Object.keys(db.objects).length} objects, ${Object.keys(db.functions).length} functions${db.ambiguous ? ` (${db.ambiguous} static names in more than one object)` : ''}`);
  return db;
}

export async function runKmem(o: KmemCliOptions, out: (text: string) => void, log: (line: string) => void): Promise<void> {
  let input = o.file ?? '-';
  let tmp: string | null = null;
  if (o.live) {
    tmp = mkdtempSync(join(tmpdir(), 'nftrace-kmem-'));
    input = join(tmp, 'kmem.dat');
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    try {
      await recordKernel({ events: LIVE_EVENTS, output: input, command: o.command, durationSec: o.durationSec, signal: abort.signal, log });
    } finally {
      process.removeListener('SIGINT', stop);
    }
  } else if (input === '-' && process.stdin.isTTY) {
    throw Object.assign(new Error('no input: give -f FILE (ftrace text, trace-cmd report text or trace.dat), pipe one in, or use --live'), { usage: true });
  }
  try {
    const db = loadTree(o, log);
    if (o.saveDb) {
      if (!db) throw new Error('--save-db needs -k TREE (or --vmlinux FILE) to save');
      saveTreeDb(db, o.saveDb);
      log(`saved the tree database to ${o.saveDb}`);
    }
    const symbolPath = o.kallsyms ?? (o.kernel ? join(o.kernel, 'System.map') : undefined);
    const symbols = symbolPath ? loadSymbols(symbolPath, !o.kallsyms) : null;
    const account = new KmemAccount({ duplicates: o.duplicates, window: o.time, only: o.malloc === o.cache ? undefined : o.malloc ? 'malloc' : 'cache' });
    const bar = progressBar(`reading ${input === '-' ? 'stdin' : input}`);
    const problems = await readKmemEvents(input, (ev) => account.add(ev), { symbols, symbolsPath: symbols ? symbolPath : null, progress: bar.update });
    bar.done();
    let sites = o.byFunction ? byFunction(account.sites.values()) : [...account.sites.values()];
    if (o.branch) {
      if (!db) throw new Error('-b/--start-branch needs -k TREE, --vmlinux FILE or --db-file FILE');
      const prefix = `${o.branch.replace(/\/+$/, '')}/`;
      sites = sites.filter((s) => objectOf(db, s.caller)?.startsWith(prefix));
    }
    sites = sortedSites(sites, o.orderBy);
    const summary: Summary = { input: o.live ? 'live recording' : input, problems, account, sites, top: o.top };
    if (o.accountFile) writeFileSync(o.accountFile, accountFile(sites));
    if (o.callersFile) writeFileSync(o.callersFile, callersFile(sites, db));
    const svg = () => ringsSvg(buildRings(sites, db, o.ringsAttr, o.branch), { title: `${o.ringsAttr} by directory`, attr: o.ringsAttr });
    if (o.ringsFile) writeFileSync(o.ringsFile, `${svg()}\n`);
    if (o.html) writeFileSync(o.html, accountHtml(summary, db, svg()));
    if (o.json) out(accountJson(summary, db));
    else if (o.csv) out(accountCsv(sites, db));
    else out(summaryText(summary));
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

function loadSymbols(path: string, fromTree: boolean): Kallsyms | null {
  try {
    return Kallsyms.load(path);
  } catch (err) {
    // A tree without System.map still gives static sizes; only legacy call sites need it.
    if (fromTree) return null;
    throw err;
  }
}
