/**
 * The root object: one tracer with its events, its top-level instance and named instances,
 * driven by tracefs paths and values (`tracer.write('events/http/enable', '1')`), like libtracefs
 * where no instance means the top level.
 */
import { MessageChannel, threadId } from 'node:worker_threads';
import { fail } from '../errno.js';
import type { EventOptions } from '../events/event.js';
import type { FieldSpec } from '../events/fields.js';
import { EventRegistry } from '../events/registry.js';
import { applyStartupEvents, type ThreadHandle } from '../instance/attach.js';
import { ControlBlock } from '../instance/control.js';
import { DEFAULT_BUFFER_KB, Instance, type ThreadInfo } from '../instance/instance.js';
import { ThreadContext, type ThreadUpdate, type TraceEvent } from '../instance/thread.js';
import { PRINT_EVENT } from '../events/ftrace.js';
import type { CompressionName } from '../format/tracedat/compress.js';
import { cpuStatOptions, localUname, writeTraceDat, type CpuPages } from '../format/tracedat/writer.js';
import { HEADER_EVENT_TEXT, HEADER_PAGE_TEXT } from '../ring/layout.js';
import { NAME_MAX, splitPath, type TracerState } from './files.js';
import { ControlTree, DirHandle, TraceFile, type Stat } from './tree.js';
import { mountSource, treeSource, type Mount } from './fuse.js';
import { listen } from './socket.js';
import { parseUnsigned } from './parse.js';

export interface TracerOptions {
  /** Most instances at once, the top level included (default 128). */
  maxInstances?: number;
  /** Most event types (default 4096). */
  maxEvents?: number;
  /** Environment to read NFTRACE_EVENT / NFTRACE_BUF_SIZE from (default process.env). */
  env?: Record<string, string | undefined>;
}

export interface SaveTraceDatOptions {
  /** A named instance; the top level when absent. */
  instance?: string;
  /** File version (default 7). */
  version?: 6 | 7;
  /** v7 only (default zstd). */
  compression?: CompressionName;
  /** Save the instance's snapshot (spare) buffers instead of the live ones. */
  snapshot?: boolean;
}

export class Tracer {
  private readonly state: TracerState;
  private readonly tree: ControlTree;
  private mounted: Mount | null = null;
  private listening: Awaited<ReturnType<typeof listen>> | null = null;
  private readonly threads: ThreadInfo[] = [];
  private readonly mainUpdates: ThreadUpdate[] = [];
  private readonly startupEvents: string[];
  private readonly freeSlots: number[];

  constructor(options: TracerOptions = {}) {
    const limits = { maxInstances: options.maxInstances ?? 128, maxEvents: options.maxEvents ?? 4096 };
    const env = options.env ?? process.env;
    const control = new ControlBlock(limits);
    const registry = new EventRegistry(undefined, limits.maxEvents);
    const name = threadName();
    const main = new ThreadContext(0, name, control, registry, () => this.mainUpdates.splice(0));
    this.threads.push({ cpu: 0, name, deliver: (u) => this.mainUpdates.push(u) });
    let bufferKb = DEFAULT_BUFFER_KB;
    if (env.NFTRACE_BUF_SIZE) bufferKb = Math.max(1, parseUnsigned(env.NFTRACE_BUF_SIZE, 'NFTRACE_BUF_SIZE'));
    const top = new Instance('', 0, control, registry, this.threads, bufferKb);
    this.freeSlots = Array.from({ length: limits.maxInstances - 1 }, (_, i) => limits.maxInstances - 1 - i);
    this.state = { control, registry, main, top, instances: new Map() };
    this.tree = new ControlTree(this.state);
    this.startupEvents = (env.NFTRACE_EVENT ?? '').split(/[,\s]+/).filter(Boolean);
    main.refresh();
  }

  /** Define (or get again) an event; the payload type follows from `fields`. */
  defineEvent<F extends FieldSpec>(system: string, name: string, fields: F, options?: EventOptions): TraceEvent<F> {
    const ev = this.state.main.defineEvent(system, name, fields, options);
    applyStartupEvents(this.state.main, this.startupEvents, system, name);
    return ev;
  }

  /** An instance by name; none (or '') is the top level. */
  instance(name?: string): Instance {
    if (!name) return this.state.top;
    const inst = this.state.instances.get(name);
    if (!inst) fail('ENOENT', `no instance '${name}'`);
    return inst;
  }

