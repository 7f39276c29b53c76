/**
 * The persist file: the analog of the kernel's persistent ring buffer, a circular file that
 * mirrors the rings page by page so what no handler sees (SIGKILL, an OOM kill, abort()) still
 * leaves the trace on disk. Layout (little-endian):
 *
 *   0     header, 4096 bytes: magic "NFTRPERS", u32 version, u32 metaOffset, u32 metaCapacity,
 *         u32 metaLength, u32 metaCrc, u32 metaGeneration, u32 closed (1 after a clean close)
 *   4096  metadata: JSON (formats, thread names, clocks, regions), metaCapacity bytes reserved
 *   ...   regions, one per (instance, thread): `slots` page slots, then one slot for the page
 *         still being written. A slot is a 32-byte header (magic "PAGE", u32 region, u32 flags
 *         (1: partial), u32 commit, f64 page number, u32 crc32 of the page, u32 0) and the
 *         sub-buffer image.
 *
 * Pages are written whole with one pwrite each by a worker thread, never by the emitting
 * threads. A page number counts the pages of one ring from the first the mirror saw, so
 * recovery orders a region's slots by it; the CRC drops a slot torn by death mid-write.
 */
export const PERSIST_MAGIC = 'NFTRPERS';
export const PERSIST_VERSION = 1;
export const HEADER_SIZE = 4096;
export const META_CAPACITY = 8 << 20;
export const SLOT_HEADER = 32;
export const SLOT_MAGIC = 0x45474150; // 'PAGE'
export const FLAG_PARTIAL = 1;

export interface PersistRegion {
  instance: string;
  cpu: number;
  subbuf: number;
  /** File offset of slot 0. */
  offset: number;
  /** Complete-page slots; the partial page has one more after them. */
  slots: number;
}

/** What recovery needs besides the pages; written by the main thread whenever it changes. */
export interface PersistMeta {
  pid: number;
  threads: string[];
  ftraceFormats: string[];
  systems: { name: string; formats: string[] }[];
  headerPage: string;
  headerEvent: string;
  traceClock: string;
  clocks: Record<string, string>;
  uname: string;
  version: string;
  regions: PersistRegion[];
}

export function slotSize(subbuf: number): number {
  return SLOT_HEADER + subbuf;
}

/** Byte offset of a region's slot `index` (index === slots: the partial page). */
export function slotOffset(region: PersistRegion, index: number): number {
  return region.offset + index * slotSize(region.subbuf);
}
