/**
 * The control tree: a tracer's tracefs as directories and files with the VFS operations
 * (lookup/stat, readdir, open, read, write, truncate, release, mkdir, rmdir, chmod, chown),
 * each failing with the errno the kernel gives. The path API of `Tracer`, the FUSE mount and the
 * control socket are all served from here.
 *
 * Layout, modes and inode numbers follow Linux 6.18 (docs/control-tree.md): instance
 * directories 0750 (the root 0700), files 0640 or 0440 (trace_marker 0220), eventfs
 * directories 0755 with stable unique numbers, eventfs files all sharing one number.
 */
import { fail } from '../errno.js';
import type { Instance, PipeReader, RawPipe } from '../instance/instance.js';
import {
  EVENTFS_FILE_INO, EVENT_ENTRIES, EventCatalog, MODE_EVENTFS_DIR, MODE_RO, MODE_RW, ROOT_ENTRIES, SYSTEM_ENTRIES,
  eventDirIno, systemDirIno, type Entry, type EntryContext,
} from './eventfs.js';
import { resolveFile, splitPath, type FileNode, type TracerState } from './files.js';

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export interface Stat {
  ino: number;
  /** Type and permission bits, as st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
}

/** Files of every instance directory, in the kernel's order; `top` only at the top level. */
const INSTANCE_FILES: { name: string; mode: number; top?: boolean }[] = [
  { name: 'README', mode: MODE_RO, top: true },
  { name: 'available_events', mode: MODE_RO, top: true },
  { name: 'available_tracers', mode: MODE_RO },
  { name: 'buffer_percent', mode: MODE_RW },
  { name: 'buffer_size_kb', mode: MODE_RW },
  { name: 'buffer_subbuf_size_kb', mode: MODE_RW },
  { name: 'buffer_total_size_kb', mode: MODE_RO },
  { name: 'current_tracer', mode: MODE_RW },
  { name: 'dynamic_events', mode: MODE_RW, top: true },
  { name: 'fprobe_profile', mode: MODE_RO, top: true },
  { name: 'error_log', mode: MODE_RW },
  { name: 'set_event', mode: MODE_RW },
  { name: 'synthetic_events', mode: MODE_RW, top: true },
  { name: 'snapshot', mode: MODE_RW },
  { name: 'trace', mode: MODE_RW },
  { name: 'trace_clock', mode: MODE_RW },
  { name: 'trace_marker', mode: 0o220 },
  { name: 'trace_pipe', mode: MODE_RO },
  { name: 'tracing_on', mode: MODE_RW },
];
const INSTANCE_DIRS = ['events', 'options', 'per_cpu'];
const OPTION_FILES = ['overwrite', 'irq-info', 'record-tgid', 'context-info'];
const PER_CPU_FILES: { name: string; mode: number }[] = [
  { name: 'buffer_size_kb', mode: MODE_RW },
  { name: 'snapshot', mode: MODE_RW },
  { name: 'stats', mode: MODE_RO },
  { name: 'trace', mode: MODE_RW },
  { name: 'trace_pipe', mode: MODE_RO },
  { name: 'trace_pipe_raw', mode: MODE_RO },
];
const DIR_MODE = 0o750;
const ROOT_MODE = 0o700;
const ROOT_INO = 1;
const INSTANCES_INO = 2;
/** Plain (non-eventfs) inode numbers: a block per instance slot. */
const PLAIN_BASE = 1000;
const PLAIN_SPAN = 4096;

/** What a path names. Directories list their children; files open to a FileNode. */
type Found =
  | { kind: 'dir'; ino: number; mode: number; instance: Instance | null; key: string; list: () => string[] }
  | { kind: 'file'; ino: number; mode: number; instance: Instance | null; key: string; open: () => FileNode };

interface Attrs {
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Per-instance tree state: held eventfs directories, chmod/chown. */
interface InstanceTree {
  /** eventfs directory nodes that something holds, by key, with their hold counts. */
  held: Map<string, number>;
  attrs: Map<string, Attrs>;
}

const exists = (e: Entry, c: EntryContext) => e.exists?.(c) ?? true;

/** Operations that fail with ENODEV once `gone()` (the event was removed while the file was open). */
function orphanable(node: FileNode, gone: () => boolean): FileNode {
  const check = () => {
    if (gone()) fail('ENODEV', 'the event was removed');
  };
  return {
    ...node,
    read: node.read && (() => (check(), node.read!())),
    write: node.write && ((d: string) => (check(), node.write!(d))),
  };
}

export class ControlTree {
  private readonly state: TracerState;
  readonly catalog: EventCatalog;
  private readonly perInstance = new WeakMap<Instance, InstanceTree>();
  private readonly rootAttrs = new Map<string, Attrs>();
  private readonly owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  constructor(state: TracerState) {
    this.state = state;
    this.catalog = new EventCatalog(state.registry);
  }

  private tree(instance: Instance): InstanceTree {
    let t = this.perInstance.get(instance);
    if (!t) {
      t = { held: new Map(), attrs: new Map() };
      this.perInstance.set(instance, t);
    }
    return t;
  }

  /** eventfs directory nodes currently held, summed over instances (for tests and the benchmark). */
  heldNodes(): number {
    let n = 0;
    for (const inst of [this.state.top, ...this.state.instances.values()]) n += this.perInstance.get(inst)?.held.size ?? 0;
    return n;
  }

  // ---- lookup --------------------------------------------------------------------------

  private find(path: string): Found {
    const parts = splitPath(path);
    if (parts.length === 0) {
      return { kind: 'dir', ino: ROOT_INO, mode: ROOT_MODE, instance: this.state.top, key: '', list: () => this.instanceChildren(this.state.top) };
    }
    if (parts[0] === 'instances') {
      if (parts.length === 1) {
        return { kind: 'dir', ino: INSTANCES_INO, mode: DIR_MODE, instance: null, key: 'instances', list: () => [...this.state.instances.keys()] };
      }
      const instance = this.state.instances.get(parts[1]!);
      if (!instance) fail('ENOENT', `${path}: no such instance`);
      return this.inInstance(instance, parts.slice(2), path);
    }
    return this.inInstance(this.state.top, parts, path);
  }

  private instanceChildren(instance: Instance): string[] {
    const top = instance === this.state.top;
    return [
      ...INSTANCE_FILES.filter((f) => top || !f.top).map((f) => f.name),
      ...INSTANCE_DIRS,
      ...(top ? ['instances'] : []),
    ];
  }

  private inInstance(instance: Instance, rest: string[], path: string): Found {
    const plain = PLAIN_BASE + instance.slot * PLAIN_SPAN;
    const top = instance === this.state.top;
    const file = (key: string, index: number, mode: number): Found => ({
      kind: 'file', ino: plain + index, mode, instance, key, open: () => resolveFile(this.state, instance, rest, path),
    });
    if (rest.length === 0) {
      return { kind: 'dir', ino: top ? ROOT_INO : plain, mode: top ? ROOT_MODE : DIR_MODE, instance, key: '', list: () => this.instanceChildren(instance) };
    }
    const [first, second, third] = rest;
    if (rest.length === 1) {
      const index = INSTANCE_FILES.findIndex((f) => f.name === first && (top || !f.top));
      if (index >= 0) return file(first!, 1 + index, INSTANCE_FILES[index]!.mode);
    }
    if (first === 'events') return this.inEvents(instance, rest.slice(1), path);
    if (first === 'options') {
      if (rest.length === 1) return { kind: 'dir', ino: plain + 40, mode: DIR_MODE, instance, key: 'options', list: () => [...OPTION_FILES] };
      const index = OPTION_FILES.indexOf(second!);
      if (index >= 0 && rest.length === 2) return file(`options/${second}`, 41 + index, MODE_RW);
    }
    if (first === 'per_cpu') {
      if (rest.length === 1) {
        return { kind: 'dir', ino: plain + 60, mode: DIR_MODE, instance, key: 'per_cpu', list: () => Array.from({ length: instance.cpuCount }, (_, c) => `cpu${c}`) };
      }
      const m = /^cpu(\d+)$/.exec(second!);
      const cpu = m ? Number(m[1]) : -1;
      if (cpu >= 0 && cpu < instance.cpuCount && cpu < 500) {
        const base = plain + 100 + cpu * 8;
        if (rest.length === 2) return { kind: 'dir', ino: base, mode: DIR_MODE, instance, key: `per_cpu/${second}`, list: () => PER_CPU_FILES.map((f) => f.name) };
        const index = PER_CPU_FILES.findIndex((f) => f.name === third);
        if (index >= 0 && rest.length === 3) return file(`per_cpu/${second}/${third}`, 100 + cpu * 8 + 1 + index, PER_CPU_FILES[index]!.mode);
      }
    }
    fail('ENOENT', `${path}: no such file or directory`);
  }

  private inEvents(instance: Instance, rest: string[], path: string): Found {
    const ctx: EntryContext = { state: this.state, instance };
    const plain = PLAIN_BASE + instance.slot * PLAIN_SPAN;
    const entryFile = (entries: Entry[], name: string, keyDir: string, c: EntryContext): Found | null => {
      const entry = entries.find((e) => e.name === name && exists(e, c));
      if (!entry) return null;
      return { kind: 'file', ino: EVENTFS_FILE_INO, mode: entry.mode, instance, key: `${keyDir}/${name}`, open: () => entry.open(c) };
    };
    const visible = (entries: Entry[], c: EntryContext) => entries.filter((e) => exists(e, c)).map((e) => e.name);
    if (rest.length === 0) {
      return {
        kind: 'dir', ino: plain + 30, mode: MODE_EVENTFS_DIR, instance, key: 'events',
        list: () => [...visible(ROOT_ENTRIES, ctx), ...this.catalog.systemNames()],
      };
    }
    const [sysName, second, third] = rest;
    if (rest.length === 1) {
      const found = entryFile(ROOT_ENTRIES, sysName!, 'events', ctx);
      if (found) return found;
    }
    const system = this.catalog.system(sysName!);
    if (!system) fail('ENOENT', `${path}: no such file or directory`);
    const sysCtx: EntryContext = { ...ctx, system: sysName };
    const sysKey = `events/${sysName}`;
    if (rest.length === 1) {
      return {
        kind: 'dir', ino: systemDirIno(instance.slot, system.index), mode: MODE_EVENTFS_DIR, instance, key: sysKey,
        list: () => [...visible(SYSTEM_ENTRIES, sysCtx), ...system.events.map((e) => e.name)],
      };
    }
    if (rest.length === 2) {
      const found = entryFile(SYSTEM_ENTRIES, second!, sysKey, sysCtx);
      if (found) return found;
    }
    const event = system.events.find((e) => e.name === second);
    if (!event) fail('ENOENT', `${path}: no such file or directory`);
    const evCtx: EntryContext = { ...sysCtx, event };
    const evKey = `${sysKey}/${second}`;
    if (rest.length === 2) {
      return { kind: 'dir', ino: eventDirIno(instance.slot, event.index), mode: MODE_EVENTFS_DIR, instance, key: evKey, list: () => visible(EVENT_ENTRIES, evCtx) };
    }
    if (rest.length === 3) {
      const found = entryFile(EVENT_ENTRIES, third!, evKey, evCtx);
      // A removed probe's event: files still open on it answer ENODEV, as the kernel's do.
      if (found?.kind === 'file') {
        const open = found.open;
        found.open = () => orphanable(open(), () => this.state.registry.isHidden(event.index));
      }
      if (found) return found;
    }
    fail('ENOENT', `${path}: no such file or directory`);
  }

  /** chmod/chown kept for a path; looking does not make per-instance state. */
  private attrsOf(found: Found): Attrs | undefined {
    return found.instance ? this.perInstance.get(found.instance)?.attrs.get(found.key) : this.rootAttrs.get(found.key);
  }

  // ---- operations ----------------------------------------------------------------------

  stat(path: string): Stat {
    const found = this.find(path);
    const attrs = this.attrsOf(found);
    return {
      ino: found.ino,
      mode: (found.kind === 'dir' ? S_IFDIR : S_IFREG) | (attrs?.mode ?? found.mode),
      // eventfs (and tracefs since 6.8) report nlink 1 for directories: `find` must not rely on it.
      nlink: 1,
      uid: attrs?.uid ?? this.owner.uid,
      gid: attrs?.gid ?? this.owner.gid,
      size: 0,
    };
  }

  /** Names in a directory: files in table order, then directories. Creates nothing that lasts. */
  readdir(path: string): string[] {
    const found = this.find(path);
    if (found.kind !== 'dir') fail('ENOTDIR', `${path}: not a directory`);
    return found.list();
  }

  chmod(path: string, mode: number): void {
    this.setAttrs(path, { mode: mode & 0o7777 });
  }

  chown(path: string, uid: number, gid: number): void {
    this.setAttrs(path, { ...(uid >= 0 ? { uid } : {}), ...(gid >= 0 ? { gid } : {}) });
  }

  private setAttrs(path: string, change: Attrs): void {
    const found = this.find(path);
    const map = found.instance ? this.tree(found.instance).attrs : this.rootAttrs;
    map.set(found.key, { ...map.get(found.key), ...change });
  }

  /** Open a file. `create` (O_CREAT) is refused with EACCES, as tracefs does. */
  open(path: string, flags: { truncate?: boolean; create?: boolean } = {}): TraceFile {
    let found: Found;
    try {
      found = this.find(path);
    } catch (err) {
      if (flags.create && (err as { code?: string }).code === 'ENOENT') fail('EACCES', `${path}: tracefs files cannot be created`);
      throw err;
    }
    if (found.kind === 'dir') fail('EISDIR', `${path}: is a directory`);
    const node = found.open();
    const file = new TraceFile(node, found.instance, this.hold(found));
    if (flags.truncate) {
      try {
        file.truncate();
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return file;
  }

  /** Open a directory for reading; it holds its eventfs node until closed. */
  opendir(path: string): DirHandle {
    const found = this.find(path);
    if (found.kind !== 'dir') fail('ENOTDIR', `${path}: not a directory`);
    return new DirHandle(found.instance, found.list, this.hold(found));
  }

  /**
   * Take a hold on the eventfs directory node above (or at) `found`: the node is made on the
   * first hold and given back with the last. Returns the release function.
   */
  private hold(found: Found): () => void {
    const instance = found.instance;
    if (!instance || !found.key.startsWith('events/')) return () => {};
    const held = this.tree(instance).held;
    const dir = found.kind === 'dir' ? found.key : found.key.slice(0, found.key.lastIndexOf('/'));
    if (dir === 'events') return () => {};
    held.set(dir, (held.get(dir) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = held.get(dir)! - 1;
      if (n === 0) held.delete(dir);
      else held.set(dir, n);
    };
  }

  /** unlink and rename: tracefs refuses them. */
  unlink(path: string): never {
    this.find(path);
    fail('EPERM', `${path}: tracefs files cannot be removed`);
  }
}

/**
 * An open control file; it pins its instance while open if the kernel's does. Reads of ordinary
 * files are whole snapshots; trace_pipe consumes, and iterating it yields lines as they arrive.
 */
export class TraceFile implements AsyncIterable<string> {
  private readonly node: FileNode;
  private readonly instance: Instance | null;
  private readonly release: () => void;
  private readonly pipe: PipeReader | null;
  private readonly raw: RawPipe | null;
  private isOpen = true;
  private pinned: Instance | undefined;

  constructor(node: FileNode, instance: Instance | null, release: () => void) {
    this.node = node;
    this.instance = instance;
    this.release = release;
    this.pipe = node.pipe ? node.pipe() : null;
    this.raw = node.raw ? node.raw() : null;
    this.pinned = node.pins;
    if (this.pinned) this.pinned.openFiles++;
  }

  get isPipe(): boolean {
    return this.pipe !== null;
  }

  private check(): void {
    if (!this.isOpen) fail('EBADF', 'file is closed');
    if (this.node.staleErrno && this.instance?.removed) fail(this.node.staleErrno, 'its instance was removed');
  }

  /** What a read(2) from the start returns now; trace_pipe gives what is there and consumes it. */
  read(): string {
    this.check();
    if (this.pipe) return this.pipe.readAvailable();
    if (!this.node.read) fail('EINVAL', this.raw ? 'trace_pipe_raw holds binary pages: use readPage()' : 'file is not readable');
    return this.node.read();
  }

  get isRaw(): boolean {
    return this.raw !== null;
  }

  /** trace_pipe_raw: the next page, or null; `force` ignores buffer_percent (a final drain). */
  readPage(force = false): Uint8Array | null {
    this.check();
    if (!this.raw) fail('EINVAL', 'not a raw pipe');
    return this.raw.readPage(force);
  }

  /** Lines of trace_pipe as they arrive (ends when closed). */
  lines(): AsyncGenerator<string> {
    this.check();
    if (!this.pipe) fail('EINVAL', 'not a pipe');
    return this.pipe.lines();
  }

  /** A write(2). */
  write(data: string): number {
    this.check();
    if (!this.node.write) fail('EINVAL', 'file is not writable');
    return this.node.write(data);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    try {
      if (this.pipe) yield* this.lines();
      else for (const line of this.read().split('\n')) if (line) yield line;
    } finally {
      this.close();
    }
  }

  /** What opening with O_TRUNC does: clears `trace`, empties `set_event`; nothing elsewhere. */
  truncate(): void {
    this.check();
    this.node.truncate?.();
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.pipe?.close();
    if (this.pinned) this.pinned.openFiles--;
    this.release();
  }
}

export class DirHandle {
  private readonly instance: Instance | null;
  private readonly list: () => string[];
  private readonly release: () => void;

  constructor(instance: Instance | null, list: () => string[], release: () => void) {
    this.instance = instance;
    this.list = list;
    this.release = release;
  }

  /** getdents: EINVAL once the instance the directory belongs to is gone, as in the kernel. */
  readdir(): string[] {
    if (this.instance?.removed) fail('EINVAL', 'the directory was removed');
    return this.list();
  }

  close(): void {
    this.release();
  }
}
