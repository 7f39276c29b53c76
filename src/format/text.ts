/**
 * ftrace's text layout, byte for byte: the `trace` header, event lines, and per-CPU `stats`.
 * Options take effect when the buffer is read, as in the kernel.
 */
export interface TextOptions {
  /** options/irq-info: the five flag columns. */
  irqInfo: boolean;
  /** options/record-tgid: a TGID column. */
  recordTgid: boolean;
  /** options/context-info: task, CPU and timestamp; off prints only `event: fields`. */
  contextInfo: boolean;
}

export const DEFAULT_TEXT_OPTIONS: TextOptions = { irqInfo: true, recordTgid: false, contextInfo: true };

const FLAG_LEGEND = [
  '#                                _-----=> irqs-off/BH-disabled',
  '#                               / _----=> need-resched',
  '#                              | / _---=> hardirq/softirq',
  '#                              || / _--=> preempt-depth',
  '#                              ||| / _-=> migrate-disable',
  '#                              |||| /     delay',
];

/** The header `cat trace` prints before the events. */
export function traceHeader(opts: TextOptions, entries: number, written: number, cpus: number, tracer = 'nop'): string {
  const lines = [`# tracer: ${tracer}`, '#'];
  if (!opts.contextInfo) return lines.join('\n') + '\n';
  lines.push(`# entries-in-buffer/entries-written: ${entries}/${written}   #P:${cpus}`, '#');
  const tgid = opts.recordTgid;
  if (opts.irqInfo) {
    const shift = tgid ? ' '.repeat(10) : '';
    for (const l of FLAG_LEGEND) lines.push('#' + shift + l.slice(1));
    lines.push(
      tgid
        ? '#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION'
        : '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
      tgid
        ? '#              | |           |       |   |||||     |         |'
        : '#              | |         |   |||||     |         |',
    );
  } else {
    lines.push(
      tgid
        ? '#           TASK-PID       TGID    CPU#     TIMESTAMP  FUNCTION'
        : '#           TASK-PID     CPU#     TIMESTAMP  FUNCTION',
      tgid
        ? '#              | |           |       |         |         |'
        : '#              | |         |         |         |',
    );
  }
  return lines.join('\n') + '\n';
}

/** ` %5lu.%06lu` of ns rounded to µs, or ` %12llu` for clocks that do not count ns. */
export function formatTimestamp(ts: number, nanoClock: boolean): string {
  if (!nanoClock) return ts.toString().padStart(12);
  const usecs = Math.floor((ts + 500) / 1000);
  const secs = Math.floor(usecs / 1e6);
  return `${secs.toString().padStart(5)}.${(usecs - secs * 1e6).toString().padStart(6, '0')}`;
}

export interface LineFields {
  comm: string;
  pid: number;
  tgid: number;
  cpu: number;
  /** The five flag characters, e.g. `.....`. */
  flags: string;
  ts: number;
  /** `name: fields` */
  text: string;
}

export function traceLine(opts: TextOptions, nanoClock: boolean, f: LineFields): string {
  if (!opts.contextInfo) return f.text + '\n';
  let line = `${f.comm.padStart(16)}-${String(f.pid).padEnd(7)} `;
  if (opts.recordTgid) line += `(${String(f.tgid).padStart(7)}) `;
  line += `[${String(f.cpu).padStart(3, '0')}] `;
  if (opts.irqInfo) line += f.flags;
  return `${line} ${formatTimestamp(f.ts, nanoClock)}: ${f.text}\n`;
}

/** `CPU:N [LOST M EVENTS]`, as trace_pipe prints before the next event after a loss. */
export function lostLine(cpu: number, lost: number): string {
  return `CPU:${cpu} [LOST ${lost} EVENTS]\n`;
}

export interface StatsFields {
  entries: number;
  overrun: number;
  commitOverrun: number;
  bytes: number;
  oldestTs: number;
  nowTs: number;
  dropped: number;
  read: number;
}

/** `%5llu.%06lu` for ns clocks, else `%llu`. */
function statsTime(ts: number, nanoClock: boolean): string {
  return nanoClock ? formatTimestamp(ts, true) : String(ts);
}

/** per_cpu/cpuN/stats */
export function statsText(s: StatsFields, nanoClock: boolean): string {
  return (
    `entries: ${s.entries}\n` +
    `overrun: ${s.overrun}\n` +
    `commit overrun: ${s.commitOverrun}\n` +
    `bytes: ${s.bytes}\n` +
    `oldest event ts: ${statsTime(s.oldestTs, nanoClock)}\n` +
    `now ts: ${statsTime(s.nowTs, nanoClock)}\n` +
    `dropped events: ${s.dropped}\n` +
    `read events: ${s.read}\n`
  );
}
