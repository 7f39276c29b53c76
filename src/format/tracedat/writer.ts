/**
 * Writing trace.dat, version 6 (uncompressed) or 7 (sections, options, optional zstd/zlib), in
 * the layout trace-cmd 3.1.6 reads (docs/tracedat.md). Input is plain content: format texts,
 * and per buffer and CPU the raw sub-buffer pages, so kernel recordings and nftrace snapshots go
 * through the same code.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { hostname, machine, release, type } from 'node:os';
import { open } from 'node:fs/promises';
import { codecFor, loadedCodec, type Codec, type CompressionName } from './compress.js';
import { MAGIC, OPT, SECTION } from './layout.js';
import { cpuData, cpuStatTexts, optionText, type TraceDat } from './reader.js';

/** What a file holds, as the reader returns it, but with the CPU data in hand. */
export interface TraceDatContent
  extends Pick<TraceDat, 'pageSize' | 'headerPage' | 'headerEvent' | 'ftraceFormats' | 'systems' | 'kallsyms' | 'printk' | 'cmdlines' | 'cpuCount'> {
  /** The first buffer is the top level (name ''); others are instances. Per CPU: whole pages. */
  buffers: { name: string; clock: string; cpus: CpuPages[] }[];
  /** The trace_clock file text, e.g. `[local] global counter\n`. */
  traceClock: string;
  /** CPUSTAT option texts, in order (trace-cmd: `CPU: N\n` + the stats file, per buffer). */
  cpuStats?: string[];
  uname?: string;
  version?: string;
}

/** Pages kept in a file (a recording's per-CPU spool), copied into the trace.dat without loading them whole. */
export interface FilePages {
  path: string;
  size: number;
}

type Piece = Uint8Array | FilePages;

/** One CPU's data: whole pages, in one array, as pieces written one after another, or in a file. */
export type CpuPages = Uint8Array | readonly Uint8Array[] | FilePages;

function pieces(d: CpuPages): readonly Piece[] {
  return d instanceof Uint8Array || !Array.isArray(d) ? [d as Piece] : d;
}

function pieceLength(p: Piece): number {
  return p instanceof Uint8Array ? p.length : p.size;
}

function byteLength(d: CpuPages): number {
  return pieces(d).reduce((n, p) => n + pieceLength(p), 0);
}

const COPY_CHUNK = 1 << 20;

/** A file piece's bytes, `COPY_CHUNK` at a time. */
function* fileChunks(p: FilePages, chunk = COPY_CHUNK): Generator<Uint8Array> {
  const fd = openSync(p.path, 'r');
  try {
    for (let at = 0; at < p.size; at += chunk) {
      const buf = Buffer.alloc(Math.min(chunk, p.size - at));
      const got = readSync(fd, buf, 0, buf.length, at);
      if (got !== buf.length) throw new Error(`${p.path}: ${p.size} bytes expected, the file ends at ${at + got}`);
      yield buf;
    }
  } finally {
    closeSync(fd);
  }
}

function materialize(p: Piece): Uint8Array {
  return p instanceof Uint8Array ? p : Buffer.concat([...fileChunks(p)]);
}

export interface WriteOptions {
  version: 6 | 7;
  compression?: CompressionName;
}

/** Little-endian byte builder. */
class Out {
  private chunks: Piece[] = [];
  length = 0;

  bytes(b: Piece): this {
    this.chunks.push(b);
    this.length += pieceLength(b);
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.bytes(b);
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.bytes(b);
  }

  u64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.bytes(b);
  }

  str(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  cstr(s: string): this {
    return this.str(s).bytes(Uint8Array.of(0));
  }

  /** Overwrite a u64 written earlier by u64() (so it sits whole in one piece). */
  patchU64(at: number, v: number): void {
    let start = 0;
    for (const c of this.chunks) {
      if (at < start + pieceLength(c)) {
        if (!(c instanceof Uint8Array)) break;
        new DataView(c.buffer, c.byteOffset, c.byteLength).setBigUint64(at - start, BigInt(v), true);
        return;
      }
      start += pieceLength(c);
    }
    throw new RangeError(`no byte ${at}`);
  }

  /** Pad with zeros to a multiple of `to`. */
  align(to: number): this {
    const pad = (to - (this.length % to)) % to;
    return pad ? this.bytes(new Uint8Array(pad)) : this;
  }

  done(): Uint8Array {
    return Buffer.concat(this.chunks.map(materialize), this.length);
  }

  /** The pieces as added, for writing without joining them first. */
  parts(): Piece[] {
    return this.chunks;
  }
}

