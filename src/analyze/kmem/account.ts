/**
 * The kmem account: allocations matched to frees by address in a hash map (O(1) per event,
 * however often addresses are reused: address-map.ts),
 * totals per call site, what is still live, and everything that did not match. One mutable
 * KmemEvent goes through for each input event; nothing here depends on where it came from
 * (ftrace text, trace-cmd text, trace.dat).
 *
 * Per call site (`function+0xoff`, each return address its own row, as trace_analyze had it):
 *   total  Σ bytes_alloc of every allocation
 *   net    Σ bytes_alloc of the allocations still live at the end
 *   waste  net − Σ bytes_req of those live allocations (slab rounding)
 *   allocs / frees (frees matched to this site's allocations)
 */

import { AddressMap } from './address-map.js';

export const ALLOC = 0;
export const FREE = 1;
export const PAGE_ALLOC = 2;
export const PAGE_FREE = 3;

/** One event, as the parsers fill it in (reused: copy what you keep). */
export interface KmemEvent {
  kind: number;
  /** kmalloc, kmem_cache_alloc, kfree, kmem_cache_free, mm_page_alloc, mm_page_free, … */
  event: string;
  /** `function+0xoff` (` [mod]` for modules), `0x…` when unresolved; '' for page events. */
  site: string;
  /** Address key: the low 52 bits (exact for kernel addresses and 32-bit hashes); 0 is NULL. */
  ptr: number;
  req: number;
  alloc: number;
  gfp: string;
  node: number;
  /** Slab cache name (kmem_cache_*), '' for kmalloc/kfree. */
  cache: string;
  cpu: number;
  pid: number;
  comm: string;
  /** Nanoseconds (of the trace's clock). */
  ts: number;
  /** Page events. */
  order: number;
  migratetype: number;
}

export function newEvent(): KmemEvent {
  return { kind: 0, event: '', site: '', ptr: 0, req: 0, alloc: 0, gfp: '', node: -1, cache: '', cpu: 0, pid: 0, comm: '', ts: 0, order: 0, migratetype: 0 };
}

export interface Site {
  site: string;
  /** The function: the call site without `+0xoff` (and module). */
  caller: string;
  module: string;
  total: number;
  totalReq: number;
  net: number;
  netReq: number;
  allocs: number;
  frees: number;
  /** Allocations at an address still live (counted by the duplicate policy). */
  reused: number;
}

export interface Breakdown {
  key: string;
  allocs: number;
  total: number;
  net: number;
  waste: number;
}

/** A live page allocation: its row and size (one object per row and order, shared). */
interface PageRun {
  row: Breakdown;
  bytes: number;
}

/** What to do when an allocation comes at an address that is still live. */
export type DuplicatePolicy = 'free' | 'keep';

export interface AccountOptions {
  /** `free` (default): the earlier allocation was freed without an event (BCC memleak's
   *  --wa-missing-free); `keep`: it stays live forever, as trace_analyze did. */
  duplicates?: DuplicatePolicy;
  /** Only events with timestamps in [start, end] ns. */
  window?: [number, number];
  /** Only kmalloc/kfree (`malloc`) or kmem_cache_* (`cache`). */
  only?: 'malloc' | 'cache';
}

/**
 * Live allocations as columns in slots reused through a free list: an allocation makes no
 * object (a real capture has hundreds of thousands, most short-lived).
 */
class LiveSlots {
  readonly site: Site[] = [];
  readonly alloc: number[] = [];
  readonly req: number[] = [];
  /** The breakdown rows each allocation counts in. */
  readonly cache: Breakdown[] = [];
  readonly gfp: Breakdown[] = [];
  readonly cpu: Breakdown[] = [];
  readonly task: Breakdown[] = [];
  readonly node: Breakdown[] = [];
  private readonly free: number[] = [];

  take(): number {
    return this.free.length ? this.free.pop()! : this.site.length;
  }

  give(slot: number): void {
    this.free.push(slot);
  }
}

const MAX_TOP = 10;