  /** `cat path` */
  read(path: string): string {
    return this.withFile(this.tree.open(path), (f) => f.read());
  }

  /** `echo -n data > path`: an O_TRUNC open, then the write. Returns the bytes written. */
  write(path: string, data: string): number {
    return this.withFile(this.tree.open(path, { truncate: true }), (f) => f.write(data));
  }

  /** `echo -n data >> path` */
  append(path: string, data: string): number {
    return this.withFile(this.tree.open(path), (f) => f.write(data));
  }

  /** Open a file; it pins its instance until closed where the kernel's does. trace_pipe is exclusive (EBUSY). */
  open(path: string, flags: { truncate?: boolean } = {}): TraceFile {
    return this.tree.open(path, flags);
  }

  /** `ls path`: names in a directory (events/ is listed without building anything). */
  readdir(path: string): string[] {
    return this.tree.readdir(path);
  }

  /** `stat path`: inode number, mode, owner (sizes are 0, as in tracefs). */
  stat(path: string): Stat {
    return this.tree.stat(path);
  }

  chmod(path: string, mode: number): void {
    this.tree.chmod(path, mode);
  }

  chown(path: string, uid: number, gid: number): void {
    this.tree.chown(path, uid, gid);
  }

  /** Open a directory: readdir on it after its instance is removed gives EINVAL, as getdents does. */
  opendir(path: string): DirHandle {
    return this.tree.opendir(path);
  }

  /**
   * Mount the control tree at `dir` through FUSE (fuse-native; apt libfuse2 fuse). Private to
   * the owner; unmounted by libfuse if this process dies. Never read the mount synchronously
   * from this process: the request is served on this thread (deadlock).
   */
  async mount(dir: string): Promise<void> {
    if (this.mounted) fail('EBUSY', `already mounted at ${this.mounted.dir}`);
    this.mounted = await mountSource(treeSource(this.tree, this.backend()), dir);
  }

  async unmount(): Promise<void> {
    const m = this.mounted;
    this.mounted = null;
    await m?.unmount();
  }

  /**
   * Serve the control tree on a Unix socket (mode 0600, in a 0700 directory named after the
   * uid, the socket after the pid) for `nftrace ctl/cat/ls PID`. Returns the socket's path.
   */
  async listen(): Promise<string> {
    this.listening ??= await listen(this.backend());
    return this.listening.path;
  }

  /** Stop serving the socket and unmount. */
  async close(): Promise<void> {
    const l = this.listening;
    this.listening = null;
    await l?.close();
    await this.unmount();
  }

  private backend() {
    return { tree: this.tree, mkdir: (p: string) => this.mkdir(p), rmdir: (p: string) => this.rmdir(p) };
  }

  /** The control tree itself, for the FUSE mount and the control socket. */
  get controlTree(): ControlTree {
    return this.tree;
  }

  private withFile<T>(file: TraceFile, fn: (f: TraceFile) => T): T {
    try {
      return fn(file);
    } finally {
      file.close();
    }
  }

  /** `mkdir instances/NAME` */
  mkdir(path: string): Instance {
    const parts = splitPath(path);
    if (parts.length !== 2 || parts[0] !== 'instances') fail('EPERM', `${path}: instances are made only under instances/`);
    const name = parts[1]!;
    if (Buffer.byteLength(name) > NAME_MAX) fail('ENAMETOOLONG', 'instance name too long');
    if (this.state.instances.has(name)) fail('EEXIST', `instance '${name}' exists`);
    const slot = this.freeSlots.pop();
    if (slot === undefined) fail('ENOSPC', 'no free instance slots (see maxInstances)');
    const { control, registry } = this.state;
    const inst = control.change(() => {
      control.clearInstance(slot);
      return new Instance(name, slot, control, registry, this.threads, DEFAULT_BUFFER_KB);
    });
    this.state.instances.set(name, inst);
    this.state.main.refresh();
    return inst;
  }

  /** `rmdir instances/NAME`: EBUSY while one of its files is open. */
  rmdir(path: string): void {
    const parts = splitPath(path);
    if (parts.length !== 2 || parts[0] !== 'instances') fail('EPERM', `${path}: only instances can be removed`);
    const inst = this.state.instances.get(parts[1]!);
    if (!inst) fail('ENOENT', `no instance '${parts[1]}'`);
    if (inst.openFiles > 0 || inst.pipeOpen) fail('EBUSY', `instance '${inst.name}' has open files`);
    inst.removed = true;
    const { control } = this.state;
    control.change(() => {
      control.clearInstance(inst.slot);
      for (const t of this.threads) for (const set of [0, 1]) t.deliver?.({ instance: inst.slot, set, sab: null, migrate: false });
    });
    this.state.instances.delete(inst.name);
    this.freeSlots.push(inst.slot);
    this.state.main.refresh();
  }

