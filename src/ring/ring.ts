/**
 * One ring buffer: the events of one thread for one instance, in a SharedArrayBuffer laid out
 * as the kernel's sub-buffers. Exactly one thread writes a ring; any thread may read it.
 *
 * How it stays consistent without locks (compare kernel/trace/ring_buffer.c):
 *
 * - Pages never move. Slot i of the ring is page i. The writer fills the *tail* page and
 *   publishes each event by storing the page's `commit` last (Atomics.store, or a plain store
 *   where the CPU keeps stores in order), so a reader that loads `commit` sees every byte below it.
 * - Head and tail are page *counters* modulo M (a multiple of the page count), so "full"
 *   (tail - head = n - 1) and "empty" (tail is one behind head) are distinct states.
 * - One Int32 `state` packs the head counter with `k`, the number of events a consuming reader
 *   has already taken from the head page. The writer drops the head page (overwrite mode) and
 *   the reader claims it with compareExchange on that word, so exactly one of them accounts for
 *   each event: the writer counts `entries - k` as overrun, the reader counts what it delivers.
 * - Readers copy a page, then check its sequence number (odd while the writer recycles the
 *   page). A copy taken while the page was recycled is thrown away, so a half-written event is
 *   never decoded.
 *
 * Worked example, 2 pages, overwrite on: the writer fills page 0 (tail 0), moves to page 1
 * (tail 1, ring now full), fills it, then must move to page 0 again: state says head 0, k 0, so
 * it CASes head to 1, adds page 0's entries to `overrun`, bumps page 0's seq to odd, rewrites its
 * header, bumps seq to even and sets tail to 2 (slot 0). A reader copying page 0 meanwhile sees
 * the seq change and retries from the new head.
 */
import {
  COMMIT_OFFSET, COMMIT_SIZE_MASK, MAX_DELTA, MAX_SMALL_DATA, SUBBUF_HEADER, TIME_EXTEND_LEN, TYPE_PADDING, TYPE_TIME_EXTEND,
  eventLength,
} from './layout.js';

// Int32 slots of the metadata block.
const I_MAGIC = 0;
const I_PAGES = 1;
const I_SUBBUF = 2;
const I_KBITS = 3;
const I_STATE = 4;
const I_TAIL = 5;
const I_MODULUS = 6;
const I_OVERWRITE = 7;
const I_RETIRED = 8;
// Float64 slots (after 16 Int32 slots = 64 bytes). Writer-owned counters are only ever stored by
// the writer; reader-owned ones only by the (single) consuming reader.
const F_BASE = 8;
const F_COMMITTED = F_BASE + 0;
const F_OVERRUN = F_BASE + 1;
const F_DROPPED = F_BASE + 2;
const F_READ = F_BASE + 3;
// Baselines set by a clear (`echo > trace`): stats are counter - baseline.
const F_CLEAR_COMMITTED = F_BASE + 4;
const F_CLEAR_OVERRUN = F_BASE + 5;
const F_CLEAR_DROPPED = F_BASE + 6;
const F_CLEAR_READ = F_BASE + 7;
const META_BYTES = 64 + 8 * 8;
const MAGIC = 0x6e667472; // 'nftr'

export interface RingConfig {
  pages: number;
  subbuf: number;
  overwrite: boolean;
}

export interface RingCounters {
  committed: number;
  overrun: number;
  dropped: number;
  read: number;
  entries: number;
  bytes: number;
  oldestTs: number;
}

function bitsFor(n: number): number {
  return 32 - Math.clz32(n);
}

/** Views over a ring's SharedArrayBuffer, shared by the writer and the readers. */
export class RingView {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly pages: number;
  readonly subbuf: number;
  readonly dataSize: number;
  readonly kBits: number;
  readonly kMask: number;
  readonly modulus: number;
  /** Byte offset of the per-page sequence numbers (Int32 index = seqIndex + slot). */
  readonly seqIndex: number;
  readonly entriesIndex: number;
  readonly pagesOffset: number;

