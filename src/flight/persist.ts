/**
 * The main thread's half of the persist file (format in persist-format.ts): it lays out the
 * regions, keeps the metadata current, and tells the worker (persist-worker.ts) which rings to
 * mirror. It looks for changes (new events, instances, threads, swapped or resized rings) on a
 * slow timer; the page copying happens in the worker, never on an emitting thread.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { localUname } from '../format/tracedat/writer.js';
import { HEADER_EVENT_TEXT, HEADER_PAGE_TEXT } from '../ring/layout.js';
import type { Tracer } from '../tracefs/tracer.js';
import {
  HEADER_SIZE, META_CAPACITY, PERSIST_MAGIC, PERSIST_VERSION, slotSize, type PersistMeta, type PersistRegion,
} from './persist-format.js';

/** A ring the worker mirrors into `region`. */
export interface MirroredRing {
  region: number;
  sab: SharedArrayBuffer;
  /**
   * The ring's identity, stable across messages. Not the SAB: each message hands the worker a
   * new SharedArrayBuffer object for the same memory, so comparing those would take every ring
   * for a replaced one and skip the pages written since the last look.
   */
  id: number;
}

export type PersistMessage =
  | { kind: 'rings'; regions: PersistRegion[]; rings: MirroredRing[] }
  | { kind: 'stop' };

const WATCH_MS = 100;

export class Persister {
  readonly file: string;
  private readonly tracer: Tracer;
  private readonly fd: number;
  private readonly worker: Worker;
  private readonly watch: NodeJS.Timeout;
  private readonly pages: number | undefined;
  private readonly regions: PersistRegion[] = [];
  private dataEnd = HEADER_SIZE + META_CAPACITY;
  private generation = 0;
  private fingerprint = '';
  private readonly started: Promise<void>;

  constructor(tracer: Tracer, options: { file: string; intervalMs: number; pages?: number }) {
    this.tracer = tracer;
    this.file = options.file;
    this.pages = options.pages;
    this.fd = openSync(options.file, 'w+', 0o600);
    this.worker = new Worker(new URL('./persist-worker.js', import.meta.url), {
      workerData: { file: options.file, intervalMs: options.intervalMs },
      // The worker needs none of the process's flags (some, like --input-type, break it).
      execArgv: [],
    });
    // Referenced only while we wait on it (start, close): it never keeps the process alive.
    this.started = new Promise((resolve, reject) => {
      this.worker.once('message', () => (this.worker.unref(), resolve()));
      this.worker.once('error', (err) => (this.worker.unref(), reject(err)));
    });
    this.update();
    this.watch = setInterval(() => this.update(), WATCH_MS).unref();
  }

  /** Resolves when the worker is running. */
  ready(): Promise<void> {
    return this.started;
  }

  /** Look for changes; on any, lay out new regions, rewrite the metadata and tell the worker. */
  update(): void {
    const tracer = this.tracer;
    const instances = ['', ...tracer.instanceNames()].map((name) => tracer.instance(name));
    const rings = instances.flatMap((inst) => Array.from({ length: inst.cpuCount }, (_, cpu) => ({ inst, cpu, view: inst.ring(cpu) })));
    const events = tracer.eventTypes();
    const print = `${events.length}|${instances.map((i) => `${i.name}:${i.clockName}:${i.subbuf}`).join(',')}|${rings.map((r) => ringId(r.view.sab)).join(',')}`;
    if (print === this.fingerprint) return;
    this.fingerprint = print;
    const mirrored: MirroredRing[] = rings.map(({ inst, cpu, view }) => {
      let index = this.regions.findIndex((r) => r.instance === inst.name && r.cpu === cpu && r.subbuf === view.subbuf);
      if (index < 0) {
        const slots = Math.max(2, this.pages ?? view.pages);
        const region: PersistRegion = { instance: inst.name, cpu, subbuf: view.subbuf, offset: this.dataEnd, slots };
        this.dataEnd += (slots + 1) * slotSize(view.subbuf);
        index = this.regions.push(region) - 1;
      }
      return { region: index, sab: view.sab, id: ringId(view.sab) };
    });
    const top = tracer.instance();
    const formats = tracer.eventFormats();
    const meta: PersistMeta = {
      pid: process.pid,
      threads: tracer.threadNames(),
      ftraceFormats: formats.ftrace,
      systems: formats.systems,
      headerPage: HEADER_PAGE_TEXT(top.subbuf - 16),
      headerEvent: HEADER_EVENT_TEXT,
      traceClock: top.clockText(),
      clocks: Object.fromEntries(instances.map((i) => [i.name, i.clockName])),
      uname: localUname(),
      version: `nftrace ${process.version}`,
      regions: this.regions,
    };
    this.writeMeta(meta, false);
    const message: PersistMessage = { kind: 'rings', regions: this.regions, rings: mirrored };
    this.worker.postMessage(message);
  }

  private writeMeta(meta: PersistMeta, closed: boolean): void {
    const json = Buffer.from(JSON.stringify(meta), 'utf8');
    if (json.length > META_CAPACITY) throw new Error(`persist metadata is ${json.length} bytes, more than ${META_CAPACITY}`);
    writeSync(this.fd, json, 0, json.length, HEADER_SIZE);
    const header = Buffer.alloc(40);
    header.write(PERSIST_MAGIC, 0, 'latin1');
    header.writeUInt32LE(PERSIST_VERSION, 8);
    header.writeUInt32LE(HEADER_SIZE, 12);
    header.writeUInt32LE(META_CAPACITY, 16);
    header.writeUInt32LE(json.length, 20);
    header.writeUInt32LE(crc32(json), 24);
    header.writeUInt32LE(++this.generation, 28);
    header.writeUInt32LE(closed ? 1 : 0, 32);
    writeSync(this.fd, header, 0, header.length, 0);
    this.lastMeta = meta;
  }

  private lastMeta: PersistMeta | null = null;

  /** Stop: the worker takes a last look at every ring, then the file is marked closed. */
  async close(): Promise<void> {
    clearInterval(this.watch);
    this.update();
    this.worker.ref();
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'stop' } satisfies PersistMessage);
    await exited;
    if (this.lastMeta) this.writeMeta(this.lastMeta, true);
    closeSync(this.fd);
  }
}

/** An identity for a SharedArrayBuffer, stable while it lives (fingerprints compare these). */
const ids = new WeakMap<SharedArrayBuffer, number>();
let nextId = 1;
function ringId(sab: SharedArrayBuffer): number {
  let id = ids.get(sab);
  if (id === undefined) ids.set(sab, (id = nextId++));
  return id;
}
