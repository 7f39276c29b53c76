/**
 * `trace-cmd report` text from trace.dat records: `cpus=N`, then one line per event,
 * `[buffer: ]COMM-PID [CPU] SECS.USECS: NAME: PAYLOAD`, as trace-cmd 3.1.6 prints with -N
 * (no plugins). -R prints raw fields, -t nanosecond timestamps.
 */
import type { CValue } from '../events/cexpr.js';
import type { EventFormat } from '../events/kformat.js';
import { cpuStatTexts, type TraceDat } from './tracedat/reader.js';
import type { TraceDatEvents, TraceRecord } from './tracedat/records.js';
import { ByteSink, encode } from '../events/text-sink.js';

export interface ReportOptions {
  raw?: boolean;
  /** trace-cmd's default plugins (kmem call_site, hrtimer, sched switch/wakeup); -N turns them off. */
  plugins?: boolean;
  /** -l: latency columns (`%8.8s-%-5d %3d` and the flags, preempt depth, migrate-disable). */
  latency?: boolean;
  nanoseconds?: boolean;

}

/**
 * seconds.micros, rounded to the nearest microsecond as trace-cmd does; or seconds.nanos. The
 * seconds are padded to 5 columns (`%5llu`), which shows on machines up less than a day.
 */
export function reportTimestamp(ts: number, nanoseconds: boolean): string {
  let secs = Math.floor(ts / 1e9);
  const ns = ts - secs * 1e9;
  if (nanoseconds) return `${String(secs).padStart(5)}.${String(ns).padStart(9, '0')}`;
  let us = Math.floor((ns + 500) / 1000);
  if (us >= 1e6) {
    secs++;
    us -= 1e6;
  }
  return `${String(secs).padStart(5)}.${String(us).padStart(6, '0')}`;
}

/**
 * trace-cmd's default plugins for the events they cover: the kmem plugin's `(call_site) `
 * prefix, the hrtimer plugin's lines and the sched plugin's switch/wakeup lines (which, as in libtraceevent, also teach the
 * comm table the names they print). Each returns the payload to print.
 */
type Plugin = (ev: EventFormat, r: TraceRecord, events: TraceDatEvents, body: string) => string;

function fieldValue(ev: EventFormat, r: TraceRecord, name: string): CValue | undefined {
  const f = ev.field(name);
  return f && f.offset + f.size <= r.length ? ev.value(r, f) : undefined;
}

const kmemCallSite: Plugin = (ev, r, events, body) => {
  const site = fieldValue(ev, r, 'call_site');
  const sym = typeof site === 'bigint' ? events.symbols.lookup(site) : null;
  return sym ? `(${sym.name}+0x${sym.offset.toString(16)}) ${body}` : body;
};

/** prev_state letters as trace-cmd 3.1.6's sched plugin prints them. */
function taskState(value: bigint): string {
  const states = 'SDTtZXxW';
  const v = Number(BigInt.asIntN(32, value));
  const letters = [...states].filter((_, i) => v & (1 << i));
  return letters.length ? letters.join('|') : 'R';
}

/** `comm:pid` for a pid field and its comm field; like tep_register_comm, a pid not yet known gets the comm. */
function task(ev: EventFormat, r: TraceRecord, events: TraceDatEvents, pidName: string, commName: string): string | null {
  const pid = fieldValue(ev, r, pidName);
  if (typeof pid !== 'bigint') return null;
  const comm = fieldValue(ev, r, commName);
  if (typeof comm !== 'string') return String(pid);
  if (!events.comms.has(Number(pid))) {
    events.comms.set(Number(pid), comm);
    lineCache(events).forgetTask(Number(pid));
  }
  return `${comm}:${pid}`;
}

const int32 = (v: CValue | undefined) => (typeof v === 'bigint' ? String(BigInt.asIntN(32, v)) : null);