  static create(cfg: RingConfig): RingView {
    const dataSize = cfg.subbuf - SUBBUF_HEADER;
    const kBits = bitsFor(Math.floor(dataSize / 16) + 1);
    const headRange = 2 ** (31 - kBits);
    const laps = Math.floor(headRange / cfg.pages);
    if (laps < 2) throw new RangeError(`ring of ${cfg.pages} pages is too large`);
    const pagesOffset = align(META_BYTES + cfg.pages * 8, 64);
    const sab = new SharedArrayBuffer(pagesOffset + cfg.pages * cfg.subbuf);
    const i32 = new Int32Array(sab, 0, 16);
    i32[I_MAGIC] = MAGIC;
    i32[I_PAGES] = cfg.pages;
    i32[I_SUBBUF] = cfg.subbuf;
    i32[I_KBITS] = kBits;
    i32[I_MODULUS] = cfg.pages * laps;
    i32[I_STATE] = 0;
    // Tail one behind head: empty, and the first write moves onto page 0.
    i32[I_TAIL] = cfg.pages * laps - 1;
    i32[I_OVERWRITE] = cfg.overwrite ? 1 : 0;
    return new RingView(sab);
  }

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    const head = new Int32Array(sab, 0, 16);
    if (head[I_MAGIC] !== MAGIC) throw new TypeError('not an nftrace ring buffer');
    this.pages = head[I_PAGES]!;
    this.subbuf = head[I_SUBBUF]!;
    this.dataSize = this.subbuf - SUBBUF_HEADER;
    this.kBits = head[I_KBITS]!;
    this.kMask = (1 << this.kBits) - 1;
    this.modulus = head[I_MODULUS]!;
    this.seqIndex = META_BYTES / 4;
    this.entriesIndex = this.seqIndex + this.pages;
    this.pagesOffset = align(META_BYTES + this.pages * 8, 64);
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab, 0, META_BYTES / 8);
    this.u8 = new Uint8Array(sab);
    this.dv = new DataView(sab);
  }

  pageOffset(slot: number): number {
    return this.pagesOffset + slot * this.subbuf;
  }

  advance(counter: number): number {
    return counter + 1 === this.modulus ? 0 : counter + 1;
  }

  /** How far `a` is ahead of `b`, modulo M. */
  distance(a: number, b: number): number {
    const d = a - b;
    return d < 0 ? d + this.modulus : d;
  }

  get overwrite(): boolean {
    return Atomics.load(this.i32, I_OVERWRITE) === 1;
  }

  set overwrite(on: boolean) {
    Atomics.store(this.i32, I_OVERWRITE, on ? 1 : 0);
  }

  /** Set by the owner thread when it has moved to a replacement ring (resize, new sub-buffer size). */
  get retired(): boolean {
    return Atomics.load(this.i32, I_RETIRED) === 1;
  }

  retire(): void {
    Atomics.store(this.i32, I_RETIRED, 1);
  }

  counters(): RingCounters {
    const f = this.f64;
    const committed = f[F_COMMITTED]! - f[F_CLEAR_COMMITTED]!;
    const overrun = f[F_OVERRUN]! - f[F_CLEAR_OVERRUN]!;
    const read = f[F_READ]! - f[F_CLEAR_READ]!;
    const entries = Math.max(0, committed - overrun - read);
    return {
      committed,
      overrun,
      dropped: f[F_DROPPED]! - f[F_CLEAR_DROPPED]!,
      read,
      entries,
      bytes: entries === 0 ? 0 : this.unreadBytes(),
      oldestTs: this.oldestTimestamp(),
    };
  }

  /** Raw (never rebased) counters, for carrying totals over to a replacement ring. */
  rawCounters(): { committed: number; overrun: number; dropped: number; read: number } {
    const f = this.f64;
    return { committed: f[F_COMMITTED]!, overrun: f[F_OVERRUN]!, dropped: f[F_DROPPED]!, read: f[F_READ]! };
  }

  /** Start a replacement ring's counters where the old one's stood (minus what it still held). */
  seedCounters(from: RingView, unreadCarried: number): void {
    const src = from.f64;
    const dst = this.f64;
    dst[F_COMMITTED] = src[F_COMMITTED]! - unreadCarried;
    dst[F_OVERRUN] = src[F_OVERRUN]!;
    dst[F_DROPPED] = src[F_DROPPED]!;
    dst[F_READ] = src[F_READ]!;
    for (let i = F_CLEAR_COMMITTED; i <= F_CLEAR_READ; i++) dst[i] = src[i]!;
  }

  /** Bytes not yet consumed: committed bytes of the pages in the ring, less the head page's consumed prefix. */
  private unreadBytes(): number {
    const state = Atomics.load(this.i32, I_STATE);
    const head = state >>> this.kBits;
    const tail = Atomics.load(this.i32, I_TAIL);
    const span = this.distance(tail, head);
    if (span >= this.pages) return 0;
    let bytes = 0;
    for (let c = head, i = 0; i <= span; i++, c = this.advance(c)) {
      bytes += Atomics.load(this.i32, (this.pageOffset(c % this.pages) + COMMIT_OFFSET) >> 2) & COMMIT_SIZE_MASK;
    }
    let skip = state & this.kMask;
    if (skip > 0) {
      const page = this.pageOffset(head % this.pages);
      const commit = Atomics.load(this.i32, (page + COMMIT_OFFSET) >> 2) & COMMIT_SIZE_MASK;
      let consumedEnd = page + SUBBUF_HEADER;
      try {
        forEachEvent(this.dv, page, commit, (_ts, off, len) => {
          if (skip-- > 0) consumedEnd = off + len;
        });
      } catch {
        // The writer recycled the page while we looked; the estimate keeps the full commit.
      }
      bytes -= consumedEnd - page - SUBBUF_HEADER;
    }
    return Math.max(0, bytes);
  }

  private oldestTimestamp(): number {
    const head = Atomics.load(this.i32, I_STATE) >>> this.kBits;
    const tail = Atomics.load(this.i32, I_TAIL);
    if (this.distance(tail, head) >= this.pages) return 0;
    return readU64(this.dv, this.pageOffset(head % this.pages));
  }

  /** Forget everything read so far for stats purposes: `echo > trace` zeroes the counters. */
  rebaseCounters(): void {
    const f = this.f64;
    f[F_CLEAR_COMMITTED] = f[F_COMMITTED]!;
    f[F_CLEAR_OVERRUN] = f[F_OVERRUN]!;
    f[F_CLEAR_DROPPED] = f[F_DROPPED]!;
    f[F_CLEAR_READ] = f[F_READ]!;
  }
}

