/**
 * `trace-cmd report` text from trace.dat records: `cpus=N`, then one line per event,
 * `[buffer: ]COMM-PID [CPU] SECS.USECS: NAME: PAYLOAD`, as trace-cmd 3.1.6 prints with -N
 * (no plugins). -R prints raw fields, -t nanosecond timestamps.
 */
import type { CValue } from '../events/cexpr.js';
import type { EventFormat } from '../events/kformat.js';
import { cpuStatTexts, type TraceDat } from './tracedat/reader.js';
import type { TraceDatEvents, TraceRecord } from './tracedat/records.js';

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
  if (!events.comms.has(Number(pid))) events.comms.set(Number(pid), comm);
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
 * What a report reuses across lines: the padded `buffer: ` column (trace-cmd pads every line, the
 * top level's too, to the longest name), the task column per pid, the CPU column, the event name
 * column, the seconds of the timestamp.
 */
class LineCache {
  readonly prefixWidth: number;
  private readonly tasks = new Map<number, { comm: string; text: string }>();
  private readonly cpus: string[] = [];
  private readonly names = new Map<EventFormat, string>();
  private secs = -1;
  private secsText = '';
  readonly print: { symbols: TraceDatEvents['symbols'] };

  constructor(readonly events: TraceDatEvents) {
    this.prefixWidth = Math.max(0, ...events.dat.buffers.filter((b) => b.name).map((b) => b.name.length + 2));
    this.print = { symbols: events.symbols };
  }

  /** `            comm-pid   [cpu]` (trace-cmd's `%16s-%-5d [%03d]`). */
  task(pid: number, cpu: number): string {
    const comm = this.events.comm(pid);
    let t = this.tasks.get(pid);
    if (!t || t.comm !== comm) this.tasks.set(pid, (t = { comm, text: `${comm.padStart(16)}-${String(pid).padEnd(5)}` }));
    return t.text + (this.cpus[cpu] ??= ` [${String(cpu).padStart(3, '0')}]`);
  }

  /** `name:` padded to 20 columns, then a space. */
  name(ev: EventFormat): string {
    let text = this.names.get(ev);
    if (text === undefined) this.names.set(ev, (text = `${`${ev.name}:`.padEnd(21)} `));
    return text;
  }

  /** reportTimestamp with the seconds' text kept from the line before. */
  timestamp(ts: number, nanoseconds: boolean): string {
    const secs = Math.floor(ts / 1e9);
    const ns = ts - secs * 1e9;
    if (nanoseconds || ns >= 999_999_500) return reportTimestamp(ts, nanoseconds);
    if (secs !== this.secs) {
      this.secs = secs;
      this.secsText = `${String(secs).padStart(5)}.`;
    }
    const us = Math.floor((ns + 500) / 1000);
    return this.secsText + (us >= 100_000 ? String(us) : String(us).padStart(6, '0'));
  }
}

const lineCaches = new WeakMap<TraceDatEvents, LineCache>();

function lineCache(events: TraceDatEvents): LineCache {
  let cache = lineCaches.get(events);
  if (!cache) lineCaches.set(events, (cache = new LineCache(events)));
  return cache;
}

export function reportLine(events: TraceDatEvents, r: TraceRecord, options: ReportOptions): string {
  const cache = lineCache(events);
  const prefix = cache.prefixWidth ? (r.buffer ? `${r.buffer}: ` : '').padEnd(cache.prefixWidth) : '';
  const task = options.latency
    ? `${events.comm(r.pid).slice(0, 8).padStart(8)}-${String(r.pid).padEnd(5)} ${String(r.cpu).padStart(3)}${latencyFlags(r.u8[r.start + 2]!, r.u8[r.start + 3]!)}`
    : cache.task(r.pid, r.cpu);
  const head = `${prefix}${task} ${cache.timestamp(r.ts, options.nanoseconds ?? false)}: `;
  const ev = r.event;
  if (!ev) return `${head}[UNKNOWN TYPE ${r.id}]`;
  let body = options.raw ? ev.printRaw(r, cache.print) : ev.print(r, cache.print);
  const plugin = options.plugins && !options.raw ? PLUGINS.get(`${ev.system}:${ev.name}`) : undefined;
  if (plugin) body = plugin(ev, r, events, body);
  // Like trace-cmd, a payload's own trailing newline (trace_marker text) does not end the line twice.
  if ((plugin || options.raw || ev.printMayEndWithNewline) && body.endsWith('\n')) body = body.slice(0, -1);
  return head + cache.name(ev) + body;
}

/** Characters of text gathered before a chunk is handed on: one write per 64 KiB, not per line. */
export const CHUNK_CHARS = 1 << 16;

/**
 * The whole report (first line `cpus=N`) as text in chunks of whole lines, each at least
 * 64 KiB but the last.
 */
export function* report(events: TraceDatEvents, options: ReportOptions & { cpus?: number[]; eventNames?: string[] } = {}): Generator<string> {
  let chunk = `cpus=${events.dat.cpuCount}\n`;
  const wanted = options.eventNames ? new Set(options.eventNames) : null;
  const merge = events.merge({ cpus: options.cpus });
  for (let r = merge.next(); r; r = merge.next()) {
    if (wanted && !(r.event && (wanted.has(r.event.name) || wanted.has(`${r.event.system}:${r.event.name}`) || wanted.has(r.event.system)))) continue;
    chunk += `${reportLine(events, r, options)}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
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
      size = dat.cpuData(top!, cpu).length;
      offset = unpackedAt;
      unpackedAt += size;
    }
    text += `CPU${cpu.cpu} data recorded at offset=0x${offset.toString(16)}\n    ${size} bytes in size\n`;
  }
  return text;
}