function sized64(o: Out, text: string): void {
  const b = Buffer.from(text, 'utf8');
  o.u64(b.length).bytes(b);
}

function sized32(o: Out, text: string): void {
  const b = Buffer.from(text, 'utf8');
  o.u32(b.length).bytes(b);
}

function headersBody(c: TraceDatContent): Out {
  const o = new Out();
  o.cstr('header_page');
  sized64(o, c.headerPage);
  o.cstr('header_event');
  sized64(o, c.headerEvent);
  return o;
}

function ftraceBody(c: TraceDatContent): Out {
  const o = new Out().u32(c.ftraceFormats.length);
  for (const f of c.ftraceFormats) sized64(o, f);
  return o;
}

function eventsBody(c: TraceDatContent): Out {
  const o = new Out().u32(c.systems.length);
  for (const s of c.systems) {
    o.cstr(s.name).u32(s.formats.length);
    for (const f of s.formats) sized64(o, f);
  }
  return o;
}

function stringOption(o: Out, id: number, text: string): void {
  const b = Buffer.from(`${text}\0`, 'utf8');
  o.u16(id).u32(b.length).bytes(b);
}

/**
 * CPUSTAT option texts as trace-cmd stores them: `CPU: N` and that CPU's `stats` file, an
 * instance's preceded by a `Buffer: NAME` heading.
 */
export function cpuStatOptions(bufferName: string, stats: { cpu: number; text: string }[]): string[] {
  return [...(bufferName ? [`\nBuffer: ${bufferName}\n\n`] : []), ...stats.map((s) => `CPU: ${s.cpu}\n${s.text}`)];
}

/** The UNAME option for this machine, as trace-cmd writes it: `Linux HOST RELEASE MACHINE`. */
export function localUname(): string {
  return `${type()} ${hostname()} ${release()} ${machine()}`;
}

/** The options both versions carry as strings. */
function commonOptions(o: Out, c: TraceDatContent): void {
  stringOption(o, OPT.TRACECLOCK, c.traceClock.replace(/\n?$/, '\n'));
  if (c.uname) stringOption(o, OPT.UNAME, c.uname);
  if (c.version) stringOption(o, OPT.VERSION, c.version);
  for (const stat of c.cpuStats ?? []) stringOption(o, OPT.CPUSTAT, stat);
}

/** Write a trace.dat (mode 0600) piece by piece: CPU data is never joined, spooled pages are copied. */
export async function writeTraceDat(path: string, content: TraceDatContent, options: WriteOptions): Promise<number> {
  const parts = encodeParts(content, options, await codecFor(options.compression ?? 'zstd'));
  const file = await open(path, 'w', 0o600);
  try {
    let batch: Uint8Array[] = [];
    // writev takes at most IOV_MAX buffers a call on some systems.
    const flush = async () => {
      for (let i = 0; i < batch.length; i += 1024) await file.writev(batch.slice(i, i + 1024));
      batch = [];
    };
    for (const part of parts) {
      if (part instanceof Uint8Array) {
        batch.push(part);
        continue;
      }
      await flush();
      for (const chunk of fileChunks(part)) await file.write(chunk);
    }
    await flush();
  } finally {
    await file.close();
  }
  return parts.reduce((n, p) => n + pieceLength(p), 0);
}

/**
 * The same, synchronously, for a process about to die (crash dumps): no promise ever runs.
 * Compression must be 'none' or 'zlib', or 'zstd' once loaded (see loadedCodec).
 */
