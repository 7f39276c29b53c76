/**
 * The control socket: the control tree over a Unix socket, for machines without FUSE. Opt-in
 * (`tracer.listen()`); the socket lives in a directory only its owner can enter and is itself
 * 0600, named after the process id, so `nftrace ctl PID ...` finds it.
 *
 * Protocol: one JSON object a line each way. A request `{id, op, path, data?, mode?, uid?, gid?}`
 * gets `{id, ok: true, result}` or `{id, ok: false, code, message}` (code: the errno name). The
 * `pipe` op streams `{id, data}` lines of trace_pipe until the client goes away; `raw` streams
 * `{id, page}` (base64) sub-buffer pages of a trace_pipe_raw as buffer_percent lets them go,
 * until a `flush` request with the same id drains the rest regardless and answers `{id, done}`.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MountSource, SourceFile } from './fuse.js';
import type { ControlTree, Stat } from './tree.js';

export type ControlOp =
  | 'read' | 'write' | 'append' | 'truncate' | 'readdir' | 'stat' | 'mkdir' | 'rmdir' | 'unlink' | 'chmod' | 'chown'
  | 'pipe' | 'raw' | 'flush';

export interface ControlRequest {
  id: number;
  op: ControlOp;
  path: string;
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface SocketBackend {
  tree: ControlTree;
  mkdir(path: string): unknown;
  rmdir(path: string): void;
}

/** Where process `pid`'s control socket is (or would be). */
export function socketPath(pid: number = process.pid): string {
  const uid = process.getuid?.() ?? 0;
  const base = process.env.XDG_RUNTIME_DIR || tmpdir();
  return join(base, `nftrace-${uid}`, `${pid}.sock`);
}

const MAX_LINE = 1 << 20;
const PIPE_POLL_MS = 20;

function handle(backend: SocketBackend, req: ControlRequest): unknown {
  const { tree } = backend;
  const withFile = <T>(truncate: boolean, fn: (f: ReturnType<ControlTree['open']>) => T): T => {
    const f = tree.open(req.path, { truncate });
    try {
      return fn(f);
    } finally {
      f.close();
    }
  };
  switch (req.op) {
    case 'read': return withFile(false, (f) => f.read());
    case 'write': return withFile(true, (f) => f.write(req.data ?? ''));
    case 'append': return withFile(false, (f) => f.write(req.data ?? ''));
    case 'truncate': return withFile(true, () => null);
    case 'unlink': return tree.unlink(req.path);
    case 'readdir': return tree.readdir(req.path);
    case 'stat': return tree.stat(req.path);
    case 'mkdir': backend.mkdir(req.path); return null;
    case 'rmdir': backend.rmdir(req.path); return null;
    case 'chmod': tree.chmod(req.path, req.mode ?? 0); return null;
    case 'chown': tree.chown(req.path, req.uid ?? -1, req.gid ?? -1); return null;
    default: throw Object.assign(new Error(`unknown op '${String(req.op)}'`), { code: 'EINVAL' });
  }
}

function errorReply(id: number, err: unknown): object {
  return { id, ok: false, code: (err as { code?: string }).code ?? 'EIO', message: (err as Error).message };
}

/**
 * Stream trace_pipe text (`raw` false) or trace_pipe_raw pages (`raw` true) until the client
 * goes. Returns the flush: send what is left, buffer_percent aside, then `{id, done}`.
 */
function stream(backend: SocketBackend, req: ControlRequest, socket: Socket, send: (msg: object) => void, raw: boolean): (() => void) | null {
  let file: ReturnType<ControlTree['open']>;
  try {
    file = backend.tree.open(req.path);
    if (raw ? !file.isRaw : !file.isPipe) {
      file.close();
      throw Object.assign(new Error(`${req.path} is not ${raw ? 'trace_pipe_raw' : 'a pipe'}`), { code: 'EINVAL' });
    }
  } catch (err) {
    send(errorReply(req.id, err));
    return null;
  }
  const pump = (force: boolean) => {
    if (!raw) {
      const data = file.read();
      if (data) send({ id: req.id, data });
      return;
    }
    for (let page = file.readPage(force); page; page = file.readPage(force)) send({ id: req.id, page: Buffer.from(page).toString('base64') });
  };
  const timer = setInterval(() => {
    try {
      pump(false);
    } catch (err) {
      send(errorReply(req.id, err));
      stop();
    }
  }, PIPE_POLL_MS);
  const stop = () => {
    clearInterval(timer);
    file.close();
  };
  socket.once('close', stop);
  return () => {
    pump(true);
    send({ id: req.id, done: true });
    stop();
  };
}

/**
 * Hand each newline-ended line arriving on `socket` to `onLine`, both ends of the protocol. With
 * a limit, more than `maxLine` characters waiting without a newline call `onOverflow`.
 */
function readLines(socket: Socket, onLine: (line: string) => void, limit?: { maxLine: number; onOverflow: () => void }): void {
  socket.setEncoding('utf8');
  let buffered = '';
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while (!socket.destroyed && (nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(line);
    }
    if (limit && buffered.length > limit.maxLine) limit.onOverflow();
  });
}

