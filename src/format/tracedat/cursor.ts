/**
 * Bounds-checked reading of a trace.dat, from memory or from a file read a window at a time
 * (so a file's size never decides how much memory reading it takes). Every read names the
 * section it belongs to, so a truncated or corrupt file fails with one message: file, section,
 * byte offset.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export class TraceDatError extends Error {
  readonly file: string;
  readonly section: string;
  readonly offset: number;

  constructor(file: string, section: string, offset: number, message: string) {
    super(`${file}: ${section} at byte ${offset}: ${message}`);
    this.name = 'TraceDatError';
    this.file = file;
    this.section = section;
    this.offset = offset;
  }
}

const utf8 = new TextDecoder('utf-8');

/** Where a trace.dat's bytes come from. */
export interface ByteSource {
  readonly size: number;
  /**
   * Bytes [offset, offset + length), fewer only at the end of the source. A file source hands
   * out a new buffer each time, so earlier results stay valid.
   */
  read(offset: number, length: number): Uint8Array;
}

export function memorySource(u8: Uint8Array): ByteSource {
  return { size: u8.length, read: (offset, length) => u8.subarray(offset, offset + length) };
}

/**
 * A file read with positioned reads, nothing of it kept here. Each read opens the file anew, so
 * a TraceDat that is dropped half read holds no descriptor.
 */
export class FileSource implements ByteSource {
  readonly size: number;

  constructor(readonly path: string) {
    this.size = statSync(path).size;
  }

  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = new Uint8Array(n);
    let got = 0;
    const fd = openSync(this.path, 'r');
    try {
      while (got < n) {
        const k = readSync(fd, out, got, n - got, offset + got);
        if (k === 0) break;
        got += k;
      }
    } finally {
      closeSync(fd);
    }
    return got === n ? out : out.subarray(0, got);
  }
}

/** How much of a file source a cursor reads at once. */
const WINDOW = 1 << 20;

export class Cursor {
  /** Absolute position in the source. */
  pos: number;
  section = 'file header';
  readonly source: ByteSource;
  private win: Uint8Array;
  private dv: DataView;
  /** Source offset of win[0]. */
  private winStart = 0;

  constructor(
    source: Uint8Array | ByteSource,
    readonly file: string,
    readonly little = true,
    pos = 0,
    /** Offset of the source's first byte in the file, for messages about decompressed sections. */
    readonly base = 0,
  ) {
    if (source instanceof Uint8Array) {
      this.source = memorySource(source);
      this.win = source;
    } else {
      this.source = source;
      this.win = new Uint8Array(0);
    }
    this.dv = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
    this.pos = pos;
  }

  get size(): number {
    return this.source.size;
  }

  /** Another cursor on the same source, at `pos`. */
  at(pos: number, section: string): Cursor {
    const c = new Cursor(this.source, this.file, this.little, 0, this.base);
    c.section = section;
    c.seek(pos);
    return c;
  }

  /** A cursor over `length` bytes at `pos` read into memory (a section's body). */
  slice(pos: number, length: number, section: string): Cursor {
    const c = new Cursor(this.source.read(pos, length), this.file, this.little, 0, this.base + pos);
    c.section = section;
    return c;
  }

  fail(message: string, at = this.pos): never {
    throw new TraceDatError(this.file, this.section, this.base + at, message);
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.size) this.fail(`needs ${n} bytes, ${Math.max(0, this.size - this.pos)} left (truncated?)`);
    if (this.pos < this.winStart || this.pos + n > this.winStart + this.win.length) this.load(this.pos, Math.max(n, WINDOW));
  }

  private load(at: number, length: number): void {
    this.win = this.source.read(at, length);
    this.winStart = at;
    this.dv = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
  }

  u8v(): number {
    this.need(1);
    return this.win[this.pos++ - this.winStart]!;
  }

  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos - this.winStart, this.little);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos - this.winStart, this.little);
    this.pos += 4;
    return v;
  }

  /** A u64 that must fit a JS number (sizes and offsets in a file). */
  u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos - this.winStart, this.little);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`value ${v} is too large`);
    this.pos += 8;
    return Number(v);
  }

  /** `n` bytes; a view that stays valid (a file cursor never overwrites a window it handed out). */
  bytes(n: number): Uint8Array {
    this.need(n);
    const at = this.pos - this.winStart;
    this.pos += n;
    return this.win.subarray(at, at + n);
  }

  text(n: number): string {
    return utf8.decode(this.bytes(n));
  }

  /** A NUL-terminated string. */
  cstring(): string {
    let length = 256;
    for (;;) {
      this.need(Math.min(length, this.size - this.pos));
      const at = this.pos - this.winStart;
      const end = this.win.indexOf(0, at);
      if (end >= 0) {
        const s = utf8.decode(this.win.subarray(at, end));
        this.pos += end - at + 1;
        return s;
      }
      if (this.winStart + this.win.length >= this.size) this.fail('string runs past the end of the file');
      length = Math.max(length, this.win.length - at) * 2;
      this.load(this.pos, length);
    }
  }

  /** Expect the exact bytes of `tag` followed by NUL. */
  tag(tag: string): void {
    const at = this.pos;
    const got = this.cstring();
    if (got !== tag) this.fail(`expected '${tag}', found '${got.slice(0, 32)}'`, at);
  }

  seek(pos: number): void {
    if (pos < 0 || pos > this.size) this.fail(`offset ${pos} is outside the file (${this.size} bytes)`);
    this.pos = pos;
  }
}