  /**
   * Save an instance's buffers (the top level by default) as a trace.dat that `trace-cmd
   * report` and KernelShark open: each thread's buffer is a CPU. Non-consuming. Returns bytes written.
   */
  async saveTraceDat(file: string, options: SaveTraceDatOptions = {}): Promise<number> {
    const inst = options.instance ? this.state.instances.get(options.instance) : this.state.top;
    if (!inst) fail('ENOENT', `no instance '${options.instance}'`);
    const systems = new Map<string, string[]>();
    const ftraceFormats = [PRINT_EVENT.formatFile()];
    for (const e of this.state.registry.all()) {
      if (e.index === 0) continue;
      // The tracer's own events (js_stack) go with ftrace's, as the kernel's do.
      if (e.system === 'ftrace') ftraceFormats.push(e.formatFile());
      else systems.set(e.system, [...(systems.get(e.system) ?? []), e.formatFile()]);
    }
    const cpuIds = Array.from({ length: inst.cpuCount }, (_, c) => c);
    const snap = options.snapshot ?? false;
    const write = (cpus: CpuPages[]) => writeTraceDat(file, {
      pageSize: inst.subbuf,
      headerPage: HEADER_PAGE_TEXT(inst.subbuf - 16),
      headerEvent: HEADER_EVENT_TEXT,
      ftraceFormats,
      systems: [...systems].map(([name, formats]) => ({ name, formats })),
      kallsyms: '',
      printk: '',
      cmdlines: `${process.pid} ${this.threads[0]!.name}\n`,
      cpuCount: inst.cpuCount,
      buffers: [{ name: options.instance ?? '', clock: inst.clockName, cpus }],
      traceClock: inst.clockText(),
      cpuStats: cpuStatOptions(options.instance ?? '', cpuIds.map((c) => ({ cpu: c, text: inst.statsText(c, snap) }))),
      uname: localUname(),
      version: `nftrace ${process.version}`,
    }, { version: options.version ?? 7, compression: options.compression ?? 'zstd' });
    // Write the rings' pages in place; if a writer recycled one of them meanwhile, write copies.
    const views = cpuIds.map((c) => inst.pageViews(c, snap));
    if (views.every((v) => v !== null)) {
      const bytes = await write(views.map((v) => v!.pages));
      if (views.every((v) => v!.stable())) return bytes;
    }
    return write(cpuIds.map((c) => inst.pages(c, snap)));
  }

  /** Names of the named instances. */
  instanceNames(): string[] {
    return [...this.state.instances.keys()];
  }

  /**
   * A handle for a worker thread: pass `handle` in workerData with `transferList`, then call
   * attach(workerData.…) in the worker. The worker becomes per_cpu/cpuN in every instance.
   */
  threadHandle(name?: string): { handle: ThreadHandle; transferList: [MessagePort] } {
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    const cpu = this.threads.length;
    const info: ThreadInfo = {
      cpu,
      name: (name ?? `worker-${cpu}`).slice(0, 15),
      deliver: (u) => {
        port1.postMessage(u);
      },
    };
    // The worker's end closes when it exits: from then on its rings are ours to change.
    port1.on('close', () => {
      info.deliver = null;
    });
    this.threads.push(info);
    const { control, registry } = this.state;
    control.change(() => {
      for (const inst of [this.state.top, ...this.state.instances.values()]) inst.addThread(info);
    });
    const handle: ThreadHandle = {
      kind: 'nftrace-thread',
      cpu,
      name: info.name,
      control: control.sab,
      registry: registry.sab,
      limits: { maxInstances: control.maxInstances, maxEvents: control.maxEvents },
      port: port2,
      startupEvents: this.startupEvents,
    };
    return { handle, transferList: [port2] };
  }
}

function threadName(): string {
  const title = process.title.split('/').pop() || 'node';
  return (threadId === 0 ? title : `worker-${threadId}`).slice(0, 15);
}

type MessagePort = import('node:worker_threads').MessagePort;