/** Start serving the tree on the process's control socket. */
export async function listen(backend: SocketBackend, path = socketPath()): Promise<{ path: string; close(): Promise<void> }> {
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A directory someone else made, opened up or pointed elsewhere would expose the socket: refuse it.
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? st.uid) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} must be a directory owned by this user with mode 0700 (it is ${st.isDirectory() ? (st.mode & 0o777).toString(8) : 'not a directory'})`);
  }
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const flushers = new Map<number, () => void>();
    const send = (msg: object) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
    };
    const tooLong = () => {
      send({ id: 0, ok: false, code: 'E2BIG', message: 'request too long' });
      socket.destroy();
    };
    readLines(socket, (line) => {
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
        if (typeof req.path !== 'string') throw new Error('no path');
      } catch {
        send({ id: 0, ok: false, code: 'EINVAL', message: 'not a request' });
        return;
      }
      if (req.op === 'pipe' || req.op === 'raw') {
        const flush = stream(backend, req, socket, send, req.op === 'raw');
        if (flush) flushers.set(req.id, flush);
        return;
      }
      if (req.op === 'flush') {
        const flush = flushers.get(req.id);
        flushers.delete(req.id);
        if (flush) flush();
        else send({ id: req.id, ok: false, code: 'EINVAL', message: 'no raw stream with that id' });
        return;
      }
      try {
        send({ id: req.id, ok: true, result: handle(backend, req) });
      } catch (err) {
        send(errorReply(req.id, err));
      }
    }, { maxLine: MAX_LINE, onOverflow: tooLong });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  server.unref();
  return {
    path,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(path, { force: true });
    },
  };
}

interface Reply {
  id: number;
  ok?: boolean;
  result?: unknown;
  code?: string;
  message?: string;
  data?: string;
  page?: string;
  done?: boolean;
}

/** A client of a process's control socket. */
export class ControlClient {
  private readonly socket: Socket;
  private nextId = 1;
  private readonly waiting = new Map<number, (msg: Reply) => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    readLines(socket, (line) => {
      const msg = JSON.parse(line) as Reply;
      this.waiting.get(msg.id)?.(msg);
    });
  }

  static connect(pid: number): Promise<ControlClient> {
    const path = socketPath(pid);
    return new Promise((resolve, reject) => {
      const socket = createConnection(path, () => resolve(new ControlClient(socket)));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new Error(`process ${pid} has no control socket at ${path} (it must call tracer.listen())`)
          : err);
      });
    });
  }

  /**
   * Stream a trace_pipe_raw's pages to `onPage`. Returns `finish()`, which drains what is left
   * (buffer_percent aside) and resolves when the last page has arrived.
   */
  rawPages(path: string, onPage: (page: Uint8Array) => void): () => Promise<void> {
    const id = this.nextId++;
    let done: (() => void) | null = null;
    let failure: Error | null = null;
    this.waiting.set(id, (msg) => {
      if (msg.page !== undefined) return onPage(Buffer.from(msg.page, 'base64'));
      this.waiting.delete(id);
      if (!msg.done) failure = Object.assign(new Error(msg.message ?? msg.code), { code: msg.code });
      done?.();
    });
    this.socket.write(`${JSON.stringify({ id, op: 'raw', path })}\n`);
    return () => new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure);
      done = () => (failure ? reject(failure) : resolve());
      this.socket.write(`${JSON.stringify({ id, op: 'flush', path })}\n`);
    });
  }

  request(op: Exclude<ControlOp, 'pipe' | 'raw' | 'flush'>, path: string, extra: Partial<ControlRequest> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (msg) => {
        this.waiting.delete(id);
        if (msg.ok) resolve(msg.result);
        else reject(Object.assign(new Error(msg.message ?? msg.code), { code: msg.code }));
      });
      this.socket.write(`${JSON.stringify({ id, op, path, ...extra })}\n`);
    });
  }

  /** Stream trace_pipe text to `onData` until the connection ends; rejects on an error reply. */
  pipe(path: string, onData: (text: string) => void): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (msg) => {
        if (msg.data !== undefined) return onData(msg.data);
        this.waiting.delete(id);
        reject(Object.assign(new Error(msg.message ?? msg.code), { code: msg.code }));
      });
      this.socket.once('close', () => resolve());
      this.socket.write(`${JSON.stringify({ id, op: 'pipe', path })}\n`);
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

/**
 * Another process's tree as a mount source (`nftrace mount PID DIR`). Requests are stateless,
 * so an open file there does not pin its instance; trace_pipe gets a connection of its own.
 */
export async function socketSource(pid: number): Promise<MountSource> {
  const client = await ControlClient.connect(pid);
  const open = async (path: string): Promise<SourceFile> => {
    const stat = (await client.request('stat', path)) as Stat;
    if ((stat.mode & 0o170000) === 0o040000) throw Object.assign(new Error(`${path}: is a directory`), { code: 'EISDIR' });
    if (/(^|\/)trace_pipe$/.test(path)) {
      const pipeClient = await ControlClient.connect(pid);
      let buffered = '';
      let failure: unknown = null;
      pipeClient.pipe(path, (text) => (buffered += text)).catch((err: unknown) => (failure = err));
      return {
        isPipe: true,
        read: () => {
          if (failure) throw failure;
          const text = buffered;
          buffered = '';
          return text;
        },
        write: () => Promise.reject(Object.assign(new Error('trace_pipe is not writable'), { code: 'EINVAL' })),
        truncate: () => undefined,
        close: () => pipeClient.close(),
      };
    }
    return {
      isPipe: false,
      read: async () => String(await client.request('read', path)),
      write: (data) => client.request('append', path, { data }),
      truncate: () => client.request('truncate', path),
      close: () => {},
    };
  };
  return {
    stat: async (p) => (await client.request('stat', p)) as Stat,
    readdir: async (p) => (await client.request('readdir', p)) as string[],
    open,
    truncate: (p) => client.request('truncate', p),
    mkdir: (p) => client.request('mkdir', p),
    rmdir: (p) => client.request('rmdir', p),
    unlink: (p) => client.request('unlink', p),
    chmod: (p, mode) => client.request('chmod', p, { mode }),
    chown: (p, uid, gid) => client.request('chown', p, { uid, gid }),
    close: () => client.close(),
  };
}
