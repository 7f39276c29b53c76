/**
 * The table a hist trigger aggregates into (the kernel's tracing_map), in two parts:
 *
 * - The key table, one SharedArrayBuffer every thread shares: open addressing, twice as many
 *   slots as the trigger's size. A thread claims an empty slot with compareExchange, writes the
 *   key, then marks it ready; finding a key already there takes plain reads only. At `size`
 *   entries new keys are dropped and counted (Dropped). Variables (`ts0=…`, the last value
 *   assigned for a key, read by other hist triggers) and onmax/onchange trackers live here too.
 * - Counts, one lane per thread: hitcount and value sums as 64-bit words (two u32s) that only
 *   that thread writes, with plain adds (an atomic add costs as much as the rest of a hit; the
 *   kernel's per-CPU maps make the same trade). The main thread allocates each thread's lane
 *   and the `hist` file adds the lanes up. A reader in another thread than the writer may catch
 *   a sum between its two halves, off by 2^32 for that one read.
 *
 * Key slot: state (0 empty, 1 being claimed, 2 ready), hash, key words, then a word of the
 * variables' set-flags and the variables (8 bytes, or 64 for text), then the trackers. Lane: total hits, then per slot one
 * 64-bit word per value (hitcount first).
 */
import { writeChars } from '../events/codegen.js';
import type { HistField, HistSpec } from '../events/hist.js';

const STRING_KEY = 64;
const SAVED_STRING = 32;
/** A string variable keeps this many bytes (63 and a NUL). */
const STRING_VAR = 64;
const H_ENTRIES = 0;
const H_PAUSED = 1;
// Bytes: i32 entries and paused; i64 drops (1), the snapshot trackers' global max (2), its
// set-flag (3) and the slot that set it (4).
const I64_DROPS = 1;
const HEADER = 40;
const TWO_32 = 4294967296;

