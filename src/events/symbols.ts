/**
 * /proc/kallsyms or System.map text as a sorted address table, for %pS / %ps and for the kmem
 * analyzer's legacy call sites. A lookup finds the nearest symbol at or below an address, as
 * libtraceevent's find_func does. Module lines (`ADDR t NAME\t[mod]`) say which module a
 * function is in.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { SymbolTable } from './kformat.js';

export class Kallsyms implements SymbolTable {
  private readonly text: string;
  private parsed = false;
  /** Sorted addresses as two 32-bit halves, and where each symbol's name starts in the text. */
  private his = new Uint32Array(0);
  private los = new Uint32Array(0);
  private starts = new Int32Array(0);
  private count = 0;
  /** The module of each name a lookup returned (`[mod]` column), '' when built in. */
  private readonly modules = new Map<string, string>();

  /** Read a kallsyms or System.map file, plain or gzip'd; a clear error if it is missing or has no symbols. */
  static load(path: string): Kallsyms {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read symbol file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const table = new Kallsyms((data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data).toString('latin1'));
    if (table.size === 0) throw new Error(`${path} has no symbols (expected System.map or /proc/kallsyms lines)`);
    return table;
  }

  /** The table is made when first asked: a report of events without %pS never pays for it. */
  constructor(text: string) {
    this.text = text;
  }

  /**
   * `ADDR T NAME [\t[mod]]` lines (the address in hex, up to 16 digits; others are skipped),
   * scanned as bytes: addresses into typed arrays, names left in the text until a lookup
   * returns one (a report resolves a few hundred call sites out of 100,000+ symbols).
   */
  private parse(): void {
    if (this.parsed) return;
    this.parsed = true;
    const b = Buffer.from(this.text, 'latin1');
    const n = b.length;
    let his = new Uint32Array(1 << 12);
    let los = new Uint32Array(1 << 12);
    let starts = new Int32Array(1 << 12);
    let count = 0;
    let sorted = true;
    for (let at = 0; at < n;) {
      let hi = 0;
      let lo = 0;
      let i = at;
      for (;;) {
        const d = hexDigit(b[i]!);
        if (d < 0 || i - at === 16) break;
        hi = ((hi << 4) | (lo >>> 28)) >>> 0;
        lo = ((lo << 4) | d) >>> 0;
        i++;
      }
      let end = b.indexOf(10, i);
      if (end < 0) end = n;
      // ` T NAME`: one type letter between single spaces, then the name.
      if (i > at && b[i] === 32 && b[i + 1] !== 32 && b[i + 2] === 32 && i + 3 < end && !isSpace(b[i + 3]!) && (hi | lo) !== 0) {
        if (count === his.length) {
          his = grown(his, new Uint32Array(count * 2));
          los = grown(los, new Uint32Array(count * 2));
          starts = grown(starts, new Int32Array(count * 2));
        }
        if (count && (hi < his[count - 1]! || (hi === his[count - 1]! && lo < los[count - 1]!))) sorted = false;
        his[count] = hi;
        los[count] = lo;
        starts[count] = i + 3;
        count++;
      }
      at = end + 1;
    }
    if (!sorted) {
      // Stable by address, so equal addresses keep their order (the last one wins a lookup).
      const order = Array.from({ length: count }, (_, k) => k).sort((x, y) => his[x]! - his[y]! || los[x]! - los[y]! || x - y);
      his = Uint32Array.from(order, (k) => his[k]!);
      los = Uint32Array.from(order, (k) => los[k]!);
      starts = Int32Array.from(order, (k) => starts[k]!);
    }
    this.his = his;
    this.los = los;
    this.starts = starts;
    this.count = count;
  }

  get size(): number {
    this.parse();
    return this.count;
  }

  /** The module a function belongs to, per kallsyms' `[mod]` column; undefined when built in. */
  module(name: string): string | undefined {
    return this.modules.get(name) || undefined;
  }

  lookup(addr: bigint): { name: string; offset: bigint } | null {
    this.parse();
    const a = BigInt.asUintN(64, addr);
    const hi = Number(a >> 32n);
    const lo = Number(a & 0xffffffffn);
    const { his, los } = this;
    const below = (i: number) => his[i]! < hi || (his[i] === hi && los[i]! <= lo);
    if (this.count === 0 || !below(0)) return null;
    let first = 0;
    let last = this.count - 1;
    while (first < last) {
      const mid = (first + last + 1) >> 1;
      if (below(mid)) first = mid;
      else last = mid - 1;
    }
    return { name: this.name(first), offset: a - ((BigInt(his[first]!) << 32n) | BigInt(los[first]!)) };
  }

  /** Symbol k's name, read from its line (and its module noted). */
  private name(k: number): string {
    const text = this.text;
    const start = this.starts[k]!;
    let stop = start;
    while (stop < text.length && !isSpace(text.charCodeAt(stop)) && text.charCodeAt(stop) !== 10) stop++;
    const name = text.slice(start, stop);
    if (!this.modules.has(name)) {
      let end = text.indexOf('\n', stop);
      if (end < 0) end = text.length;
      this.modules.set(name, /^\s+\[(\S+)\]/.exec(text.slice(stop, end))?.[1] ?? '');
    }
    return name;
  }
}

function grown<T extends Uint32Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const isSpace = (c: number) => c === 32 || c === 9 || c === 13;
