/**
 * The table a hist trigger aggregates into, shared by every thread (the kernel's tracing_map):
 * open addressing in a SharedArrayBuffer, twice as many slots as the trigger's size. A thread
 * claims an empty slot with compareExchange, writes the key, then marks it ready; sums are
 * Atomics.add on 64-bit words. At `size` entries, new keys are dropped and counted (Dropped).
 * Reading (the `hist` file) is done on the main thread from the same memory.
 *
 * Slot: state (0 empty, 1 being claimed, 2 ready), hash, key bytes, one i64 per value
 * (hitcount first), then one i64 per variable and a word of set-flags: variables (`ts0=…`) are
 * the last value assigned for that key, read by other hist triggers through lookup().
 */
import type { HistField, HistSpec } from '../events/hist.js';

const STRING_KEY = 64;
const SAVED_STRING = 32;
const H_ENTRIES = 0;
const H_PAUSED = 1;
// Bytes: i32 entries and paused; i64 hits (2), drops (3), the snapshot trackers' global max
// (4), its set-flag (5) and the slot that set it (6).
const HEADER = 56;

export interface HistReadEntry {
  keys: (bigint | string)[];
  vals: bigint[];
  /** Per onmax/onchange tracker: its value (null before the first) and the fields saved with it. */
  tracked: { value: bigint | null; saved: (bigint | string)[] }[];
  slot: number;
}

export class HistMap {
  readonly sab: SharedArrayBuffer;
  readonly slots: number;
  readonly size: number;
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;
  private readonly u8: Uint8Array;
  private readonly keyBytes: number;
  private readonly slotBytes: number;
  private readonly keyWidths: number[];
  private readonly nvals: number;
  private readonly nvars: number;
  /** Byte offset of each tracker's area within a slot's tail, and the saved fields' widths. */
  private readonly trackers: { at: number; widths: number[] }[] = [];
  private readonly trackBytes: number;
  private readonly scratch: Uint8Array;
  private readonly scratchView: DataView;

  constructor(spec: HistSpec, sab?: SharedArrayBuffer) {
    this.size = spec.size;
    this.slots = spec.size * 2;
    this.keyWidths = spec.keys.map((k) => (k.string ? STRING_KEY : 8));
    this.keyBytes = this.keyWidths.reduce((a, b) => a + b, 0);
    this.nvals = 1 + spec.vals.length;
    this.nvars = spec.vars.length;
    let track = 0;
    for (const t of spec.trackers) {
      const widths = t.fields.map((_, i) => (t.strings?.[i] ? SAVED_STRING : 8));
      this.trackers.push({ at: track, widths });
      track += 16 + widths.reduce((a, b) => a + b, 0);
    }
    this.trackBytes = track;
    this.slotBytes = 8 + Math.ceil(this.keyBytes / 8) * 8 + 8 * this.nvals + (this.nvars ? 8 * (this.nvars + 1) : 0) + this.trackBytes;
    this.sab = sab ?? new SharedArrayBuffer(HEADER + this.slots * this.slotBytes);
    this.i32 = new Int32Array(this.sab);
    this.i64 = new BigInt64Array(this.sab);
    this.u8 = new Uint8Array(this.sab);
    this.scratch = new Uint8Array(this.keyBytes);
    this.scratchView = new DataView(this.scratch.buffer);
  }

  get paused(): boolean {
    return Atomics.load(this.i32, H_PAUSED) !== 0;
  }

  set paused(on: boolean) {
    Atomics.store(this.i32, H_PAUSED, on ? 1 : 0);
  }

  get hits(): bigint {
    return Atomics.load(this.i64, 2);
  }

  get drops(): bigint {
    return Atomics.load(this.i64, 3);
  }

  /** Forget every entry and total (`:clear`). Not atomic against writers in other threads. */
  clear(): void {
    this.u8.fill(0, HEADER);
    Atomics.store(this.i32, H_ENTRIES, 0);
    Atomics.store(this.i64, 2, 0n);
    Atomics.store(this.i64, 3, 0n);
  }