export type HistKey = number | bigint | string;

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
  /** Per thread (cpu), its counts; filled in by lanesFor() on the main thread. */
  readonly lanes: SharedArrayBuffer[];
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;
  private readonly u8: Uint8Array;
  /** The key being looked up, as words; a thread sets it with setKey() before find(). */
  private readonly key: Uint32Array;
  private readonly keyBytes: Uint8Array;
  private readonly keyAt: number[];
  private readonly keyWords: number;
  private readonly strings: boolean[];
  /** Slot size in 32-bit words. */
  private readonly slotWords: number;
  /** Bytes of a slot before its variables: state, hash and the key words, 8-aligned. */
  private readonly keyPart: number;
  private readonly nvals: number;
  private readonly nvars: number;
  /** Byte offset of each variable in a slot's variable area (after its set-flags word); string variables are STRING_VAR wide. */
  private readonly varAt: number[] = [];
  private readonly varString: boolean[];
  private readonly varBytes: number;
  /** Byte offset of each tracker's area within a slot's tail, and the saved fields' widths. */
  private readonly trackers: { at: number; widths: number[] }[] = [];
  private readonly trackBytes: number;

  constructor(spec: HistSpec, sab?: SharedArrayBuffer, lanes: SharedArrayBuffer[] = []) {
    this.size = spec.size;
    this.slots = spec.size * 2;
    this.strings = spec.keys.map((k) => k.string === true);
    this.keyAt = [];
    let words = 0;
    for (const s of this.strings) {
      this.keyAt.push(words);
      words += s ? STRING_KEY / 4 : 2;
    }
    this.keyWords = words;
    this.key = new Uint32Array(words);
    this.keyBytes = new Uint8Array(this.key.buffer);
    this.nvals = 1 + spec.vals.length;
    this.nvars = spec.vars.length;
    this.varString = spec.vars.map((v) => v.string === true);
    let varBytes = this.nvars ? 8 : 0;
    for (const isString of this.varString) {
      this.varAt.push(varBytes);
      varBytes += isString ? STRING_VAR : 8;
    }
    this.varBytes = varBytes;
    let track = 0;
    for (const t of spec.trackers) {
      const widths = t.fields.map((_, i) => (t.strings?.[i] ? SAVED_STRING : 8));
      this.trackers.push({ at: track, widths });
      track += 16 + widths.reduce((a, b) => a + b, 0);
    }
    this.trackBytes = track;
    this.keyPart = 8 + Math.ceil((words * 4) / 8) * 8;
    this.slotWords = (this.keyPart + this.varBytes + this.trackBytes) / 4;
    this.sab = sab ?? new SharedArrayBuffer(HEADER + this.slots * this.slotWords * 4);
    this.i32 = new Int32Array(this.sab);
    this.i64 = new BigInt64Array(this.sab);
    this.u8 = new Uint8Array(this.sab);
    this.lanes = lanes;
  }

  /** The lanes of threads 0..count-1, made where missing (main thread). */
  lanesFor(count: number): SharedArrayBuffer[] {
    while (this.lanes.length < count) this.lanes.push(new SharedArrayBuffer((2 + this.slots * this.nvals * 2) * 4));
    return this.lanes;
  }

  /** The counts thread `cpu` writes. */
  lane(cpu: number): Uint32Array {
    const sab = this.lanes[cpu];
    if (!sab) throw new Error(`hist table has no lane for thread ${cpu}`);
    return new Uint32Array(sab);
  }

  get paused(): boolean {
    return this.i32[H_PAUSED] !== 0;
  }

  set paused(on: boolean) {
    Atomics.store(this.i32, H_PAUSED, on ? 1 : 0);
  }

  get hits(): bigint {
    let total = 0n;
    for (const sab of this.lanes) total += readU64(new Uint32Array(sab), 0);
    return total;
  }

  get drops(): bigint {
    return Atomics.load(this.i64, I64_DROPS);
  }

  /** Forget every entry and total (`:clear`). Not atomic against writers in other threads. */
  clear(): void {
    this.u8.fill(0, HEADER);
    Atomics.store(this.i32, H_ENTRIES, 0);
    Atomics.store(this.i64, I64_DROPS, 0n);
    for (const sab of this.lanes) new Uint32Array(sab).fill(0);
  }

  /** Set key `k` of the key being looked up (a number or bigint as its u64 bits, or a string). */
  setKey(k: number, v: HistKey): void {
    const at = this.keyAt[k]!;
    const key = this.key;
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      key[at] = v;
      key[at + 1] = Math.floor(v / TWO_32);
    } else if (typeof v === 'string') {
      writeChars(this.keyBytes, at * 4, v, STRING_KEY);
    } else {
      const u = BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v) || 0)));
      key[at] = Number(u & 0xffffffffn);
      key[at + 1] = Number(u >> 32n);
    }
  }

  setKeys(keys: HistKey[]): void {
    for (let k = 0; k < keys.length; k++) this.setKey(k, keys[k]!);
  }

  /**
   * The slot of the key set by setKey(): found, or claimed if `create` and there is room;
   * -1 otherwise (a drop, counted, when creating).
   */
  find(create: boolean): number {
    const key = this.key;
    const n = this.keyWords;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
    h ^= h >>> 15;
    h |= 1; // never 0
    const i32 = this.i32;
    const words = this.slotWords;
    const slots = this.slots;
    let slot = (h & 0x7fffffff) % slots;
    // Plain reads: a ready slot's hash and key never change until a clear. A key not seen
    // (an empty slot reached) is looked for again with atomic reads before it is added.
    for (let probe = 0; probe < slots; probe++) {
      const base = (HEADER >> 2) + slot * words;
      const state = i32[base];
      if (state === 0) return create ? this.claim(h) : -1;
      if (state === 2 && i32[base + 1] === h && this.sameKey(base + 2)) return slot;
      if (state === 1) return this.claim(h);
      if (++slot === slots) slot = 0;
    }
    return create ? this.claim(h) : -1;
  }

  private sameKey(at: number): boolean {
    const i32 = this.i32;
    const key = this.key;
    for (let i = 0; i < this.keyWords; i++) if (i32[at + i] !== (key[i]! | 0)) return false;
    return true;
  }

  /** find()'s slow half: look again with atomic reads, and claim an empty slot for the key. */
  private claim(h: number): number {
    const i32 = this.i32;
    let slot = (h & 0x7fffffff) % this.slots;
    for (let probe = 0; probe < this.slots; probe++) {
      const base = (HEADER >> 2) + slot * this.slotWords;
      let state = Atomics.load(i32, base);
      if (state === 0) {
        if (Atomics.load(i32, H_ENTRIES) >= this.size) break;
        if (Atomics.compareExchange(i32, base, 0, 1) === 0) {
          Atomics.store(i32, base + 1, h);
          for (let i = 0; i < this.keyWords; i++) Atomics.store(i32, base + 2 + i, this.key[i]! | 0);
          Atomics.add(i32, H_ENTRIES, 1);
          Atomics.store(i32, base, 2);
          return slot;
        }
        state = Atomics.load(i32, base);
      }
      while (state === 1) state = Atomics.load(i32, base);
      if (Atomics.load(i32, base + 1) === h && this.sameKey(base + 2)) return slot;
      if (++slot === this.slots) slot = 0;
    }
    Atomics.add(this.i64, I64_DROPS, 1n);
    return -1;
  }

  /** Where value `v` (0: hitcount) of `slot` is in a lane. */
  valueAt(slot: number, v: number): number {
    return 2 + (slot * this.nvals + v) * 2;
  }

  /** Set the variables given (non-null) for the entry at `slot`. */
  setVars(slot: number, vars: (bigint | string | null)[]): void {
    const area = this.varArea(slot);
    let set = 0n;
    for (let i = 0; i < vars.length; i++) {
      const v = vars[i];
      if (v === null || v === undefined) continue;
      const at = area + this.varAt[i]!;
      if (typeof v === 'string') writeChars(this.u8, at, v, STRING_VAR);
      else Atomics.store(this.i64, at >> 3, v);
      set |= 1n << BigInt(i);
    }
    if (set) Atomics.or(this.i64, area >> 3, set);
  }

  /** Byte offset of the variable area (set-flags word, then the variables) of `slot`. */
  private varArea(slot: number): number {
    return HEADER + slot * this.slotWords * 4 + this.keyPart;
  }

  /** Byte offset of tracker `t`'s area in `slot`. */
  private trackerAt(slot: number, t: number): number {
    return HEADER + (slot + 1) * this.slotWords * 4 - this.trackBytes + this.trackers[t]!.at;
  }

  /**
   * onmax/onchange: compare `value` with what tracker `t` holds for the entry at `slot`; on a
   * new max (a change), keep it and the saved fields. Returns whether it is also a new maximum
   * over all keys (for snapshot(), with `global`).
   */
  track(slot: number, t: number, value: bigint, onmax: boolean, saved: (bigint | string)[], global: boolean): boolean {
    const at = this.trackerAt(slot, t);
    const i = at >> 3;
    const set = Atomics.load(this.i64, i + 1) !== 0n;
    const current = Atomics.load(this.i64, i);
    if (set && (onmax ? value <= current : value === current)) return false;
    Atomics.store(this.i64, i, value);
    Atomics.store(this.i64, i + 1, 1n);
    let off = at + 16;
    const dv = new DataView(this.sab);
    this.trackers[t]!.widths.forEach((w, k) => {
      const v = saved[k]!;
      if (w === SAVED_STRING) writeChars(this.u8, off, v, w);
      else dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v as bigint)), true);
      off += w;
    });
    if (!global) return false;
    if (Atomics.load(this.i64, 3) !== 0n && value <= Atomics.load(this.i64, 2)) return false;
    Atomics.store(this.i64, 2, value);
    Atomics.store(this.i64, 3, 1n);
    Atomics.store(this.i64, 4, BigInt(slot));
    return true;
  }

  /** The snapshot trackers' record: the max that took a snapshot and the slot of its key. */
  get snapshotMax(): { value: bigint; slot: number } | null {
    if (Atomics.load(this.i64, 3) === 0n) return null;
    return { value: Atomics.load(this.i64, 2), slot: Number(Atomics.load(this.i64, 4)) };
  }

  /** Variable `index` of the entry with these keys, or null when there is none or it was never set. */
  readVar(keys: HistKey[], index: number): bigint | string | null {
    this.setKeys(keys);
    const slot = this.find(false);
    if (slot < 0) return null;
    const area = this.varArea(slot);
    if ((Atomics.load(this.i64, area >> 3) & (1n << BigInt(index))) === 0n) return null;
    const at = area + this.varAt[index]!;
    return this.varString[index] ? readChars(this.u8, at, STRING_VAR) : Atomics.load(this.i64, at >> 3);
  }

  /** Every ready entry, its counts added up over the lanes. */
  entries(): HistReadEntry[] {
    const out: HistReadEntry[] = [];
    const dv = new DataView(this.sab);
    const lanes = this.lanes.map((sab) => new Uint32Array(sab));
    for (let slot = 0; slot < this.slots; slot++) {
      const base = HEADER + slot * this.slotWords * 4;
      if (Atomics.load(this.i32, base >> 2) !== 2) continue;
      const keys = this.strings.map((isString, k): bigint | string => {
        const at = base + 8 + this.keyAt[k]! * 4;
        return isString ? readChars(this.u8, at, STRING_KEY) : dv.getBigUint64(at, true);
      });
      const vals: bigint[] = [];
      for (let v = 0; v < this.nvals; v++) {
        let sum = 0n;
        for (const lane of lanes) sum += readU64(lane, this.valueAt(slot, v));
        vals.push(BigInt.asUintN(64, sum));
      }
      const tracked = this.trackers.map((tr, t) => {
        const tat = this.trackerAt(slot, t);
        const value = Atomics.load(this.i64, (tat >> 3) + 1) !== 0n ? Atomics.load(this.i64, tat >> 3) : null;
        let off = tat + 16;
        const saved = tr.widths.map((w) => {
          const v = w === SAVED_STRING ? readChars(this.u8, off, w) : dv.getBigUint64(off, true);
          off += w;
          return v;
        });
        return { value, saved };
      });
      out.push({ keys, vals, tracked, slot });
    }
    return out;
  }
}

