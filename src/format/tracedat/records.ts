/**
 * Records of a trace.dat, merged by timestamp across CPUs and buffers, with each event's
 * format, the task's comm and kallsyms resolved: what `report` and converters iterate.
 */
import { EventFormat, FormatError, type RecordView, type SymbolTable } from '../../events/kformat.js';
import { COMMIT_SIZE_MASK, MISSED_EVENTS, MISSED_STORED, SUBBUF_HEADER } from '../../ring/layout.js';
import { forEachEvent, readU64 } from '../../ring/ring.js';
import { Kallsyms } from '../../events/symbols.js';
import { TraceDatError } from './cursor.js';
import type { CpuPiece, TraceDat, TraceDatBuffer, TraceDatCpu } from './reader.js';

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

  /**
   * Every record of the selected buffers, in timestamp order. A record is valid until the
   * iterator moves on (each CPU reuses one): copy what you keep.
   */
  *records(filter: RecordFilter = {}): Generator<TraceRecord> {
    const merge = this.merge(filter);
    for (let r = merge.next(); r; r = merge.next()) yield r;
  }

  /** The same merge without a generator, for loops that run per record. */
  merge(filter: RecordFilter = {}): RecordMerge {
    const streams: CpuStream[] = [];
    for (const b of this.dat.buffers) {
      if (filter.buffers && !filter.buffers.includes(b.name)) continue;
      for (const cpu of b.cpus) {
        if (filter.cpus && !filter.cpus.includes(cpu.cpu)) continue;
        if (cpu.size === 0) continue;
        streams.push(new CpuStream(this, b, cpu));
      }
    }
    return new RecordMerge(streams);
  }
}

export interface RecordFilter {
  buffers?: string[];
  cpus?: number[];
}

/** Perfetto's "sorter" for a trace.dat: the CPU streams merged by timestamp. */
export class RecordMerge {
  private readonly all: CpuStream[];
  private readonly live: CpuStream[];
  private last: CpuStream | null = null;
  /** Bytes of CPU data as stored in the file, for progress. */
  readonly storedBytes: number;

  constructor(streams: CpuStream[]) {
    this.all = streams;
    this.storedBytes = streams.reduce((n, s) => n + s.storedBytes, 0);
    this.live = streams.filter((s) => s.next());
  }

  /** Stored bytes read so far (of storedBytes). */
  get storedDone(): number {
    return this.all.reduce((n, s) => n + s.storedDone, 0);
  }

  /** The next record in time, or null; the one returned before is then overwritten. */
  next(): TraceRecord | null {
    const live = this.live;
    if (this.last && !this.last.next()) live.splice(live.indexOf(this.last), 1);
    if (live.length === 0) return null;
    let best = live[0]!;
    for (let i = 1; i < live.length; i++) if (live[i]!.head.ts < best.head.ts) best = live[i]!;
    this.last = best;
    return best.head;
  }
}

/**
 * One CPU's pages, a piece (file window or compressed chunk) at a time, each page decoded into
 * offsets when reached; one record object, refilled.
 */
class CpuStream {
  readonly head: TraceRecord;
  readonly storedBytes: number;
  private readonly pieces: Iterator<CpuPiece>;
  private piece: CpuPiece | null = null;
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private readonly pageSize: number;
  /** Next page's offset in the current piece. */
  private pageAt = 0;
  private ended = false;
  /** The current page's events: timestamp, payload offset and length of each. */
  private readonly times: Float64Array;
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  private count = 0;
  private at = 0;
  private readonly losses: CpuLosses;

  constructor(
    private readonly owner: TraceDatEvents,
    private readonly buffer: TraceDatBuffer,
    private readonly cpu: TraceDatCpu,
  ) {
    this.storedBytes = cpu.size;
    this.pieces = owner.dat.cpuPieces(buffer, cpu);
    this.pageSize = buffer.pageSize || owner.dat.pageSize;
    // An event takes at least 8 bytes (a 4-byte header and 4 of payload).
    const most = Math.ceil(this.pageSize / 8);
    this.times = new Float64Array(most);
    this.offsets = new Int32Array(most);
    this.lengths = new Int32Array(most);
    this.losses = { buffer: buffer.name, cpu: cpu.cpu, pagesWithMisses: 0, missed: 0 };
    owner.losses.push(this.losses);
    this.head = { buffer: buffer.name, cpu: cpu.cpu, ts: 0, id: 0, pid: 0, event: undefined, dv: this.dv, u8: new Uint8Array(0), start: 0, length: 0 };
  }

  get storedDone(): number {
    return this.ended ? this.storedBytes : (this.piece?.stored ?? 0);
  }

  next(): boolean {
    while (this.at >= this.count) {
      if (!this.piece || this.pageAt >= this.piece.bytes.length) {
        const next = this.pieces.next();
        if (next.done) {
          this.ended = true;
          return false;
        }
        this.piece = next.value;
        this.pageAt = 0;
        this.dv = new DataView(next.value.bytes.buffer, next.value.bytes.byteOffset, next.value.bytes.byteLength);
        this.head.dv = this.dv;
        this.head.u8 = next.value.bytes;
      }
      this.decodePage(this.pageAt);
      this.pageAt += this.pageSize;
    }
    const i = this.at++;
    const off = this.offsets[i]!;
    const head = this.head;
    const id = this.dv.getUint16(off, true);
    head.ts = this.times[i]!;
    head.id = id;
    head.pid = this.dv.getInt32(off + 4, true);
    head.event = this.owner.events.get(id);
    head.start = off;
    head.length = this.lengths[i]!;
    return true;
  }

  private decodePage(start: number): void {
    const piece = this.piece!;
    this.count = 0;
    this.at = 0;
    if (start + SUBBUF_HEADER > piece.bytes.length) return;
    const raw = Number(readU64(this.dv, start + 8) % 4294967296);
    const commit = raw & COMMIT_SIZE_MASK;
    const index = (piece.offset + start) / this.pageSize;
    const where = `buffer '${this.buffer.name}' cpu${this.cpu.cpu} page ${index}`;
    const fileOffset = piece.fileOffset >= 0 ? piece.fileOffset + start : piece.offset + start;
    if (commit > this.pageSize - SUBBUF_HEADER) {
      throw new TraceDatError(this.owner.dat.file, where, fileOffset + 8, `commit ${commit} is larger than the page`);
    }
    if (raw & MISSED_EVENTS) {
      this.losses.pagesWithMisses++;
      if (raw & MISSED_STORED && start + SUBBUF_HEADER + commit + 8 <= piece.bytes.length) {
        this.losses.missed += readU64(this.dv, start + SUBBUF_HEADER + commit);
      }
    }
    try {
      forEachEvent(this.dv, start, commit, (ts, off, len) => {
        if (len < 8) return;
        const n = this.count++;
        this.times[n] = ts;
        this.offsets[n] = off;
        this.lengths[n] = len;
      });
    } catch (err) {
      if (err instanceof RangeError) throw new TraceDatError(this.owner.dat.file, where, fileOffset, err.message);
      throw err;
    }
  }
}
