/**
 * Where kmem events come from: a text file (ftrace or trace-cmd report), gzip'd or not, or
 * standard input, streamed in chunks; or a trace.dat (v6/v7) read through our reader, with call
 * sites resolved through the file's own kallsyms. The kind is found from the first bytes.
 */
import { createReadStream, openSync, readSync, closeSync, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { Kallsyms } from '../../events/symbols.js';
import type { EventFormat, KField } from '../../events/kformat.js';
import { parseTraceDat, readTraceDatFile, type TraceDat } from '../../format/tracedat/reader.js';
import { TraceDatEvents } from '../../format/tracedat/records.js';
import { ALLOC, FREE, PAGE_ALLOC, PAGE_FREE, newEvent, type KmemEvent } from './account.js';
import { KmemTextParser, newProblems, type ParseProblems } from './text.js';

const TRACE_DAT_MAGIC = [0x17, 0x08, 0x44];

export interface InputOptions {
  /** For legacy hex call sites in text (System.map or kallsyms). */
  symbols?: Kallsyms | null;
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
      head = Buffer.alloc(3);
      readSync(fd, head, 0, 3, 0);
      closeSync(fd);
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (isTraceDat(head)) return readTraceDat(await readTraceDatFile(path), onEvent, options);
    const gz = head[0] === 0x1f && head[1] === 0x8b;
    const raw = createReadStream(path, { highWaterMark: 1 << 20 });
    const total = statSync(path).size;
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
}

/** A trace.dat's kmem events, decoded straight from the records' fields. */
async function readTraceDat(dat: TraceDat, onEvent: (ev: KmemEvent) => void, options: InputOptions): Promise<ParseProblems> {
  const events = new TraceDatEvents(dat);
  const problems = newProblems();
  const decoders = new Map<number, Decoder | null>();
  const sites = new Map<number, string>();
  const ev = newEvent();
  const total = events.dat.buffers.reduce((n, b) => n + b.cpus.reduce((m, c) => m + c.size, 0), 0);
  let seen = 0;
  for (const r of events.records()) {
    problems.lines++;
    if (options.progress && (++seen & 0xffff) === 0) options.progress(Math.min(total, seen * 32), total);
    let d = decoders.get(r.id);
    if (d === undefined) {
      d = r.event ? decoderFor(r.event) : null;
      decoders.set(r.id, d);
    }
    if (!d) {
      const name = r.event?.name ?? `id ${r.id}`;
      problems.unknown.set(name, (problems.unknown.get(name) ?? 0) + 1);
      continue;
    }
    const { dv } = r;
    const at = r.start;
    ev.kind = d.kind;
    ev.event = d.name;
    ev.cpu = r.cpu;
    ev.pid = r.pid;
    ev.comm = events.comm(r.pid);
    ev.ts = r.ts;
    if (d.kind === ALLOC || d.kind === FREE) {
      if (!d.site || !d.ptr) {
        problems.malformed++;
        continue;
      }
      const siteKey = key52(dv, at + d.site.offset);
      let site = sites.get(siteKey);
      if (site === undefined) {
        const address = dv.getBigUint64(at + d.site.offset, true);
        const hit = events.symbols.lookup(address);
        if (hit) {
          const mod = (events.symbols as Kallsyms).module?.(hit.name);
          site = `${hit.name}+0x${hit.offset.toString(16)}${mod ? ` [${mod}]` : ''}`;
        } else {
          problems.unresolved++;
          site = `0x${address.toString(16)}`;
        }
        sites.set(siteKey, site);
      }
      ev.site = site;
      ev.ptr = key52(dv, at + d.ptr.offset);
      ev.cache = d.cache ? String(d.format.value(r, d.cache)) : '';
      if (d.kind === ALLOC) {
        ev.req = d.req ? Number(d.format.value(r, d.req)) : 0;
        ev.alloc = d.alloc ? Number(d.format.value(r, d.alloc)) : 0;
        ev.gfp = d.gfp ? gfpText(d.format, r, d.gfp) : '';
        ev.node = d.node ? Number(d.format.value(r, d.node)) : -1;
      }
    } else {
      if (!d.pfn) {
        problems.malformed++;
        continue;
      }
      ev.site = '';
      ev.ptr = key52(dv, at + d.pfn.offset);
      ev.order = d.order ? Number(d.format.value(r, d.order)) : 0;
      ev.migratetype = d.migratetype ? Number(d.format.value(r, d.migratetype)) : 0;
      ev.gfp = d.gfp ? gfpText(d.format, r, d.gfp) : '';
    }
    problems.events++;
    onEvent(ev);
  }
  options.progress?.(total, total);
  for (const l of events.losses) problems.lostEvents += l.missed ?? 0;
  return problems;
}

function decoderFor(format: EventFormat): Decoder | null {
  const kind = KINDS[format.name];
  if (kind === undefined) return null;
  const f = (n: string) => format.field(n);
  return {
    kind, name: format.name, format,
    site: f('call_site'), ptr: f('ptr'), req: f('bytes_req'), alloc: f('bytes_alloc'), gfp: f('gfp_flags'),
    node: f('node'), cache: f('name'), pfn: f('pfn'), order: f('order'), migratetype: f('migratetype'),
  };
}

/** The low 52 bits of a u64 field: exact for kernel addresses (their top bits are all ones). */
function key52(dv: DataView, at: number): number {
  return (dv.getUint32(at + 4, true) & 0xfffff) * 4294967296 + dv.getUint32(at, true);
}

/** gfp_flags printed as the event's print fmt does (`GFP_KERNEL|__GFP_ZERO`), cached per value. */
const gfpCache = new Map<string, string>();
function gfpText(format: EventFormat, r: Parameters<EventFormat['value']>[0], f: KField): string {
  const value = format.value(r, f);
  const k = `${format.id}:${String(value)}`;
  let text = gfpCache.get(k);
  if (text === undefined) {
    // The print fmt's __print_flags names them; print once per distinct value.
    text = /gfp_flags=(\S+)/.exec(format.print(r))?.[1] ?? `0x${BigInt(value as number | bigint).toString(16)}`;
    gfpCache.set(k, text);
  }
  return text;
}
