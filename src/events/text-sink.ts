/**
 * Output text built as UTF-8 bytes in a growing buffer, as trace-cmd builds it with printf:
 * numbers written digit by digit, hex nibble by nibble, strings of a record copied byte for byte,
 * fixed text copied from bytes encoded once. A report of millions of lines then makes no string
 * per field and none per line, and nothing is encoded at write time.
 */
const HEX = new TextEncoder().encode('0123456789abcdef');
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** Fixed text encoded once, for ByteSink.bytes. */
export function encode(text: string): Uint8Array {
  return encoder.encode(text);
}

export class ByteSink {
  buf: Uint8Array;
  pos = 0;

  constructor(size = 1 << 16) {
    this.buf = new Uint8Array(size);
  }

  /** Make room for `n` more bytes. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  byte(b: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = b;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.room(n);
    const buf = this.buf;
    let pos = this.pos;
    if (n > 12) buf.set(b, pos); // measured: set() beats a byte loop from about 12 bytes (the name and task columns)
    else for (let i = 0; i < n; i++) buf[pos + i] = b[i]!;
    this.pos = pos + n;
  }

  /** Bytes of another buffer up to the first NUL or `end` (a C string inside a record). */
  cString(src: Uint8Array, start: number, end: number): void {
    let stop = start;
    while (stop < end && src[stop] !== 0) stop++;
    const n = stop - start;
    if (this.pos + n > this.buf.length) this.room(n);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = start; i < stop; i++) buf[pos++] = src[i]!;
    this.pos = pos;
  }

  /** Any JS string, as UTF-8. */
  text(s: string): void {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.room(n);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = pos;
        this.bytes(encoder.encode(s.slice(i)));
        return;
      }
      buf[pos++] = c;
    }
    this.pos = pos;
  }

  /** A non-negative safe integer in decimal. */
  uint(v: number): void {
    if (v < 10) {
      this.byte(48 + v);
      return;
    }
    if (v > 0x7fffffff) {
      // Beyond 31 bits: the high digits by float division, then the rest as below.
      const high = Math.floor(v / 1e9);
      this.uint(high);
      this.zeroPadded(v - high * 1e9, 9);
      return;
    }
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    this.room(digits);
    const buf = this.buf;
    let at = this.pos + digits;
    this.pos = at;
    while (v >= 10) {
      const q = (v / 10) | 0;
      buf[--at] = 48 + (v - q * 10);
      v = q;
    }
    buf[--at] = 48 + v;
  }

  /** A safe integer in decimal, with its sign. */
  int(v: number): void {
    if (v < 0) {
      this.byte(45);
      v = -v;
    }
    this.uint(v);
  }

  /** A decimal number below 10^9 in exactly `width` digits, zeros in front (the fraction of a timestamp). */
  zeroPadded(v: number, width: number): void {
    this.room(width);
    const buf = this.buf;
    let at = this.pos + width;
    this.pos = at;
    for (let i = 0; i < width; i++) {
      const q = (v / 10) | 0;
      buf[--at] = 48 + (v - q * 10);
      v = q;
    }
  }

  /** Lowercase hex of the unsigned 64-bit value hi:lo, no leading zeros. */
  hex(hi: number, lo: number): void {
    this.room(16);
    const buf = this.buf;
    let pos = this.pos;
    if (hi !== 0) {
      let shift = 28;
      while ((hi >>> shift) === 0) shift -= 4;
      for (; shift >= 0; shift -= 4) buf[pos++] = HEX[(hi >>> shift) & 15]!;
      for (let s = 28; s >= 0; s -= 4) buf[pos++] = HEX[(lo >>> s) & 15]!;
    } else {
      let shift = 28;
      while (shift > 0 && (lo >>> shift) === 0) shift -= 4;
      for (; shift >= 0; shift -= 4) buf[pos++] = HEX[(lo >>> shift) & 15]!;
    }
    this.pos = pos;
  }

  /** A non-negative safe integer in hex. */
  hexNumber(v: number): void {
    const hi = Math.floor(v / 4294967296);
    this.hex(hi, v - hi * 4294967296);
  }

  /**
   * Pad what was written since `mark` to `width` bytes (C's printf counts bytes): spaces after
   * it when `left`, before it otherwise.
   */
  padFrom(mark: number, width: number, left: boolean): void {
    const n = this.pos - mark;
    if (n >= width) return;
    const fill = width - n;
    this.room(fill);
    const buf = this.buf;
    if (!left) buf.copyWithin(mark + fill, mark, this.pos);
    buf.fill(32, left ? this.pos : mark, left ? this.pos + fill : mark + fill);
    this.pos += fill;
  }

  /** The text written since `mark`, decoded. */
  decode(mark = 0): string {
    return decoder.decode(this.buf.subarray(mark, this.pos));
  }

  /** The bytes written so far, as a view of the sink's buffer. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /**
   * Start again from empty: on a new buffer while a view() handed out is still in use
   * (queued in a stream), on the same one once it is not (written, copied).
   */
  restart(viewStillUsed: boolean): void {
    if (viewStillUsed) this.buf = new Uint8Array(this.buf.length); // plain Uint8Array always: one shape for the JIT
    this.pos = 0;
  }

  /** The bytes written so far, handed over; the sink starts again on a new buffer. */
  take(): Uint8Array {
    const out = this.view();
    this.restart(true);
    return out;
  }
}
