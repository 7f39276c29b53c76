/**
 * The events of one tracer, shared by all its threads through a SharedArrayBuffer: an
 * append-only table of (system, name, fields, print) records. Any thread may define an event;
 * the first definition fixes its index (and so its id), later identical ones get the same index,
 * and a conflicting one is refused. Appends take a short spin lock; reads are lock-free.
 */
import { fail } from '../errno.js';
import { EventDef, FIRST_EVENT_ID, type EventOptions, type EventType } from './event.js';
import type { FieldSpec } from './fields.js';
import { PRINT_EVENT } from './ftrace.js';

const I_LOCK = 0;
const I_COUNT = 1;
const I_USED = 2;
const HEADER = 16;
const DEFAULT_BYTES = 1 << 20;

interface Record {
  system: string;
  name: string;
  fields: FieldSpec;
  options: EventOptions;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EventRegistry {
  readonly sab: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  /** Decoded events, by index. Index 0 is ftrace/print. */
  private readonly types: EventType[] = [PRINT_EVENT];
  private readonly byName = new Map<string, EventType>([['ftrace/print', PRINT_EVENT]]);
  private readBytes = 0;
  readonly maxEvents: number;

  constructor(sab?: SharedArrayBuffer, maxEvents = 4096) {
    this.sab = sab ?? new SharedArrayBuffer(DEFAULT_BYTES);
    this.i32 = new Int32Array(this.sab, 0, 4);
    this.u8 = new Uint8Array(this.sab);
    this.dv = new DataView(this.sab);
    this.maxEvents = maxEvents;
  }

  /** Events taken out of the control tree (removed probes), on this thread's view. */
  private readonly hiddenSet = new Set<number>();
  /** Bumped when an event is hidden or shown again. */
  hiddenVersion = 0;

  /** Hide an event from the control tree (a removed probe) or show it again. Records stay readable. */
  hide(index: number, hidden: boolean): void {
    if (this.hiddenSet.has(index) === hidden) return;
    if (hidden) this.hiddenSet.add(index);
    else this.hiddenSet.delete(index);
    this.hiddenVersion++;
  }

  isHidden(index: number): boolean {
    return this.hiddenSet.has(index);
  }

  /** Every event defined so far, by any thread, in definition order. */
  all(): readonly EventType[] {
    this.sync();
    return this.types;
  }

  /**
   * Every event's format file as a trace.dat holds them: ftrace's own (print, js_stack) apart,
   * the others grouped by system in definition order.
   */
  formatFiles(): { ftrace: string[]; systems: { name: string; formats: string[] }[] } {
    const ftrace: string[] = [];
    const systems = new Map<string, string[]>();
    for (const e of this.all()) {
      if (e.system === 'ftrace') ftrace.push(e.formatFile());
      else systems.set(e.system, [...(systems.get(e.system) ?? []), e.formatFile()]);
    }
    return { ftrace, systems: [...systems].map(([name, formats]) => ({ name, formats })) };
  }

  get(system: string, name: string): EventType | undefined {
    this.sync();
    return this.byName.get(`${system}/${name}`);
  }

  byIndex(index: number): EventType | undefined {
    if (index >= this.types.length) this.sync();
    return this.types[index];
  }

  /** Event type for a record's common_type. */
  byId(id: number): EventType | undefined {
    if (id === PRINT_EVENT.id) return PRINT_EVENT;
    return id > FIRST_EVENT_ID ? this.byIndex(id - FIRST_EVENT_ID) : undefined;
  }

  define(system: string, name: string, fields: FieldSpec, options: EventOptions = {}): EventDef {
    const record: Record = { system, name, fields, options };
    // Validate before taking the lock: a bad definition must not enter the table.
    const probe = new EventDef(system, name, this.types.length, fields, options);
    const text = JSON.stringify(record);
    this.lock();
    try {
      this.sync();
      const existing = this.byName.get(`${system}/${name}`);
      if (existing) {
        if (!(existing instanceof EventDef) || JSON.stringify({ system, name, fields: existing.spec, options: { print: existing.print } }) !==
          JSON.stringify({ system, name, fields, options: { print: options.print } })) {
          fail('EEXIST', `event ${system}:${name} is already defined with other fields`);
        }
        return existing;
      }
      if (this.types.length >= this.maxEvents) fail('ENOSPC', `no room for more than ${this.maxEvents} events`);
      const bytes = encoder.encode(text);
      const used = Atomics.load(this.i32, I_USED);
      if (HEADER + used + 4 + bytes.length > this.sab.byteLength) fail('ENOSPC', 'event registry is full');
      this.dv.setUint32(HEADER + used, bytes.length, true);
      this.u8.set(bytes, HEADER + used + 4);
      Atomics.store(this.i32, I_USED, used + 4 + bytes.length);
      Atomics.add(this.i32, I_COUNT, 1);
      this.sync();
      return this.byName.get(`${system}/${name}`) as EventDef ?? probe;
    } finally {
      Atomics.store(this.i32, I_LOCK, 0);
    }
  }

  private lock(): void {
    for (let spins = 0; Atomics.compareExchange(this.i32, I_LOCK, 0, 1) !== 0; spins++) {
      if (spins > 1e8) throw new Error('event registry lock is stuck');
    }
  }

  /** Decode records other threads appended since the last look. */
  private sync(): void {
    const used = Atomics.load(this.i32, I_USED);
    while (this.readBytes < used) {
      const len = this.dv.getUint32(HEADER + this.readBytes, true);
      const start = HEADER + this.readBytes + 4;
      const rec = JSON.parse(decoder.decode(this.u8.slice(start, start + len))) as Record;
      const def = new EventDef(rec.system, rec.name, this.types.length, rec.fields, rec.options);
      this.types.push(def);
      this.byName.set(`${rec.system}/${rec.name}`, def);
      this.readBytes += 4 + len;
    }
  }
}