/** Add `v` (an integer) to the u64 at `at` of a lane, wrapping as the kernel's u64 sums. */
export function laneAdd(lane: Uint32Array, at: number, v: number | bigint): void {
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    const lo = lane[at]! + (v >>> 0);
    lane[at] = lo;
    lane[at + 1] = lane[at + 1]! + Math.floor(v / TWO_32) + (lo >= TWO_32 ? 1 : 0);
    return;
  }
  const u = BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v) || 0)));
  laneAdd(lane, at, Number(u & 0xffffffffn));
  lane[at + 1] = lane[at + 1]! + Number(u >> 32n);
}

/** The text writeChars() left in `size` bytes at `at` (up to its NUL); Buffer, as TextDecoder refuses shared memory. */
function readChars(u8: Uint8Array, at: number, size: number): string {
  const bytes = u8.subarray(at, at + size);
  const nul = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, nul < 0 ? size : nul)).toString('utf8');
}

function readU64(lane: Uint32Array, at: number): bigint {
  return (BigInt(lane[at + 1]!) << 32n) | BigInt(lane[at]!);
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
        // The kernel's `[addr] symbol`; JavaScript has no symbol table, so the symbol is the
        // address, as sprint_symbol() prints one it cannot name.
        case 'sym': return `${f.name}: [${v.toString(16)}] ${`0x${v.toString(16)}`.padEnd(45)}`;
        case 'sym-offset': return `${f.name}: [${v.toString(16)}] ${`0x${v.toString(16)}`.padEnd(55)}`;
        // No system calls in JavaScript: every number is one the kernel could not name.
        case 'syscall': return `${f.name}: ${'unknown_syscall'.padEnd(30)}[${String(v).padStart(3)}]`;
        case 'execname': return `${f.name}: ${comm(v).padEnd(16)}[${String(v).padStart(10)}]`;
        case 'log2': return `${f.name}: ~ 2^${String(v).padEnd(2)}`;
        case 'buckets': return `${f.name}: ~ ${v}-${v + BigInt(f.buckets) - 1n}`;
        default: return `${f.name}: ${String(v).padStart(10)}`;
      }
    }).join(', ');
  // .percent is of the column's sum, .graph a bar against its largest value (the kernel's totals).
  const totals = spec.vals.map((f, i) => entries.reduce((t, e) => (f.modifier === 'percent' ? t + e.vals[i + 1]! : e.vals[i + 1]! > t ? e.vals[i + 1]! : t), 0n));
  const value = (f: HistField, i: number, v: bigint): string => {
    if (f.modifier === 'percent') {
      const pc = percentage(v, totals[i]!);
      return ` ${f.name} (%):${pc === null ? '[ERROR]' : ` ${String(pc / 100n).padStart(3)}.${String(pc % 100n).padStart(2, '0')}`}`;
    }
    if (f.modifier === 'graph') {
      const pc = percentage(v, totals[i]!);
      return ` ${f.name}: ${pc === null ? '[ERROR]'.padStart(20) : '#'.repeat(Number((pc * 20n) / 10000n)).padEnd(20)}`;
    }
    return f.modifier === 'hex' ? ` ${f.name}: ${v.toString(16).padStart(10)}` : ` ${f.name}: ${String(v).padStart(10)}`;
  };
  const lines = entries.map((e) => {
    // The raw hitcount first (unless nohitcount), then each value column, as hist_trigger_entry_print().
    const vals = [...(spec.noHitcount ? [] : [` hitcount: ${String(e.vals[0]!).padStart(10)}`]), ...spec.vals.map((f, i) => ` ${value(f, i, e.vals[i + 1]!)}`)];
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
    return `{ ${keyText(e)} }${vals.join('')}${tracked.join('')}\n`;
  });
  const snap = spec.trackers.find((t) => t.action === 'snapshot');
  const taken = snap ? map.snapshotMax : null;
  const snapshot = snap && taken
    ? `\nSnapshot taken (see tracing/snapshot).  Details:\n\ttriggering value { ${snap.handler}($${snap.variable}) }: ${String(taken.value).padStart(10)}\n\ttriggered by event with key: { ${keyText(entries.find((x) => x.slot === taken.slot) ?? entries[0]!)} }\n`
    : '';
  return `# event histogram\n#\n# trigger info: ${info.replace(/\n$/, '')}\n#\n\n${lines.join('')}${snapshot}\nTotals:\n    Hits: ${map.hits}\n    Entries: ${entries.length}\n    Dropped: ${map.drops}\n`;
}

