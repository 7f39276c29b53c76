/**
 * One trace array (the top level or `instances/NAME`): a ring per thread, its settings, and the
 * ways to read it. Threads play the kernel's CPUs. Lives on the controlling (main) thread; the
 * rings it creates are written by their threads and read here.
 */
import { fail } from '../errno.js';
import type { EventRegistry } from '../events/registry.js';
import {
  DEFAULT_TEXT_OPTIONS, lostLine, statsText, traceHeader, traceLine, type TextOptions,
} from '../format/text.js';
import { PAGE_SIZE, pagesFor, sizeKbOf, subbufSizeFor } from '../ring/layout.js';
import { EventList, RingConsumer, ringPageViews, ringPages, snapshotRing } from '../ring/reader.js';
import { RingView } from '../ring/ring.js';
import { CLOCKS, CLOCK_COUNTER, CLOCK_LOCAL, counterNow, isNanoClock, monoNow, type ClockName } from './clock.js';
import { ControlBlock, I_COUNTER } from './control.js';
import { migrateRing, type RingUpdate } from './thread.js';

/** A thread as the instances see it: the CPU it plays and how to hand it a ring. */
export interface ThreadInfo {
  cpu: number;
  name: string;
  /** Hand the thread a new ring; null once the thread has exited (nobody writes its rings). */
  deliver: ((u: RingUpdate) => void) | null;
}

interface CpuRing {
  view: RingView;
  /** A replacement handed to the writing thread, used once the thread retires `view`. */
  next: RingView | null;
  pages: number;
}

/** Largest buffer_size_kb accepted before answering ENOMEM, per thread. */
const MAX_BUFFER_KB = 4 * 1024 * 1024;
export const DEFAULT_BUFFER_KB = 1408;

const FLAGS = '.....';

export class Instance {
  readonly name: string;
  readonly slot: number;
  readonly textOptions: TextOptions = { ...DEFAULT_TEXT_OPTIONS };
  subbuf = PAGE_SIZE;
  overwrite = true;
  /** Files held open that pin the instance (rmdir answers EBUSY while any is). */
  openFiles = 0;
  pipeOpen = false;
  /** buffer_percent: how full a buffer must be before trace_pipe_raw hands out a page. */
  bufferPercent = 50;
  /** Set when the instance is removed: files still open on it then answer as stale. */
  removed = false;
  private readonly cpus: CpuRing[] = [];
  private readonly control: ControlBlock;
  private readonly registry: EventRegistry;
  private readonly threads: ThreadInfo[];
  private defaultPages: number;

  constructor(name: string, slot: number, control: ControlBlock, registry: EventRegistry, threads: ThreadInfo[], bufferKb: number) {
    this.name = name;
    this.slot = slot;
    this.control = control;
    this.registry = registry;
    this.threads = threads;
    this.defaultPages = pagesFor(bufferKb, this.subbuf);
    control.change(() => {
      control.setTracingOn(slot, true);
      control.setClock(slot, CLOCK_LOCAL);
      for (const t of threads) this.addThread(t);
    });
  }

  /** Give a (new) thread its ring in this instance. */
  addThread(t: ThreadInfo): void {
    const view = RingView.create({ pages: this.defaultPages, subbuf: this.subbuf, overwrite: this.overwrite });
    this.cpus[t.cpu] = { view, next: null, pages: this.defaultPages };
    t.deliver?.({ instance: this.slot, sab: view.sab, migrate: false });
  }

  get cpuCount(): number {
    return this.cpus.length;
  }

  /** The ring currently holding cpu's events. */
  ring(cpu: number): RingView {
    const r = this.cpus[cpu];
    if (!r) fail('ENOENT', `no per_cpu/cpu${cpu}`);
    if (r.next && r.view.retired) {
      r.view = r.next;
      r.next = null;
    }
    return r.view;
  }

  private replaceRing(cpu: number, pages: number, migrate: boolean): void {
    const r = this.cpus[cpu]!;
    const view = RingView.create({ pages, subbuf: this.subbuf, overwrite: this.overwrite });
    const thread = this.threads[cpu]!;
    r.pages = pages;
    if (thread.deliver) {
      r.next = view;
      thread.deliver({ instance: this.slot, sab: view.sab, migrate });
    } else {
      // Nobody writes this ring any more: move its events here and now.
      if (migrate) migrateRing(this.ring(cpu), view);
      r.view = view;
      r.next = null;
    }
  }

  // ---- settings -------------------------------------------------------------------------

  /** buffer_size_kb: per thread (cpu) or, without cpu, for all and for threads yet to come. */
  bufferSizeKb(cpu?: number): string {
    if (cpu !== undefined) {
      this.ring(cpu);
      return `${sizeKbOf(this.cpus[cpu]!.pages, this.subbuf)}\n`;
    }
    const sizes = new Set(this.cpus.map((r) => r.pages));
    if (sizes.size > 1) return 'X\n';
    return `${sizeKbOf(this.cpus[0]?.pages ?? this.defaultPages, this.subbuf)}\n`;
  }

  totalSizeKb(): string {
    return `${this.cpus.reduce((sum, r) => sum + sizeKbOf(r.pages, this.subbuf), 0)}\n`;
  }