  /** Count one hit: `keys` as numbers/bigints or strings, `vals` to add (hitcount is implied); set `vars` given. */
  add(keys: (number | bigint | string)[], vals: bigint[], vars: (bigint | null)[] = []): void {
    Atomics.add(this.i64, 2, 1n);
    const base = this.slot(keys, true);
    if (base < 0) {
      Atomics.add(this.i64, 3, 1n);
      return;
    }
    const v0 = this.valueIndex(base);
    Atomics.add(this.i64, v0, 1n);
    for (let i = 0; i < vals.length; i++) Atomics.add(this.i64, v0 + 1 + i, vals[i]!);
    const flags = v0 + this.nvals + this.nvars;
    for (let i = 0; i < vars.length; i++) {
      const v = vars[i];
      if (v === null || v === undefined) continue;
      Atomics.store(this.i64, v0 + this.nvals + i, v);
      Atomics.or(this.i64, flags, 1n << BigInt(i));
    }
  }

  /** Byte offset of tracker `t`'s area in the slot at `base`. */
  private trackerAt(base: number, t: number): number {
    return this.slotBytes - this.trackBytes + this.trackers[t]!.at + base;
  }

  /**
   * onmax/onchange: compare `value` with what tracker `t` holds for these keys; on a new max (a
   * change), keep it and the saved fields. Returns whether it was kept. With `global`, also
   * whether it is a new maximum over all keys (for snapshot()).
   */
  track(keys: (number | bigint | string)[], t: number, value: bigint, onmax: boolean, saved: (bigint | string)[], global: boolean): { kept: boolean; globalMax: boolean } {
    const base = this.slot(keys, false);
    if (base < 0) return { kept: false, globalMax: false };
    const at = this.trackerAt(base, t);
    const i = at >> 3;
    const set = Atomics.load(this.i64, i + 1) !== 0n;
    const current = Atomics.load(this.i64, i);
    if (set && (onmax ? value <= current : value === current)) return { kept: false, globalMax: false };
    Atomics.store(this.i64, i, value);
    Atomics.store(this.i64, i + 1, 1n);
    let off = at + 16;
    const dv = new DataView(this.sab);
    this.trackers[t]!.widths.forEach((w, k) => {
      const v = saved[k]!;
      if (w === SAVED_STRING) {
        this.u8.fill(0, off, off + w);
        this.u8.set(Buffer.from(String(v), 'utf8').subarray(0, w - 1), off);
      } else dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v as bigint)), true);
      off += w;
    });
    let globalMax = false;
    if (global) {
      const gSet = Atomics.load(this.i64, 5) !== 0n;
      if (!gSet || value > Atomics.load(this.i64, 4)) {
        Atomics.store(this.i64, 4, value);
        Atomics.store(this.i64, 5, 1n);
        Atomics.store(this.i64, 6, BigInt(base));
        globalMax = true;
      }
    }
    return { kept: true, globalMax };
  }

  /** The snapshot trackers' record: the max that took a snapshot and the slot of its key. */
  get snapshotMax(): { value: bigint; slot: number } | null {
    if (Atomics.load(this.i64, 5) === 0n) return null;
    return { value: Atomics.load(this.i64, 4), slot: Number(Atomics.load(this.i64, 6)) };
  }

  /** Variable `index` of the entry with these keys, or null when there is none or it was never set. */
  readVar(keys: (number | bigint | string)[], index: number): bigint | null {
    const base = this.slot(keys, false);
    if (base < 0) return null;
    const v0 = this.valueIndex(base);
    if ((Atomics.load(this.i64, v0 + this.nvals + this.nvars) & (1n << BigInt(index))) === 0n) return null;
    return Atomics.load(this.i64, v0 + this.nvals + index);
  }

  private valueIndex(base: number): number {
    return (base + 8 + Math.ceil(this.keyBytes / 8) * 8) >> 3;
  }

  /** The slot of these keys (its byte offset): found, or claimed if `create` and there is room; -1 otherwise. */
  private slot(keys: (number | bigint | string)[], create: boolean): number {
    const s = this.scratch;
    s.fill(0);
    let at = 0;
    for (let k = 0; k < keys.length; k++) {
      const v = keys[k]!;
      if (typeof v === 'string') {
        const bytes = Buffer.from(v, 'utf8');
        s.set(bytes.subarray(0, STRING_KEY - 1), at);
      } else {
        this.scratchView.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
      }
      at += this.keyWidths[k]!;
    }
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s[i]!, 0x01000193);
    h |= 1; // never 0
    for (let probe = 0; probe < this.slots; probe++) {
      const slot = ((h >>> 0) + probe) % this.slots;
      const base = HEADER + slot * this.slotBytes;
      const stateIndex = base >> 2;
      let state = Atomics.load(this.i32, stateIndex);
      if (state === 0) {
        if (!create || Atomics.load(this.i32, H_ENTRIES) >= this.size) return -1;
        if (Atomics.compareExchange(this.i32, stateIndex, 0, 1) === 0) {
          Atomics.store(this.i32, stateIndex + 1, h);
          this.u8.set(s, base + 8);
          Atomics.add(this.i32, H_ENTRIES, 1);
          Atomics.store(this.i32, stateIndex, 2);
          return base;
        }
        state = Atomics.load(this.i32, stateIndex);
      }
      while (state === 1) state = Atomics.load(this.i32, stateIndex);
      if (Atomics.load(this.i32, stateIndex + 1) !== h) continue;
      let same = true;
      for (let i = 0; i < s.length && same; i++) same = this.u8[base + 8 + i] === s[i];
      if (same) return base;
    }
    return -1;
  }

  /** Every ready entry. */
  entries(): HistReadEntry[] {
    const out: HistReadEntry[] = [];
    const dv = new DataView(this.sab);
    for (let slot = 0; slot < this.slots; slot++) {
      const base = HEADER + slot * this.slotBytes;
      if (Atomics.load(this.i32, base >> 2) !== 2) continue;
      const keys: (bigint | string)[] = [];
      let at = base + 8;
      for (const w of this.keyWidths) {
        if (w === STRING_KEY) {
          const bytes = this.u8.subarray(at, at + w);
          const nul = bytes.indexOf(0);
          keys.push(Buffer.from(bytes.subarray(0, nul < 0 ? w : nul)).toString('utf8'));
        } else keys.push(dv.getBigUint64(at, true));
        at += w;
      }
      const v0 = this.valueIndex(base);
      const vals: bigint[] = [];
      for (let i = 0; i < this.nvals; i++) vals.push(Atomics.load(this.i64, v0 + i));
      const tracked = this.trackers.map((tr, t) => {
        const tat = this.trackerAt(base, t);
        const value = Atomics.load(this.i64, (tat >> 3) + 1) !== 0n ? Atomics.load(this.i64, tat >> 3) : null;
        let off = tat + 16;
        const saved = tr.widths.map((w) => {
          const v = w === SAVED_STRING
            ? Buffer.from(this.u8.subarray(off, off + w).subarray(0, Math.max(0, this.u8.subarray(off, off + w).indexOf(0)))).toString('utf8')
            : dv.getBigUint64(off, true);
          off += w;
          return v;
        });
        return { value, saved };
      });
      out.push({ keys, vals, tracked, slot: base });
    }
    return out;
  }
}

