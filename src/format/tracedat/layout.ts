/** Constants of the trace.dat format (trace-cmd's trace-cmd.dat(5), versions 6 and 7). */

/** `\x17\x08\x44tracing` */
export const MAGIC = Uint8Array.from([0x17, 0x08, 0x44, ...Buffer.from('tracing')]);

/** Option ids. */
export const OPT = {
  DONE: 0,
  DATE: 1,
  CPUSTAT: 2,
  BUFFER: 3,
  TRACECLOCK: 4,
  UNAME: 5,
  HOOK: 6,
  OFFSET: 7,
  CPUCOUNT: 8,
  VERSION: 9,
  PROCMAPS: 10,
  TRACEID: 11,
  TIME_SHIFT: 12,
  GUEST: 13,
  TSC2NSEC: 14,
  HEADER_INFO: 16,
  FTRACE_EVENTS: 17,
  EVENT_FORMATS: 18,
  KALLSYMS: 19,
  PRINTK: 20,
  CMDLINES: 21,
  BUFFER_TEXT: 22,
} as const;

/** v7 section ids: the metadata sections share the ids of the options that locate them. */
export const SECTION = {
  OPTIONS: 0,
  BUFFER_DATA: 3,
  STRINGS: 15,
  HEADER_INFO: OPT.HEADER_INFO,
  FTRACE_EVENTS: OPT.FTRACE_EVENTS,
  EVENT_FORMATS: OPT.EVENT_FORMATS,
  KALLSYMS: OPT.KALLSYMS,
  PRINTK: OPT.PRINTK,
  CMDLINES: OPT.CMDLINES,
} as const;

/** The selected clock of a trace_clock text (`[local] global counter ...` → `local`). */
export function selectedClock(text: string, fallback = 'local'): string {
  return /\[([^\]]+)\]/.exec(text)?.[1] ?? fallback;
}
