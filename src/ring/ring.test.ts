import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingView, RingWriter, forEachEvent, readU64 } from './ring.js';
import { RingConsumer, ringPageViews, ringPages, snapshotRing } from './reader.js';
import { PAGE_SIZE, TYPE_PADDING, TYPE_TIME_EXTEND, eventLength, pagesFor, sizeKbOf, subbufSizeFor } from './layout.js';

function ring(pages: number, overwrite = true, subbuf = PAGE_SIZE) {
  const view = RingView.create({ pages, subbuf, overwrite });
  return { view, writer: new RingWriter(view) };
}

/** Write one event whose payload is `payload` bytes of the 32-bit value `tag`. */
function put(writer: RingWriter, ts: number, tag: number, payload = 8): boolean {
  const at = writer.reserve(payload, ts);
  if (at < 0) return false;
  for (let i = 0; i < payload; i += 4) writer.dv.setUint32(at + i, tag, true);
  writer.commit();
  return true;
}

function tags(view: RingView): number[] {
  const list = snapshotRing(view);
  return list.off.map((o) => list.dv.getUint32(o, true));
}

test('event lengths follow rb_calculate_event_length', () => {
  assert.equal(eventLength(4), 8);
  assert.equal(eventLength(8), 16); // 12 would be a time extend + 4: bumped to 16
  assert.equal(eventLength(12), 16);
  assert.equal(eventLength(112), 116);
  assert.equal(eventLength(116), 124); // long form: header + length word
});

test('buffer_size_kb rounds to whole pages as the kernel does', () => {
  const sizes = [1, 3, 4, 8, 100, 200, 1408].map((kb) => sizeKbOf(pagesFor(kb, PAGE_SIZE), PAGE_SIZE));
  assert.deepEqual(sizes, [7, 7, 7, 11, 103, 203, 1410]);
  assert.equal(subbufSizeFor(3), PAGE_SIZE);
  assert.equal(subbufSizeFor(5), 2 * PAGE_SIZE);
  assert.equal(subbufSizeFor(16), 4 * PAGE_SIZE);
});

test('first event on a page has delta 0 and the page timestamp', () => {
  const { view, writer } = ring(2);
  put(writer, 1_000_000, 1);
  put(writer, 1_000_250, 2);
  const page = view.pageOffset(0);
  assert.equal(readU64(view.dv, page), 1_000_000);
  const w0 = view.dv.getUint32(page + 16, true);
  assert.equal(w0 & 31, 3);
  assert.equal(w0 >>> 5, 0);
  const w1 = view.dv.getUint32(page + 32, true);
  assert.equal(w1 >>> 5, 250);
  assert.deepEqual(tags(view), [1, 2]);
});

test('a gap of 2^27 ns or more gets a time extend, then the event with delta 0', () => {
  const { view, writer } = ring(2);
  const t0 = 5_000_000_000;
  const gap = 2 ** 27 + 12345;
  put(writer, t0, 1);
  put(writer, t0 + gap, 2);
  const page = view.pageOffset(0);
  const ext = view.dv.getUint32(page + 32, true);
  assert.equal(ext & 31, TYPE_TIME_EXTEND);
  assert.equal((ext >>> 5) + view.dv.getUint32(page + 36, true) * 2 ** 27, gap);
  assert.equal(view.dv.getUint32(page + 40, true) >>> 5, 0);
  const list = snapshotRing(view);
  assert.deepEqual(list.ts, [t0, t0 + gap]);
});

test('events that exactly fill a page need no padding; the next one starts a page', () => {
  const { view, writer } = ring(4);
  // 4080 bytes of data = 255 events of 16 bytes.
  for (let i = 0; i < 255; i++) put(writer, 100 + i, i);
  const commit = view.dv.getUint32(view.pageOffset(0) + 8, true);
  assert.equal(commit, 4080);
  put(writer, 1000, 255);
  assert.equal(view.dv.getUint32(view.pageOffset(0) + 8, true), 4080);
  assert.equal(readU64(view.dv, view.pageOffset(1)), 1000);
  assert.equal(tags(view).length, 256);
});

test('the rest of a page becomes a discarded-event padding when it has room for one', () => {
  const { view, writer } = ring(4);
  // 40-byte payload -> 44-byte events; 92 of them use 4048 bytes, leaving 32.
  for (let i = 0; i < 92; i++) put(writer, i, i, 40);
  put(writer, 100, 92, 40);
  const page = view.pageOffset(0);
  assert.equal(view.dv.getUint32(page + 8, true), 4080, 'commit covers the padding');
  const pad = view.dv.getUint32(page + 16 + 4048, true);
  assert.equal(pad & 31, TYPE_PADDING);
  assert.equal(pad >>> 5, 1);
  assert.equal(view.dv.getUint32(page + 16 + 4052, true), 28);
  let n = 0;
  forEachEvent(view.dv, page, 4080, () => n++);
  assert.equal(n, 92);
});

test('overwrite mode drops the oldest page and counts its events as overrun', () => {
  const { view, writer } = ring(2);
  for (let i = 0; i < 600; i++) put(writer, i, i);
  const c = view.counters();
  // 255 events a page: pages hold 510 at most; the writer dropped whole pages.
  assert.equal(c.committed, 600);
  assert.equal(c.overrun, 255);
  assert.equal(c.entries, 345);
  const got = tags(view);
  assert.equal(got.length, 345);
  assert.equal(got[0], 255);
  assert.equal(got.at(-1), 599);
});

