/**
 * /proc/kallsyms text as a sorted address table, for %pS / %ps. A lookup finds the nearest
 * symbol at or below an address, as libtraceevent's find_func does.
 */
import type { SymbolTable } from './kformat.js';

export class Kallsyms implements SymbolTable {
  private readonly addrs: bigint[] = [];
  private readonly names: string[] = [];

  constructor(text: string) {
    const rows: [bigint, string][] = [];
    for (const line of text.split('\n')) {
      const m = /^([0-9a-fA-F]+) (\S) (\S+)/.exec(line);
      if (!m) continue;
      const addr = BigInt('0x' + m[1]);
      if (addr === 0n) continue;
      rows.push([addr, m[3]!]);
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