/**
 * A hist field's value in a payload: an integer number cut to the field's width (a bigint
 * when it needs more than 53 bits), or a string; common_pid and common_timestamp from the hit.
 */
export function fieldGetter(f: HistField, pid: number): (p: any, ts: number) => HistKey {
  if (f.name === 'common_pid') return () => pid;
  if (f.name === 'hitcount') return () => 1;
  if (f.name === 'common_timestamp') return f.modifier === 'usecs' ? (_p, ts) => Math.floor(ts / 1000) : (_p, ts) => ts;
  const layout = f.layout!;
  const name = layout.name;
  if (f.string) return (p) => String(p[name] ?? '');
  const bits = layout.size * 8;
  const big = (v: unknown): HistKey => {
    const n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v) || 0));
    const cut = layout.signed ? BigInt.asIntN(bits, n) : BigInt.asUintN(bits, n);
    return cut >= -0x1fffffffffffffn && cut <= 0x1fffffffffffffn ? Number(cut) : cut;
  };
  if (bits === 64) {
    return (p) => {
      const v = p[name];
      return typeof v === 'number' && Number.isSafeInteger(v) ? v : big(v);
    };
  }
  const shift = 32 - bits;
  if (layout.signed) {
    return (p) => {
      const v = p[name];
      return typeof v === 'number' ? (v << shift) >> shift : big(v);
    };
  }
  return (p) => {
    const v = p[name];
    return typeof v === 'number' ? (v << shift) >>> shift : big(v);
  };
}