  setBufferSizeKb(kb: number, cpu?: number): void {
    if (kb === 0) fail('EINVAL', 'buffer_size_kb must be at least 1');
    if (kb > MAX_BUFFER_KB) fail('ENOMEM', `cannot allocate ${kb} kB per buffer`);
    const pages = pagesFor(kb, this.subbuf);
    this.ensureRingFits(pages);
    const targets = cpu === undefined ? this.cpus.map((_, i) => i) : [cpu];
    if (cpu === undefined) this.defaultPages = pages;
    this.control.change(() => {
      for (const c of targets) {
        this.ring(c);
        if (this.cpus[c]!.pages !== pages) this.replaceRing(c, pages, true);
      }
    });
  }

  subbufSizeKb(): string {
    return `${this.subbuf / 1024}\n`;
  }

  /** buffer_subbuf_size_kb: rounds up to a power-of-two number of pages, 1..128; discards data. */
  setSubbufSizeKb(kb: number): void {
    if (kb === 0) fail('EINVAL', 'sub-buffer size must be at least 1 kB');
    const subbuf = subbufSizeFor(kb);
    if (subbuf > 128 * PAGE_SIZE) fail('EINVAL', 'sub-buffers are at most 128 pages');
    if (subbuf === this.subbuf) return;
    // Keep each buffer's size in bytes of data, as the kernel recomputes pages per sub-buffer.
    const kbs = this.cpus.map((r) => sizeKbOf(r.pages, this.subbuf));
    const defaultKb = sizeKbOf(this.defaultPages, this.subbuf);
    this.subbuf = subbuf;
    this.defaultPages = pagesFor(defaultKb, subbuf);
    this.control.change(() => this.cpus.forEach((_, c) => this.replaceRing(c, pagesFor(kbs[c]!, subbuf), false)));
  }

  private ensureRingFits(pages: number): void {
    try {
      RingView.create({ pages, subbuf: this.subbuf, overwrite: this.overwrite }).sab.byteLength;
    } catch {
      fail('ENOMEM', `cannot allocate ${pages} sub-buffers`);
    }
  }

  setOverwrite(on: boolean): void {
    this.overwrite = on;
    for (let c = 0; c < this.cpus.length; c++) {
      this.ring(c).overwrite = on;
      if (this.cpus[c]!.next) this.cpus[c]!.next!.overwrite = on;
    }
  }

  get clock(): number {
    return this.control.clock(this.slot);
  }

  /** This thread's (cpu's) unread events as whole sub-buffer pages, oldest first (for trace.dat). */
  pages(cpu: number): Uint8Array {
    return ringPages(this.ring(cpu));
  }

  /** The same pages as views into the ring, to write out and then check (see ringPageViews). */
  pageViews(cpu: number): ReturnType<typeof ringPageViews> {
    return ringPageViews(this.ring(cpu));
  }

  get clockName(): string {
    return CLOCKS[this.clock]!;
  }

  clockText(): string {
    return CLOCKS.map((c, i) => (i === this.clock ? `[${c}]` : c)).join(' ') + '\n';
  }

  /**
   * trace_clock: switching resets the buffers, as the kernel's ring_buffer_reset() does: deltas
   * from one clock mean nothing in another, so each thread starts a fresh ring.
   */
  setClock(name: string): void {
    const index = CLOCKS.indexOf(name as ClockName);
    if (index < 0) fail('EINVAL', `unknown clock '${name}' (have: ${CLOCKS.join(' ')})`);
    if (index === this.clock) return;
    this.control.change(() => {
      this.control.setClock(this.slot, index);
      this.cpus.forEach((r, c) => this.replaceRing(c, r.pages, false));
    });
  }

  now(): number {
    return this.clock === CLOCK_COUNTER ? counterNow(this.control.i32, I_COUNTER) : monoNow();
  }

  // ---- reading --------------------------------------------------------------------------

  /** Empty the buffers (all, or one cpu's) and zero their counters: `echo > trace`. */
  clear(cpu?: number): void {
    const targets = cpu === undefined ? this.cpus.map((_, i) => i) : [cpu];
    for (const c of targets) {
      const view = this.ring(c);
      new RingConsumer(view).drain();
      view.rebaseCounters();
    }
  }

  private commFor(cpu: number): string {
    return this.threads[cpu]?.name ?? `cpu${cpu}`;
  }

  private line(cpu: number, list: EventList, i: number): string {
    const off = list.off[i]!;
    const dv = list.dv;
    const id = dv.getUint16(off, true);
    const pid = dv.getInt32(off + 4, true);
    const type = this.registry.byId(id);
    let text: string;
    try {
      text = type ? type.text(dv, off, list.len[i]!) : `Unknown type ${id}`;
    } catch (err) {
      text = `${type?.name ?? id}: <unreadable record: ${(err as Error).message}>`;
    }
    return traceLine(this.textOptions, isNanoClock(this.clock), {
      comm: this.commFor(cpu), pid, tgid: pid, cpu, flags: FLAGS, ts: list.ts[i]!, text,
    });
  }

