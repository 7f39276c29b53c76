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
  private readonly addrs: bigint[] = [];
  private readonly names: string[] = [];
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

  constructor(text: string) {
    const rows: [bigint, string][] = [];
    for (const line of text.split('\n')) {
      const m = /^([0-9a-fA-F]+) (\S) (\S+)(?:\s+\[(\S+)\])?/.exec(line);
      if (!m) continue;
      const addr = BigInt('0x' + m[1]);
      if (addr === 0n) continue;
      rows.push([addr, m[3]!]);
      if (m[4]) this.modules.set(m[3]!, m[4]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [a, n] of rows) {
      this.addrs.push(a);
      this.names.push(n);
    }
  }

  get size(): number {
    return this.addrs.length;
  }

  /** The module a function belongs to, per kallsyms' `[mod]` column; undefined when built in. */
  module(name: string): string | undefined {
    return this.modules.get(name);
  }

  lookup(addr: bigint): { name: string; offset: bigint } | null {
    const a = this.addrs;
    if (a.length === 0 || addr < a[0]!) return null;
    let lo = 0;
    let hi = a.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    return { name: this.names[lo]!, offset: addr - a[lo]! };
  }
}
