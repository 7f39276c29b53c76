/**
 * Addresses (non-negative integers below 2^53) to values, by open addressing with linear
 * probing and backward-shift deletion: a delete leaves no tombstone, so the cost of an
 * operation depends only on how full the table is, never on how often keys came and went.
 *
 * Why not a JS Map: V8's Map keeps a deleted entry in its bucket's chain until the next
 * rehash. A slab hands the same address out again right after it is freed, so the chain of a
 * hot address grows by one dead entry per alloc/free pair; on a real capture that made each
 * lookup walk thousands of entries (155 k events/s instead of millions).
 *
 *   set(0x…40): slot h(0x…40)=5 → keys[5]
 *   set(0x…80): h=5 taken → keys[6]
 *   delete(0x…40): keys[5] emptied; keys[6] moves back to 5 (its home is 5), so a lookup of
 *   0x…80 still stops at the first empty slot after its home.
 */
const EMPTY = -1;

export class AddressMap<T> {
  private keys: Float64Array;
  private values: (T | undefined)[];
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.keys = new Float64Array(n).fill(EMPTY);
    this.values = new Array<T | undefined>(n).fill(undefined);
    this.mask = n - 1;
  }

  /** The home slot: the address's halves mixed (aligned addresses differ only in middle bits). */
  private home(key: number): number {
    const hi = (key / 4294967296) | 0;
    let h = Math.imul((key >>> 0) ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 13;
    return h & this.mask;
  }

  private slot(key: number): number {
    const keys = this.keys;
    let i = this.home(key);
    for (;;) {
      const k = keys[i]!;
      if (k === key || k === EMPTY) return i;
      i = (i + 1) & this.mask;
    }
  }

  get(key: number): T | undefined {
    const i = this.slot(key);
    return this.keys[i] === key ? this.values[i] : undefined;
  }

  set(key: number, value: T): void {
    let i = this.slot(key);
    if (this.keys[i] !== key) {
      if ((this.size + 1) * 2 > this.keys.length) {
        this.grow();
        i = this.slot(key);
      }
      this.keys[i] = key;
      this.size++;
    }
    this.values[i] = value;
  }

  /** Remove `key`; its value, or undefined if it was absent. */
  delete(key: number): T | undefined {
    const keys = this.keys;
    const mask = this.mask;
    let i = this.slot(key);
    if (keys[i] !== key) return undefined;
    const value = this.values[i];
    this.size--;
    // Backward shift: move each later entry of the run into the hole if its home allows.
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.home(keys[j]!);
      // The entry at j may fill hole i unless its home lies cyclically in (i, j].
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      keys[i] = keys[j]!;
      this.values[i] = this.values[j];
      i = j;
    }
    keys[i] = EMPTY;
    this.values[i] = undefined;
    return value;
  }

  /** Slots in the table (twice the most entries it held at once, rounded up to a power of two). */
  get capacity(): number {
    return this.keys.length;
  }

  /** The longest run of occupied slots: what a lookup may have to walk at worst. */
  longestRun(): number {
    let longest = 0;
    let run = 0;
    // Twice around, so a run that wraps past the end is counted whole.
    for (let i = 0; i < this.keys.length * 2; i++) {
      run = this.keys[i & this.mask] === EMPTY ? 0 : run + 1;
      if (run > longest) longest = run;
    }
    return Math.min(longest, this.size);
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const n = oldKeys.length * 2;
    this.keys = new Float64Array(n).fill(EMPTY);
    this.values = new Array<T | undefined>(n).fill(undefined);
    this.mask = n - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i]!;
      if (k === EMPTY) continue;
      const at = this.slot(k);
      this.keys[at] = k;
      this.values[at] = oldValues[i];
    }
  }
}
