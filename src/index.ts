/** nftrace: ftrace's design for Node.js. */
export { Tracer, type TracerOptions, type SaveTraceDatOptions } from './tracefs/tracer.js';
export { TraceFile, DirHandle, type Stat } from './tracefs/tree.js';
export { readTraceDatFile, type TraceDat } from './format/tracedat/reader.js';
export { TraceDatEvents, type TraceRecord } from './format/tracedat/records.js';
export { TraceDatError } from './format/tracedat/cursor.js';
export { attach, ThreadTracer, type ThreadHandle } from './instance/attach.js';
export { TraceEvent } from './instance/thread.js';
export type { Instance } from './instance/instance.js';
export type { FieldSpec, FieldType, Payload } from './events/fields.js';
export type { EventOptions, PrintSpec } from './events/event.js';
export { TraceError, type ErrnoCode } from './errno.js';
export { flightRecorder, FlightRecorder, FATAL_SIGNALS, type FlightRecorderOptions } from './flight/recorder.js';
