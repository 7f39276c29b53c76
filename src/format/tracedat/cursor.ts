/**
 * Bounds-checked reading of a trace.dat image. Every read names the section it belongs to, so a
 * truncated or corrupt file fails with one message: file, section, byte offset.
 */

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

export class Cursor {
  readonly dv: DataView;
  pos: number;
  section = 'file header';

  constructor(
    readonly u8: Uint8Array,
    readonly file: string,
    readonly little = true,
    pos = 0,
    /** Offset of u8[0] in the file, for messages about decompressed sections. */
    readonly base = 0,
  ) {
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    this.pos = pos;
  }

  fail(message: string, at = this.pos): never {
    throw new TraceDatError(this.file, this.section, this.base + at, message);
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.u8.length) this.fail(`needs ${n} bytes, ${Math.max(0, this.u8.length - this.pos)} left (truncated?)`);
  }

  u8v(): number {
    this.need(1);
    return this.u8[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, this.little);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, this.little);
    this.pos += 4;
    return v;
  }

  /** A u64 that must fit a JS number (sizes and offsets in a file). */
  u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, this.little);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`value ${v} is too large`);
    this.pos += 8;
    return Number(v);
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.u8.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  text(n: number): string {
    return utf8.decode(this.bytes(n));
  }

  /** A NUL-terminated string. */
  cstring(): string {
    const end = this.u8.indexOf(0, this.pos);
    if (end < 0) this.fail('string runs past the end of the file');
    const s = utf8.decode(this.u8.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** Expect the exact bytes of `tag` followed by NUL. */
  tag(tag: string): void {
    const at = this.pos;
    const got = this.cstring();
    if (got !== tag) this.fail(`expected '${tag}', found '${got.slice(0, 32)}'`, at);
  }

  seek(pos: number): void {
    if (pos < 0 || pos > this.u8.length) this.fail(`offset ${pos} is outside the file (${this.u8.length} bytes)`);
    this.pos = pos;
  }
}
