/**
 * Where kmem events come from: a text file (ftrace or trace-cmd report), gzip'd or not, or
 * standard input, streamed in chunks; or a trace.dat (v6/v7) read through our reader, with call
 * sites resolved through the file's own kallsyms. The kind is found from the first bytes.
 */
import { closeSync, createReadStream, openSync, statSync } from 'node:fs';
import { readAt } from '../../io.js';
import { createGunzip } from 'node:zlib';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { Kallsyms } from '../../events/symbols.js';
import type { EventFormat, KField, RecordView } from '../../events/kformat.js';
import { parseTraceDat, readTraceDatFile, type TraceDat } from '../../format/tracedat/reader.js';
import { TraceDatEvents } from '../../format/tracedat/records.js';
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
    // Read a window at a time, whatever the file's size.
    if (isTraceDat(head)) return readTraceDat(await readTraceDatFile(path), onEvent, options);
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
 * A trace.dat's kmem events, decoded straight from the pages as the records' merge walks them
 * (a window of the file at a time): fields read at their offsets, no object per record, cache
 * names interned from their bytes. This is the fast path.
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
  const merge = events.merge();
  const total = merge.storedBytes;
  for (let r = merge.next(); r; r = merge.next()) {
    const at = r.start;
    const dv = r.dv;
    if ((++problems.lines & 0xffff) === 0) options.progress?.(merge.storedDone, total);
    const d = decoder(r.id);
    if (!d) {
      const name = r.event?.name ?? `id ${r.id}`;
      problems.unknown.set(name, (problems.unknown.get(name) ?? 0) + 1);
      continue;
    }
    ev.kind = d.kind;
    ev.event = d.name;
    ev.cpu = r.cpu;
    ev.ts = r.ts;
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
        ev.cache = d.cache ? names.dataLoc(r.u8, dv, at, d.cache.offset) : '';
        if (d.kind === ALLOC) {
          ev.req = d.req ? u64(dv, at + d.req.offset) : 0;
          ev.alloc = d.alloc ? u64(dv, at + d.alloc.offset) : 0;
          ev.gfp = d.gfp ? gfpText(d, r) : '';
          ev.node = d.node ? dv.getInt32(at + d.node.offset, true) : -1;
          ev.pid = r.pid;
          ev.comm = events.comm(ev.pid);
        }
      }
    } else if (!d.pfn) ok = false;
    else {
      ev.site = '';
      ev.ptr = key52(dv, at + d.pfn.offset);
      ev.order = d.order ? dv.getUint32(at + d.order.offset, true) : 0;
      ev.migratetype = d.migratetype ? dv.getInt32(at + d.migratetype.offset, true) : 0;
      ev.gfp = d.gfp ? gfpText(d, r) : '';
    }
    if (ok) {
      problems.events++;
      onEvent(ev);
    } else problems.malformed++;
  }
  options.progress?.(total, total);
  for (const l of events.losses) problems.lostEvents += l.missed;
  return problems;
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
function gfpText(d: Decoder, record: RecordView): string {
  const value = u64(record.dv, record.start + d.gfp!.offset);
  let text = d.gfpNames.get(value);
  if (text === undefined) {
    text = /gfp_flags=(\S+)/.exec(d.format.print(record))?.[1] ?? `0x${value.toString(16)}`;
    d.gfpNames.set(value, text);
  }
  return text;
}
