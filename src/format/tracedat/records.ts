/**
 * Records of a trace.dat, merged by timestamp across CPUs and buffers, with each event's
 * format, the task's comm and kallsyms resolved: what `report` and converters iterate.
 */
import { EventFormat, FormatError, type RecordView, type SymbolTable } from '../../events/kformat.js';
import { COMMIT_SIZE_MASK, MISSED_EVENTS, MISSED_STORED, SUBBUF_HEADER } from '../../ring/layout.js';
import { forEachEvent, readU64 } from '../../ring/ring.js';
import { Kallsyms } from '../../events/symbols.js';
import { TraceDatError } from './cursor.js';
import type { TraceDat, TraceDatBuffer, TraceDatCpu } from './reader.js';

export interface TraceRecord extends RecordView {
  buffer: string;
  cpu: number;
  /** Timestamp in the buffer's clock units (ns for the usual clocks). */
  ts: number;
  id: number;
  pid: number;
  /** Undefined when the file has no format for this id. */
  event: EventFormat | undefined;
}

/** Per-CPU losses found in page headers (the kernel's missed-events flags). */
export interface CpuLosses {
  buffer: string;
  cpu: number;
  /** Pages flagged "events missed before this page". */
  pagesWithMisses: number;
  /** Events missed, where the kernel stored the count. */
  missed: number;
}

export class TraceDatEvents {
  readonly dat: TraceDat;
  readonly events = new Map<number, EventFormat>();
  readonly symbols: SymbolTable;
  readonly comms = new Map<number, string>();
  /** Format files that could not be read at all (their events decode as unknown ids). */
  readonly formatErrors: string[] = [];
  readonly losses: CpuLosses[] = [];

  constructor(dat: TraceDat) {
    this.dat = dat;
    if (dat.longSize !== 8) throw new TraceDatError(dat.file, 'file header', 13, `long size ${dat.longSize} (only 64-bit traces are read)`);
    const add = (text: string, system: string) => {
      try {
        const ev = new EventFormat(text, system);
        this.events.set(ev.id, ev);
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        this.formatErrors.push(`${system}: ${err.message}`);
      }
    };
    for (const f of dat.ftraceFormats) add(f, 'ftrace');
    for (const s of dat.systems) for (const f of s.formats) add(f, s.name);
    this.symbols = new Kallsyms(dat.kallsyms);
    for (const line of dat.cmdlines.split('\n')) {
      const m = /^(\d+) (.*)$/.exec(line);
      if (m) this.comms.set(Number(m[1]), m[2]!);
    }
  }

  comm(pid: number): string {
    if (pid === 0) return '<idle>';
    return this.comms.get(pid) ?? '<...>';
  }

  /** Every record of the selected buffers, in timestamp order. */
  *records(filter: { buffers?: string[]; cpus?: number[] } = {}): Generator<TraceRecord> {
    const streams: CpuStream[] = [];
    for (const b of this.dat.buffers) {
      if (filter.buffers && !filter.buffers.includes(b.name)) continue;
      for (const cpu of b.cpus) {
        if (filter.cpus && !filter.cpus.includes(cpu.cpu)) continue;
        if (cpu.size === 0) continue;
        const s = new CpuStream(this, b, cpu);
        if (s.next()) streams.push(s);
      }
    }
    while (streams.length) {
      let best = 0;
      for (let i = 1; i < streams.length; i++) if (streams[i]!.head!.ts < streams[best]!.head!.ts) best = i;
      const s = streams[best]!;
      yield s.head!;
      if (!s.next()) streams.splice(best, 1);
    }
  }
}

/** One CPU's pages, decoded a page at a time. */
class CpuStream {
  head: TraceRecord | null = null;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly pageSize: number;
  private page = 0;
  private pending: TraceRecord[] = [];
  private at = 0;
  private readonly losses: CpuLosses;

  constructor(
    private readonly owner: TraceDatEvents,
    private readonly buffer: TraceDatBuffer,
    private readonly cpu: TraceDatCpu,
  ) {
    this.u8 = owner.dat.cpuData(buffer, cpu);
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
    this.pageSize = buffer.pageSize || owner.dat.pageSize;
    this.losses = { buffer: buffer.name, cpu: cpu.cpu, pagesWithMisses: 0, missed: 0 };
    owner.losses.push(this.losses);
  }

  next(): boolean {
    while (this.at >= this.pending.length) {
      if (this.page * this.pageSize >= this.u8.length) {
        this.head = null;
        return false;
      }
      this.decodePage(this.page++);
    }
    this.head = this.pending[this.at++]!;
    return true;
  }

  private decodePage(index: number): void {
    const start = index * this.pageSize;
    this.pending = [];
    this.at = 0;
    if (start + SUBBUF_HEADER > this.u8.length) return;
    const raw = Number(readU64(this.dv, start + 8) % 4294967296);
    const commit = raw & COMMIT_SIZE_MASK;
    const where = `buffer '${this.buffer.name}' cpu${this.cpu.cpu} page ${index}`;
    const fileOffset = this.owner.dat.compression === 'none' ? this.cpu.offset + start : start;
    if (commit > this.pageSize - SUBBUF_HEADER) {
      throw new TraceDatError(this.owner.dat.file, where, fileOffset + 8, `commit ${commit} is larger than the page`);
    }
    if (raw & MISSED_EVENTS) {
      this.losses.pagesWithMisses++;
      if (raw & MISSED_STORED && start + SUBBUF_HEADER + commit + 8 <= this.u8.length) {
        this.losses.missed += readU64(this.dv, start + SUBBUF_HEADER + commit);
      }
    }
    const events = this.owner.events;
    try {
      forEachEvent(this.dv, start, commit, (ts, off, len) => {
        if (len < 8) return;
        const id = this.dv.getUint16(off, true);
        this.pending.push({
          buffer: this.buffer.name, cpu: this.cpu.cpu, ts, id, pid: this.dv.getInt32(off + 4, true), event: events.get(id),
          dv: this.dv, u8: this.u8, start: off, length: len,
        });
      });
    } catch (err) {
      if (err instanceof RangeError) throw new TraceDatError(this.owner.dat.file, where, fileOffset, err.message);
      throw err;
    }
  }
}