test('producer/consumer mode keeps the oldest events and counts the new ones as dropped', () => {
  const { view, writer } = ring(2, false);
  for (let i = 0; i < 600; i++) put(writer, i, i);
  const c = view.counters();
  assert.equal(c.entries, 510);
  assert.equal(c.dropped, 90);
  assert.equal(c.overrun, 0);
  const got = tags(view);
  assert.equal(got[0], 0);
  assert.equal(got.at(-1), 509);
});

test('an event larger than a sub-buffer is rejected whole and counted', () => {
  const { view, writer } = ring(2);
  assert.equal(writer.reserve(4076, 1), -1);
  assert.equal(view.counters().dropped, 1);
  assert.ok(writer.reserve(4072, 1) > 0, 'the largest payload that fits is accepted');
});

test('consuming reads take the tail page in parts and whole pages by claim', () => {
  const { view, writer } = ring(3);
  const consumer = new RingConsumer(view);
  const seen: number[] = [];
  const take = () => {
    while (consumer.fill()) {
      while (consumer.hasPending) {
        const i = consumer.shift();
        seen.push(consumer.pending.dv.getUint32(consumer.pending.off[i]!, true));
      }
    }
  };
  for (let i = 0; i < 10; i++) put(writer, i, i);
  take();
  assert.equal(seen.length, 10);
  for (let i = 10; i < 700; i++) put(writer, i, i);
  take();
  assert.deepEqual(seen, Array.from({ length: 700 }, (_, i) => i));
  const c = view.counters();
  assert.equal(c.read, 700);
  assert.equal(c.entries, 0);
  assert.equal(c.bytes, 0);
});

test('a partly consumed page that is overwritten counts only its unread events as overrun', () => {
  const { view, writer } = ring(2);
  const consumer = new RingConsumer(view);
  for (let i = 0; i < 100; i++) put(writer, i, i);
  assert.ok(consumer.fill());
  assert.equal(consumer.pending.count, 100);
  // Fill the rest of page 0, page 1, then wrap: page 0 (100 read, 155 unread) is dropped.
  for (let i = 100; i < 600; i++) put(writer, i, i);
  const c = view.counters();
  assert.equal(c.read, 100);
  assert.equal(c.overrun, 155);
  assert.equal(c.committed, c.read + c.overrun + c.entries);
});

test('ringPages copies page images and leaves out what a consuming reader already took', () => {
  const { view, writer } = ring(8);
  for (let i = 0; i < 1000; i++) put(writer, 1000 + i * 7, i); // wraps: the oldest pages are overrun
  const consumer = new RingConsumer(view);
  assert.ok(consumer.fill());
  const taken = consumer.pending.count;
  const expected = snapshotRing(view);
  const pages = ringPages(view);
  assert.equal(pages.length % view.subbuf, 0);
  const ts: number[] = [];
  const seen: number[] = [];
  const dv = new DataView(pages.buffer, pages.byteOffset, pages.byteLength);
  for (let at = 0; at < pages.length; at += view.subbuf) {
    forEachEvent(dv, at, dv.getUint32(at + 8, true) & 0xfffff, (t, off) => {
      ts.push(t);
      seen.push(dv.getUint32(off, true));
    });
  }
  assert.ok(taken > 0);
  assert.deepEqual(ts, expected.ts);
  assert.deepEqual(seen, expected.off.map((o) => expected.dv.getUint32(o, true)));
});

test('ringPages rebuilds a head page that was partly consumed', () => {
  const { view, writer } = ring(4);
  for (let i = 0; i < 10; i++) put(writer, 500 + i * 3, i); // all on page 0, the tail page
  const consumer = new RingConsumer(view);
  assert.ok(consumer.fill()); // takes the 10 committed events: k = 10 on the head page
  for (let i = 10; i < 14; i++) put(writer, 500 + i * 3, i);
  const pages = ringPages(view);
  assert.equal(pages.length, view.subbuf);
  const dv = new DataView(pages.buffer, pages.byteOffset, pages.byteLength);
  const got: Array<[number, number]> = [];
  forEachEvent(dv, 0, dv.getUint32(8, true), (t, off) => got.push([t, dv.getUint32(off, true)]));
  assert.deepEqual(got, [[530, 10], [533, 11], [536, 12], [539, 13]]);
  assert.equal(readU64(dv, 0), 530);
  consumer.drain();
  assert.equal(ringPages(view).length, 0);
});

test('ringPageViews: the pages in place, and stable() turns false once the writer recycles one', () => {
  const { view, writer } = ring(4);
  for (let i = 0; i < 600; i++) put(writer, 1000 + i, i);
  const views = ringPageViews(view)!;
  const copies = ringPages(view);
  assert.equal(views.pages.length * view.subbuf, copies.length);
  views.pages.forEach((page, i) => {
    const commit = new DataView(page.buffer, page.byteOffset).getUint32(8, true);
    assert.deepEqual(page.subarray(0, 16 + commit), copies.subarray(i * view.subbuf, i * view.subbuf + 16 + commit));
  });
  assert.ok(views.stable());
  put(writer, 2000, 1); // still on the tail page: nothing recycled
  assert.ok(views.stable());
  for (let i = 0; i < 1000; i++) put(writer, 3000 + i, i); // laps the ring
  assert.equal(views.stable(), false);
});