const schedSwitch: Plugin = (ev, r, events) => {
  const prev = task(ev, r, events, 'prev_pid', 'prev_comm');
  if (prev === null) return '!';
  let s = `${prev} `;
  const prio = int32(fieldValue(ev, r, 'prev_prio'));
  if (prio !== null) s += `[${prio}] `;
  const state = fieldValue(ev, r, 'prev_state');
  if (typeof state === 'bigint') s += taskState(state);
  const next = task(ev, r, events, 'next_pid', 'next_comm');
  if (next === null) return `${s} ==> !`;
  s += ` ==> ${next}`;
  const nextPrio = int32(fieldValue(ev, r, 'next_prio'));
  return nextPrio === null ? s : `${s} [${nextPrio}]`;
};

const schedWakeup: Plugin = (ev, r, events) => {
  const who = task(ev, r, events, 'pid', 'comm');
  if (who === null) return '!';
  let s = who;
  const prio = fieldValue(ev, r, 'prio');
  if (typeof prio === 'bigint') s += ` [${prio}]`;
  const success = fieldValue(ev, r, 'success');
  if (typeof success === 'bigint') s += ` success=${success}`;
  const cpu = fieldValue(ev, r, 'target_cpu');
  if (typeof cpu === 'bigint') s += ` CPU:${String(cpu).padStart(3, '0')}`;
  return s;
};

/** tep_print_func_field: `name/0x(addr - value)`, or the value in hex when no symbol covers it. */
function funcField(ev: EventFormat, r: TraceRecord, events: TraceDatEvents): string {
  const v = fieldValue(ev, r, 'function');
  if (typeof v !== 'bigint') return '';
  const sym = events.symbols.lookup(v);
  const text = sym ? `${sym.name}/0x${BigInt.asUintN(64, -sym.offset).toString(16)}` : `0x${BigInt.asUintN(64, v).toString(16).padStart(8, '0')}`;
  return ` function=${text}`;
}

/** The hrtimer plugin's `hrtimer=0x…` (the field is `timer` or `hrtimer` by kernel version). */
function hrtimer(ev: EventFormat, r: TraceRecord): string {
  const v = fieldValue(ev, r, 'timer') ?? fieldValue(ev, r, 'hrtimer');
  return `hrtimer=${typeof v === 'bigint' ? `0x${BigInt.asUintN(64, v).toString(16)}` : ''}`;
}

const u64 = (v: CValue | undefined) => (typeof v === 'bigint' ? String(BigInt.asUintN(64, v)) : '');

const hrtimerExpireEntry: Plugin = (ev, r, events) =>
  `${hrtimer(ev, r)} now=${u64(fieldValue(ev, r, 'now'))}${funcField(ev, r, events)}`;

const hrtimerStart: Plugin = (ev, r, events) =>
  `${hrtimer(ev, r)}${funcField(ev, r, events)} expires=${u64(fieldValue(ev, r, 'expires'))} softexpires=${u64(fieldValue(ev, r, 'softexpires'))}`;

const PLUGINS = new Map<string, Plugin>([
  ...['kmalloc', 'kmalloc_node', 'kfree', 'kmem_cache_alloc', 'kmem_cache_alloc_node', 'kmem_cache_free'].map(
    (name) => [`kmem:${name}`, kmemCallSite] as [string, Plugin],
  ),
  ['sched:sched_switch', schedSwitch],
  ['sched:sched_wakeup', schedWakeup],
  ['sched:sched_wakeup_new', schedWakeup],
  ['timer:hrtimer_expire_entry', hrtimerExpireEntry],
  ['timer:hrtimer_start', hrtimerStart],
]);

/** The five latency flags from common_flags and common_preempt_count, as libtraceevent prints them. */
function latencyFlags(flags: number, preempt: number): string {
  const irqsOff = flags & 0x01 ? 'd' : '.';
  const needResched = flags & 0x04 ? (flags & 0x20 ? 'N' : 'n') : flags & 0x20 ? 'p' : '.';
  const nmi = flags & 0x40;
  const hard = flags & 0x08;
  const soft = flags & 0x10;
  const irq = nmi && hard ? 'Z' : nmi ? 'z' : hard && soft ? 'H' : hard ? 'h' : soft ? 's' : '.';
  const depth = preempt & 0x0f;
  const migrate = preempt >> 4;
  return `${irqsOff}${needResched}${irq}${depth ? depth.toString(16) : '.'}${migrate ? migrate.toString(16) : '.'}`;
}

