/**
 * Reading trace.dat, versions 6 and 7 (see docs/tracedat.md for the layout as trace-cmd 3.1.6
 * writes it). A file is read through a window: its metadata when opened, each CPU's pages a
 * window (or a compressed chunk) at a time as a reader walks them.
 */
import { codecFor, type Codec } from './compress.js';
import { Cursor, FileSource, type ByteSource } from './cursor.js';
import { MAGIC, OPT, SECTION, selectedClock } from './layout.js';

/** A string option's text (its NUL terminator dropped). */
export function optionText(data: Uint8Array): string {
  return Buffer.from(data).toString('utf8').replace(/\0+$/, '');
}

/** The CPUSTAT options' texts, in file order (an instance's `Buffer:` heading included). */
export function cpuStatTexts(dat: TraceDat): string[] {
  return dat.options.filter((o) => o.id === OPT.CPUSTAT).map((o) => optionText(o.data));
}

export interface TraceDatCpu {
  cpu: number;
  /** Byte offset of this CPU's data in the file. */
  offset: number;
  /** Bytes in the file (compressed size in v7 compressed files). */
  size: number;
}

export interface TraceDatBuffer {
  /** '' for the top level. */
  name: string;
  clock: string;
  pageSize: number;
  cpus: TraceDatCpu[];
}

export interface TraceDatOption {
  id: number;
  data: Uint8Array;
}

export interface TraceDat {
  file: string;
  version: number;
  littleEndian: boolean;
  longSize: number;
  pageSize: number;
  compression: string;
  headerPage: string;
  headerEvent: string;
  ftraceFormats: string[];
  systems: { name: string; formats: string[] }[];
  kallsyms: string;
  printk: string;
  cmdlines: string;
  cpuCount: number;
  options: TraceDatOption[];
  buffers: TraceDatBuffer[];
  /**
   * The page bytes of one CPU of one buffer, decompressed, in pieces of whole pages: a window of
   * the file, or one compressed chunk. Memory stays bounded by a piece, whatever the file's size.
   */
  cpuPieces(buffer: TraceDatBuffer, cpu: TraceDatCpu): Generator<CpuPiece>;
}

/** Whole pages of one CPU's data, and where they are. */
export interface CpuPiece {
  bytes: Uint8Array;
  /** Offset of bytes[0] in the CPU's (decompressed) data. */
  offset: number;
  /** Offset of bytes[0] in the file, or -1 when the pages were decompressed. */
  fileOffset: number;
  /** Bytes of the CPU's data as stored in the file (TraceDatCpu.size) read up to the end of this piece: progress. */
  stored: number;
}

