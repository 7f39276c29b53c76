/**
 * Where kmem events come from: a text file (ftrace or trace-cmd report), gzip'd or not, or
 * standard input, streamed in chunks; or a trace.dat (v6/v7) read through our reader, with call
 * sites resolved through the file's own kallsyms. The kind is found from the first bytes.
 */
import { closeSync, createReadStream, openSync, readFileSync, statSync } from 'node:fs';
import { readAt } from '../../io.js';
import { createGunzip } from 'node:zlib';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { Kallsyms } from '../../events/symbols.js';
import type { EventFormat, KField } from '../../events/kformat.js';
import { cpuData, parseTraceDat, type TraceDat } from '../../format/tracedat/reader.js';
import { TraceDatEvents } from '../../format/tracedat/records.js';
import { TraceDatError } from '../../format/tracedat/cursor.js';
import { COMMIT_SIZE_MASK, MISSED_STORED, SUBBUF_HEADER } from '../../ring/layout.js';
import { forEachEvent } from '../../ring/ring.js';
import { ALLOC, FREE, PAGE_ALLOC, PAGE_FREE, newEvent, type KmemEvent } from './account.js';
import { KmemTextParser, newProblems, type ParseProblems } from './text.js';
import { PARALLEL_MIN_BYTES, readTextParallel } from './parallel.js';

const TRACE_DAT_MAGIC = [0x17, 0x08, 0x44];

export interface InputOptions {
  /** For legacy hex call sites in text (System.map or kallsyms). */
  symbols?: Kallsyms | null;
  /** The file `symbols` came from, for decode workers to load too. */
  symbolsPath?: string | null;
  /** Decode large plain text files on this many threads (default: every core; 1: this thread only). */
  workers?: number;
  /** Told of progress: bytes done of total (total 0 when unknown, e.g. stdin). */
  progress?: (done: number, total: number) => void;
  /** Standard input, for '-'. */
  stdin?: Readable;
}

/** Feed every kmem event of `path` ('-': standard input) to `onEvent`; returns what could not be read. */
export async function readKmemEvents(path: string, onEvent: (ev: KmemEvent) => void, options: InputOptions = {}): Promise<ParseProblems> {
  if (path !== '-') {
    let head: Buffer;
    try {
      const fd = openSync(path, 'r');
      try {
        head = readAt(fd, 0, TRACE_DAT_MAGIC.length);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // One synchronous read: the whole file is needed at once, and it is faster than a promise per chunk.
    if (isTraceDat(head)) {
      const data = readFileSync(path);
      return readTraceDat(await parseTraceDat(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), path), onEvent, options);
    }
    const gz = head[0] === 0x1f && head[1] === 0x8b;
    const total = statSync(path).size;
    if (!gz && (options.workers ?? availableParallelism()) > 1 && total >= PARALLEL_MIN_BYTES) return readTextParallel(path, onEvent, options);
    const raw = createReadStream(path, { highWaterMark: 1 << 20 });
    let done = 0;
    raw.on('data', (c) => options.progress?.((done += c.length), total));
    return readStream(gz ? raw.pipe(createGunzip()) : raw, path, onEvent, options);
  }
  return readStream(options.stdin ?? process.stdin, '<stdin>', onEvent, options);
}

function isTraceDat(head: Uint8Array): boolean {
  return TRACE_DAT_MAGIC.every((b, i) => head[i] === b);
}

/** Text, unless the stream (a pipe, a .gz) turns out to hold a trace.dat: then it is read whole. */
async function readStream(stream: Readable, name: string, onEvent: (ev: KmemEvent) => void, options: InputOptions): Promise<ParseProblems> {
  const parser = new KmemTextParser(onEvent, options.symbols ?? null);
  let dat: Buffer[] | null = null;
  let first = true;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    if (first) {
      first = false;
      if (isTraceDat(c)) dat = [];
    }
    if (dat) dat.push(c);
    else parser.push(c);
  }
  if (dat) return readTraceDat(await parseTraceDat(Buffer.concat(dat), name), onEvent, options);
  parser.end();
  return parser.problems;
}

const KINDS: Record<string, number> = {
  kmalloc: ALLOC, kmalloc_node: ALLOC, kmem_cache_alloc: ALLOC, kmem_cache_alloc_node: ALLOC,
  kfree: FREE, kmem_cache_free: FREE,
  mm_page_alloc: PAGE_ALLOC, mm_page_free: PAGE_FREE, mm_page_free_batched: PAGE_FREE,
};

interface Decoder {
  kind: number;
  name: string;
  site?: KField;
  ptr?: KField;
  req?: KField;
  alloc?: KField;
  gfp?: KField;
  node?: KField;
  cache?: KField;
  pfn?: KField;
  order?: KField;
  migratetype?: KField;
  format: EventFormat;
  /** gfp_flags texts by value. */
  gfpNames: Map<number, string>;
}