/**
 * What a report reuses across lines, encoded once: the `buffer: ` column (trace-cmd pads every
 * line, the top level's too, to the longest name), the task and CPU columns per pid and CPU,
 * the event name column, the seconds of the timestamp.
 */
class LineCache {
  private readonly prefixWidth: number;
  private readonly prefixes = new Map<string, Uint8Array>();
  private readonly tasks = new Map<number, Uint8Array>();
  private readonly cpus: Uint8Array[] = [];
  /** By event id. */
  private readonly names: Uint8Array[] = [];
  private secs = -1;
  private secsBytes: Uint8Array = new Uint8Array(0);
  readonly print: { symbols: TraceDatEvents['symbols'] };

  constructor(readonly events: TraceDatEvents) {
    this.prefixWidth = Math.max(0, ...events.dat.buffers.filter((b) => b.name).map((b) => b.name.length + 2));
    this.print = { symbols: events.symbols };
  }

  prefix(sink: ByteSink, buffer: string): void {
    if (!this.prefixWidth) return;
    let bytes = this.prefixes.get(buffer);
    if (!bytes) this.prefixes.set(buffer, (bytes = encode((buffer ? `${buffer}: ` : '').padEnd(this.prefixWidth))));
    sink.bytes(bytes);
  }

  /** `            comm-pid   [cpu] ` (trace-cmd's `%16s-%-5d [%03d] `). */
  task(sink: ByteSink, pid: number, cpu: number): void {
    let bytes = this.tasks.get(pid);
    if (!bytes) this.tasks.set(pid, (bytes = encode(`${this.events.comm(pid).padStart(16)}-${String(pid).padEnd(5)}`)));
    sink.bytes(bytes);
    sink.bytes((this.cpus[cpu] ??= encode(` [${String(cpu).padStart(3, '0')}] `)));
  }

  /** A plugin taught the comm table a name: the task column of that pid is made again. */
  forgetTask(pid: number): void {
    this.tasks.delete(pid);
  }

  /** `name:` padded to 20 columns, then a space. */
  name(sink: ByteSink, ev: EventFormat): void {
    sink.bytes((this.names[ev.id] ??= encode(`${`${ev.name}:`.padEnd(21)} `)));
  }

  /** reportTimestamp, then `: `, with the seconds' text kept from the line before. */
  timestamp(sink: ByteSink, ts: number, nanoseconds: boolean): void {
    const secs = Math.floor(ts / 1e9);
    const ns = ts - secs * 1e9;
    if (!nanoseconds && ns >= 999_999_500) {
      sink.text(`${reportTimestamp(ts, false)}: `);
      return;
    }
    if (secs !== this.secs) {
      this.secs = secs;
      this.secsBytes = encode(`${String(secs).padStart(5)}.`);
    }
    sink.bytes(this.secsBytes);
    if (nanoseconds) sink.zeroPadded(ns, 9);
    else sink.zeroPadded(Math.floor((ns + 500) / 1000), 6);
    sink.bytes(COLON_SPACE);
  }
}

const COLON_SPACE = encode(': ');
const NEWLINE = 10;

const lineCaches = new WeakMap<TraceDatEvents, LineCache>();

function lineCache(events: TraceDatEvents): LineCache {
  let cache = lineCaches.get(events);
  if (!cache) lineCaches.set(events, (cache = new LineCache(events)));
  return cache;
}

