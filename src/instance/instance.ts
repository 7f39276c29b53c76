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
import { InstanceRules } from './rules.js';
import { migrateRing, type ThreadUpdate } from './thread.js';

/** A thread as the instances see it: the CPU it plays and how to hand it a ring. */
export interface ThreadInfo {
  cpu: number;
  name: string;
  /** Hand the thread a new ring; null once the thread has exited (nobody writes its rings). */
  deliver: ((u: ThreadUpdate) => void) | null;
}

/**
 * One thread's buffers in this instance: two sets, the live one and, once a snapshot is
 * allocated, the spare. A snapshot swaps which set is live (see control.ts); nothing is copied.
 */
interface CpuRing {
  sets: [RingView, RingView | null];
  /** Replacements handed to the writing thread, used once the thread retires the old view. */
  next: [RingView | null, RingView | null];
  pages: number;
}

/** Largest buffer_size_kb accepted before answering ENOMEM, per thread. */
const MAX_BUFFER_KB = 4 * 1024 * 1024;
export const DEFAULT_BUFFER_KB = 1408;

const FLAGS = '.....';
let emptyRing: RingView | null = null;
const EMPTY_RING = () => (emptyRing ??= RingView.create({ pages: 2, subbuf: PAGE_SIZE, overwrite: true }));