export class KmemAccount {
  readonly sites = new Map<string, Site>();
  /** Address → slot of its allocation. */
  private readonly live = new AddressMap<number>();
  private readonly slots = new LiveSlots();
  /** Allocations kept live for ever under the `keep` duplicate policy. */
  private kept = 0;
  readonly options: Required<Pick<AccountOptions, 'duplicates'>> & AccountOptions;
  allocs = 0;
  frees = 0;
  /** Frees of addresses never seen allocated (allocated before the trace, or a lost event). */
  unmatchedFrees = 0;
  /** …of which kmem_cache_free with a cache name: their size is unknown, the cache is not. */
  private readonly unmatchedSites = new Map<string, { n: number }>();
  private readonly unmatchedCaches = new Map<string, { n: number }>();
  nullFrees = 0;
  /** Allocations at a still-live address. */
  duplicates = 0;
  readonly duplicateSites = new Map<string, number>();
  outsideWindow = 0;
  filteredOut = 0;
  firstTs = Infinity;
  lastTs = 0;
  readonly byCache = new Map<string, Breakdown>();
  readonly byGfp = new Map<string, Breakdown>();
  readonly byCpu = new Map<string, Breakdown>();
  /** By task, `comm-pid`. */
  readonly byComm = new Map<string, Breakdown>();
  readonly byNode = new Map<string, Breakdown>();
  /** Page allocator: live pages by pfn, totals by migratetype/gfp. */
  private readonly pages = new AddressMap<PageRun>();
  /** Page rows by gfp text, then migratetype; the (row, size) of a page made once. */
  private readonly pageRows = new Map<string, Map<number, Breakdown>>();
  private readonly pageRuns = new Map<Breakdown, PageRun[]>();
  pageAllocs = 0;
  pageFrees = 0;
  pageBytes = 0;
  pageUnmatchedFrees = 0;
  readonly pagesBy = new Map<string, Breakdown>();

  constructor(options: AccountOptions = {}) {
    this.options = { duplicates: 'free', ...options };
  }

  private site(key: string): Site {
    let s = this.sites.get(key);
    if (!s) {
      const plus = key.indexOf('+');
      const space = key.indexOf(' [');
      const caller = plus > 0 ? key.slice(0, plus) : key;
      const module = space > 0 ? key.slice(space + 2, -1) : '';
      s = { site: key, caller, module, total: 0, totalReq: 0, net: 0, netReq: 0, allocs: 0, frees: 0, reused: 0 };
      this.sites.set(key, s);
    }
    return s;
  }

  /** Take one event. */
  add(ev: KmemEvent): void {
    const w = this.options.window;
    if (w && (ev.ts < w[0] || ev.ts > w[1])) {
      this.outsideWindow++;
      return;
    }
    if (ev.ts < this.firstTs) this.firstTs = ev.ts;
    if (ev.ts > this.lastTs) this.lastTs = ev.ts;
    switch (ev.kind) {
      case ALLOC:
        if (this.excluded(ev)) return;
        this.allocate(ev);
        return;
      case FREE:
        if (this.excluded(ev)) return;
        this.free(ev);
        return;
      case PAGE_ALLOC:
        this.pageAlloc(ev);
        return;
      case PAGE_FREE:
        this.pageFree(ev);
    }
  }

  /** Per pid: its comm and its `comm-pid` breakdown row. */
  private readonly tasks = new Map<number, { comm: string; row: Breakdown }>();
  /** Object size per slab cache, from its allocations: prices unmatched kmem_cache_free. */
  private readonly cacheSizes = new Map<string, number>();
  /** Rows found by number instead of by a key string made per event. */
  private readonly kmallocRows = new Map<number, Breakdown>();
  private readonly cpuRows: Breakdown[] = [];
  private readonly nodeRows = new Map<number, Breakdown>();

  /** The `comm-pid` row of a task (a new row when the pid's comm changed); the comm alone when the pid is unknown. */
  private taskRow(comm: string, pid: number): Breakdown {
    const t = this.tasks.get(pid);
    if (t && t.comm === comm) return t.row;
    const row = breakdown(this.byComm, pid < 0 ? comm : `${comm}-${pid}`);
    this.tasks.set(pid, { comm, row });
    return row;
  }