export function writeTraceDatSync(path: string, content: TraceDatContent, options: WriteOptions): number {
  const parts = encodeParts(content, options, loadedCodec(options.compression ?? 'none'));
  const fd = openSync(path, 'w', 0o600);
  try {
    for (const part of parts) {
      if (part instanceof Uint8Array) writeAll(fd, part);
      else for (const chunk of fileChunks(part)) writeAll(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return parts.reduce((n, p) => n + pieceLength(p), 0);
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done);
}

export async function encodeTraceDat(c: TraceDatContent, options: WriteOptions): Promise<Uint8Array> {
  return Buffer.concat(encodeParts(c, options, await codecFor(options.compression ?? 'zstd')).map(materialize));
}

function encodeParts(c: TraceDatContent, options: WriteOptions, codec: Codec | null): Piece[] {
  for (const b of c.buffers) {
    if (b.cpus.length !== c.cpuCount) throw new Error(`buffer '${b.name}' has ${b.cpus.length} CPUs, the file ${c.cpuCount}`);
    for (const pages of b.cpus) if (byteLength(pages) % c.pageSize) throw new Error(`buffer '${b.name}': CPU data is not whole ${c.pageSize}-byte pages`);
  }
  return options.version === 6 ? encodeV6(c).parts() : encodeV7(c, codec);
}

function opening(c: TraceDatContent, version: number): Out {
  return new Out().bytes(MAGIC).cstr(String(version)).bytes(Uint8Array.of(0, 8)).u32(c.pageSize);
}

function encodeV6(c: TraceDatContent): Out {
  const head = opening(c, 6);
  head.bytes(headersBody(c).done()).bytes(ftraceBody(c).done()).bytes(eventsBody(c).done());
  sized32(head, c.kallsyms);
  sized32(head, c.printk);
  sized64(head, c.cmdlines);
  head.u32(c.cpuCount);
  head.cstr('options  ');
  commonOptions(head, c);
  // BUFFER options point at each instance's own flyrecord table, placed after the top one.
  const extra = c.buffers.slice(1);
  const optionsAt = head.length;
  const bufferOptionsSize = extra.reduce((n, b) => n + 6 + 8 + Buffer.byteLength(b.name) + 1, 0);
  const table = (b: { clock: string }) => 10 + 16 * c.cpuCount + 8 + `[${b.clock}]`.length;
  let tablesAt = optionsAt + bufferOptionsSize + 2 + table(c.buffers[0]!);
  const tableOffsets: number[] = [];
  for (const b of extra) {
    tableOffsets.push(tablesAt);
    tablesAt += table(b);
  }
  let dataAt = Math.ceil(tablesAt / c.pageSize) * c.pageSize;
  const cpuOffsets = c.buffers.map((b) =>
    b.cpus.map((pages) => {
      const at = dataAt;
      dataAt += byteLength(pages);
      return at;
    }),
  );
  extra.forEach((b, i) => {
    const name = Buffer.from(`${b.name}\0`, 'utf8');
    head.u16(OPT.BUFFER).u32(8 + name.length).u64(tableOffsets[i]!).bytes(name);
  });
  head.u16(OPT.DONE);
  c.buffers.forEach((b, i) => {
    head.cstr('flyrecord');
    b.cpus.forEach((pages, cpu) => head.u64(cpuOffsets[i]![cpu]!).u64(byteLength(pages)));
    const clock = `[${b.clock}]`;
    head.u64(clock.length).str(clock);
  });
  head.align(c.pageSize);
  for (const b of c.buffers) for (const pages of b.cpus) for (const piece of pieces(pages)) head.bytes(piece);
  return head;
}

/** v7: a section header (16 bytes) and its body, compressed when a codec is given. */
function sectionBytes(id: number, stringId: number, body: Uint8Array, codec: Codec | null): Uint8Array {
  const o = new Out().u16(id).u16(codec ? 1 : 0).u32(stringId);
  if (!codec) return o.u64(body.length).bytes(body).done();
  const packed = codec.compress(body);
  return o.u64(8 + packed.length).u32(packed.length).u32(body.length).bytes(packed).done();
}

/** Trace data of one CPU in a v7 file: raw pages, or chunks of up to 10 pages compressed. */
function cpuBytes(data: CpuPages, pageSize: number, codec: Codec | null): CpuPages {
  const size = byteLength(data);
  if (!codec || size === 0) return data;
  const chunk = 10 * pageSize;
  const o = new Out().u32(Math.ceil(size / chunk));
  const compress = (part: Uint8Array) => {
    const packed = codec.compress(part);
    o.u32(packed.length).u32(part.length).bytes(packed);
  };
  if (!(data instanceof Uint8Array) && !Array.isArray(data)) {
    for (const part of fileChunks(data as FilePages, chunk)) compress(part);
  } else {
    const pages = data instanceof Uint8Array ? data : Buffer.concat(data as readonly Uint8Array[]);
    for (let at = 0; at < pages.length; at += chunk) compress(pages.subarray(at, Math.min(at + chunk, pages.length)));
  }
  return o.done();
}

function encodeV7(c: TraceDatContent, codec: Codec | null): Piece[] {
  const strings = new Out();
  const stringIds = new Map<string, number>();
  const stringId = (s: string) => {
    let id = stringIds.get(s);
    if (id === undefined) {
      id = strings.length;
      stringIds.set(s, id);
      strings.cstr(s);
    }
    return id;
  };
  const file = opening(c, 7);
  file.cstr(codec ? codec.name : 'none').cstr(codec ? codec.version : '');
  const firstOptionsAt = file.length;
  file.u64(0); // patched at the end
  const placed = new Map<number, number>();
  const place = (opt: number, id: number, name: string, body: Uint8Array) => {
    placed.set(opt, file.length);
    file.bytes(sectionBytes(id, stringId(name), body, codec));
  };
  place(OPT.HEADER_INFO, SECTION.HEADER_INFO, 'headers', headersBody(c).done());
  place(OPT.FTRACE_EVENTS, SECTION.FTRACE_EVENTS, 'ftrace events', ftraceBody(c).done());
  place(OPT.EVENT_FORMATS, SECTION.EVENT_FORMATS, 'events format', eventsBody(c).done());
  const kallsyms = new Out();
  sized32(kallsyms, c.kallsyms);
  place(OPT.KALLSYMS, SECTION.KALLSYMS, 'kallsyms', kallsyms.done());
  const printk = new Out();
  sized32(printk, c.printk);
  place(OPT.PRINTK, SECTION.PRINTK, 'printk', printk.done());
  const cmdlines = new Out();
  sized64(cmdlines, c.cmdlines);
  place(OPT.CMDLINES, SECTION.CMDLINES, 'command lines', cmdlines.done());

  // Trace data sections, one per buffer, page-aligned. Like trace-cmd, leave out an empty top
  // level when instances hold the data.
  const bufferOptions: Uint8Array[] = [];
  const empty = (b: TraceDatContent['buffers'][number]) => b.cpus.every((p) => byteLength(p) === 0);
  const buffers = c.buffers.length > 1 && empty(c.buffers[0]!) ? c.buffers.slice(1) : c.buffers;
  for (const b of buffers) {
    const cpus = b.cpus.map((pages) => cpuBytes(pages, c.pageSize, codec));
    const sizes = cpus.map(byteLength);
    const sectionAt = file.length;
    const headerEnd = sectionAt + 16;
    let end = Math.ceil(headerEnd / c.pageSize) * c.pageSize;
    const offsets = sizes.map((size) => {
      const at = end;
      end = Math.ceil((at + size) / c.pageSize) * c.pageSize;
      return at;
    });
    const last = cpus.length ? offsets[cpus.length - 1]! + sizes[cpus.length - 1]! : headerEnd;
    file.u16(SECTION.BUFFER_DATA).u16(codec ? 1 : 0).u32(stringId(`buffer flyrecord ${b.name}`)).u64(last - headerEnd);
    const opt = new Out().u64(sectionAt).cstr(b.name).cstr(b.clock).u32(c.pageSize).u32(cpus.length);
    cpus.forEach((data, cpu) => {
      file.align(c.pageSize);
      // Compressed data's recorded size leaves out its u32 chunk count, as trace-cmd writes it.
      const size = sizes[cpu]!;
      opt.u32(cpu).u64(offsets[cpu]!).u64(codec && size ? size - 4 : size);
      for (const piece of pieces(data)) file.bytes(piece);
    });
    bufferOptions.push(opt.done());
  }

  // One options section: where everything is, then DONE (no further options section).
  const optionsAt = file.length;
  const opts = new Out();
  for (const [opt, at] of placed) opts.u16(opt).u32(8).u64(at);
  opts.u16(OPT.CPUCOUNT).u32(4).u32(c.cpuCount);
  commonOptions(opts, c);
  for (const b of bufferOptions) opts.u16(OPT.BUFFER).u32(b.length).bytes(b);
  opts.u16(OPT.DONE).u32(8).u64(0);
  const optionsName = stringId('options');
  file.bytes(sectionBytes(SECTION.OPTIONS, optionsName, opts.done(), null));
  stringId('strings');
  file.bytes(sectionBytes(SECTION.STRINGS, stringIds.get('strings')!, strings.done(), null));

  file.patchU64(firstOptionsAt, optionsAt);
  return file.parts();
}

/** The content of a file read back, to write it again (another version or compression). */
export function contentOf(dat: TraceDat): TraceDatContent {
  const option = (id: number) => {
    const o = dat.options.find((x) => x.id === id);
    return o ? optionText(o.data) : undefined;
  };
  return {
    pageSize: dat.pageSize,
    headerPage: dat.headerPage,
    headerEvent: dat.headerEvent,
    ftraceFormats: dat.ftraceFormats,
    systems: dat.systems,
    kallsyms: dat.kallsyms,
    printk: dat.printk,
    cmdlines: dat.cmdlines,
    cpuCount: dat.cpuCount,
    buffers: dat.buffers.map((b) => ({ name: b.name, clock: b.clock, cpus: b.cpus.map((cpu) => cpuData(dat, b, cpu)) })),
    traceClock: option(OPT.TRACECLOCK) ?? `[${dat.buffers[0]?.clock ?? 'local'}]\n`,
    cpuStats: cpuStatTexts(dat),
    uname: option(OPT.UNAME),
    version: option(OPT.VERSION),
  };
}
