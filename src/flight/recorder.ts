/**
 * The flight recorder: trace all the time in overwrite mode, and when the process dies (an
 * uncaught exception, an unhandled rejection, a catchable fatal signal) write every instance's
 * buffers to disk as one trace.dat before it goes; then let it die as it would have (same exit
 * code, same signal). Snapshots taken by triggers can be written out as they happen, without
 * stopping tracing. With `persist`, a worker also mirrors the rings into a circular file that
 * survives what no handler sees (SIGKILL, OOM kills, abort()): see persist.ts.
 */
import { chmodSync, mkdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { codecFor, type CompressionName } from '../format/tracedat/compress.js';
import type { Tracer } from '../tracefs/tracer.js';
import { Persister } from './persist.js';

/** Signals Node lets JavaScript catch whose default action ends the process. */
export const FATAL_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ'];

export interface FlightRecorderOptions {
  /** Directory for dumps (made 0700 if missing); files are 0600. */
  dir: string;
  /** Also write each instance's `trace` text beside the trace.dat. */
  text?: boolean;
  /** trace.dat version (default 7) and, for 7, compression (default none: fastest to write). */
  version?: 6 | 7;
  compression?: CompressionName;
  /** Signals that dump before the process dies (default FATAL_SIGNALS). */
  signals?: NodeJS.Signals[];
  /** Write each snapshot a trigger (or anyone) takes to its own file, as it happens. */
  snapshots?: boolean;
  /** Mirror the rings into this circular file, from a worker thread (see persist.ts). */
  persist?: string;
  /** How often the persist worker looks at the rings (default 10 ms). */
  persistIntervalMs?: number;
  /** Pages kept per ring in the persist file (default: the ring's own page count). */
  persistPages?: number;
  /** Told of each file written (dumps and snapshots). */
  onFile?: (file: string, reason: string) => void;
}

const SNAPSHOT_POLL_MS = 100;

export class FlightRecorder {
  readonly dir: string;
  /** Files written so far, oldest first. */
  readonly files: string[] = [];
  private readonly tracer: Tracer;
  private readonly options: FlightRecorderOptions;
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();
  private readonly onCrash: (err: unknown, origin: string) => void;
  private snapshotTimer: NodeJS.Timeout | null = null;
  private readonly snapshotsSeen = new Map<string, number>();
  private persister: Persister | null = null;
  private dumps = 0;
  private closed = false;

  constructor(tracer: Tracer, options: FlightRecorderOptions) {
    if (!options?.dir) throw new TypeError('flightRecorder needs { dir }');
    this.tracer = tracer;
    this.options = options;
    this.dir = options.dir;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.onCrash = (_err, origin) => this.crash(origin === 'unhandledRejection' ? 'unhandledRejection' : 'uncaughtException');
    // The monitor runs before Node's own handling, which then goes on as if we were not here.
    process.on('uncaughtExceptionMonitor', this.onCrash);
    for (const sig of options.signals ?? FATAL_SIGNALS) {
      const handler = () => this.onSignal(sig, handler);
      this.signalHandlers.set(sig, handler);
      process.on(sig, handler);
    }
    if (options.snapshots) {
      for (const name of ['', ...tracer.instanceNames()]) this.snapshotsSeen.set(name, tracer.instance(name).snapshotCount);
      this.snapshotTimer = setInterval(() => void this.writeNewSnapshots(), SNAPSHOT_POLL_MS).unref();
    }
    if (options.persist) {
      this.persister = new Persister(tracer, { file: options.persist, intervalMs: options.persistIntervalMs ?? 10, pages: options.persistPages });
    }
  }

  /** Resolves once zstd (if chosen) is loaded, so a dump never waits for it. */
  async ready(): Promise<void> {
    if ((this.options.compression ?? 'none') === 'zstd') await codecFor('zstd');
    await this.persister?.ready();
  }

  /**
   * Write every instance's buffers now, synchronously, as one trace.dat (more if instances
   * differ in sub-buffer size), and text if asked. Returns the files written. Non-consuming:
   * tracing goes on.
   */
  dump(reason = 'manual'): string[] {
    const base = join(this.dir, `nftrace-${process.pid}-${stamp()}-${++this.dumps}-${reason}`);
    const written: string[] = [];
    // One file for the top level and the instances sharing its sub-buffer size; one per other size.
    this.tracer.instanceGroups().forEach((names, i) => {
      const file = i === 0 ? `${base}.dat` : `${base}-${names[0]}.dat`;
      this.tracer.saveInstancesSync(file, names, { version: this.options.version ?? 7, compression: this.options.compression ?? 'none' });
      written.push(file);
    });
    if (this.options.text) {
      const text = ['', ...this.tracer.instanceNames()].map((name) => {
        const inst = this.tracer.instance(name);
        return `### instance: ${name || '(top level)'}\n${inst.traceText()}`;
      });
      writeFileSync(`${base}.txt`, text.join('\n'), { mode: 0o600 });
      chmodSync(`${base}.txt`, 0o600);
      written.push(`${base}.txt`);
    }
    for (const f of written) {
      this.files.push(f);
      this.options.onFile?.(f, reason);
    }
    return written;
  }

  /** Stop watching: remove the handlers, the snapshot timer and the persist worker (flushed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('uncaughtExceptionMonitor', this.onCrash);
    for (const [sig, handler] of this.signalHandlers) process.removeListener(sig, handler);
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    await this.persister?.close();
  }

  private crash(reason: string): void {
    if (this.closed) return;
    try {
      const files = this.dump(reason);
      writeSync(2, `nftrace: ${reason}: flight recorder wrote ${files.join(', ')}\n`);
    } catch (err) {
      writeSync(2, `nftrace: ${reason}: flight recorder dump failed: ${(err as Error).message}\n`);
    }
  }

  /** Dump, then die of the same signal unless someone else handles it. */
  private onSignal(sig: NodeJS.Signals, handler: () => void): void {
    this.crash(sig);
    if (process.listenerCount(sig) > 1) return;
    process.removeListener(sig, handler);
    this.signalHandlers.delete(sig);
    process.kill(process.pid, sig);
  }

  private async writeNewSnapshots(): Promise<void> {
    for (const name of ['', ...this.tracer.instanceNames()]) {
      const count = this.tracer.instance(name).snapshotCount;
      const seen = this.snapshotsSeen.get(name) ?? 0;
      this.snapshotsSeen.set(name, count);
      if (count === seen) continue;
      const file = join(this.dir, `nftrace-${process.pid}-${stamp()}-snapshot${name ? `-${name}` : ''}-${count}.dat`);
      try {
        await this.tracer.saveTraceDat(file, { instance: name || undefined, snapshot: true, version: this.options.version ?? 7, compression: this.options.compression ?? 'none' });
        this.files.push(file);
        this.options.onFile?.(file, 'snapshot');
      } catch (err) {
        writeSync(2, `nftrace: writing snapshot ${file} failed: ${(err as Error).message}\n`);
      }
    }
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Start a flight recorder on `tracer` (see FlightRecorderOptions). */
export function flightRecorder(tracer: Tracer, options: FlightRecorderOptions): FlightRecorder {
  return new FlightRecorder(tracer, options);
}
