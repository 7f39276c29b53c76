/**
 * Tracing from worker threads. The main thread makes a handle (shared blocks, a CPU number and a
 * message port for ring updates) that travels in `workerData`; the worker attaches and gets its
 * own ThreadContext writing its own rings. Ring updates are drained synchronously with
 * receiveMessageOnPort when the generation changes, so a worker in a busy loop still follows
 * configuration changes on its next event.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { EventOptions } from '../events/event.js';
import type { FieldSpec } from '../events/fields.js';
import { EventRegistry } from '../events/registry.js';
import { ControlBlock, type ControlLimits } from './control.js';
import { matchEvents, setEnabled } from './enable.js';
import { ThreadContext, type ThreadUpdate, type TraceEvent } from './thread.js';

/** Everything a worker needs to attach; structured-clonable (send it in workerData). */
export interface ThreadHandle {
  kind: 'nftrace-thread';
  cpu: number;
  name: string;
  control: SharedArrayBuffer;
  registry: SharedArrayBuffer;
  limits: ControlLimits;
  port: MessagePort;
  /** NFTRACE_EVENT tokens of the creating tracer, applied to the top level as events are defined. */
  startupEvents: string[];
}

/** The tracer as a worker sees it: define events and emit them; control stays with the main thread. */
export class ThreadTracer {
  readonly cpu: number;
  readonly name: string;
  private readonly context: ThreadContext;
  private readonly startupEvents: string[];

  constructor(handle: ThreadHandle) {
    if (handle?.kind !== 'nftrace-thread') throw new TypeError('attach() needs the handle from tracer.threadHandle()');
    this.cpu = handle.cpu;
    this.name = handle.name;
    const control = new ControlBlock(handle.limits, handle.control);
    const registry = new EventRegistry(handle.registry, handle.limits.maxEvents);
    const port = handle.port;
    this.context = new ThreadContext(handle.cpu, handle.name, control, registry, () => drain(port));
    this.startupEvents = handle.startupEvents;
    this.context.refresh();
  }

  defineEvent<F extends FieldSpec>(system: string, name: string, fields: F, options?: EventOptions): TraceEvent<F> {
    const ev = this.context.defineEvent(system, name, fields, options);
    applyStartupEvents(this.context, this.startupEvents, ev.def.system, ev.def.name);
    return ev;
  }

  /** Write to an instance's trace_marker from this thread (0 = top level). */
  mark(text: string, instanceSlot = 0): number {
    return this.context.mark(instanceSlot, Buffer.from(text, 'utf8'));
  }
}

function drain(port: MessagePort): ThreadUpdate[] {
  const updates: ThreadUpdate[] = [];
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) updates.push(m.message as ThreadUpdate);
  return updates;
}

/** Enable a newly defined event in the top level when a start-up token names it. */
export function applyStartupEvents(context: ThreadContext, tokens: string[], system: string, name: string): void {
  for (const token of tokens) {
    const events = matchEvents(context.registry, token).filter((e) => e.system === system && e.name === name);
    if (events.length) setEnabled(context.control, 0, events, true);
  }
}

export function attach(handle: ThreadHandle): ThreadTracer {
  return new ThreadTracer(handle);
}
