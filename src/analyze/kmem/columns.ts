/**
 * kmem events as columns (struct of arrays) with a small string table: what a decode worker
 * hands back to the main thread, by transferring the arrays' memory (no copy), for the account
 * to replay in order. Strings (call sites, gfp flags, cache names, tasks) are interned per batch.
 */
import { newEvent, type KmemEvent } from './account.js';

export const EVENT_NAMES = [
  'kmalloc', 'kmalloc_node', 'kmem_cache_alloc', 'kmem_cache_alloc_node', 'kfree', 'kmem_cache_free',
  'mm_page_alloc', 'mm_page_free', 'mm_page_free_batched',
] as const;
const NAME_INDEX: Record<string, number> = Object.fromEntries(EVENT_NAMES.map((n, i) => [n, i]));

/** The transferable form. */
export interface EventBatch {
  count: number;
  kind: Uint8Array;
  event: Uint8Array;
  cpu: Int32Array;
  pid: Int32Array;
  node: Int32Array;
  order: Int32Array;
  migratetype: Int32Array;
  ts: Float64Array;
  ptr: Float64Array;
  req: Float64Array;
  alloc: Float64Array;
  site: Int32Array;
  gfp: Int32Array;
  cache: Int32Array;
  comm: Int32Array;
  strings: string[];
}

const INT_COLUMNS = ['cpu', 'pid', 'node', 'order', 'migratetype', 'site', 'gfp', 'cache', 'comm'] as const;
const FLOAT_COLUMNS = ['ts', 'ptr', 'req', 'alloc'] as const;

export class BatchBuilder {
  private capacity: number;
  private b: EventBatch;
  private readonly ids = new Map<string, number>([['', 0]]);
  /** The last string and id per string column: most events repeat their predecessor's. */
  private lastSite = '';
  private lastSiteId = 0;
  private lastGfp = '';
  private lastGfpId = 0;
  private lastCache = '';
  private lastCacheId = 0;
  private lastComm = '';
  private lastCommId = 0;

  constructor(capacity = 1 << 14) {
    this.capacity = capacity;
    this.b = BatchBuilder.alloc(capacity, ['']);
  }

  private static alloc(n: number, strings: string[]): EventBatch {
    return {
      count: 0, kind: new Uint8Array(n), event: new Uint8Array(n),
      cpu: new Int32Array(n), pid: new Int32Array(n), node: new Int32Array(n), order: new Int32Array(n), migratetype: new Int32Array(n),
      ts: new Float64Array(n), ptr: new Float64Array(n), req: new Float64Array(n), alloc: new Float64Array(n),
      site: new Int32Array(n), gfp: new Int32Array(n), cache: new Int32Array(n), comm: new Int32Array(n), strings,
    };
  }

  get count(): number {
    return this.b.count;
  }

  private id(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.b.strings.length;
      this.b.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  push(ev: KmemEvent): void {
    let b = this.b;
    if (b.count === this.capacity) {
      this.capacity *= 2;
      const grown = BatchBuilder.alloc(this.capacity, b.strings);
      grown.count = b.count;
      grown.kind.set(b.kind);
      grown.event.set(b.event);
      for (const c of INT_COLUMNS) grown[c].set(b[c]);
      for (const c of FLOAT_COLUMNS) grown[c].set(b[c]);
      this.b = b = grown;
    }
    const i = b.count++;
    b.kind[i] = ev.kind;
    b.event[i] = NAME_INDEX[ev.event] ?? 0;
    b.cpu[i] = ev.cpu;
    b.pid[i] = ev.pid;
    b.node[i] = ev.node;
    b.order[i] = ev.order;
    b.migratetype[i] = ev.migratetype;
    b.ts[i] = ev.ts;
    b.ptr[i] = ev.ptr;
    b.req[i] = ev.req;
    b.alloc[i] = ev.alloc;
    // The same string as the event before (most of the time) needs no lookup.
    if (ev.site !== this.lastSite) this.lastSiteId = this.id((this.lastSite = ev.site));
    if (ev.gfp !== this.lastGfp) this.lastGfpId = this.id((this.lastGfp = ev.gfp));
    if (ev.cache !== this.lastCache) this.lastCacheId = this.id((this.lastCache = ev.cache));
    if (ev.comm !== this.lastComm) this.lastCommId = this.id((this.lastComm = ev.comm));
    b.site[i] = this.lastSiteId;
    b.gfp[i] = this.lastGfpId;
    b.cache[i] = this.lastCacheId;
    b.comm[i] = this.lastCommId;
  }

  /** The batch and the buffers to transfer with it. */
  finish(): { batch: EventBatch; transfer: ArrayBuffer[] } {
    const b = this.b;
    const transfer = [b.kind, b.event, ...INT_COLUMNS.map((c) => b[c]), ...FLOAT_COLUMNS.map((c) => b[c])].map((a) => a.buffer as ArrayBuffer);
    return { batch: b, transfer };
  }
}

/** Replay a batch's events, in order, through one reused event. */
export function replay(b: EventBatch, onEvent: (ev: KmemEvent) => void, ev = newEvent()): void {
  const s = b.strings;
  for (let i = 0; i < b.count; i++) {
    ev.kind = b.kind[i]!;
    ev.event = EVENT_NAMES[b.event[i]!]!;
    ev.cpu = b.cpu[i]!;
    ev.pid = b.pid[i]!;
    ev.node = b.node[i]!;
    ev.order = b.order[i]!;
    ev.migratetype = b.migratetype[i]!;
    ev.ts = b.ts[i]!;
    ev.ptr = b.ptr[i]!;
    ev.req = b.req[i]!;
    ev.alloc = b.alloc[i]!;
    ev.site = s[b.site[i]!]!;
    ev.gfp = s[b.gfp[i]!]!;
    ev.cache = s[b.cache[i]!]!;
    ev.comm = s[b.comm[i]!]!;
    onEvent(ev);
  }
}
