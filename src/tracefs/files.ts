/**
 * The tracefs files of a tracer, addressed by the same relative paths as the kernel's
 * (`tracing_on`, `instances/NAME/events/SYS/EV/enable`, `per_cpu/cpu0/stats` ...), with the
 * kernel's errnos. A path resolves to a node with the operations the file supports.
 */
import { fail } from '../errno.js';
import type { EventRegistry } from '../events/registry.js';
import type { ControlBlock } from '../instance/control.js';
import { enableable, readSetEvent, writeSetEvent } from '../instance/enable.js';
import type { Instance, PipeReader, RawPipe } from '../instance/instance.js';
import type { ThreadContext } from '../instance/thread.js';
import type { Probes } from '../instance/probes.js';
import type { Synthetics } from '../instance/synthetic.js';
import { parseBool, parseUnsigned, parseWord } from './parse.js';
import { README_TEXT } from './readme.js';

export interface FileNode {
  read?: () => string;
  /** Returns the bytes accepted. */
  write?: (data: string) => number;
  /** What an O_TRUNC open does to this file (`echo >`): clear `trace`, empty `set_event`. */
  truncate?: () => void;
  /** The errno an open file of this kind answers once its instance is gone (else it pins it). */
  staleErrno?: 'ENODEV';
  /** A consuming reader (trace_pipe). */
  pipe?: () => PipeReader;
  /** A consuming reader of raw pages (trace_pipe_raw). */
  raw?: () => RawPipe;
  /** The instance an open file of this kind keeps from being removed. */
  pins?: Instance;
}

export interface TracerState {
  control: ControlBlock;
  registry: EventRegistry;
  main: ThreadContext;
  top: Instance;
  instances: Map<string, Instance>;
  /** Function probes (`dynamic_events`). */
  probes: Probes;
  /** `synthetic_events`. */
  synthetics: Synthetics;
}

export const NAME_MAX = 255;

/** What a control-file write reports as written: its UTF-8 length. */
export function bytes(data: string): number {
  return Buffer.byteLength(data, 'utf8');
}

function noSuch(path: string): never {
  fail('ENOENT', `${path}: no such file`);
}

const TEXT_OPTIONS = { 'irq-info': 'irqInfo', 'record-tgid': 'recordTgid', 'context-info': 'contextInfo' } as const;

/**
 * A path's components. A name over NAME_MAX is ENAMETOOLONG, except inside `events/`, where
 * eventfs simply finds no such entry (ENOENT), as on Linux 6.18.
 */
export function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const eventsAt = parts.indexOf('events');
  parts.forEach((p, i) => {
    if (Buffer.byteLength(p) <= NAME_MAX) return;
    const inEventfs = eventsAt >= 0 && i > eventsAt && (eventsAt === 0 || (eventsAt === 2 && parts[0] === 'instances'));
    fail(inEventfs ? 'ENOENT' : 'ENAMETOOLONG', `${p.slice(0, 32)}...: ${inEventfs ? 'no such file' : 'name too long'}`);
  });
  return parts;
}

/**
 * The operations of an instance's ordinary (non-eventfs) file, `rest` being its path inside the
 * instance (the control tree has already found the instance and checked the name).
 */
