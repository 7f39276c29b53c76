/**
 * The kernel's ring-buffer page ("sub-buffer") and event-header layout, as printed by
 * events/header_page and events/header_event. Little-endian, as on x86-64.
 *
 *   page:   u64 timestamp | u64 commit (bits 31/30: missed-events flags) | data[subbuf - 16]
 *   event:  u32 header = type_len:5 | time_delta:27, then payload
 */
export const PAGE_SIZE = 4096;
export const SUBBUF_HEADER = 16;
export const COMMIT_OFFSET = 8;

export const TYPE_PADDING = 29;
export const TYPE_TIME_EXTEND = 30;
export const TYPE_TIME_STAMP = 31;
/** type_len 1..28 encode payloads of up to 28 words in the header itself. */
export const MAX_SMALL_DATA = 112;
export const TIME_DELTA_BITS = 27;
export const MAX_DELTA = 2 ** TIME_DELTA_BITS - 1;
export const TIME_EXTEND_LEN = 8;

export const MISSED_EVENTS = 0x80000000;
export const MISSED_STORED = 0x40000000;
export const COMMIT_SIZE_MASK = ~(MISSED_EVENTS | MISSED_STORED) >>> 0;

/**
 * Total bytes an event with `payload` bytes occupies, as rb_calculate_event_length() computes:
 * 4-byte aligned; payloads over 112 B take an extra length word; 12 is bumped to 16 so that a
 * discarded event can always become a time extend plus padding.
 */
export function eventLength(payload: number): number {
  let length = payload === 0 ? 1 : payload;
  if (length > MAX_SMALL_DATA) length += 4;
  length = (length + 4 + 3) & ~3;
  if (length === TIME_EXTEND_LEN + 4) length += 4;
  return length;
}

/** Largest payload that still fits one sub-buffer of `dataSize` bytes. */
export function maxPayload(dataSize: number): number {
  return dataSize - 8;
}

/** Sub-buffer size for a requested buffer_subbuf_size_kb: a power-of-two number of pages, 1..128. */
export function subbufSizeFor(kb: number): number {
  let pages = 1;
  while (pages * PAGE_SIZE < kb * 1024) pages *= 2;
  return pages * PAGE_SIZE;
}

/**
 * Pages for a requested buffer_size_kb, exactly as the kernel rounds:
 * nr = max(2, ceil(kb*1024 / dataSize)); reading back gives (nr*dataSize) >> 10.
 */
export function pagesFor(kb: number, subbuf: number): number {
  return Math.max(2, Math.ceil((kb * 1024) / (subbuf - SUBBUF_HEADER)));
}

export function sizeKbOf(pages: number, subbuf: number): number {
  return Math.floor((pages * (subbuf - SUBBUF_HEADER)) / 1024);
}

export const HEADER_PAGE_TEXT = (dataSize: number): string =>
  '\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n' +
  '\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n' +
  '\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n' +
  `\tfield: char data;\toffset:16;\tsize:${dataSize};\tsigned:0;\n`;

export const HEADER_EVENT_TEXT =
  '# compressed entry header\n' +
  '\ttype_len    :    5 bits\n' +
  '\ttime_delta  :   27 bits\n' +
  '\tarray       :   32 bits\n' +
  '\n' +
  '\tpadding     : type == 29\n' +
  '\ttime_extend : type == 30\n' +
  '\ttime_stamp : type == 31\n' +
  '\tdata max type_len  == 28\n';