/**
 * A trace.dat's kmem events, decoded straight from the pages: each CPU's events of one page at a
 * time into reused arrays, merged across CPUs by timestamp, fields read at their offsets. No
 * object per record, cache names interned from their bytes: this is the fast path.
 */
async function readTraceDat(dat: TraceDat, onEvent: (ev: KmemEvent) => void, options: InputOptions): Promise<ParseProblems> {
  const events = new TraceDatEvents(dat);
  const problems = newProblems();
  const decoders: (Decoder | null | undefined)[] = new Array(65536);
  const decoder = (id: number) => {
    let d = decoders[id];
    if (d === undefined) {
      const format = events.events.get(id);
      d = decoders[id] = format ? decoderFor(format) : null;
    }
    return d;
  };
  const sites = new Map<number, string>();
  const names = new StringInterner();
  const ev = newEvent();
  const streams = dat.buffers.flatMap((b) => b.cpus.filter((c) => c.size > 0).map((c) => new PageStream(dat, b, c)));
  const total = streams.reduce((n, st) => n + st.bytes, 0);
  let done = 0;
  for (const st of streams) st.fill();
  let live = streams.filter((st) => st.count > 0);
  while (live.length) {
    let best = live[0]!;
    for (let i = 1; i < live.length; i++) if (live[i]!.ts[live[i]!.at]! < best.ts[best.at]!) best = live[i]!;
    const i = best.at++;
    const at = best.off[i]!;
    const dv = best.dv;
    problems.lines++;
    const id = dv.getUint16(at, true);
    const d = decoder(id);
    if (!d) {
      const name = events.events.get(id)?.name ?? `id ${id}`;
      problems.unknown.set(name, (problems.unknown.get(name) ?? 0) + 1);
    } else {
      ev.kind = d.kind;
      ev.event = d.name;
      ev.cpu = best.cpu;
      ev.ts = best.ts[i]!;
      let ok = true;
      if (d.kind === ALLOC || d.kind === FREE) {
        if (!d.site || !d.ptr) ok = false;
        else {
          const siteKey = key52(dv, at + d.site.offset);
          let site = sites.get(siteKey);
          if (site === undefined) {
            site = siteName(events, dv.getBigUint64(at + d.site.offset, true), problems);
            sites.set(siteKey, site);
          }
          ev.site = site;
          ev.ptr = key52(dv, at + d.ptr.offset);
          ev.cache = d.cache ? names.dataLoc(best.u8, dv, at, d.cache.offset) : '';
          if (d.kind === ALLOC) {
            ev.req = d.req ? u64(dv, at + d.req.offset) : 0;
            ev.alloc = d.alloc ? u64(dv, at + d.alloc.offset) : 0;
            ev.gfp = d.gfp ? gfpText(d, dv, at) : '';
            ev.node = d.node ? dv.getInt32(at + d.node.offset, true) : -1;
            ev.pid = dv.getInt32(at + 4, true);
            ev.comm = events.comm(ev.pid);
          }
        }
      } else if (!d.pfn) ok = false;
      else {
        ev.site = '';
        ev.ptr = key52(dv, at + d.pfn.offset);
        ev.order = d.order ? dv.getUint32(at + d.order.offset, true) : 0;
        ev.migratetype = d.migratetype ? dv.getInt32(at + d.migratetype.offset, true) : 0;
        ev.gfp = d.gfp ? gfpText(d, dv, at) : '';
      }
      if (ok) {
        problems.events++;
        onEvent(ev);
      } else problems.malformed++;
    }
    if (best.at >= best.count) {
      done += best.pageSize;
      if ((done & 0xfffff) < best.pageSize) options.progress?.(done, total);
      best.fill();
      if (best.count === 0) live = live.filter((st) => st !== best);
    }
  }
  options.progress?.(total, total);
  for (const st of streams) problems.lostEvents += st.missed;
  return problems;
}

/** One CPU's events, a page at a time, in arrays reused from page to page. */
class PageStream {
  readonly dv: DataView;
  readonly cpu: number;
  readonly bytes: number;
  readonly pageSize: number;
  ts: number[] = [];
  off: number[] = [];
  count = 0;
  at = 0;
  missed = 0;
  private page = 0;
  readonly u8: Uint8Array;
  private readonly where: string;
  private readonly file: string;

  constructor(dat: TraceDat, buffer: TraceDat['buffers'][number], cpu: TraceDat['buffers'][number]['cpus'][number]) {
    this.u8 = cpuData(dat, buffer, cpu);
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
    this.cpu = cpu.cpu;
    this.bytes = this.u8.length;
    this.pageSize = buffer.pageSize || dat.pageSize;
    this.where = `buffer '${buffer.name}' cpu${cpu.cpu}`;
    this.file = dat.file;
  }

