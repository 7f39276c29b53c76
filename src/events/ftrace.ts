/**
 * The kernel's own `ftrace` system as far as nftrace has it: `print`, the event that
 * trace_marker writes. Same id (5), fields and print fmt as the kernel, so its format file and
 * records are interchangeable with a kernel trace.
 */
import { formatFileText, type EventOptions, type EventType } from './event.js';
import type { FieldLayout, FieldSpec } from './fields.js';

export const PRINT_ID = 5;
/** Offset of `buf` in the record: common fields, then `unsigned long ip`. */
export const PRINT_BUF_OFFSET = 16;
/** trace_marker_write() appends a newline when the text lacks one, then a NUL. */
export const MARKER_OVERHEAD = 2;

export const PRINT_FIELDS: FieldLayout[] = [
  { name: 'ip', type: 'u64', kind: 'long', ctype: 'unsigned long ip', offset: 8, size: 8, signed: false, length: 0 },
  { name: 'buf', type: 'string', kind: 'chars', ctype: 'char buf[]', offset: 16, size: 0, signed: false, length: 0 },
];

const decoder = new TextDecoder('utf-8');

export const PRINT_EVENT: EventType = {
  system: 'ftrace',
  name: 'print',
  id: PRINT_ID,
  index: 0,
  formatFile: () => formatFileText('print', PRINT_ID, PRINT_FIELDS, '"%ps: %s", (void *)REC->ip, REC->buf'),
  text(dv: DataView, off: number, len: number): string {
    const bytes = new Uint8Array(dv.buffer, dv.byteOffset + off + PRINT_BUF_OFFSET, Math.max(0, len - PRINT_BUF_OFFSET));
    const nul = bytes.indexOf(0);
    let text = decoder.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
    if (text.endsWith('\n')) text = text.slice(0, -1);
    return `tracing_mark_write: ${text}`;
  },
};

/**
 * What the stacktrace trigger records: the JavaScript stack, one ` => frame` line each, as the
 * kernel's `<stack trace>` lines look. Its own event (not the kernel's kernel_stack, whose
 * frames are addresses), defined when the first stacktrace trigger is set.
 */
export const STACK_EVENT: { system: string; name: string; fields: FieldSpec; options: EventOptions } = {
  system: 'ftrace',
  name: 'js_stack',
  fields: { dropped: 'u32', frames: 'string' },
  options: { print: { fmt: '<stack trace>%s', args: ['frames'] } },
};