/** Whether plain stores become visible to other cores in program order (x86's TSO). */
const ORDERED_STORES = process.arch === 'x64' || process.arch === 'ia32';

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function readU64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 4294967296;
}

function writeU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / 4294967296) >>> 0, true);
}

/**
 * The writing side. Lives in the thread that owns the ring; its fields are thread-local copies
 * of what the page already says, so the hot path touches the SharedArrayBuffer only to write the
 * event and publish commit.
 */
export class RingWriter {
  readonly view: RingView;
  readonly dv: DataView;
  readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly dataSize: number;
  /** Byte offset of the current page's data area. */
  private data = 0;
  /** Int32 index of the current page's commit word. */
  private commitIndex = 0;
  private slot = 0;
  private pos: number;
  private lastTs = 0;
  private pageEntries = 0;
  private committed: number;
  private overrun: number;
  private dropped: number;

  constructor(view: RingView) {
    this.view = view;
    this.dv = view.dv;
    this.u8 = view.u8;
    this.i32 = view.i32;
    this.f64 = view.f64;
    this.dataSize = view.dataSize;
    this.committed = view.f64[F_COMMITTED]!;
    this.overrun = view.f64[F_OVERRUN]!;
    this.dropped = view.f64[F_DROPPED]!;
    const tail = Atomics.load(view.i32, I_TAIL);
    const head = Atomics.load(view.i32, I_STATE) >>> view.kBits;
    if (view.distance(tail, head) >= view.pages) {
      this.pos = this.dataSize + 1; // nothing written yet: the first event moves onto a page
    } else {
      // Pick up where the previous writer of this ring stopped (a ring handed to a new thread).
      this.enterPage(tail % view.pages);
      this.pos = Atomics.load(this.i32, this.commitIndex);
      let last = readU64(this.dv, this.data - SUBBUF_HEADER);
      this.pageEntries = forEachEvent(this.dv, this.data - SUBBUF_HEADER, this.pos, (ts) => { last = ts; });
      this.lastTs = last;
    }
  }

