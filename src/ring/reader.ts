/**
 * Reading rings from any thread. Both readers copy a page, then re-check its sequence number:
 * a page the writer recycled during the copy is discarded (its events are already counted as
 * overrun by the writer), so nothing half-written is ever decoded.
 */
import { COMMIT_OFFSET, COMMIT_SIZE_MASK, MISSED_EVENTS, MISSED_STORED, SUBBUF_HEADER } from './layout.js';
import { F_READ, I_STATE, I_TAIL, RingView, RingWriter, forEachEvent } from './ring.js';

/** Events copied out of a ring, in ring order. Payload i is `bytes[off[i] .. off[i]+len[i])`. */
export class EventList {
  readonly ts: number[] = [];
  readonly off: number[] = [];
  readonly len: number[] = [];
  bytes: Uint8Array;
  dv: DataView;
  private used = 0;

  constructor(capacity = 4096) {
    this.bytes = new Uint8Array(capacity);
    this.dv = new DataView(this.bytes.buffer);
  }

  get count(): number {
    return this.ts.length;
  }

  /** Append a page image; returns its start offset in `bytes`. */
  addPage(src: Uint8Array, start: number, length: number): number {
    if (this.used + length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.used + length));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
      this.dv = new DataView(grown.buffer);
    }
    const at = this.used;
    this.bytes.set(src.subarray(start, start + length), at);
    this.used += length;
    return at;
  }

  /** Drop a page image added last (its copy turned out to be torn). */
  truncate(to: number): void {
    this.used = to;
  }

  push(ts: number, off: number, len: number): void {
    this.ts.push(ts);
    this.off.push(off);
    this.len.push(len);
  }

  popTo(count: number): void {
    this.ts.length = count;
    this.off.length = count;
    this.len.length = count;
  }

  clear(): void {
    this.popTo(0);
    this.used = 0;
  }
}

const MAX_RETRIES = 1000;

/**
 * Copy page `slot` into `out` if its sequence number is stable across the copy. Returns the
 * events appended (skipping the first `skip`) or -1 when the copy was torn.
 */
function copyPage(view: RingView, slot: number, skip: number, out: EventList): number {
  const seqIndex = view.seqIndex + slot;
  const before = Atomics.load(view.i32, seqIndex);
  if (before & 1) return -1;
  const page = view.pageOffset(slot);
  const commit = Atomics.load(view.i32, (page + COMMIT_OFFSET) >> 2) & COMMIT_SIZE_MASK;
  const mark = out.count;
  const at = out.addPage(view.u8, page, SUBBUF_HEADER + commit);
  if (Atomics.load(view.i32, seqIndex) !== before) {
    out.truncate(at);
    return -1;
  }
  let index = 0;
  try {
    forEachEvent(out.dv, at, commit, (ts, off, len) => {
      if (index++ >= skip) out.push(ts, off, len);
    });
  } catch (err) {
    out.popTo(mark);
    out.truncate(at);
    throw err;
  }
  return out.count - mark;
}

/** A non-consuming copy of everything a ring holds (what `trace` shows). */
export function snapshotRing(view: RingView, out = new EventList()): EventList {
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    out.clear();
    const state = Atomics.load(view.i32, I_STATE);
    const tail = Atomics.load(view.i32, I_TAIL);
    let head = state >>> view.kBits;
    const span = view.distance(tail, head);
    if (span >= view.pages) return out;
    let skip = state & view.kMask;
    let torn = false;
    for (let i = 0; i <= span; i++, head = view.advance(head), skip = 0) {
      // A torn page was recycled by the writer: its events are overrun now. Only the first
      // (oldest) page can legitimately be lost that way; later ones mean we were lapped.
      if (copyPage(view, head % view.pages, skip, out) < 0) {
        if (i === 0) continue;
        torn = true;
        break;
      }
    }
    if (!torn) return out;
  }
  return out;
}

/**
 * The consuming reader of one ring (trace_pipe). Each fill() claims the oldest page (or, on the
 * page still being written, the events committed so far) and moves its events into `pending`.
 */
export class RingConsumer {
  readonly view: RingView;
  readonly pending = new EventList();
  private next = 0;
  /** The ring's overrun count when this reader last delivered; a later rise is reported as lost. */
  lastOverrun: number;
  /** Events overwritten since the previous delivery, for `[LOST N EVENTS]`. */
  lost = 0;

