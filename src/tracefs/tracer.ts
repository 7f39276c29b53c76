/**
 * The root object: one tracer with its events, its top-level instance and named instances,
 * driven by tracefs paths and values (`tracer.write('events/http/enable', '1')`), like libtracefs
 * where no instance means the top level.
 */
import { MessageChannel, threadId } from 'node:worker_threads';
import { fail } from '../errno.js';
import type { EventOptions, EventType } from '../events/event.js';
import type { FieldSpec } from '../events/fields.js';
import { EventRegistry } from '../events/registry.js';
import { applyStartupEvents, type ThreadHandle } from '../instance/attach.js';
import { ControlBlock } from '../instance/control.js';
import { DEFAULT_BUFFER_KB, Instance, type ThreadInfo } from '../instance/instance.js';
import { ThreadContext, type ThreadUpdate, type TraceEvent } from '../instance/thread.js';
import { Probes, type ProbeHost } from '../instance/probes.js';
import { Synthetics } from '../instance/synthetic.js';
import type { CompressionName } from '../format/tracedat/compress.js';
import { cpuStatOptions, localUname, writeTraceDat, writeTraceDatSync, type CpuPages, type TraceDatContent } from '../format/tracedat/writer.js';
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
    const host: ProbeHost = {
      defineEvent: (system, name, fields, print) => main.defineEvent(system, name, fields, { print }),
      // Enabled, or in soft mode (triggers on it, or aimed at it by enable_event/disable_event), in any instance.
      inUse: (type) => [top, ...this.state.instances.values()].some((i) => control.isEnabled(i.slot, type.index) || i.rules.isSoft(type.index)),
      hide: (type, hidden) => registry.hide(type.index, hidden),
      logError: (location, command, text, pos) => top.rules.logEntry(location, command, text, pos),
      comm: name,
    };
    const probes = new Probes(host);
    this.state = { control, registry, main, top, instances: new Map(), probes, synthetics: new Synthetics(host) };
    control.onChange(() => probes.sync());
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
    const inst = options.instance ? this.instance(options.instance) : this.state.top;
    const snapshot = options.snapshot ?? false;
    const content = (pages: (inst: Instance, cpu: number) => CpuPages) => this.datContent([inst], snapshot, pages);
    const write = (pages: (inst: Instance, cpu: number) => CpuPages) =>
      writeTraceDat(file, content(pages), { version: options.version ?? 7, compression: options.compression ?? 'zstd' });
    // Write the rings' pages in place; if a writer recycled one of them meanwhile, write copies.
    const views = pageViewsOf([inst], snapshot);
    if (views) {
      const bytes = await write((i, c) => views.get(i)![c]!.pages);
      if (stable(views)) return bytes;
    }
    return write((i, c) => i.pages(c, snapshot));
  }

  /**
   * Save several instances (the top level first, by default with every instance) into one
   * trace.dat, each a buffer, synchronously: what a crash dump needs, when no promise will run
   * again. They must share a sub-buffer size (see instanceGroups). Defaults to v7 without
   * compression, the fastest to write. Returns bytes written.
   */
  saveInstancesSync(file: string, names: string[] = ['', ...this.instanceNames()], options: Omit<SaveTraceDatOptions, 'instance'> = {}): number {
    const instances = names.map((n) => this.instance(n));
    if (instances.some((i) => i.subbuf !== instances[0]!.subbuf)) fail('EINVAL', 'instances in one trace.dat must share a sub-buffer size');
    const snapshot = options.snapshot ?? false;
    const write = (pages: (inst: Instance, cpu: number) => CpuPages) =>
      writeTraceDatSync(file, this.datContent(instances, snapshot, pages), { version: options.version ?? 7, compression: options.compression ?? 'none' });
    const views = pageViewsOf(instances, snapshot);
    if (views) {
      const bytes = write((i, c) => views.get(i)![c]!.pages);
      if (stable(views)) return bytes;
    }
    return write((i, c) => i.pages(c, snapshot));
  }

  /** Instance names grouped by sub-buffer size, the top level's group first: one trace.dat each. */
  instanceGroups(): string[][] {
    const groups = new Map<number, string[]>();
    for (const name of ['', ...this.instanceNames()]) {
      const size = this.instance(name).subbuf;
      groups.set(size, [...(groups.get(size) ?? []), name]);
    }
    return [...groups.values()];
  }

  /**
   * What a trace.dat of these instances holds besides their pages: formats and names come from
   * the registry and the thread list, never from the rings, so a dump does not depend on events
   * that were overwritten.
   */
  private datContent(instances: Instance[], snapshot: boolean, pages: (inst: Instance, cpu: number) => CpuPages): TraceDatContent {
    const top = instances[0]!;
    const formats = this.state.registry.formatFiles();
    const cpuIds = Array.from({ length: top.cpuCount }, (_, c) => c);
    return {
      pageSize: top.subbuf,
      headerPage: HEADER_PAGE_TEXT(top.subbuf - 16),
      headerEvent: HEADER_EVENT_TEXT,
      ftraceFormats: formats.ftrace,
      systems: formats.systems,
      kallsyms: '',
      printk: '',
      cmdlines: `${process.pid} ${this.threads[0]!.name}\n`,
      cpuCount: top.cpuCount,
      buffers: instances.map((inst) => ({ name: inst.name, clock: inst.clockName, cpus: cpuIds.map((c) => pages(inst, c)) })),
      traceClock: top.clockText(),
      cpuStats: instances.flatMap((inst) => cpuStatOptions(inst.name, cpuIds.map((c) => ({ cpu: c, text: inst.statsText(c, snapshot) })))),
      uname: localUname(),
      version: `nftrace ${process.version}`,
    };
  }

  /** Thread names by CPU number (the main thread is CPU 0). */
  threadNames(): string[] {
    return this.threads.map((t) => t.name);
  }

  /** Every event type defined so far (by any thread). */
  eventTypes(): readonly EventType[] {
    return this.state.registry.all();
  }

  /** Every event's format file, as a trace.dat holds them. */
  eventFormats(): ReturnType<EventRegistry['formatFiles']> {
    return this.state.registry.formatFiles();
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

type PageViews = NonNullable<ReturnType<Instance['pageViews']>>;

/** Page views of every CPU of these instances, or null if a page is being recycled right now. */
function pageViewsOf(instances: Instance[], snapshot: boolean): Map<Instance, PageViews[]> | null {
  const out = new Map<Instance, PageViews[]>();
  for (const inst of instances) {
    const views = Array.from({ length: inst.cpuCount }, (_, c) => inst.pageViews(c, snapshot));
    if (views.some((v) => v === null)) return null;
    out.set(inst, views as PageViews[]);
  }
  return out;
}

function stable(views: Map<Instance, PageViews[]>): boolean {
  return [...views.values()].every((list) => list.every((v) => v.stable()));
}

function threadName(): string {
  const title = process.title.split('/').pop() || 'node';
  return (threadId === 0 ? title : `worker-${threadId}`).slice(0, 15);
}

type MessagePort = import('node:worker_threads').MessagePort;