/** A hist key's value: the field's, after its modifier. */
export function keyGetter(f: HistField, pid: number): (p: any, ts: number) => HistKey {
  const get = fieldGetter(f, pid);
  if (f.modifier === 'log2') {
    return (p, ts) => {
      const v = get(p, ts);
      return typeof v === 'number' && v >= 0 ? log2Bucket(v) : keyValue(f, BigInt(v));
    };
  }
  if (f.modifier === 'buckets') {
    const size = f.buckets;
    return (p, ts) => {
      const v = get(p, ts);
      return typeof v === 'number' && v >= 0 ? Math.floor(v / size) * size : keyValue(f, BigInt(v));
    };
  }
  return get;
}

/** val * 10000 / total (hundredths of a percent), as the kernel's __get_percentage(); null for x/0. */
function percentage(val: bigint, total: bigint): bigint | null {
  if (total === 0n) return val === 0n ? 0n : null;
  const pc = val < 0xffffffffffffffffn / 10000n ? (val * 10000n) / total : total / 10000n === 0n ? null : val / (total / 10000n);
  return pc === null || pc > 0xffffffffn ? null : pc;
}

/** ilog2(roundup_pow_of_two(v)) of a non-negative safe integer: the bit length of v - 1. */
export function log2Bucket(v: number): number {
  if (v <= 1) return 0;
  const x = v - 1;
  return x < TWO_32 ? 32 - Math.clz32(x) : 64 - Math.clz32(Math.floor(x / TWO_32));
}