  private enterPage(slot: number): void {
    this.slot = slot;
    const page = this.view.pageOffset(slot);
    this.data = page + SUBBUF_HEADER;
    this.commitIndex = (page + COMMIT_OFFSET) >> 2;
  }

  /**
   * Reserve room for an event with `payload` bytes at time `ts`, write its header, and return
   * the byte offset of its payload; -1 if it was dropped (counted). Call commit() after filling
   * the payload. `payload` must already be 4-byte aligned.
   *
   * The common case (a small event that fits the current page, less than 2^27 ns after the
   * previous one) is kept tiny so V8 inlines it into emit(); everything else is reserveSlow().
   */
  reserve(payload: number, ts: number): number {
    const pos = this.pos;
    const delta = ts - this.lastTs;
    // Small payloads: header + payload; 12 bytes becomes 16 (see eventLength()).
    const len = payload === 8 ? 16 : payload + 4;
    if (payload > 112 || pos === 0 || delta < 0 || delta > 134217727 || pos + len > this.dataSize) {
      return this.reserveSlow(payload, ts);
    }
    const at = this.data + pos;
    this.dv.setUint32(at, ((len - 4) >> 2) | (delta << 5), true);
    this.pos = pos + len;
    this.lastTs = ts;
    return at + 4;
  }

  private reserveSlow(payload: number, ts: number): number {
    const len = eventLength(payload);
    let pos = this.pos;
    let delta = ts - this.lastTs;
    if (delta < 0) delta = 0;
    let extend = delta > MAX_DELTA ? TIME_EXTEND_LEN : 0;
    if (pos + extend + len > this.dataSize) {
      if (len > this.dataSize) {
        this.drop();
        return -1;
      }
      if (!this.nextPage(ts)) return -1;
      pos = 0;
      delta = 0;
      extend = 0;
    } else if (pos === 0) {
      writeU64(this.dv, this.data - SUBBUF_HEADER, ts);
      delta = 0;
      extend = 0;
    }
    let at = this.data + pos;
    const dv = this.dv;
    if (extend !== 0) {
      dv.setUint32(at, TYPE_TIME_EXTEND | ((delta & MAX_DELTA) << 5), true);
      dv.setUint32(at + 4, Math.floor(delta / 134217728), true);
      at += TIME_EXTEND_LEN;
      delta = 0;
    }
    if (payload <= MAX_SMALL_DATA) {
      dv.setUint32(at, ((len - 4) >> 2) | (delta << 5), true);
      at += 4;
    } else {
      dv.setUint32(at, delta << 5, true);
      dv.setUint32(at + 4, len - 4, true);
      at += 8;
    }
    this.pos = pos + extend + len;
    this.lastTs = ts;
    return at;
  }

  /**
   * Publish the event reserved last. On x86-64 a plain store is enough: the CPU makes stores
   * visible in program order (TSO) and V8 keeps typed-array stores in program order, so a reader
   * that sees the new commit sees the event. Elsewhere (weakly ordered CPUs) it is a release
   * store, Atomics.store. The choice is made once, at load time.
   */
  commit(): void {
    this.pageEntries++;
    this.f64[F_COMMITTED] = ++this.committed;
    if (ORDERED_STORES) this.i32[this.commitIndex] = this.pos;
    else Atomics.store(this.i32, this.commitIndex, this.pos);
  }

  /** Count an event that never reached the ring (full in producer/consumer mode, or too big). */
  drop(): void {
    this.f64[F_DROPPED] = ++this.dropped;
  }

