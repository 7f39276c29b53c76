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
  private text: string | null;
  /** Sorted addresses as two 32-bit halves, and the symbol of each. Made on first use. */
  private his = new Uint32Array(0);
  private los = new Uint32Array(0);
  private names: string[] = [];
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

  /** The table is parsed when first asked: a report of events without %pS never pays for it. */
  constructor(text: string) {
    this.text = text;
  }

  /** `ADDR T NAME [\t[mod]]` lines, the address in hex (up to 16 digits); others are skipped. */
  private parse(): void {
    const text = this.text;
    if (text === null) return;
    this.text = null;
    const his: number[] = [];
    const los: number[] = [];
    const names: string[] = [];
    let sorted = true;
    const length = text.length;
    for (let at = 0; at < length;) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = length;
      // The address: hex digits up to a space, the last 8 of them the low half.
      let i = at;
      while (i < end && hexDigit(text.charCodeAt(i)) >= 0) i++;
      const split = Math.max(at, i - 8);
      let hi = 0;
      let lo = 0;
      for (let k = at; k < split; k++) hi = hi * 16 + hexDigit(text.charCodeAt(k));
      for (let k = split; k < i; k++) lo = lo * 16 + hexDigit(text.charCodeAt(k));
      const digits = i - at;
      at = end + 1;
      // ` T NAME`: one type letter between single spaces, then the name up to white space.
      if (digits === 0 || digits > 16 || text.charCodeAt(i) !== 32 || text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 2) !== 32) continue;
      if (hi === 0 && lo === 0) continue;
      let stop = i + 3;
      while (stop < end && !isSpace(text.charCodeAt(stop))) stop++;
      if (stop === i + 3) continue;
      const name = text.slice(i + 3, stop);
      if (stop < end && text.charCodeAt(end - 1) === 93 /* ] */) {
        const mod = /^\s+\[(\S+)\]/.exec(text.slice(stop, end));
        if (mod) this.modules.set(name, mod[1]!);
      }
      const n = his.length;
      if (n && (hi < his[n - 1]! || (hi === his[n - 1]! && lo < los[n - 1]!))) sorted = false;
      his.push(hi);
      los.push(lo);
      names.push(name);
    }
    const order = Array.from(names, (_, i) => i);
    if (!sorted) order.sort((a, b) => his[a]! - his[b]! || los[a]! - los[b]!);
    this.his = Uint32Array.from(order, (i) => his[i]!);
    this.los = Uint32Array.from(order, (i) => los[i]!);
    this.names = order.map((i) => names[i]!);
  }

  get size(): number {
    this.parse();
    return this.names.length;
  }

  /** The module a function belongs to, per kallsyms' `[mod]` column; undefined when built in. */
  module(name: string): string | undefined {
    this.parse();
    return this.modules.get(name);
  }

  lookup(addr: bigint): { name: string; offset: bigint } | null {
    this.parse();
    const a = BigInt.asUintN(64, addr);
    const hi = Number(a >> 32n);
    const lo = Number(a & 0xffffffffn);
    const { his, los } = this;
    const below = (i: number) => his[i]! < hi || (his[i] === hi && los[i]! <= lo);
    if (his.length === 0 || !below(0)) return null;
    let first = 0;
    let last = his.length - 1;
    while (first < last) {
      const mid = (first + last + 1) >> 1;
      if (below(mid)) first = mid;
      else last = mid - 1;
    }
    return { name: this.names[first]!, offset: a - ((BigInt(his[first]!) << 32n) | BigInt(los[first]!)) };
  }
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const isSpace = (c: number) => c === 32 || c === 9 || c === 13;
