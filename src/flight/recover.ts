/**
 * `nftrace recover`: turn a persist file (persist-format.ts) back into a trace.dat. Each
 * region's slots are checked (magic, CRC) and put back in page order; a partial slot is kept
 * only when it is newer than every complete page, and then says that the tail was cut.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readAt } from '../io.js';
import { crc32 } from 'node:zlib';
import type { TraceDatContent } from '../format/tracedat/writer.js';
import {
  FLAG_PARTIAL, HEADER_SIZE, PERSIST_MAGIC, SLOT_HEADER, SLOT_MAGIC, slotOffset, type PersistMeta,
} from './persist-format.js';

export class RecoverError extends Error {
  constructor(file: string, offset: number, what: string) {
    super(`${file}: offset ${offset}: ${what}`);
    this.name = 'RecoverError';
  }
}

export interface RecoveredCpu {
  instance: string;
  cpu: number;
  pages: number;
  /** Slots skipped as torn (bad magic or CRC). */
  bad: number;
  /** The newest page was still being written when the file was last touched. */
  tailCut: boolean;
  /** Page numbers missing between the oldest and newest recovered page (overwritten in the file or the ring first). */
  gaps: number;
}

export interface Recovered {
  content: TraceDatContent;
  cpus: RecoveredCpu[];
  /** The recorder was closed cleanly (false: the process died with it open). */
  closed: boolean;
  pid: number;
}

function readExactly(fd: number, file: string, offset: number, length: number): Buffer {
  const buf = readAt(fd, offset, length);
  if (buf.length < length) throw new RecoverError(file, offset + buf.length, `file ends ${length - buf.length} bytes early`);
  return buf;
}

export function recoverPersistFile(file: string): Recovered {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < HEADER_SIZE) throw new RecoverError(file, size, 'too short for a persist file header');
    const header = readExactly(fd, file, 0, 40);
    if (header.toString('latin1', 0, 8) !== PERSIST_MAGIC) throw new RecoverError(file, 0, 'not an nftrace persist file (bad magic)');
    const metaOffset = header.readUInt32LE(12);
    const metaLength = header.readUInt32LE(20);
    const json = readExactly(fd, file, metaOffset, metaLength);
    if (crc32(json) !== header.readUInt32LE(24)) throw new RecoverError(file, metaOffset, 'metadata checksum mismatch');
    let meta: PersistMeta;
    try {
      meta = JSON.parse(json.toString('utf8')) as PersistMeta;
    } catch (err) {
      throw new RecoverError(file, metaOffset, `metadata is not JSON: ${(err as Error).message}`);
    }
    const top = meta.regions.find((r) => r.instance === '');
    const pageSize = top?.subbuf ?? meta.regions[0]?.subbuf ?? 4096;
    const cpuCount = meta.threads.length;
    const instances = [...new Set(['', ...meta.regions.map((r) => r.instance)])];
    const cpus: RecoveredCpu[] = [];
    const buffers = instances.map((name) => ({
      name,
      clock: meta.clocks[name] ?? 'local',
      cpus: Array.from({ length: cpuCount }, (_, cpu) => {
        const pages: { pageNo: number; data: Buffer; partial: boolean }[] = [];
        let bad = 0;
        meta.regions.forEach((region, index) => {
          if (region.instance !== name || region.cpu !== cpu || region.subbuf !== pageSize) return;
          for (let s = 0; s <= region.slots; s++) {
            const at = slotOffset(region, s);
            if (at + SLOT_HEADER + region.subbuf > size) continue; // never written
            const slot = readExactly(fd, file, at, SLOT_HEADER + region.subbuf);
            if (slot.readUInt32LE(0) === 0) continue; // never written
            if (slot.readUInt32LE(0) !== SLOT_MAGIC || slot.readUInt32LE(4) !== index) {
              bad++;
              continue;
            }
            const data = slot.subarray(SLOT_HEADER);
            if (crc32(data) !== slot.readUInt32LE(24)) {
              bad++;
              continue;
            }
            pages.push({ pageNo: slot.readDoubleLE(16), data, partial: (slot.readUInt32LE(8) & FLAG_PARTIAL) !== 0 });
          }
        });
        pages.sort((a, b) => a.pageNo - b.pageNo || Number(a.partial) - Number(b.partial));
        // Keep one page per number, complete before partial; a partial only past every complete one.
        const kept: typeof pages = [];
        for (const p of pages) {
          const last = kept[kept.length - 1];
          if (last && last.pageNo === p.pageNo) continue;
          kept.push(p);
        }
        const tailCut = kept.length > 0 && kept[kept.length - 1]!.partial;
        const complete = kept.filter((p, i) => !p.partial || i === kept.length - 1);
        const nonEmpty = complete.filter((p) => p.data.readUInt32LE(8) !== 0);
        const gaps = complete.length > 1 ? complete[complete.length - 1]!.pageNo - complete[0]!.pageNo + 1 - complete.length : 0;
        cpus.push({ instance: name, cpu, pages: nonEmpty.length, bad, tailCut: tailCut && nonEmpty.length > 0, gaps });
        return nonEmpty.map((p) => p.data as Uint8Array);
      }),
    }));
    const content: TraceDatContent = {
      pageSize,
      headerPage: meta.headerPage,
      headerEvent: meta.headerEvent,
      ftraceFormats: meta.ftraceFormats,
      systems: meta.systems,
      kallsyms: '',
      printk: '',
      cmdlines: `${meta.pid} ${meta.threads[0] ?? 'node'}\n`,
      cpuCount,
      buffers,
      traceClock: meta.traceClock,
      uname: meta.uname,
      version: `${meta.version} (recovered)`,
    };
    return { content, cpus, closed: header.readUInt32LE(32) === 1, pid: meta.pid };
  } finally {
    closeSync(fd);
  }
}