  /**
   * Close the current page with padding, then move to the next one, dropping the oldest page
   * in overwrite mode. Returns false (and counts the event as dropped) when the ring is full in
   * producer/consumer mode.
   */
  private nextPage(ts: number): boolean {
    const v = this.view;
    const i32 = this.i32;
    const tail = Atomics.load(i32, I_TAIL);
    const next = v.advance(tail);
    for (;;) {
      const state = Atomics.load(i32, I_STATE);
      const head = state >>> v.kBits;
      if (v.distance(next, head) < v.pages) break;
      if (!v.overwrite) {
        // Like rb_move_tail()'s out_reset: the refused event still closes the tail page.
        this.closePage();
        this.drop();
        return false;
      }
      const headSlot = head % v.pages;
      const consumed = state & v.kMask;
      const dropped = (v.advance(head) << v.kBits) | 0;
      if (Atomics.compareExchange(i32, I_STATE, state, dropped) === state) {
        const lost = i32[v.entriesIndex + headSlot]! - consumed;
        this.f64[F_OVERRUN] = this.overrun += lost;
        break;
      }
    }
    this.closePage();
    const slot = next % v.pages;
    const seq = v.seqIndex + slot;
    Atomics.add(i32, seq, 1); // odd: readers discard copies of this page
    this.enterPage(slot);
    writeU64(this.dv, this.data - SUBBUF_HEADER, ts);
    Atomics.store(i32, this.commitIndex, 0);
    i32[v.entriesIndex + slot] = 0;
    Atomics.add(i32, seq, 1);
    Atomics.store(i32, I_TAIL, next);
    this.pos = 0;
    this.pageEntries = 0;
    return true;
  }

  /**
   * Pad the rest of the current page the way rb_reset_tail() does: room for a discarded event
   * (>= 8 bytes) becomes one, with time_delta 1, and commit covers the whole page; less room
   * gets a bare padding header and commit stays where the data ends.
   */
  private closePage(): void {
    const pos = this.pos;
    if (pos > this.dataSize) return;
    this.i32[this.view.entriesIndex + this.slot] = this.pageEntries;
    const room = this.dataSize - pos;
    const at = this.data + pos;
    if (room >= 8) {
      this.dv.setUint32(at, TYPE_PADDING | (1 << 5), true);
      this.dv.setUint32(at + 4, room - 4, true);
      Atomics.store(this.i32, this.commitIndex, this.dataSize);
    } else if (room >= 4) {
      this.dv.setUint32(at, TYPE_PADDING, true);
    }
    this.pos = this.dataSize + 1; // closed: the next event needs a new page
  }
}

/** One event found on a page. `offset` and `length` locate the payload in the page buffer. */
export interface PageEvent {
  ts: number;
  offset: number;
  length: number;
}

/**
 * Walk the events of one page (the bytes of a sub-buffer, header included), calling `fn` for
 * each data event. Returns the number of data events. Throws RangeError on a malformed page.
 */
export function forEachEvent(
  dv: DataView,
  pageStart: number,
  commit: number,
  fn: (ts: number, offset: number, length: number) => void,
): number {
  let ts = readU64(dv, pageStart);
  const data = pageStart + SUBBUF_HEADER;
  const end = data + commit;
  let at = data;
  let count = 0;
  while (at < end) {
    if (at + 4 > end) throw new RangeError(`event header crosses commit at page offset ${at - pageStart}`);
    const word = dv.getUint32(at, true);
    const type = word & 31;
    const delta = word >>> 5;
    if (type === TYPE_PADDING) {
      if (delta === 0) break;
      at += 4 + dv.getUint32(at + 4, true);
      continue;
    }
    if (type === TYPE_TIME_EXTEND) {
      ts += delta + dv.getUint32(at + 4, true) * 134217728;
      at += 8;
      continue;
    }
    if (type === 31) {
      ts = delta + dv.getUint32(at + 4, true) * 134217728;
      at += 8;
      continue;
    }
    ts += delta;
    let length: number;
    let payload: number;
    if (type === 0) {
      length = dv.getUint32(at + 4, true) - 4;
      payload = at + 8;
    } else {
      length = type * 4;
      payload = at + 4;
    }
    if (length < 0 || payload + length > end) {
      throw new RangeError(`event at page offset ${at - pageStart} runs past commit (${length} bytes)`);
    }
    fn(ts, payload, length);
    count++;
    at = payload + length;
  }
  return count;
}

export { I_STATE, I_TAIL, F_READ };
