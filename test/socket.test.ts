/**
 * The control socket and `nftrace ctl/cat/ls` against a separate traced Node process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { socketPath } from '../src/tracefs/socket.js';
import { needFuse } from './helpers/tracefs.js';
import { exited, output } from './helpers/wait.js';

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
const INDEX = new URL('../src/index.js', import.meta.url).href;

/** A traced process serving its control socket; it emits http:request once a second after "go". */
async function traced(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { Tracer } from '${INDEX}';
    const tracer = new Tracer();
    const request = tracer.defineEvent('http', 'request', { status: 'u16' });
    tracer.defineEvent('db', 'query', { rows: 'u32' });
    await tracer.listen();
    let n = 0;
    setInterval(() => request.emit({ status: 200 + (n++ % 3) }), 50);
    console.log('ready');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await output(child, child.stdout!, (text) => text.includes('ready'));
  return child;
}

function nftrace(args: string[], timeoutMs = 10_000): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, killSignal: 'SIGINT' }, (error, stdout, stderr) => {
      resolve({ out: stdout, err: stderr, code: error ? ((error as { code?: number }).code ?? null) : 0 });
    });
  });
}

test('ctl, cat and ls drive another process with the kernel\'s errnos; the socket is private', async () => {
  const child = await traced();
  const pid = String(child.pid);
  try {
    const path = socketPath(child.pid);
    assert.equal((statSync(path).mode & 0o777).toString(8), '600');
    assert.equal((statSync(dirname(path)).mode & 0o777).toString(8), '700');

    assert.deepEqual((await nftrace(['ls', pid, 'events/http'])).out.split('\n'), ['filter', 'enable', 'request', '']);
    assert.equal((await nftrace(['ctl', pid, 'events/http/enable'])).out, '0\n');
    assert.equal((await nftrace(['ctl', pid, 'events/http/enable', '1'])).code, 0);
    assert.equal((await nftrace(['ctl', pid, 'events/enable'])).out, 'X\n');
    assert.equal((await nftrace(['cat', pid, 'set_event'])).out, 'http:request\n');

    for (const [file, value, code] of [['tracing_on', 'abc', 'EINVAL'], ['events/enable', '2', 'EINVAL'], ['buffer_size_kb', '0', 'EINVAL'], ['nosuch', '1', 'ENOENT']]) {
      const r = await nftrace(['ctl', pid, file!, value!]);
      assert.equal(r.code, 1, file);
      assert.match(r.err, new RegExp(`^nftrace: ${file}: ${code} `), file);
    }

    // -a appends, as `>>`: two hist triggers side by side; without it the second replaces the first (O_TRUNC).
    const trigger = 'events/http/request/trigger';
    assert.equal((await nftrace(['ctl', '-a', pid, trigger, 'hist:keys=status'])).code, 0);
    assert.equal((await nftrace(['ctl', '--append', pid, trigger, 'hist:keys=common_pid'])).code, 0);
    assert.equal((await nftrace(['ctl', pid, trigger])).out.split('\n').length, 3);
    assert.equal((await nftrace(['ctl', pid, trigger, 'hist:keys=status'])).code, 0);
    assert.match((await nftrace(['ctl', pid, trigger])).out, /^hist:keys=status:vals=hitcount:sort=hitcount:size=2048 \[active\]\n$/);

    // A value may start with '-' (a probe's removal): it is the value, not an option.
    assert.equal((await nftrace(['ctl', '-a', pid, 'dynamic_events', 'f:t/join node:path:join'])).code, 0);
    assert.equal((await nftrace(['ctl', pid, 'dynamic_events'])).out, 'f:t/join node:path:join\n');
    assert.equal((await nftrace(['ctl', '-a', pid, 'dynamic_events', '-:t/join'])).code, 0);
    assert.equal((await nftrace(['ctl', pid, 'dynamic_events'])).out, '');

    // trace_pipe streams until interrupted.
    const pipe = await nftrace(['cat', pid, 'trace_pipe'], 1500);
    assert.match(pipe.out, /request: status=20[012]\n[^]*request: status=20[012]\n/);

    const none = await nftrace(['ctl', '1', 'tracing_on']);
    assert.equal(none.code, 1);
    assert.match(none.err, /process 1 has no control socket/);
    const usage = await nftrace(['ctl', 'abc', 'tracing_on']);
    assert.equal(usage.code, 2);
  } finally {
    child.kill();
  }
});

test('nftrace mount PID DIR: another process\'s tree through FUSE, served over its socket', async (t) => {
  if (!needFuse(t)) return;
  const child = await traced();
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-pidmnt-'));
  const mount = spawn(process.execPath, [CLI, 'mount', String(child.pid), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    // A mount that fails must fail the test, not hang it.
    await output(mount, mount.stderr!, (text) => text.includes('mounted'));
    const sh = (script: string) => new Promise<string>((resolve) => {
      execFile('bash', ['-c', script], { cwd: dir, timeout: 10_000 }, (_e, out, err) => resolve(out + err));
    });
    assert.equal(await sh('cat events/db/enable; echo 1 > events/http/request/enable; cat set_event events/enable'), '0\nhttp:request\nX\n');
    assert.match(await sh('echo 2 > events/enable'), /Invalid argument/);
    assert.equal(await sh('mkdir instances/p && ls instances && rmdir instances/p && ls instances | wc -l'), 'p\n0\n');
    assert.match(await sh('timeout -s INT 1 cat trace_pipe'), /request: status=20[012]\n/);
  } finally {
    mount.kill('SIGINT');
    const code = await exited(mount);
    child.kill();
    assert.equal(code, 0, 'Ctrl-C unmounts and ends nftrace mount');
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(dir));
    rmSync(dir, { recursive: true, force: true });
  }
});