  /** Decode the next page with events; count 0 at the end. */
  fill(): void {
    this.count = 0;
    this.at = 0;
    while (this.count === 0 && this.page * this.pageSize + SUBBUF_HEADER <= this.u8.length) {
      const start = this.page++ * this.pageSize;
      const raw = this.dv.getUint32(start + 8, true);
      const commit = raw & COMMIT_SIZE_MASK;
      if (commit > this.pageSize - SUBBUF_HEADER) throw new TraceDatError(this.file, `${this.where} page ${this.page - 1}`, start + 8, `commit ${commit} is larger than the page`);
      if (raw & MISSED_STORED && start + SUBBUF_HEADER + commit + 8 <= this.u8.length) this.missed += u64(this.dv, start + SUBBUF_HEADER + commit);
      try {
        forEachEvent(this.dv, start, commit, (ts, off, len) => {
          if (len < 8) return;
          this.ts[this.count] = ts;
          this.off[this.count++] = off;
        });
      } catch (err) {
        if (err instanceof RangeError) throw new TraceDatError(this.file, `${this.where} page ${this.page - 1}`, start, err.message);
        throw err;
      }
    }
  }
}

/** Cache names (`__data_loc char[]`) interned by their bytes: no string made for a name seen before. */
class StringInterner {
  private readonly table = new Map<number, { bytes: Uint8Array; words: number[]; text: string }[]>();
  private readonly decoder = new TextDecoder();

  dataLoc(u8: Uint8Array, dv: DataView, record: number, fieldOffset: number): string {
    const loc = dv.getUint32(record + fieldOffset, true);
    const start = record + (loc & 0xffff);
    let len = loc >>> 16;
    while (len > 0 && u8[start + len - 1] === 0) len--;
    // Hash and compare four bytes at a time: names repeat, so this is nearly always a hit.
    const words = len >>> 2;
    let h = len;
    for (let i = 0; i < words; i++) h = Math.imul(h ^ dv.getUint32(start + 4 * i, true), 0x01000193);
    for (let i = words * 4; i < len; i++) h = Math.imul(h ^ u8[start + i]!, 0x01000193);
    let bucket = this.table.get(h);
    if (bucket) {
      for (const e of bucket) {
        if (e.bytes.length !== len) continue;
        let same = true;
        for (let i = 0; i < words && same; i++) same = e.words[i] === dv.getUint32(start + 4 * i, true);
        for (let i = words * 4; i < len && same; i++) same = e.bytes[i] === u8[start + i];
        if (same) return e.text;
      }
    } else this.table.set(h, (bucket = []));
    // A copy of its own (Buffer's slice() would be a view into the whole file).
    const bytes = new Uint8Array(u8.subarray(start, start + len));
    const text = this.decoder.decode(bytes);
    const w = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    bucket.push({ bytes, words: Array.from({ length: words }, (_, i) => w.getUint32(4 * i, true)), text });
    return text;
  }
}

function siteName(events: TraceDatEvents, address: bigint, problems: ParseProblems): string {
  const hit = events.symbols.lookup(address);
  if (!hit) {
    problems.unresolved++;
    return `0x${address.toString(16)}`;
  }
  const mod = (events.symbols as Kallsyms).module?.(hit.name);
  return `${hit.name}+0x${hit.offset.toString(16)}${mod ? ` [${mod}]` : ''}`;
}

/** A u64 field as a number (exact below 2^53: sizes). */
function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 4294967296 + dv.getUint32(at, true);
}

function decoderFor(format: EventFormat): Decoder | null {
  const kind = KINDS[format.name];
  if (kind === undefined) return null;
  const f = (n: string) => format.field(n);
  return {
    kind, name: format.name, format,
    site: f('call_site'), ptr: f('ptr'), req: f('bytes_req'), alloc: f('bytes_alloc'), gfp: f('gfp_flags'),
    node: f('node'), cache: f('name'), pfn: f('pfn'), order: f('order'), migratetype: f('migratetype'), gfpNames: new Map(),
  };
}

/** The low 52 bits of a u64 field: exact for kernel addresses (their top bits are all ones). */
function key52(dv: DataView, at: number): number {
  return (dv.getUint32(at + 4, true) & 0xfffff) * 4294967296 + dv.getUint32(at, true);
}

/** gfp_flags printed as the event's print fmt does (`GFP_KERNEL|__GFP_ZERO`), once per distinct value. */
function gfpText(d: Decoder, dv: DataView, at: number): string {
  const value = u64(dv, at + d.gfp!.offset);
  let text = d.gfpNames.get(value);
  if (text === undefined) {
    const record = { dv, u8: new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength), start: at, length: dv.byteLength - at };
    text = /gfp_flags=(\S+)/.exec(d.format.print(record))?.[1] ?? `0x${value.toString(16)}`;
    d.gfpNames.set(value, text);
  }
  return text;
}