/** One line of the report, with its newline, written into the sink. */
function reportLineTo(sink: ByteSink, cache: LineCache, r: TraceRecord, options: ReportOptions): void {
  const events = cache.events;
  cache.prefix(sink, r.buffer);
  if (options.latency) {
    sink.text(`${events.comm(r.pid).slice(0, 8).padStart(8)}-${String(r.pid).padEnd(5)} ${String(r.cpu).padStart(3)}${latencyFlags(r.u8[r.start + 2]!, r.u8[r.start + 3]!)} `);
  } else {
    cache.task(sink, r.pid, r.cpu);
  }
  cache.timestamp(sink, r.ts, options.nanoseconds ?? false);
  const ev = r.event;
  if (!ev) {
    sink.text(`[UNKNOWN TYPE ${r.id}]\n`);
    return;
  }
  cache.name(sink, ev);
  const plugin = options.plugins && !options.raw ? PLUGINS.get(`${ev.system}:${ev.name}`) : undefined;
  const start = sink.pos;
  if (plugin) sink.text(plugin(ev, r, events, ev.print(r, cache.print)));
  else if (options.raw) sink.text(ev.printRaw(r, cache.print));
  else ev.printTo(sink, r, cache.print.symbols);
  // Like trace-cmd, a payload's own trailing newline (trace_marker text) does not end the line twice.
  if (sink.pos > start && sink.buf[sink.pos - 1] === NEWLINE) return;
  sink.byte(NEWLINE);
}

/** Bytes of text gathered before a chunk is handed on: one write per 64 KiB, not per line. */
export const CHUNK_BYTES = 1 << 16;

export type FullReportOptions = ReportOptions & { cpus?: number[]; eventNames?: string[] };

/**
 * The whole report (first line `cpus=N`) as UTF-8 text in chunks of whole lines, each at
 * least 64 KiB but the last. A consumer that is done with a chunk when it asks for the next
 * one (written synchronously) says so with `next(true)`: the buffer is then reused instead of
 * a new one made per chunk.
 */
export function* report(events: TraceDatEvents, options: FullReportOptions = {}): Generator<Uint8Array, void, boolean | undefined> {
  const cache = lineCache(events);
  const sink = new ByteSink(CHUNK_BYTES * 2);
  sink.text(`cpus=${events.dat.cpuCount}\n`);
  const wanted = options.eventNames ? new Set(options.eventNames) : null;
  const merge = events.merge({ cpus: options.cpus });
  for (let r = merge.next(); r; r = merge.next()) {
    if (wanted && !(r.event && (wanted.has(r.event.name) || wanted.has(`${r.event.system}:${r.event.name}`) || wanted.has(r.event.system)))) continue;
    reportLineTo(sink, cache, r, options);
    if (sink.pos < CHUNK_BYTES) continue;
    const consumed = yield sink.view();
    sink.restart(consumed !== true);
  }
  if (sink.pos) yield sink.view();
}

/** The whole report as one string: for small files (the demo, tests). */
export function reportText(events: TraceDatEvents, options: FullReportOptions = {}): string {
  return Buffer.concat([...report(events, options)]).toString('utf8');
}

/**
 * `trace-cmd report --stat`: the kernel's per-CPU stats saved at record time, then where the
 * top-level buffer's data lies, if the file has one. For compressed data trace-cmd reports
 * the place and size of its decompressed copy, which starts one page in.
 */
export function statReport(dat: TraceDat): string {
  let text = `cpus=${dat.cpuCount}\n\nKernel buffer statistics:\n`
    + '  Note: "entries" are the entries left in the kernel ring buffer and are not\n'
    + '        recorded in the trace data. They should all be zero.\n\n';
  const stats = cpuStatTexts(dat);
  for (const stat of stats) text += `${stat}\n`;
  text += stats.length ? '\n' : ' No stats in this file\n';
  const top = dat.buffers.find((b) => b.name === '');
  let unpackedAt = dat.pageSize;
  for (const cpu of top?.cpus ?? []) {
    let { offset, size } = cpu;
    if (dat.compression !== 'none') {
      size = 0;
      for (const piece of dat.cpuPieces(top!, cpu)) size += piece.bytes.length;
      offset = unpackedAt;
      unpackedAt += size;
    }
    text += `CPU${cpu.cpu} data recorded at offset=0x${offset.toString(16)}\n    ${size} bytes in size\n`;
  }
  return text;
}