  private cacheRow(ev: KmemEvent): Breakdown {
    if (ev.cache) return breakdown(this.byCache, ev.cache);
    const size = sizeClass(ev.alloc);
    let row = this.kmallocRows.get(size);
    if (!row) this.kmallocRows.set(size, (row = breakdown(this.byCache, `kmalloc-${size}`)));
    return row;
  }

  private cpuRow(cpu: number): Breakdown {
    return (this.cpuRows[cpu] ??= breakdown(this.byCpu, `cpu${cpu}`));
  }

  private nodeRow(node: number): Breakdown {
    let row = this.nodeRows.get(node);
    if (!row) this.nodeRows.set(node, (row = breakdown(this.byNode, String(node))));
    return row;
  }

  private excluded(ev: KmemEvent): boolean {
    const only = this.options.only;
    if (!only) return false;
    const cache = ev.event.startsWith('kmem_cache');
    if ((only === 'cache') === cache) return false;
    this.filteredOut++;
    return true;
  }

  private allocate(ev: KmemEvent): void {
    this.allocs++;
    const site = this.site(ev.site);
    site.allocs++;
    site.total += ev.alloc;
    site.totalReq += ev.req;
    const slots = this.slots;
    const previous = this.live.get(ev.ptr);
    if (previous !== undefined) {
      this.duplicates++;
      site.reused++;
      const was = slots.site[previous]!.site;
      this.duplicateSites.set(was, (this.duplicateSites.get(was) ?? 0) + 1);
      if (this.options.duplicates === 'free') {
        this.release(previous, false);
        slots.give(previous);
      } else {
        this.kept++;
      }
    }
    if (ev.cache) this.cacheSizes.set(ev.cache, ev.alloc);
    const slot = slots.take();
    const { alloc, req } = ev;
    slots.site[slot] = site;
    slots.alloc[slot] = alloc;
    slots.req[slot] = req;
    addTo((slots.cache[slot] = this.cacheRow(ev)), alloc, req);
    addTo((slots.gfp[slot] = breakdown(this.byGfp, ev.gfp || 'none')), alloc, req);
    addTo((slots.cpu[slot] = this.cpuRow(ev.cpu)), alloc, req);
    addTo((slots.task[slot] = this.taskRow(ev.comm, ev.pid)), alloc, req);
    addTo((slots.node[slot] = this.nodeRow(ev.node)), alloc, req);
    this.live.set(ev.ptr, slot);
    site.net += alloc;
    site.netReq += req;
  }

  /** An allocation goes: by its free (`matched`) or implicitly (a reuse of its address). */
  private release(slot: number, matched: boolean): void {
    const s = this.slots;
    const site = s.site[slot]!;
    const alloc = s.alloc[slot]!;
    const req = s.req[slot]!;
    site.net -= alloc;
    site.netReq -= req;
    if (matched) site.frees++;
    takeFrom(s.cache[slot]!, alloc, req);
    takeFrom(s.gfp[slot]!, alloc, req);
    takeFrom(s.cpu[slot]!, alloc, req);
    takeFrom(s.task[slot]!, alloc, req);
    takeFrom(s.node[slot]!, alloc, req);
  }

  private free(ev: KmemEvent): void {
    this.frees++;
    if (ev.ptr === 0) {
      this.nullFrees++;
      return;
    }
    const slot = this.live.delete(ev.ptr);
    if (slot === undefined) {
      this.unmatchedFrees++;
      count(this.unmatchedSites, ev.site);
      if (ev.cache) count(this.unmatchedCaches, ev.cache);
      return;
    }
    this.release(slot, true);
    this.slots.give(slot);
  }

  private pageAlloc(ev: KmemEvent): void {
    this.pageAllocs++;
    const gfp = ev.gfp || 'none';
    let byType = this.pageRows.get(gfp);
    if (!byType) this.pageRows.set(gfp, (byType = new Map()));
    let row = byType.get(ev.migratetype);
    if (!row) byType.set(ev.migratetype, (row = breakdown(this.pagesBy, `migratetype=${ev.migratetype} ${gfp}`)));
    let runs = this.pageRuns.get(row);
    if (!runs) this.pageRuns.set(row, (runs = []));
    const run = (runs[ev.order] ??= { row, bytes: 4096 * 2 ** ev.order });
    this.pages.set(ev.ptr, run);
    this.pageBytes += run.bytes;
    row.allocs++;
    row.total += run.bytes;
    row.net += run.bytes;
  }

