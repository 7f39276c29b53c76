/**
 * The control tree mounted through FUSE (fuse-native, libfuse 2), so `echo 1 > events/http/enable`
 * and `cat trace_pipe` work from a shell.
 *
 * - Requests arrive on the main thread (libfuse's own threads wait meanwhile), so every handler
 *   answers at once, except a trace_pipe read with nothing to give: that one answers later, from
 *   a timer, and the event loop keeps running. libfuse serves other requests on other threads.
 * - Files report size 0, as tracefs's do; the mount is `direct_io` so reads reach us anyway, and
 *   `use_ino` so the tree's inode numbers are the ones `stat` and `find` see.
 * - `autoUnmount`: libfuse's helper unmounts when this process dies, however it dies.
 * - Never call the mount synchronously from this process: the request would wait for the very
 *   thread that is blocked making it.
 */
import { accessSync, constants, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { delimiter } from 'node:path';
import { join, resolve } from 'node:path';
import { ERRNO } from '../errno.js';
import type { FuseStat } from 'fuse-native';
import type { ControlTree, Stat } from './tree.js';

type MaybeAsync<T> = T | Promise<T>;

/** An open file of a mount's source. A pipe's read gives what is there now ('' if nothing). */
export interface SourceFile {
  readonly isPipe: boolean;
  /** trace_pipe_raw: read hands out whole pages from readPage(). */
  readonly isRaw?: boolean;
  readPage?(): MaybeAsync<Uint8Array | null>;
  read(): MaybeAsync<string>;
  write(data: string): MaybeAsync<unknown>;
  truncate(): MaybeAsync<unknown>;
  close(): void;
}

/** What a mount serves: this process's control tree, or another's through its socket. */
export interface MountSource {
  stat(path: string): MaybeAsync<Stat>;
  readdir(path: string): MaybeAsync<string[]>;
  open(path: string): MaybeAsync<SourceFile>;
  /** What an O_TRUNC open does to the file. */
  truncate(path: string): MaybeAsync<unknown>;
  mkdir(path: string): MaybeAsync<unknown>;
  rmdir(path: string): MaybeAsync<unknown>;
  unlink(path: string): MaybeAsync<unknown>;
  chmod(path: string, mode: number): MaybeAsync<unknown>;
  chown(path: string, uid: number, gid: number): MaybeAsync<unknown>;
  /** Let go of what the source holds (a connection), after unmounting. */
  close?(): void;
}

/** This process's tree as a mount source. */
export function treeSource(tree: ControlTree, dirs: { mkdir(path: string): unknown; rmdir(path: string): void }): MountSource {
  return {
    stat: (p) => tree.stat(p),
    readdir: (p) => tree.readdir(p),
    open: (p) => tree.open(p),
    truncate: (p) => tree.open(p, { truncate: true }).close(),
    mkdir: (p) => dirs.mkdir(p),
    rmdir: (p) => dirs.rmdir(p),
    unlink: (p) => tree.unlink(p),
    chmod: (p, mode) => tree.chmod(p, mode),
    chown: (p, uid, gid) => tree.chown(p, uid, gid),
  };
}

export interface Mount {
  readonly dir: string;
  unmount(): Promise<void>;
}

const PIPE_POLL_MS = 20;
const INTERRUPT_CHECK_MS = 200;

/** -errno for an error thrown by the tree (its `code`), EIO for anything else. */
function errnoOf(err: unknown): number {
  const code = (err as { code?: string }).code;
  const n = code && code in ERRNO ? ERRNO[code as keyof typeof ERRNO] : ERRNO.EIO;
  return -n;
}

/** Signals pending for a process (SigPnd | ShdPnd of /proc/PID/status), 0 if it is gone. */
function pendingSignals(pid: string): bigint {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    let pending = 0n;
    for (const m of status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)) pending |= BigInt(`0x${m[1]}`);
    return pending;
  } catch {
    return 0n;
  }
}

/** Whether some process has `path` of the mount open and no signal pending. */
function someoneWaits(mountDir: string, path: string): boolean {
  const target = join(mountDir, path);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link === target && pendingSignals(pid) === 0n) return true;
    }
  }
  return false;
}

