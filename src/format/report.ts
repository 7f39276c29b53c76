/**
 * `trace-cmd report` text from trace.dat records: `cpus=N`, then one line per event,
 * `[buffer: ]COMM-PID [CPU] SECS.USECS: NAME: PAYLOAD`, as trace-cmd 3.1.6 prints with -N
 * (no plugins). -R prints raw fields, -t nanosecond timestamps.
 */
import type { TraceDatEvents, TraceRecord } from './tracedat/records.js';

export interface ReportOptions {
  raw?: boolean;
  /** trace-cmd's default plugins (the kmem plugin's `(call_site) ` prefix); -N turns them off. */
  plugins?: boolean;
  /** -l: latency columns (`%8.8s-%-5d %3d` and the flags, preempt depth, migrate-disable). */
  latency?: boolean;
  nanoseconds?: boolean;

}

/** seconds.micros, rounded to the nearest microsecond as trace-cmd does; or seconds.nanos. */
export function reportTimestamp(ts: number, nanoseconds: boolean): string {
  let secs = Math.floor(ts / 1e9);
  const ns = ts - secs * 1e9;
  if (nanoseconds) return `${secs}.${String(ns).padStart(9, '0')}`;
  let us = Math.floor((ns + 500) / 1000);
  if (us >= 1e6) {
    secs++;
    us -= 1e6;
  }
  return `${secs}.${String(us).padStart(6, '0')}`;
}

/** Events whose call_site trace-cmd's kmem plugin prints first, as `(func+0xoff) `. */
const KMEM_PLUGIN_EVENTS = new Set(['kmalloc', 'kmalloc_node', 'kfree', 'kmem_cache_alloc', 'kmem_cache_alloc_node', 'kmem_cache_free']);

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

export function reportLine(events: TraceDatEvents, r: TraceRecord, options: ReportOptions): string {
  const comm = events.comm(r.pid);
  const prefix = r.buffer ? `${r.buffer}: ` : '';
  const task = options.latency
    ? `${comm.slice(0, 8).padStart(8)}-${String(r.pid).padEnd(5)} ${String(r.cpu).padStart(3)}${latencyFlags(r.u8[r.start + 2]!, r.u8[r.start + 3]!)}`
    : `${comm.padStart(16)}-${String(r.pid).padEnd(5)} [${String(r.cpu).padStart(3, '0')}]`;
  const head = `${prefix}${task} ${reportTimestamp(r.ts, options.nanoseconds ?? false)}: `;
  const ev = r.event;
  if (!ev) return `${head}[UNKNOWN TYPE ${r.id}]`;
  const print = { symbols: events.symbols };
  let body = options.raw ? ev.printRaw(r, print) : ev.print(r, print);
  if (options.plugins && !options.raw && KMEM_PLUGIN_EVENTS.has(ev.name) && ev.system === 'kmem') {
    const f = ev.field('call_site');
    const site = f && f.offset + f.size <= r.length ? ev.value(r, f) : undefined;
    const sym = typeof site === 'bigint' ? events.symbols.lookup(site) : null;
    if (sym) body = `(${sym.name}+0x${sym.offset.toString(16)}) ${body}`;
  }
  // Like trace-cmd, a payload's own trailing newline (trace_marker text) does not end the line twice.
  if (body.endsWith('\n')) body = body.slice(0, -1);
  return `${head}${`${ev.name}:`.padEnd(21)} ${body}`;
}

/** The whole report, line by line (first line `cpus=N`). */
export function* report(events: TraceDatEvents, options: ReportOptions & { cpus?: number[]; eventNames?: string[] } = {}): Generator<string> {
  yield `cpus=${events.dat.cpuCount}`;
  const wanted = options.eventNames ? new Set(options.eventNames) : null;
  for (const r of events.records({ cpus: options.cpus })) {
    if (wanted && !(r.event && (wanted.has(r.event.name) || wanted.has(`${r.event.system}:${r.event.name}`) || wanted.has(r.event.system)))) continue;
    yield reportLine(events, r, options);
  }
}