const SNAPSHOT_NUMBERS_HELP = `#                      (Doesn't have to be '2' works with any number that
#                       is not a '0' or '1')
`;
/** The kernel's show_snapshot_main_help() and show_snapshot_percpu_help() (no per-CPU swap). */
const SNAPSHOT_HELP = `# echo 0 > snapshot : Clears and frees snapshot buffer
# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.
#                      Takes a snapshot of the main buffer.
# echo 2 > snapshot : Clears snapshot buffer (but does not allocate or free)
${SNAPSHOT_NUMBERS_HELP}`;
const SNAPSHOT_CPU_HELP = `# echo 0 > snapshot : Invalid for per_cpu snapshot file.
# echo 1 > snapshot : Not supported with this kernel.
#                      Must use main snapshot file to allocate.
# echo 2 > snapshot : Clears this cpu's snapshot buffer (but does not allocate)
${SNAPSHOT_NUMBERS_HELP}`;

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
  /** Filters, triggers and error_log. */
  readonly rules: InstanceRules;
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
    const main = threads[0]!;
    this.rules = new InstanceRules({
      slot,
      control,
      registry,
      publish: (u) => {
        for (const t of threads) t.deliver?.(u);
      },
      threadCount: () => threads.length,
      allocateSnapshot: () => this.allocateSnapshot(),
      now: () => monoNow(),
      thread: { cpu: 0, pid: process.pid, comm: main.name },
    });
    control.change(() => {
      control.setTracingOn(slot, true);
      control.setClock(slot, CLOCK_LOCAL);
      for (const t of threads) this.addThread(t);
    });
  }

  /** Give a (new) thread its ring in this instance (and a spare when a snapshot is allocated). */
  addThread(t: ThreadInfo): void {
    const live = this.control.liveSet(this.slot);
    const r: CpuRing = { sets: [null!, null], next: [null, null], pages: this.defaultPages };
    this.cpus[t.cpu] = r;
    const give = (set: number) => {
      const view = this.newRing(this.defaultPages);
      r.sets[set] = view;
      t.deliver?.({ instance: this.slot, set, sab: view.sab, migrate: false });
    };
    give(live);
    if (this.control.snapshotAllocated(this.slot)) give(1 - live);
    for (const u of this.rules.updates()) t.deliver?.(u);
  }

  private newRing(pages: number): RingView {
    return RingView.create({ pages, subbuf: this.subbuf, overwrite: this.overwrite });
  }

  get cpuCount(): number {
    return this.cpus.length;
  }

  /** The ring currently holding cpu's events. */
  ring(cpu: number): RingView {
    return this.setView(cpu, this.control.liveSet(this.slot))!;
  }

  /** The snapshot (spare) ring of cpu, or null when no snapshot is allocated. */
  snapshotRing(cpu: number): RingView | null {
    return this.control.snapshotAllocated(this.slot) ? this.setView(cpu, 1 - this.control.liveSet(this.slot)) : null;
  }

  private setView(cpu: number, set: number): RingView | null {
    const r = this.cpus[cpu];
    if (!r) fail('ENOENT', `no per_cpu/cpu${cpu}`);
    const next = r.next[set];
    if (next && r.sets[set]?.retired) {
      r.sets[set] = next;
      r.next[set] = null;
    }
    return r.sets[set] ?? null;
  }

  /** Replace cpu's ring in `set` (the live one by default); `pages` 0 frees it. */
  private replaceRing(cpu: number, pages: number, migrate: boolean, set = this.control.liveSet(this.slot)): void {
    const r = this.cpus[cpu]!;
    const old = this.setView(cpu, set);
    const view = pages ? this.newRing(pages) : null;
    const thread = this.threads[cpu]!;
    if (set === this.control.liveSet(this.slot)) r.pages = pages;
    if (thread.deliver && old) {
      if (view) r.next[set] = view;
      else r.sets[set] = null;
      thread.deliver({ instance: this.slot, set, sab: view?.sab ?? null, migrate });
    } else {
      // Nobody writes this ring (any more): move its events here and now.
      if (migrate && old && view) migrateRing(old, view);
      r.sets[set] = view;
      r.next[set] = null;
      if (view) thread.deliver?.({ instance: this.slot, set, sab: view.sab, migrate: false });
    }
  }

  /** Replace every ring of both sets (a resize keeps their events; a clock or sub-buffer change drops them). */
  private replaceAll(pagesOf: (cpu: number) => number, migrate: boolean, cpus = this.cpus.map((_, i) => i)): void {
    const live = this.control.liveSet(this.slot);
    const spare = this.control.snapshotAllocated(this.slot);
    for (const c of cpus) {
      this.replaceRing(c, pagesOf(c), migrate, live);
      if (spare) this.replaceRing(c, pagesOf(c), migrate, 1 - live);
    }
  }

  // ---- snapshot -------------------------------------------------------------------------

  /**
   * Write to `snapshot` (or per_cpu/cpuN/snapshot), with the kernel's table: `0` frees the
   * spare, `1` allocates it if needed and swaps, any other number clears it without freeing;
   * nothing happens to an unallocated snapshot but allocation. Per CPU, `1` cannot swap one
   * CPU alone and `0` cannot free one (EINVAL); another number clears that CPU's snapshot.
   */
  writeSnapshot(value: number, cpu?: number): void {
    const allocated = this.control.snapshotAllocated(this.slot);
    if (cpu !== undefined) {
      this.ring(cpu);
      if (value === 0 || value === 1) fail('EINVAL', 'a single CPU cannot be swapped or freed');
      if (allocated) this.clearRing(this.snapshotRing(cpu)!);
      return;
    }
    if (value === 0) return this.freeSnapshot();
    if (value === 1) return this.snapshot();
    if (allocated) for (let c = 0; c < this.cpus.length; c++) this.clearRing(this.snapshotRing(c)!);
  }

  /** Allocate the spare buffers (each the size of the live one) if they are not there yet. */
  allocateSnapshot(): void {
    if (this.control.snapshotAllocated(this.slot)) return;
    const spare = 1 - this.control.liveSet(this.slot);
    this.control.change(() => {
      this.cpus.forEach((r, c) => {
        const view = this.newRing(r.pages);
        r.sets[spare] = view;
        r.next[spare] = null;
        this.threads[c]!.deliver?.({ instance: this.slot, set: spare, sab: view.sab, migrate: false });
      });
      this.control.setSnapshotAllocated(this.slot, true);
    });
  }

  /** Take a snapshot: swap the live buffers with the spare ones (allocated first if needed). O(1) in buffer size. */
  snapshot(): void {
    this.allocateSnapshot();
    this.control.change(() => this.control.swapSnapshot(this.slot));
  }

  freeSnapshot(): void {
    if (!this.control.snapshotAllocated(this.slot)) return;
    const spare = 1 - this.control.liveSet(this.slot);
    this.control.change(() => {
      this.control.setSnapshotAllocated(this.slot, false);
      this.cpus.forEach((_, c) => this.replaceRing(c, 0, false, spare));
    });
  }

  get snapshotAllocated(): boolean {
    return this.control.snapshotAllocated(this.slot);
  }

  /** Snapshots taken so far (by writes, the API or triggers in any thread). */
  get snapshotCount(): number {
    return this.control.swaps(this.slot);
  }

  private clearRing(view: RingView): void {
    new RingConsumer(view).drain();
    view.rebaseCounters();
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
    for (const c of targets) this.ring(c);
    this.control.change(() => this.replaceAll(() => pages, true, targets.filter((c) => this.cpus[c]!.pages !== pages)));
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
    this.control.change(() => this.replaceAll((c) => pagesFor(kbs[c]!, subbuf), false));
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
    for (const r of this.cpus) for (const v of [...r.sets, ...r.next]) if (v) v.overwrite = on;
  }

  get clock(): number {
    return this.control.clock(this.slot);
  }

  /** The live ring, or with `snapshot` the spare (an empty ring when none is allocated). */
  private bufferOf(cpu: number, snapshot: boolean): RingView {
    return snapshot ? this.snapshotRing(cpu) ?? (this.ring(cpu), EMPTY_RING()) : this.ring(cpu);
  }

  /** This thread's (cpu's) unread events as whole sub-buffer pages, oldest first (for trace.dat). */
  pages(cpu: number, snapshot = false): Uint8Array {
    return ringPages(this.bufferOf(cpu, snapshot));
  }

  /** The same pages as views into the ring, to write out and then check (see ringPageViews). */
  pageViews(cpu: number, snapshot = false): ReturnType<typeof ringPageViews> {
    return ringPageViews(this.bufferOf(cpu, snapshot));
  }

  /** Counters of the live ring (or the snapshot), as `per_cpu/cpuN/stats` shows them. */
  statsText(cpu: number, snapshot = false): string {
    const c = this.bufferOf(cpu, snapshot).counters();
    return statsText(
      { entries: c.entries, overrun: c.overrun, commitOverrun: 0, bytes: c.bytes, oldestTs: c.oldestTs, nowTs: this.now(), dropped: c.dropped, read: c.read },
      isNanoClock(this.clock),
    );
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
      this.replaceAll((c) => this.cpus[c]!.pages, false);
    });
  }

  now(): number {
    return this.clock === CLOCK_COUNTER ? counterNow(this.control.i32, I_COUNTER) : monoNow();
  }

  // ---- reading --------------------------------------------------------------------------

  /** Empty the buffers (all, or one cpu's) and zero their counters: `echo > trace`. */
  clear(cpu?: number): void {
    const targets = cpu === undefined ? this.cpus.map((_, i) => i) : [cpu];
    for (const c of targets) this.clearRing(this.ring(c));
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
    return this.bufferText((c) => this.ring(c), cpu);
  }

  /**
   * `snapshot` (or per_cpu/cpuN/snapshot): the spare buffer in `trace` layout; when it holds
   * nothing, the kernel's status and help lines instead of the column header.
   */
  snapshotText(cpu?: number): string {
    const rings = (c: number) => this.snapshotRing(c);
    const cpus = cpu === undefined ? this.cpus.map((_, i) => i) : (this.ring(cpu), [cpu]);
    if (cpus.some((c) => (rings(c)?.counters().entries ?? 0) > 0)) return this.bufferText((c) => rings(c)!, cpu);
    const status = this.snapshotAllocated ? '# * Snapshot is allocated *' : '# * Snapshot is freed *';
    return `# tracer: nop\n#\n#\n${status}\n#\n# Snapshot commands:\n${cpu === undefined ? SNAPSHOT_HELP : SNAPSHOT_CPU_HELP}`;
  }

  private bufferText(ringOf: (cpu: number) => RingView, cpu?: number): string {
    const cpus = cpu === undefined ? this.cpus.map((_, i) => i) : [cpu];
    let entries = 0;
    let written = 0;
    const lists = cpus.map((c) => {
      const ring = ringOf(c);
      const counters = ring.counters();
      entries += counters.entries;
      written += counters.entries + counters.overrun;
      return snapshotRing(ring);
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