export function resolveFile(state: TracerState, instance: Instance, rest: string[], path: string): FileNode {
  const { control, registry } = state;
  const slot = instance.slot;
  const [first, second, third] = rest;
  if (rest.length === 1) {
    switch (first) {
      case 'tracing_on':
        return {
          pins: instance,
          read: () => (control.tracingOn(slot) ? '1\n' : '0\n'),
          write: (d) => {
            const on = parseUnsigned(d, 'tracing_on') !== 0;
            control.change(() => control.setTracingOn(slot, on));
            return bytes(d);
          },
        };
      case 'buffer_size_kb':
        return {
          pins: instance,
          read: () => instance.bufferSizeKb(),
          write: (d) => (instance.setBufferSizeKb(parseUnsigned(d, 'buffer_size_kb')), state.main.refresh(), bytes(d)),
        };
      case 'buffer_subbuf_size_kb':
        return {
          pins: instance,
          read: () => instance.subbufSizeKb(),
          write: (d) => (instance.setSubbufSizeKb(parseUnsigned(d, 'buffer_subbuf_size_kb')), state.main.refresh(), bytes(d)),
        };
      case 'buffer_total_size_kb':
        return { pins: instance, read: () => instance.totalSizeKb() };
      case 'trace':
        return {
          pins: instance,
          read: () => instance.traceText(),
          write: (d) => bytes(d),
          truncate: () => instance.clear(),
        };
      case 'error_log':
        // Only O_TRUNC clears it; what is written is ignored.
        return { pins: instance, read: () => instance.rules.errorLog(), write: (d) => bytes(d), truncate: () => instance.rules.clearErrorLog() };
      case 'snapshot':
        return {
          pins: instance,
          read: () => instance.snapshotText(),
          write: (d) => (instance.writeSnapshot(parseUnsigned(d, 'snapshot')), state.main.refresh(), bytes(d)),
          truncate: () => {},
        };
      case 'trace_pipe':
        return { pins: instance, pipe: () => instance.openPipe() };
      case 'trace_marker':
        return {
          pins: instance,
          write: (d) => state.main.mark(slot, Buffer.from(d, 'utf8')),
        };
      case 'trace_clock':
        return {
          pins: instance,
          read: () => instance.clockText(),
          write: (d) => (instance.setClock(parseWord(d, 'trace_clock')), state.main.refresh(), bytes(d)),
        };
      case 'buffer_percent':
        return {
          pins: instance,
          read: () => `${instance.bufferPercent}\n`,
          write: (d) => {
            const percent = parseUnsigned(d, 'buffer_percent');
            if (percent > 100) fail('EINVAL', 'buffer_percent is 0 to 100');
            instance.bufferPercent = percent;
            return bytes(d);
          },
        };
      case 'README':
        if (instance !== state.top) noSuch(path);
        return { read: () => README_TEXT };
      case 'available_tracers':
        return { pins: instance, read: () => 'nop\n' };
      case 'current_tracer':
        return {
          pins: instance,
          read: () => 'nop\n',
          write: (d) => {
            if (parseWord(d, 'current_tracer') !== 'nop') fail('EINVAL', 'only the nop tracer exists here');
            return bytes(d);
          },
        };
      case 'set_event':
        return {
          pins: instance,
          read: () => readSetEvent(control, registry, slot),
          write: (d) => (writeSetEvent(control, registry, slot, d, false), bytes(d)),
          truncate: () => writeSetEvent(control, registry, slot, '', true),
        };
      case 'dynamic_events':
        if (instance !== state.top) noSuch(path);
        return { read: () => state.probes.read(), write: (d) => (state.probes.write(d), bytes(d)), truncate: () => state.probes.clear() };
      case 'synthetic_events':
        if (instance !== state.top) noSuch(path);
        return { read: () => state.synthetics.read(), write: (d) => (state.synthetics.write(d), bytes(d)), truncate: () => state.synthetics.clear() };
      case 'fprobe_profile':
        if (instance !== state.top) noSuch(path);
        return { read: () => state.probes.profile() };
      case 'available_events':
        if (instance !== state.top) noSuch(path);
        return { read: () => enableable(registry).map((e) => `${e.system}:${e.name}\n`).join('') };
    }
  }
  if (first === 'options' && rest.length === 2) {
    if (second === 'overwrite') {
      return {
        read: () => (instance.overwrite ? '1\n' : '0\n'),
        write: (d) => (instance.setOverwrite(parseBool(d, 'options/overwrite')), bytes(d)),
      };
    }
    const key = TEXT_OPTIONS[second as keyof typeof TEXT_OPTIONS];
    if (key) {
      return {
        read: () => (instance.textOptions[key] ? '1\n' : '0\n'),
        write: (d) => ((instance.textOptions[key] = parseBool(d, `options/${second}`)), bytes(d)),
      };
    }
  }
  if (first === 'per_cpu' && rest.length === 3) {
    const m = /^cpu(\d+)$/.exec(second!);
    const cpu = m ? Number(m[1]) : -1;
    if (cpu < 0 || cpu >= instance.cpuCount) noSuch(path);
    switch (third) {
      case 'trace':
        return { pins: instance, read: () => instance.traceText(cpu), write: (d) => bytes(d), truncate: () => instance.clear(cpu) };
      case 'trace_pipe':
        return { pins: instance, pipe: () => instance.openPipe(cpu) };
      case 'trace_pipe_raw':
        return { pins: instance, raw: () => instance.openRawPipe(cpu) };
      case 'stats':
        return { pins: instance, read: () => instance.statsText(cpu) };
      case 'snapshot':
        return {
          pins: instance,
          read: () => instance.snapshotText(cpu),
          write: (d) => (instance.writeSnapshot(parseUnsigned(d, 'snapshot'), cpu), state.main.refresh(), bytes(d)),
          truncate: () => {},
        };
      case 'buffer_size_kb':
        return {
          pins: instance,
          read: () => instance.bufferSizeKb(cpu),
          write: (d) => (instance.setBufferSizeKb(parseUnsigned(d, 'buffer_size_kb'), cpu), state.main.refresh(), bytes(d)),
        };
    }
  }
  noSuch(path);
}
