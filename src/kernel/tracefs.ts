/**
 * The kernel's tracefs, found and used the way libtracefs does: the mount is looked up in
 * /proc/mounts (and mounted at /sys/kernel/tracing when absent), and an instance is a
 * directory, the top level being the instance without a name.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, opendirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectedClock } from '../format/tracedat/layout.js';

const DEFAULT_MOUNT = '/sys/kernel/tracing';

/** A failed tracefs access, naming the file and the errno code (EACCES, EINVAL, ...). */
export class TracefsError extends Error {
  readonly code: string;
  constructor(path: string, action: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'EIO';
    super(`${action} ${path}: ${code}${hint(code)}`);
    this.name = 'TracefsError';
    this.code = code;
  }
}

function hint(code: string): string {
  if (code === 'EACCES' || code === 'EPERM') return ' (tracing needs root, or CAP_SYS_ADMIN and access to tracefs)';
  return '';
}

/** Where tracefs is mounted, from a /proc/mounts text; tracing/ under debugfs counts too. */
export function tracefsMountIn(mounts: string): string | null {
  let viaDebugfs: string | null = null;
  for (const line of mounts.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (!dir) continue;
    const path = dir.replace(/\\040/g, ' ');
    if (type === 'tracefs') return path;
    if (type === 'debugfs' && viaDebugfs === null) viaDebugfs = join(path, 'tracing');
  }
  return viaDebugfs && existsSync(join(viaDebugfs, 'trace')) ? viaDebugfs : null;
}

/**
 * The tracefs mount point. With `mount` (the default), mounts tracefs at /sys/kernel/tracing
 * when it is not mounted yet; throws with the reason when tracefs can't be had.
 */
export function findTracefs(options: { mount?: boolean } = {}): string {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch (err) {
    throw new TracefsError('/proc/mounts', 'reading', err);
  }
  const found = tracefsMountIn(mounts);
  if (found) return found;
  if (options.mount === false) throw new Error('tracefs is not mounted');
  try {
    mkdirSync(DEFAULT_MOUNT, { recursive: true });
    execFileSync('mount', ['-t', 'tracefs', 'nodev', DEFAULT_MOUNT], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`tracefs is not mounted and mounting it at ${DEFAULT_MOUNT} failed: ${stderr || (err as Error).message}`);
  }
  return DEFAULT_MOUNT;
}

/** One tracing instance of the kernel; `name` null is the top level. */
export class KernelInstance {
  readonly root: string;
  readonly name: string | null;
  readonly dir: string;

  constructor(root: string, name: string | null) {
    this.root = root;
    this.name = name;
    this.dir = name === null ? root : join(root, 'instances', name);
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  read(file: string): string {
    const path = this.path(file);
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new TracefsError(path, 'reading', err);
    }
  }

  /** A write as `echo TEXT > file` does it (one write call); errors carry the kernel's errno. */
  write(file: string, text: string): void {
    const path = this.path(file);
    try {
      writeFileSync(path, text);
    } catch (err) {
      throw new TracefsError(path, 'writing', err);
    }
  }

  exists(file: string): boolean {
    return existsSync(this.path(file));
  }

  /** The CPU numbers that have a per_cpu/cpuN directory, ascending. */
  cpus(): number[] {
    return readdirSync(this.path('per_cpu'))
      .filter((d) => /^cpu\d+$/.test(d))
      .map((d) => Number(d.slice(3)))
      .sort((a, b) => a - b);
  }

  /** The selected clock: the bracketed word of trace_clock. */
  clock(): string {
    return selectedClock(this.read('trace_clock'));
  }

  /** Sub-buffer size in bytes (buffer_subbuf_size_kb where the kernel has it, else a page). */
  subbufSize(): number {
    return this.exists('buffer_subbuf_size_kb') ? Number(this.read('buffer_subbuf_size_kb').trim()) * 1024 : 4096;
  }

  /** Names in a directory in the kernel's readdir order (readdirSync would sort them). */
  list(dir: string): string[] {
    const path = this.path(dir);
    const names: string[] = [];
    try {
      const handle = opendirSync(path);
      try {
        for (let entry = handle.readSync(); entry; entry = handle.readSync()) names.push(entry.name);
      } finally {
        handle.closeSync();
      }
    } catch (err) {
      throw new TracefsError(path, 'listing', err);
    }
    return names;
  }

  /** Enabled events as `system:event`, from set_event. */
  enabledEvents(): string[] {
    return this.read('set_event').split('\n').filter(Boolean);
  }
}

/** The kernel's tracing: the mount and its instances. */
export class KernelTracefs {
  readonly root: string;
  readonly top: KernelInstance;

  constructor(root: string) {
    this.root = root;
    this.top = new KernelInstance(root, null);
  }

  instance(name: string | null): KernelInstance {
    return name === null ? this.top : new KernelInstance(this.root, name);
  }

  instanceNames(): string[] {
    return readdirSync(join(this.root, 'instances')).sort();
  }

  createInstance(name: string): KernelInstance {
    const inst = this.instance(name);
    try {
      mkdirSync(inst.dir);
    } catch (err) {
      throw new TracefsError(inst.dir, 'creating instance', err);
    }
    return inst;
  }

  removeInstance(inst: KernelInstance): void {
    try {
      rmdirSync(inst.dir);
    } catch (err) {
      throw new TracefsError(inst.dir, 'removing instance', err);
    }
  }

  /** available_events: every event the kernel offers as `system:event`, in the kernel's order. */
  availableEventNames(): string[] {
    return this.top.read('available_events').split('\n').filter((l) => l.includes(':'));
  }

  /** Every event the kernel offers, by system. */
  availableEvents(): Map<string, string[]> {
    const systems = new Map<string, string[]>();
    for (const line of this.availableEventNames()) {
      const colon = line.indexOf(':');
      const system = line.slice(0, colon);
      let list = systems.get(system);
      if (!list) systems.set(system, (list = []));
      list.push(line.slice(colon + 1));
    }
    return systems;
  }

  /** An event's format file text. */
  format(system: string, event: string): string {
    return this.top.read(join('events', system, event, 'format'));
  }
}

/**
 * The events a list of trace-cmd style selections names: `SYSTEM`, `SYSTEM:EVENT`, `EVENT`, with
 * `*` and `?` globs in either part, or `all`. Throws naming the first selection that matches nothing.
 */
export function selectEvents(available: Map<string, string[]>, selections: string[]): Map<string, string[]> {
  const chosen = new Map<string, Set<string>>();
  for (const sel of selections) {
    const [sysPart, evPart] = sel === 'all' ? ['*', '*'] : sel.includes(':') ? sel.split(':', 2) as [string, string] : [null, sel];
    let matched = 0;
    for (const [system, events] of available) {
      for (const event of events) {
        const ok = sysPart === null
          ? glob(evPart!, event) || glob(evPart!, system)
          : glob(sysPart, system) && glob(evPart || '*', event);
        if (!ok) continue;
        let set = chosen.get(system);
        if (!set) chosen.set(system, (set = new Set()));
        set.add(event);
        matched++;
      }
    }
    if (matched === 0) throw new Error(`no event matches '${sel}' (see 'nftrace list -e')`);
  }
  return new Map([...chosen].map(([s, e]) => [s, [...e]]));
}

function glob(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}