/** Key value for a field after its modifier, as the kernel computes it. */
export function keyValue(f: HistField, raw: bigint): bigint {
  switch (f.modifier) {
    case 'log2': {
      // ilog2(roundup_pow_of_two(v)).
      const v = BigInt.asUintN(64, raw);
      if (v <= 1n) return 0n;
      return BigInt((v - 1n).toString(2).length);
    }
    case 'buckets':
      return (BigInt.asUintN(64, raw) / BigInt(f.buckets)) * BigInt(f.buckets);
    default:
      return raw;
  }
}

/** `{ key: value, … } hitcount: N  field: M` lines, sorted, then the kernel's Totals footer. */
export function histShow(spec: HistSpec, map: HistMap, info: string, comm: (pid: bigint) => string): string {
  const entries = map.entries();
  const column = (name: string): ((e: HistReadEntry) => bigint | string) => {
    if (name === 'hitcount') return (e) => e.vals[0]!;
    const k = spec.keys.findIndex((f) => f.name === name);
    if (k >= 0) return (e) => e.keys[k]!;
    const v = spec.vals.findIndex((f) => f.name === name);
    return (e) => e.vals[v + 1]!;
  };
  const sorters = spec.sort.map((s) => ({ get: column(s.name), dir: s.descending ? -1 : 1 }));
  entries.sort((a, b) => {
    for (const s of sorters) {
      const x = s.get(a);
      const y = s.get(b);
      if (x < y) return -s.dir;
      if (x > y) return s.dir;
    }
    return 0;
  });
  const keyText = (e: HistReadEntry) => spec.keys.map((f, i) => {
      const v = e.keys[i]!;
      if (typeof v === 'string') return `${f.name}: ${v.padEnd(50)}`;
      switch (f.modifier) {
        case 'hex': return `${f.name}: ${v.toString(16)}`;
        case 'execname': return `${f.name}: ${comm(v).padEnd(16)}[${String(v).padStart(10)}]`;
        case 'log2': return `${f.name}: ~ 2^${String(v).padEnd(2)}`;
        case 'buckets': return `${f.name}: ~ ${v}-${v + BigInt(f.buckets) - 1n}`;
        default: return `${f.name}: ${String(v).padStart(10)}`;
      }
    }).join(', ');
  const lines = entries.map((e) => {
    const vals = spec.vals.map((f, i) => {
      const v = e.vals[i + 1]!;
      return f.modifier === 'hex' ? `  ${f.name}: ${v.toString(16).padStart(10)}` : `  ${f.name}: ${String(v).padStart(10)}`;
    });
    // onmax/onchange: `\n\tmax: N` and the saved fields (strings %-32s, numbers %10llu), as track_data_print().
    const tracked = spec.trackers.map((t, i) => {
      const tr = e.tracked[i]!;
      const head = `\n\t${t.handler === 'onmax' ? 'max' : 'changed'}: ${String(tr.value ?? 0n).padStart(10)}`;
      if (t.action === 'snapshot') return head;
      return head + t.fields.map((f, k) => {
        const v = tr.saved[k]!;
        return typeof v === 'string' ? `  ${f}: ${v.padEnd(32)}` : `  ${f}: ${String(v).padStart(10)}`;
      }).join('');
    });
    return `{ ${keyText(e)} } hitcount: ${String(e.vals[0]!).padStart(10)}${vals.join('')}${tracked.join('')}\n`;
  });
  const snap = spec.trackers.find((t) => t.action === 'snapshot');
  const taken = snap ? map.snapshotMax : null;
  const snapshot = snap && taken
    ? `\nSnapshot taken (see tracing/snapshot).  Details:\n\ttriggering value { ${snap.handler}($${snap.variable}) }: ${String(taken.value).padStart(10)}\n\ttriggered by event with key: { ${keyText(entries.find((x) => x.slot === taken.slot) ?? entries[0]!)} }\n`
    : '';
  return `# event histogram\n#\n# trigger info: ${info.replace(/\n$/, '')}\n#\n\n${lines.join('')}${snapshot}\nTotals:\n    Hits: ${map.hits}\n    Entries: ${entries.length}\n    Dropped: ${map.drops}\n`;
}
