/**
 * The persist worker: every `intervalMs` it copies the pages each ring completed since its last
 * look into that ring's region of the persist file (one pwrite per page), and rewrites the
 * region's partial slot with the page being written when it grew. It reads the rings the way
 * every reader does (seqlock-checked copies), so the emitting threads never wait for it.
 * Pages a ring recycled before the worker got to them are counted as lost.
 */
import { openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { COMMIT_OFFSET, COMMIT_SIZE_MASK } from '../ring/layout.js';
import { copyPageImage, pageSpan } from '../ring/reader.js';
import { RingView } from '../ring/ring.js';
import { FLAG_PARTIAL, SLOT_HEADER, SLOT_MAGIC, slotOffset, type PersistRegion } from './persist-format.js';
import type { PersistMessage } from './persist.js';

interface Mirror {
  region: PersistRegion;
  regionIndex: number;
  /** The ring's identity (MirroredRing.id). */
  ring: number;
  view: RingView;
  /** Counter of the next complete page to write; -1 before the first look. */
  next: number;
  /** Page number of `next`. */
  pageNo: number;
  partialCommit: number;
  partialPageNo: number;
  lost: number;
}

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const fd = openSync(file, 'r+');
let mirrors = new Map<number, Mirror>();
const buffers = new Map<number, Buffer>();

function slotBuffer(subbuf: number): Buffer {
  let b = buffers.get(subbuf);
  if (!b) buffers.set(subbuf, (b = Buffer.alloc(SLOT_HEADER + subbuf)));
  return b;
}

/** Copy one page of the ring into its slot; false when the writer recycled it meanwhile. */
function writePage(m: Mirror, slotIndex: number, counter: number, pageNo: number, flags: number): number {
  const view = m.view;
  const buf = slotBuffer(view.subbuf);
  buf.fill(0, SLOT_HEADER);
  if (copyPageImage(view, counter % view.pages, 0, buf, SLOT_HEADER) < 0) return -1;
  const commit = buf.readUInt32LE(SLOT_HEADER + COMMIT_OFFSET) & COMMIT_SIZE_MASK;
  buf.writeUInt32LE(SLOT_MAGIC, 0);
  buf.writeUInt32LE(m.regionIndex, 4);
  buf.writeUInt32LE(flags, 8);
  buf.writeUInt32LE(commit, 12);
  buf.writeDoubleLE(pageNo, 16);
  buf.writeUInt32LE(crc32(buf.subarray(SLOT_HEADER)), 24);
  buf.writeUInt32LE(0, 28);
  writeSync(fd, buf, 0, buf.length, slotOffset(m.region, slotIndex));
  return commit;
}

function mirror(m: Mirror): void {
  const view = m.view;
  const span = pageSpan(view);
  if (!span) return;
  if (m.next < 0) {
    m.next = span.head;
    m.pageNo = 0;
  }
  // Pages recycled before we got to them: skip to the oldest still held, counting the loss.
  const behind = view.distance(span.tail, m.next);
  const held = view.distance(span.tail, span.head);
  if (behind > held) {
    const skipped = behind - held;
    m.lost += skipped;
    m.pageNo += skipped;
    m.next = span.head;
  }
  while (m.next !== span.tail) {
    if (writePage(m, m.pageNo % m.region.slots, m.next, m.pageNo, 0) < 0) m.lost++;
    m.next = view.advance(m.next);
    m.pageNo++;
  }
  const commit = Atomics.load(view.i32, (view.pageOffset(span.tail % view.pages) + COMMIT_OFFSET) >> 2) & COMMIT_SIZE_MASK;
  if (commit !== m.partialCommit || m.partialPageNo !== m.pageNo) {
    const got = writePage(m, m.region.slots, span.tail, m.pageNo, FLAG_PARTIAL);
    if (got >= 0) {
      m.partialCommit = got;
      m.partialPageNo = m.pageNo;
    }
  }
}

function tick(): void {
  for (const m of mirrors.values()) mirror(m);
}

const timer = setInterval(tick, intervalMs);

parentPort!.on('message', (msg: PersistMessage) => {
  if (msg.kind === 'stop') {
    clearInterval(timer);
    tick();
    parentPort!.close();
    return;
  }
  const next = new Map<number, Mirror>();
  for (const ring of msg.rings) {
    const old = mirrors.get(ring.region);
    if (old && old.ring === ring.id) {
      old.region = msg.regions[ring.region]!;
      next.set(ring.region, old);
      continue;
    }
    const view = new RingView(ring.sab);
    // A ring that replaced another (resize, snapshot swap, clock change) is mirrored from its
    // page being written on: what it holds already came from a ring mirrored before.
    const span = old ? pageSpan(view) : null;
    next.set(ring.region, {
      region: msg.regions[ring.region]!,
      regionIndex: ring.region,
      ring: ring.id,
      view,
      next: span ? span.tail : -1,
      pageNo: old ? old.pageNo + 1 : 0,
      partialCommit: -1,
      partialPageNo: -1,
      lost: old?.lost ?? 0,
    });
  }
  mirrors = next;
  tick();
});
parentPort!.postMessage('ready');
