/** `nftrace ctl`, `cat` and `ls`: another process's control tree through its control socket. */
import { mountSource } from '../tracefs/fuse.js';
import { ControlClient, socketSource } from '../tracefs/socket.js';

type Write = (text: string) => void;

function pidOf(text: string | undefined): number {
  if (!text || !/^\d+$/.test(text)) throw Object.assign(new Error(`expected a process id, got '${text ?? ''}'`), { usage: true });
  return Number(text);
}

/** Errors name the path and the errno, as a shell would for the same operation on tracefs. */
async function withClient<T>(pid: string | undefined, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const client = await ControlClient.connect(pidOf(pid));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function failed(path: string, err: unknown): Error {
  const code = (err as { code?: string }).code;
  return code ? new Error(`${path}: ${code} (${(err as Error).message})`) : (err as Error);
}

/** `nftrace ctl [-a] PID PATH [VALUE]`: read PATH, or write VALUE to it as `echo VALUE > PATH` (`>>` with -a) does. */
export async function runCtl(pid: string | undefined, path: string | undefined, value: string | undefined, out: Write, append = false): Promise<void> {
  if (!path) throw Object.assign(new Error('ctl needs PID and PATH'), { usage: true });
  await withClient(pid, async (c) => {
    try {
      if (value === undefined) out(String(await c.request('read', path)));
      else await writeAll(c, path, `${value}\n`, append);
    } catch (err) {
      throw failed(path, err);
    }
  });
}

/**
 * Write as `echo` does: a file that takes fewer bytes than it was sent (trace_marker cuts text
 * to what fits a sub-buffer) gets the rest in further writes, as the kernel's files do.
 */
async function writeAll(c: ControlClient, path: string, text: string, append: boolean): Promise<void> {
  let data = Buffer.from(text, 'utf8');
  let op: 'write' | 'append' = append ? 'append' : 'write';
  for (;;) {
    const n = await c.request(op, path, { data: data.toString('utf8') });
    if (typeof n !== 'number' || n <= 0 || n >= data.length) return;
    data = data.subarray(n);
    op = 'append';
  }
}

/** `nftrace cat PID PATH`: trace_pipe streams until interrupted; other files print once. */
export async function runCat(pid: string | undefined, path: string | undefined, out: Write): Promise<void> {
  if (!path) throw Object.assign(new Error('cat needs PID and PATH'), { usage: true });
  await withClient(pid, async (c) => {
    try {
      if (/(^|\/)trace_pipe$/.test(path)) {
        const stop = () => c.close();
        process.once('SIGINT', stop);
        await c.pipe(path, out).finally(() => process.off('SIGINT', stop));
      } else {
        out(String(await c.request('read', path)));
      }
    } catch (err) {
      throw failed(path, err);
    }
  });
}

/** `nftrace ls PID [PATH]` */
export async function runLs(pid: string | undefined, path: string | undefined, out: Write): Promise<void> {
  await withClient(pid, async (c) => {
    try {
      const names = (await c.request('readdir', path ?? '')) as string[];
      out(names.length ? `${names.join('\n')}\n` : '');
    } catch (err) {
      throw failed(path ?? '.', err);
    }
  });
}

/** `nftrace mount PID DIR`: another process's control tree as a directory, until Ctrl-C. */
export async function runMount(pid: string | undefined, dir: string | undefined, err: Write): Promise<void> {
  if (!dir) throw Object.assign(new Error('mount needs PID and DIR'), { usage: true });
  const mount = await mountSource(await socketSource(pidOf(pid)), dir);
  err(`mounted process ${pid}'s control tree at ${mount.dir}; Ctrl-C unmounts\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await mount.unmount();
}