/** The page bytes of one CPU of one buffer, decompressed, in one array (for rewriting a file). */
export function cpuData(dat: TraceDat, buffer: TraceDatBuffer, cpu: TraceDatCpu): Uint8Array {
  const pieces = [...dat.cpuPieces(buffer, cpu)].map((p) => p.bytes);
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes of uncompressed CPU data read at once (whole pages). */
const PIECE = 1 << 20;

const utf8 = new TextDecoder();

/** Open a trace.dat: its metadata is read now, its pages as they are walked. */
export async function readTraceDatFile(path: string): Promise<TraceDat> {
  return parseTraceDat(new FileSource(path), path);
}

export async function parseTraceDat(source: Uint8Array | ByteSource, file: string): Promise<TraceDat> {
  const c = new Cursor(source, file);
  c.section = 'file header';
  const magic = c.bytes(MAGIC.length);
  if (!magic.every((b, i) => b === MAGIC[i])) c.fail('not a trace.dat file (bad magic)', 0);
  const version = Number(c.cstring());
  if (version !== 6 && version !== 7) c.fail(`unsupported version ${version} (this reader knows 6 and 7)`, MAGIC.length);
  const endian = c.u8v();
  const little = endian === 0;
  const longSize = c.u8v();
  const rc = new Cursor(c.source, file, little, c.pos);
  rc.section = 'file header';
  const pageSize = rc.u32();
  if (pageSize < 4096 || pageSize & (pageSize - 1) || pageSize > 1 << 24) rc.fail(`page size ${pageSize} is not a power of two >= 4096`, rc.pos - 4);
  const dat: TraceDat = {
    file, version, littleEndian: little, longSize, pageSize, compression: 'none',
    headerPage: '', headerEvent: '', ftraceFormats: [], systems: [], kallsyms: '', printk: '', cmdlines: '',
    cpuCount: 0, options: [], buffers: [],
    cpuPieces: () => [][Symbol.iterator]() as Generator<CpuPiece>,
  };
  if (version === 6) readV6(rc, dat);
  else await readV7(rc, dat);
  return dat;
}

function readHeaders(c: Cursor, dat: TraceDat): void {
  c.section = 'header_page';
  c.tag('header_page');
  dat.headerPage = c.text(c.u64());
  c.section = 'header_event';
  c.tag('header_event');
  dat.headerEvent = c.text(c.u64());
}

function readFtraceFormats(c: Cursor, dat: TraceDat): void {
  c.section = 'ftrace formats';
  const n = c.u32();
  for (let i = 0; i < n; i++) dat.ftraceFormats.push(c.text(c.u64()));
}

function readEventFormats(c: Cursor, dat: TraceDat): void {
  c.section = 'event formats';
  const systems = c.u32();
  for (let s = 0; s < systems; s++) {
    const name = c.cstring();
    const count = c.u32();
    const formats: string[] = [];
    for (let i = 0; i < count; i++) formats.push(c.text(c.u64()));
    dat.systems.push({ name, formats });
  }
}

function readKallsyms(c: Cursor, dat: TraceDat): void {
  c.section = 'kallsyms';
  dat.kallsyms = c.text(c.u32());
}

function readPrintk(c: Cursor, dat: TraceDat): void {
  c.section = 'printk formats';
  dat.printk = c.text(c.u32());
}

function readCmdlines(c: Cursor, dat: TraceDat): void {
  c.section = 'cmdlines';
  dat.cmdlines = c.text(c.u64());
}

/** {u16 id, u32 size, data} until id 0; returns the DONE option's data (v7: next offset). */
function readOptions(c: Cursor, dat: TraceDat): Uint8Array | null {
  for (;;) {
    const id = c.u16();
    const size = c.u32();
    const data = c.bytes(size);
    if (id === OPT.DONE) return data;
    dat.options.push({ id, data });
  }
}

function readV6(c: Cursor, dat: TraceDat): void {
  readHeaders(c, dat);
  readFtraceFormats(c, dat);
  readEventFormats(c, dat);
  readKallsyms(c, dat);
  readPrintk(c, dat);
  readCmdlines(c, dat);
  c.section = 'cpu count';
  dat.cpuCount = c.u32();
  if (dat.cpuCount > 4096) c.fail(`${dat.cpuCount} CPUs is not plausible`, c.pos - 4);
  // Options follow ("options  \0"), then the data kind ("flyrecord\0" or "latency  \0").
  c.section = 'options';
  let kind = c.cstring();
  if (kind === 'options  ') {
    // v6 options end with a u16 id 0 and no size.
    for (;;) {
      const id = c.u16();
      if (id === OPT.DONE) break;
      const size = c.u32();
      dat.options.push({ id, data: c.bytes(size) });
    }
    kind = c.cstring();
  }
  if (kind !== 'flyrecord') c.fail(`unsupported data kind '${kind}' (only flyrecord is read)`);
  const clock = traceClock(dat.options);
  dat.buffers.push(readFlyrecord(c, dat, '', clock));
  for (const opt of dat.options.filter((o) => o.id === OPT.BUFFER)) {
    const oc = new Cursor(opt.data, c.file, c.little);
    oc.section = 'BUFFER option';
    const offset = oc.u64();
    const name = oc.cstring();
    const bc = c.at(offset, `buffer '${name}'`);
    bc.tag('flyrecord');
    dat.buffers.push(readFlyrecord(bc, dat, name, clock));
  }
  dat.cpuPieces = (buffer, cpu) => filePieces(c.source, buffer.pageSize || dat.pageSize, cpu);
}

/** Uncompressed CPU data read from the source a window of whole pages at a time. */
function* filePieces(source: ByteSource, pageSize: number, cpu: TraceDatCpu): Generator<CpuPiece> {
  const step = Math.max(pageSize, PIECE - (PIECE % pageSize));
  for (let at = 0; at < cpu.size; at += step) {
    const bytes = source.read(cpu.offset + at, Math.min(step, cpu.size - at));
    yield { bytes, offset: at, fileOffset: cpu.offset + at, stored: at + bytes.length };
  }
}

/** A v6 flyrecord table: {u64 offset, u64 size} per CPU, then (trace-cmd ≥ 2.x) the clock text. */
function readFlyrecord(c: Cursor, dat: TraceDat, name: string, clock: string): TraceDatBuffer {
  c.section = name ? `buffer '${name}' cpu table` : 'cpu table';
  const cpus: TraceDatCpu[] = [];
  for (let i = 0; i < dat.cpuCount; i++) {
    const offset = c.u64();
    const size = c.u64();
    if (offset + size > c.size) c.fail(`cpu${i} data [${offset}, +${size}) runs past the end of the file (${c.size})`, c.pos - 16);
    cpus.push({ cpu: i, offset, size });
  }
  // The clock this buffer was recorded with: u64 length + "[local] global ..." text.
  if (c.pos + 8 <= c.size) {
    const at = c.pos;
    const len = c.u64();
    if (len > 0 && len < 4096 && c.pos + len <= c.size) {
      clock = selectedClock(c.text(len), clock);
    } else {
      c.pos = at;
    }
  }
  return { name, clock, pageSize: dat.pageSize, cpus };
}

function traceClock(options: TraceDatOption[]): string {
  const opt = options.find((o) => o.id === OPT.TRACECLOCK);
  if (!opt) return 'local';
  return selectedClock(utf8.decode(opt.data));
}

async function readV7(c: Cursor, dat: TraceDat): Promise<void> {
  c.section = 'compression header';
  dat.compression = c.cstring();
  c.cstring(); // compressor version
  const codec = await codecFor(dat.compression).catch((err: Error) => c.fail(err.message));
  c.section = 'file header';
  let next = c.u64();
  const sections = new Map<number, number>();
  const seen = new Set<number>();
  while (next !== 0) {
    if (seen.has(next)) c.fail(`options sections loop back to offset ${next}`);
    seen.add(next);
    const body = section(c, codec, next, SECTION.OPTIONS, 'options');
    const done = readOptions(body, dat);
    next = done && done.length >= 8 ? Number(new DataView(done.buffer, done.byteOffset, 8).getBigUint64(0, c.little)) : 0;
  }
  for (const opt of dat.options) {
    if (opt.id >= OPT.HEADER_INFO && opt.id <= OPT.CMDLINES) {
      if (opt.data.length < 8) c.fail(`option ${opt.id} is too short`);
      sections.set(opt.id, Number(new DataView(opt.data.buffer, opt.data.byteOffset, 8).getBigUint64(0, c.little)));
    }
    if (opt.id === OPT.CPUCOUNT && opt.data.length >= 4) dat.cpuCount = new DataView(opt.data.buffer, opt.data.byteOffset, 4).getUint32(0, c.little);
  }
  const read = (opt: number, id: number, name: string, fn: (b: Cursor, d: TraceDat) => void) => {
    const at = sections.get(opt);
    if (at !== undefined) fn(section(c, codec, at, id, name), dat);
  };
  read(OPT.HEADER_INFO, SECTION.HEADER_INFO, 'headers', readHeaders);
  read(OPT.FTRACE_EVENTS, SECTION.FTRACE_EVENTS, 'ftrace formats', readFtraceFormats);
  read(OPT.EVENT_FORMATS, SECTION.EVENT_FORMATS, 'event formats', readEventFormats);
  read(OPT.KALLSYMS, SECTION.KALLSYMS, 'kallsyms', readKallsyms);
  read(OPT.PRINTK, SECTION.PRINTK, 'printk formats', readPrintk);
  read(OPT.CMDLINES, SECTION.CMDLINES, 'cmdlines', readCmdlines);
  for (const opt of dat.options.filter((o) => o.id === OPT.BUFFER)) {
    const b = new Cursor(opt.data, c.file, c.little);
    b.section = 'BUFFER option';
    b.u64(); // the flyrecord section header's offset; the CPU offsets below point into it
    const name = b.cstring();
    const clock = b.cstring();
    const pageSize = b.u32();
    const count = b.u32();
    if (count > 4096) b.fail(`${count} CPUs is not plausible`);
    const cpus: TraceDatCpu[] = [];
    for (let i = 0; i < count; i++) {
      const cpu = b.u32();
      const offset = b.u64();
      const size = b.u64();
      if (offset + size > c.size) b.fail(`cpu${cpu} data [${offset}, +${size}) runs past the end of the file`);
      cpus.push({ cpu, offset, size });
    }
    dat.buffers.push({ name, clock, pageSize, cpus });
  }
  dat.cpuPieces = (buffer, cpu) => {
    if (!codec) return filePieces(c.source, buffer.pageSize || dat.pageSize, cpu);
    return chunks(c.at(cpu.offset, `buffer '${buffer.name}' cpu${cpu.cpu} data`), codec, cpu.size);
  };
}

/** Read a section header at `at` and return a cursor over its (decompressed) body. */
function section(c: Cursor, codec: Codec | null, at: number, id: number, name: string): Cursor {
  const h = c.at(at, `${name} section header`);
  const got = h.u16();
  if (got !== id) h.fail(`expected section ${id} (${name}), found ${got}`, at);
  const flags = h.u16();
  h.u32(); // string id
  const size = h.u64();
  const start = h.pos;
  h.need(size);
  if (flags & 1) {
    if (!codec) return h.fail('compressed section in a file without compression');
    const body = c.slice(start, size, name);
    const compressed = body.u32();
    const plain = body.u32();
    const data = decompress(body, codec, body.bytes(compressed), plain);
    const out = new Cursor(data, c.file, c.little, 0, start);
    out.section = `${name} (decompressed)`;
    return out;
  }
  return c.slice(start, size, name);
}

function decompress(c: Cursor, codec: Codec, data: Uint8Array, size: number): Uint8Array {
  if (size > 1 << 30) c.fail(`a chunk claims ${size} bytes uncompressed`);
  let out: Uint8Array;
  try {
    out = codec.decompress(data, size);
  } catch (err) {
    c.fail(`${codec.name} data does not decompress (${(err as Error).message})`);
  }
  if (out.length !== size) c.fail(`decompressed to ${out.length} bytes, expected ${size}`);
  // A plain Uint8Array view whatever the codec returned (zlib gives a Buffer): one shape for the JIT.
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * v7 compressed CPU data: u32 chunk count, then {u32 compressed, u32 uncompressed, data}; the
 * size recorded in the BUFFER option leaves out the count. One chunk decompressed at a time.
 */
function* chunks(c: Cursor, codec: Codec, size: number): Generator<CpuPiece> {
  const count = c.u32();
  const start = c.pos;
  const end = c.pos + size;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const compressed = c.u32();
    const plain = c.u32();
    if (c.pos + compressed > end) c.fail(`chunk ${i} runs past this CPU's data`);
    const bytes = decompress(c, codec, c.bytes(compressed), plain);
    yield { bytes, offset, fileOffset: -1, stored: c.pos - start };
    offset += bytes.length;
  }
}