  /** `lastOverrun`: carry it over when following a ring that replaced another (a resize). */
  constructor(view: RingView, lastOverrun = view.counters().overrun) {
    this.view = view;
    this.lastOverrun = lastOverrun;
  }

  get hasPending(): boolean {
    return this.next < this.pending.count;
  }

  peekTs(): number {
    return this.pending.ts[this.next]!;
  }

  /** Index into `pending` of the next event, then advances. */
  shift(): number {
    return this.next++;
  }

  /** Claim more events. Returns false when the ring has nothing new. */
  fill(): boolean {
    if (this.hasPending) return true;
    const view = this.view;
    const i32 = view.i32;
    const out = this.pending;
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      out.clear();
      this.next = 0;
      const state = Atomics.load(i32, I_STATE);
      const tail = Atomics.load(i32, I_TAIL);
      const head = state >>> view.kBits;
      const span = view.distance(tail, head);
      if (span >= view.pages) return false;
      const consumed = state & view.kMask;
      const got = copyPage(view, head % view.pages, consumed, out);
      if (got < 0) continue;
      const onTail = span === 0;
      if (onTail && got === 0) return false;
      const claimed = onTail
        ? (head << view.kBits) | (consumed + got)
        : (view.advance(head) << view.kBits) | 0;
      if (Atomics.compareExchange(i32, I_STATE, state, claimed) !== state) continue;
      const f64 = view.f64;
      f64[F_READ] = f64[F_READ]! + got;
      if (got > 0) {
        const overrun = view.counters().overrun;
        if (overrun > this.lastOverrun) this.lost += overrun - this.lastOverrun;
        this.lastOverrun = overrun;
        return true;
      }
    }
    return false;
  }

  /**
   * The next claimed events as one sub-buffer page, as trace_pipe_raw hands pages out: the
   * events of one ring page (or those committed so far on the page being written), and, when
   * events were overwritten since the last delivery, the kernel's missed-events flags with
   * the count stored after the data where it fits. Null when there is nothing new.
   */
  takePage(): Uint8Array | null {
    if (this.hasPending || !this.fill()) return null;
    const page = pageOf(this.pending, this.view.subbuf);
    this.next = this.pending.count;
    if (this.lost > 0) {
      const dv = new DataView(page.buffer);
      const size = dv.getUint32(COMMIT_OFFSET, true) & COMMIT_SIZE_MASK;
      let flags = MISSED_EVENTS;
      if (SUBBUF_HEADER + size + 8 <= page.length) {
        dv.setBigUint64(SUBBUF_HEADER + size, BigInt(this.lost), true);
        flags |= MISSED_STORED;
      }
      dv.setUint32(COMMIT_OFFSET, (size | flags) >>> 0, true);
      this.lost = 0;
    }
    return page;
  }

  /** Consume everything currently in the ring without delivering it (a clear). */
  drain(): void {
    while (this.fill()) this.next = this.pending.count;
    this.lastOverrun = this.view.counters().overrun;
    this.lost = 0;
  }
}

/**
 * The unread events of a ring as whole sub-buffer pages, oldest first: what a trace.dat holds
 * per CPU. Page images are copied as they are (seqlock-checked like snapshotRing), with the
 * bytes past each page's commit zeroed; only a head page a consuming reader has partly taken is
 * rebuilt, without the events already read. Empty pages are left out.
 */
export function ringPages(view: RingView): Uint8Array {
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    const state = Atomics.load(view.i32, I_STATE);
    const tail = Atomics.load(view.i32, I_TAIL);
    let head = state >>> view.kBits;
    const span = view.distance(tail, head);
    if (span >= view.pages) break;
    const out = new Uint8Array((span + 1) * view.subbuf);
    let used = 0;
    let torn = false;
    for (let i = 0, skip = state & view.kMask; i <= span; i++, head = view.advance(head), skip = 0) {
      const got = copyPageImage(view, head % view.pages, skip, out, used);
      if (got < 0) {
        // As in snapshotRing: only the oldest page may be recycled under us.
        if (i === 0) continue;
        torn = true;
        break;
      }
      used += got;
    }
    if (!torn) return out.subarray(0, used);
  }
  return new Uint8Array(0);
}

/**
 * The unread pages of a ring as views into its memory, not copies, for writing straight to a
 * file; null when a page is being recycled right now. Bytes past a page's commit are left as
 * they are (readers stop at commit). Once the views are written, `stable()` says whether the
 * writer recycled any of those pages meanwhile; if it did, the write must be redone (ringPages).
 * A head page partly taken by a consuming reader is rebuilt into a copy, as in ringPages.
 */