interface Handle {
  file: SourceFile;
  /** The file's attributes at open: fstat answers from these after its instance is gone. */
  stat: FuseStat;
  /** An ordinary file's text, taken at the first read; reads at an offset slice it. */
  text: Buffer | null;
  /** trace_pipe text consumed from the ring but not yet returned (a read asked for less). */
  pending: Buffer;
  released: boolean;
}

/** How long libfuse may take to mount before we say so instead of waiting on. */
const MOUNT_DEADLINE_MS = 15_000;

const FUSE_PACKAGES = 'apt-get install -y fuse libfuse2';

/**
 * What this machine lacks for a FUSE mount, said plainly: the device, and the fusermount helper
 * that libfuse runs to mount and to unmount when this process dies.
 */
export function fuseMissing(env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (err) {
    return `/dev/fuse is ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (no FUSE in this kernel or container)' : 'not accessible'}`;
  }
  const dirs = (env.PATH ?? '/usr/bin:/bin').split(delimiter).filter(Boolean);
  const found = dirs.some((d) => ['fusermount', 'fusermount3'].some((name) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }));
  return found ? null : `fusermount is not installed (${FUSE_PACKAGES})`;
}

export async function mountSource(source: MountSource, mountDir: string): Promise<Mount> {
  const dir = resolve(mountDir);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw Object.assign(new Error(`${dir}: no such directory to mount on`), { code: 'ENOENT' });
  }
  if (!isDir) throw Object.assign(new Error(`${dir}: not a directory`), { code: 'ENOTDIR' });
  const missing = fuseMissing();
  if (missing) throw Object.assign(new Error(`cannot mount ${dir} through FUSE: ${missing}`), { code: 'ENODEV' });
  let Fuse: typeof import('fuse-native').default;
  try {
    Fuse = (await import('fuse-native')).default;
  } catch (err) {
    throw new Error(`FUSE is not available (npm fuse-native, and ${FUSE_PACKAGES}): ${(err as Error).message}`);
  }
  const rel = (path: string) => path.replace(/^\/+/, '');
  const handles = new Map<number, Handle>();
  let nextFd = 1;
  const started = new Date();
  const statOf = async (path: string): Promise<FuseStat> => ({ ...(await source.stat(rel(path))), mtime: started, atime: started, ctime: started });

  /** trace_pipe text or trace_pipe_raw pages: what is there next, or null to wait. */
  const nextChunk = async (h: Handle): Promise<Buffer | null> => {
    if (h.file.isRaw) {
      const page = await h.file.readPage!();
      return page ? Buffer.from(page) : null;
    }
    const text = await h.file.read();
    return text ? Buffer.from(text, 'utf8') : null;
  };
  const readPipe = (h: Handle, path: string, len: number, buf: Buffer, cb: (bytes: number) => void) => {
    let waited = 0;
    const attempt = () => {
      if (h.released) return cb(0);
      // A read the daemon holds cannot be interrupted by the kernel, even by SIGKILL (fuse waits
      // it out), and fuse-native passes on no FUSE_INTERRUPT: so look for ourselves whether
      // anyone still waits without a signal pending, and end the read with EINTR if not.
      waited += PIPE_POLL_MS;
      if (waited % INTERRUPT_CHECK_MS === 0 && !someoneWaits(dir, path)) return cb(-ERRNO.EINTR);
      if (h.pending.length === 0) {
        nextChunk(h).then((chunk) => {
          if (!chunk) {
            setTimeout(attempt, PIPE_POLL_MS);
            return;
          }
          h.pending = chunk;
          give();
        }, (err: unknown) => cb(errnoOf(err)));
        return;
      }
      give();
    };
    const give = () => {
      const n = Math.min(len, h.pending.length);
      h.pending.copy(buf, 0, 0, n);
      h.pending = h.pending.subarray(n);
      cb(n);
    };
    attempt();
  };

  /** Answer `cb` with 0 and the result, or -errno, once `fn` (sync or async) is done. */
  const answer = <T>(cb: (err: number, result?: T) => void, fn: () => MaybeAsync<T>) => {
    Promise.resolve().then(fn).then((result) => cb(0, result), (err: unknown) => cb(errnoOf(err)));
  };
  const fuse = new Fuse(dir, {
    getattr(path, cb) {
      answer(cb, () => statOf(path));
    },
    fgetattr(_path, fd, cb) {
      const h = handles.get(fd);
      if (!h) return cb(-ERRNO.EBADF);
      cb(0, h.stat);
    },
    readdir(path, cb) {
      answer(cb, async () => ['.', '..', ...(await source.readdir(rel(path)))]);
    },
    open(path, _flags, cb) {
      // With O_TRUNC, libfuse has already called truncate(): that was the truncating open.
      // As on tracefs for root, opening succeeds whatever the mode; a read of a write-only
      // file or a write of a read-only one then gives EINVAL.
      answer(cb, async () => {
        const stat = await statOf(path);
        const file = await source.open(rel(path));
        const fd = nextFd++;
        handles.set(fd, { file, stat, text: null, pending: Buffer.alloc(0), released: false });
        return fd;
      });
    },
    create(_path, _mode, cb) {
      cb(-ERRNO.EACCES);
    },
    read(path, fd, buf, len, pos, cb) {
      const h = handles.get(fd);
      if (!h) return cb(-ERRNO.EBADF);
      if (h.file.isPipe || h.file.isRaw) return readPipe(h, path, len, buf, cb);
      Promise.resolve()
        .then(async () => {
          if (h.text === null || pos === 0) h.text = Buffer.from(await h.file.read(), 'utf8');
          return pos >= h.text.length ? 0 : h.text.copy(buf, 0, pos, Math.min(h.text.length, pos + len));
        })
        .then(cb, (err: unknown) => cb(errnoOf(err)));
    },
    write(_path, fd, buf, len, _pos, cb) {
      const h = handles.get(fd);
      if (!h) return cb(-ERRNO.EBADF);
      const data = buf.toString('utf8', 0, len);
      // A file that takes fewer bytes than it was given (trace_marker cuts text to what fits a
      // sub-buffer) says so with a short count, and the writer sends the rest, as with the
      // kernel's files. Only where the text maps back to the bytes one for one (valid UTF-8).
      const short = (n: unknown) => typeof n === 'number' && n >= 0 && n < len && Buffer.byteLength(data) === len;
      Promise.resolve().then(() => h.file.write(data)).then((n) => cb(short(n) ? (n as number) : len), (err: unknown) => cb(errnoOf(err)));
    },
    truncate(path, size, cb) {
      answer(cb, () => (size === 0 ? source.truncate(rel(path)) : source.stat(rel(path))));
    },
    ftruncate(_path, fd, size, cb) {
      const h = handles.get(fd);
      if (!h) return cb(-ERRNO.EBADF);
      answer(cb, () => (size === 0 ? h.file.truncate() : undefined));
    },
    release(_path, fd, cb) {
      const h = handles.get(fd);
      if (h) {
        h.released = true;
        h.file.close();
        handles.delete(fd);
      }
      cb(0);
    },
    mkdir(path, _mode, cb) {
      answer(cb, () => source.mkdir(rel(path)));
    },
    rmdir(path, cb) {
      answer(cb, () => source.rmdir(rel(path)));
    },
    unlink(path, cb) {
      answer(cb, () => source.unlink(rel(path)));
    },
    rename(src, _dest, cb) {
      answer(cb, () => source.unlink(rel(src)));
    },
    chmod(path, mode, cb) {
      answer(cb, () => source.chmod(rel(path), mode));
    },
    chown(path, uid, gid, cb) {
      answer(cb, () => source.chown(rel(path), uid, gid));
    },
    utimens(path, _atime, _mtime, cb) {
      answer(cb, () => source.stat(rel(path)));
    },
  }, {
    autoUnmount: true,
    // No per-request timeout: a trace_pipe read may wait as long as it takes.
    timeout: false,
    // libfuse parses this as further -o options: every open is direct_io, inode numbers are
    // ours, and nothing is cached (instances come and go through the API too).
    fsname: 'nftrace,direct_io,use_ino,attr_timeout=0,entry_timeout=0,negative_timeout=0',
  });
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`FUSE did not mount ${dir} within ${MOUNT_DEADLINE_MS / 1000} s`)), MOUNT_DEADLINE_MS);
    fuse.mount((err) => {
      clearTimeout(deadline);
      if (err) reject(new Error(`FUSE could not mount ${dir}: ${err.message}`));
      else resolve();
    });
  });
  let mounted = true;
  return {
    dir,
    async unmount() {
      if (!mounted) return;
      mounted = false;
      for (const h of handles.values()) {
        h.released = true;
        h.file.close();
      }
      handles.clear();
      await new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
      source.close?.();
    },
  };
}