  private pageFree(ev: KmemEvent): void {
    this.pageFrees++;
    const run = this.pages.delete(ev.ptr);
    if (!run) {
      this.pageUnmatchedFrees++;
      return;
    }
    this.pageBytes -= run.bytes;
    run.row.net -= run.bytes;
  }

  /** Live allocations now (under `keep`, the orphans too). */
  get liveCount(): number {
    return this.live.size + this.kept;
  }

  get livePages(): number {
    return this.pages.size;
  }

  /** The call sites whose allocations were still live at a reused address, most first. */
  topDuplicates(n = MAX_TOP): [string, number][] {
    return top(this.duplicateSites, n);
  }

  topUnmatched(n = MAX_TOP): [string, number][] {
    return top(this.unmatchedBySite, n);
  }

  /** Unmatched frees by the freeing call site. */
  get unmatchedBySite(): Map<string, number> {
    return new Map([...this.unmatchedSites].map(([k, v]) => [k, v.n]));
  }

  /**
   * Bytes of the unmatched frees where the size can be known: kmem_cache_free of a cache whose
   * objects were allocated in the trace (kfree says nothing of the size). With how many frees
   * that covers.
   */
  unmatchedBytes(): { bytes: number; frees: number } {
    let bytes = 0;
    let frees = 0;
    for (const [cache, c] of this.unmatchedCaches) {
      const size = this.cacheSizes.get(cache);
      if (size === undefined) continue;
      bytes += size * c.n;
      frees += c.n;
    }
    return { bytes, frees };
  }

  /** Unmatched kmem_cache_free by cache. */
  get unmatchedByCache(): Map<string, number> {
    return new Map([...this.unmatchedCaches].map(([k, v]) => [k, v.n]));
  }
}

/** One lookup per count: the counter is an object. */
function count(map: Map<string, { n: number }>, key: string): void {
  const c = map.get(key);
  if (c) c.n++;
  else map.set(key, { n: 1 });
}

/** An allocation of `alloc` bytes (`req` asked for) into a breakdown row. */
function addTo(b: Breakdown, alloc: number, req: number): void {
  b.allocs++;
  b.total += alloc;
  b.net += alloc;
  b.waste += alloc - req;
}

/** …and out of it again, when the allocation goes. */
function takeFrom(b: Breakdown, alloc: number, req: number): void {
  b.net -= alloc;
  b.waste -= alloc - req;
}

function breakdown(map: Map<string, Breakdown>, key: string): Breakdown {
  let b = map.get(key);
  if (!b) map.set(key, (b = { key, allocs: 0, total: 0, net: 0, waste: 0 }));
  return b;
}

function top(map: Map<string, number>, n: number): [string, number][] {
  return [...map].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

/** kmalloc's size classes, for a cache view of kmalloc: the smallest power of two ≥ size (96 and 192 too). */
export function sizeClass(bytes: number): number {
  if (bytes <= 8) return 8;
  if (bytes > 64 && bytes <= 96) return 96;
  if (bytes > 128 && bytes <= 192) return 192;
  if (bytes <= 0x40000000) return 2 ** (32 - Math.clz32(bytes - 1));
  return 2 ** Math.ceil(Math.log2(bytes));
}

/** Sort orders of the account, as trace_analyze's -o, with a deterministic tie-break (call site). */
export const ORDERS = {
  current_dynamic: (s: Site) => s.net,
  total_dynamic: (s: Site) => s.total,
  alloc_count: (s: Site) => s.allocs,
  free_count: (s: Site) => s.frees,
  waste: (s: Site) => s.net - s.netReq,
} as const;
export type OrderBy = keyof typeof ORDERS;

export function sortedSites(sites: Iterable<Site>, order: OrderBy): Site[] {
  const key = ORDERS[order];
  return [...sites].sort((a, b) => key(b) - key(a) || (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
}