  /** `trace` (or per_cpu/cpuN/trace): header, then every event merged by timestamp. */
  traceText(cpu?: number): string {
    const cpus = cpu === undefined ? this.cpus.map((_, i) => i) : [cpu];
    let entries = 0;
    let written = 0;
    const lists = cpus.map((c) => {
      const counters = this.ring(c).counters();
      entries += counters.entries;
      written += counters.entries + counters.overrun;
      return snapshotRing(this.ring(c));
    });
    const out = [traceHeader(this.textOptions, entries, written, this.cpus.length)];
    const next = lists.map(() => 0);
    for (;;) {
      let best = -1;
      for (let i = 0; i < lists.length; i++) {
        if (next[i]! < lists[i]!.count && (best < 0 || lists[i]!.ts[next[i]!]! < lists[best]!.ts[next[best]!]!)) best = i;
      }
      if (best < 0) break;
      out.push(this.line(cpus[best]!, lists[best]!, next[best]!++));
    }
    return out.join('');
  }

  statsText(cpu: number): string {
    const c = this.ring(cpu).counters();
    return statsText(
      { entries: c.entries, overrun: c.overrun, commitOverrun: 0, bytes: c.bytes, oldestTs: c.oldestTs, nowTs: this.now(), dropped: c.dropped, read: c.read },
      isNanoClock(this.clock),
    );
  }

  /** Totals over all threads, for benchmarks and tests. */
  totals(): { committed: number; overrun: number; dropped: number; read: number; entries: number } {
    const t = { committed: 0, overrun: 0, dropped: 0, read: 0, entries: 0 };
    for (let c = 0; c < this.cpus.length; c++) {
      const r = this.ring(c).counters();
      t.committed += r.committed;
      t.overrun += r.overrun;
      t.dropped += r.dropped;
      t.read += r.read;
      t.entries += r.entries;
    }
    return t;
  }

  /** A consuming reader over all threads (or one), merging by timestamp: trace_pipe. */
  openPipe(cpu?: number): PipeReader {
    if (this.pipeOpen) fail('EBUSY', 'trace_pipe is already open');
    this.pipeOpen = true;
    return new PipeReader(this, cpu === undefined ? this.cpus.map((_, i) => i) : [cpu]);
  }

  /**
   * A reader of one CPU's raw pages (trace_pipe_raw). It hands a page out once the buffer is
   * `buffer_percent` full, or at once when forced (a final drain) or when buffer_percent is 0.
   */
  openRawPipe(cpu: number): RawPipe {
    let consumer = new RingConsumer(this.ring(cpu));
    return {
      readPage: (force = false) => {
        const view = this.ring(cpu);
        // After a resize the CPU writes into a new ring: follow it, carrying the loss count.
        if (consumer.view !== view) consumer = new RingConsumer(view, consumer.lastOverrun);
        if (!force && this.bufferPercent > 0) {
          const c = view.counters();
          if (c.bytes * 100 < view.pages * view.dataSize * this.bufferPercent) return null;
        }
        return consumer.takePage();
      },
    };
  }

  /** Used by PipeReader. */
  formatLine(cpu: number, list: EventList, i: number): string {
    return this.line(cpu, list, i);
  }
}

export interface RawPipe {
  /** The next page, or null (nothing new, or the buffer not yet buffer_percent full). */
  readPage(force?: boolean): Uint8Array | null;
}

export class PipeReader {
  private readonly instance: Instance;
  private readonly cpus: number[];
  private consumers: RingConsumer[];
  private closed = false;

  constructor(instance: Instance, cpus: number[]) {
    this.instance = instance;
    this.cpus = cpus;
    this.consumers = cpus.map((c) => new RingConsumer(instance.ring(c)));
  }

  /** Consume up to `max` events as text lines; empty when nothing is there yet. */
  readAvailable(max = 4096): string {
    if (this.closed) return '';
    // Follow rings that were replaced (resize) since the last read.
    this.consumers = this.consumers.map((c, i) => {
      const view = this.instance.ring(this.cpus[i]!);
      return c.view === view ? c : new RingConsumer(view, c.lastOverrun);
    });
    const out: string[] = [];
    while (out.length < max) {
      let best = -1;
      for (let i = 0; i < this.consumers.length; i++) {
        const c = this.consumers[i]!;
        if (!c.fill()) continue;
        if (best < 0 || c.peekTs() < this.consumers[best]!.peekTs()) best = i;
      }
      if (best < 0) break;
      const c = this.consumers[best]!;
      if (c.lost > 0) {
        out.push(lostLine(this.cpus[best]!, c.lost));
        c.lost = 0;
      }
      out.push(this.instance.formatLine(this.cpus[best]!, c.pending, c.shift()));
    }
    return out.join('');
  }

  /** Lines as they arrive; waits (without blocking the event loop) while the buffers are empty. */
  async *lines(pollMs = 20): AsyncGenerator<string> {
    try {
      while (!this.closed) {
        const text = this.readAvailable();
        if (!text) {
          await new Promise((r) => setTimeout(r, pollMs));
          continue;
        }
        for (const line of text.split('\n')) if (line) yield line;
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.instance.pipeOpen = false;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