export function ringPageViews(view: RingView): { pages: Uint8Array[]; stable(): boolean } | null {
  const state = Atomics.load(view.i32, I_STATE);
  const tail = Atomics.load(view.i32, I_TAIL);
  let head = state >>> view.kBits;
  const span = view.distance(tail, head);
  const pages: Uint8Array[] = [];
  const seen: Array<[number, number]> = [];
  if (span >= view.pages) return { pages, stable: () => true };
  for (let i = 0, skip = state & view.kMask; i <= span; i++, head = view.advance(head), skip = 0) {
    const slot = head % view.pages;
    const seqIndex = view.seqIndex + slot;
    const seq = Atomics.load(view.i32, seqIndex);
    if (seq & 1) return null;
    seen.push([seqIndex, seq]);
    const page = view.pageOffset(slot);
    if (skip > 0) {
      const copy = new Uint8Array(view.subbuf);
      const got = copyPageImage(view, slot, skip, copy, 0);
      if (got < 0) return null;
      if (got > 0) pages.push(copy);
    } else if (Atomics.load(view.i32, (page + COMMIT_OFFSET) >> 2) & COMMIT_SIZE_MASK) {
      pages.push(view.u8.subarray(page, page + view.subbuf));
    }
  }
  return { pages, stable: () => seen.every(([index, seq]) => Atomics.load(view.i32, index) === seq) };
}

/**
 * Copy page `slot` whole into `out` at `at`, dropping its first `skip` events. Returns the bytes
 * used (0 for a page with nothing left, else the sub-buffer size) or -1 when the copy was torn.
 */
export function copyPageImage(view: RingView, slot: number, skip: number, out: Uint8Array, at: number): number {
  const seqIndex = view.seqIndex + slot;
  const before = Atomics.load(view.i32, seqIndex);
  if (before & 1) return -1;
  const page = view.pageOffset(slot);
  const word = Atomics.load(view.i32, (page + COMMIT_OFFSET) >> 2);
  const commit = word & COMMIT_SIZE_MASK;
  out.set(view.u8.subarray(page, page + SUBBUF_HEADER + commit), at);
  if (Atomics.load(view.i32, seqIndex) !== before) return -1;
  // The writer may have committed more since we read `commit`: the copy's header must say what
  // the copy holds, not what the page held a moment later.
  new DataView(out.buffer, out.byteOffset + at + COMMIT_OFFSET, 4).setInt32(0, word, true);
  if (commit === 0) return 0;
  if (skip === 0) return view.subbuf;
  const image = out.slice(at, at + view.subbuf);
  out.fill(0, at, at + view.subbuf);
  const rest = new EventList(view.subbuf);
  rest.addPage(image, 0, view.subbuf);
  let index = 0;
  forEachEvent(rest.dv, 0, commit, (ts, off, len) => {
    if (index++ >= skip) rest.push(ts, off, len);
  });
  if (rest.count === 0) return 0;
  out.set(pageOf(rest, view.subbuf), at);
  return view.subbuf;
}

/**
 * Events that came from one page (or part of one), written again as one page image: the
 * first event's time moves into the header, and the rest keep their deltas, so they fit.
 */
function pageOf(events: EventList, subbuf: number): Uint8Array {
  const copy = RingView.create({ pages: 2, subbuf, overwrite: false });
  writeEvents(events, new RingWriter(copy));
  const at = copy.pageOffset(0);
  return copy.u8.slice(at, at + subbuf);
}

/** Write copied events into a ring, in order and with their timestamps. */
export function writeEvents(events: EventList, writer: RingWriter): void {
  for (let i = 0; i < events.count; i++) {
    const len = events.len[i]!;
    const at = writer.reserve(len, events.ts[i]!);
    if (at < 0) continue;
    writer.u8.set(events.bytes.subarray(events.off[i]!, events.off[i]! + len), at);
    writer.commit();
  }
}

/**
 * Page counters of a ring for a mirror that follows the writer (the persist worker): the
 * oldest page still held and the page being written; null while the ring is empty.
 */
export function pageSpan(view: RingView): { head: number; tail: number } | null {
  const head = Atomics.load(view.i32, I_STATE) >>> view.kBits;
  const tail = Atomics.load(view.i32, I_TAIL);
  return view.distance(tail, head) >= view.pages ? null : { head, tail };
}
