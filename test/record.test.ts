/**
 * `nftrace record`, `list` and `stat` on the live kernel, with trace-cmd as the judge of the file:
 * it must read our recording, and our report must print it as trace-cmd does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needKernel } from './helpers/tracefs.js';
import { exited, output } from './helpers/wait.js';
import { needTraceCmd, traceCmd } from './helpers/trace-cmd.js';

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

function nftrace(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 120_000 });
}

/** The instance a recorder of ours left behind (another recording on the machine is not ours to judge). */
function leftovers(root: string, pid: number | undefined): string[] {
  return readdirSync(join(root, 'instances')).filter((n) => n === `nftrace-record-${pid}`);
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-record-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Our report against trace-cmd's, line for line, for each report mode. */
function sameReports(file: string): void {
  for (const mode of [['-N'], ['-R'], [], ['--stat']]) {
    const ours = nftrace(['report', ...mode, '-i', file]);
    assert.equal(ours.status, 0, ours.stderr);
    const theirs = traceCmd(['report', ...mode, '-i', file]);
    assert.ok(theirs.split('\n').length > 5, `trace-cmd report ${mode.join(' ')} shows something`);
    assert.equal(ours.stdout, theirs, `report ${mode.join(' ')}`);
  }
}

test('record a command on the live kernel: trace-cmd reads the file, our report matches it, nothing is left behind', (t) => {
  const root = needKernel(t);
  if (!root || !needTraceCmd(t)) return;
  withDir((dir) => {
    for (const version of ['7', '6']) {
      const file = join(dir, `v${version}.dat`);
      const r = nftrace(['record', '-e', 'sched:sched_switch', '-e', 'sched:sched_wakeup', '-e', 'kmem:kmalloc', '-e', 'irq',
        '-b', '512', '--file-version', version, '-o', file, '--', 'sh', '-c', 'ls / > /dev/null; sleep 0.2']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^CPU +pages +bytes +entries +overrun +commit overrun +dropped +lost$/m);
      assert.match(r.stdout, /^ *all +\d+ +\d+ +\d+ +0 +0 +0 +0$/m, 'nothing lost in a short recording');
      assert.match(r.stdout, /wrote .* MB, \d+ event types\)/);
      assert.equal((statSync(file).mode & 0o777).toString(8), '600');
      assert.deepEqual(leftovers(root, r.pid), []);
      const stat = traceCmd(['report', '--stat', '-i', file]);
      assert.match(stat, /CPU: 0\nentries: 0\n/, 'the kernel buffer was drained: no entries left behind');
      sameReports(file);
    }
  });
});

test('record -B into an existing instance keeps it and puts its event state back', (t) => {
  const root = needKernel(t);
  if (!root || !needTraceCmd(t)) return;
  const name = `nftrace-test-B-${process.pid}`;
  const inst = join(root, 'instances', name);
  mkdirSync(inst);
  try {
    writeFileSync(join(inst, 'events/sched/sched_waking/enable'), '1');
    withDir((dir) => {
      const file = join(dir, 'b.dat');
      const r = nftrace(['record', '-B', name, '-e', 'sched:sched_switch', '-e', 'sched:sched_waking', '-o', file, '--duration', '0.3']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /recording sched:sched_switch, sched:sched_waking for 0.3 s/);
      assert.ok(existsSync(inst), 'an instance that existed is kept');
      assert.equal(readFileSync(join(inst, 'events/sched/sched_switch/enable'), 'utf8').trim(), '0');
      assert.equal(readFileSync(join(inst, 'events/sched/sched_waking/enable'), 'utf8').trim(), '1');
      // Like trace-cmd -B: an empty top-level buffer and the instance's, lines prefixed with its name.
      const lines = traceCmd(['report', '-i', file]).split('\n').filter((l) => l.includes('sched_'));
      assert.ok(lines.length > 0 && lines.every((l) => l.startsWith(`${name}: `)));
      sameReports(file);
    });
  } finally {
    writeFileSync(join(inst, 'events/enable'), '0');
    rmdirSync(inst);
  }
});

test('record: a bad selection or command fails clearly and changes nothing', (t) => {
  const root = needKernel(t);
  if (!root) return;
  withDir((dir) => {
    const before = readdirSync(join(root, 'instances'));
    const bad = nftrace(['record', '-e', 'nosuch:event', '-o', join(dir, 'x.dat'), '--', 'true']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^nftrace: no event matches 'nosuch:event'/);
    const missing = nftrace(['record', '-e', 'sched:sched_switch', '-o', join(dir, 'y.dat'), '--', '/nonexistent/cmd']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot run '\/nonexistent\/cmd': ENOENT/);
    const usage = nftrace(['record', '-o', join(dir, 'z.dat')]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /needs at least one -e EVENT/);
    assert.deepEqual(readdirSync(join(root, 'instances')), before);
    assert.ok(!existsSync(join(dir, 'x.dat')) && !existsSync(join(dir, 'y.dat')));
  });
});

test('record until Ctrl-C: SIGINT ends the recording cleanly and the file is written', async (t) => {
  const root = needKernel(t);
  if (!root || !needTraceCmd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-record-'));
  try {
    const file = join(dir, 'int.dat');
    const child = spawn(process.execPath, [CLI, 'record', '-e', 'sched:sched_switch', '-o', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    // Wait for the banner, so the signal arrives while recording.
    await output(child, child.stderr, (text) => text.includes('press Ctrl-C to stop'));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await exited(child);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /wrote /);
    assert.deepEqual(leftovers(root, child.pid), []);
    assert.ok(traceCmd(['report', '-i', file]).includes('sched_switch:'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('list and stat read the kernel as trace-cmd does', (t) => {
  const root = needKernel(t);
  if (!root || !needTraceCmd(t)) return;
  const events = nftrace(['list', '-e']);
  assert.equal(events.status, 0, events.stderr);
  assert.equal(events.stdout, readFileSync(join(root, 'available_events'), 'utf8'));
  const sched = nftrace(['list', '-e', '^sched:']);
  assert.ok(sched.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('sched:')));
  const systems = nftrace(['list']);
  assert.match(systems.stdout, /^sched \(\d+\)$/m);
  assert.equal(nftrace(['list', '-C']).stdout, readFileSync(join(root, 'trace_clock'), 'utf8'));

  const name = `nftrace-test-stat-${process.pid}`;
  const inst = join(root, 'instances', name);
  mkdirSync(inst);
  try {
    for (const ev of ['sched/sched_switch', 'sched/sched_waking', 'kmem/kmalloc', 'timer/timer_start', 'irq/irq_handler_entry']) {
      writeFileSync(join(inst, `events/${ev}/enable`), '1');
    }
    writeFileSync(join(inst, 'events/kmem/kmalloc/filter'), 'bytes_req > 100');
    writeFileSync(join(inst, 'buffer_size_kb'), '1000');
    const ours = nftrace(['stat', '-B', name]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, traceCmd(['stat', '-B', name]));
    assert.match(nftrace(['list', '-B']).stdout, new RegExp(`^${name}$`, 'm'));
    const missing = nftrace(['stat', '-B', 'nosuch-instance']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no instance 'nosuch-instance'/);
  } finally {
    writeFileSync(join(inst, 'events/kmem/kmalloc/filter'), '0');
    writeFileSync(join(inst, 'events/enable'), '0');
    rmdirSync(inst);
  }
});

test('record -P: a Node process\'s buffers beside the kernel\'s CPUs in one trace.dat, one timeline on mono', async (t) => {
  const root = needKernel(t);
  if (!root || !needTraceCmd(t)) return;
  const index = new URL('../src/index.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { Tracer } from '${index}';
    const tracer = new Tracer();
    const request = tracer.defineEvent('http', 'request', { status: 'u16', path: 'string' });
    tracer.write('events/enable', '1');
    await tracer.listen();
    let n = 0;
    setInterval(() => request.emit({ status: 200 + (n++ % 3), path: '/api' }), 10);
    console.log('ready');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-record-'));
  try {
    await output(child, child.stdout!, (text) => text.includes('ready'));
    const file = join(dir, 'both.dat');
    const r = spawnSync(process.execPath, [CLI, 'record', '-P', String(child.pid), '-e', 'sched:sched_switch', '--duration', '1', '-o', file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const text = traceCmd(['report', '-i', file]);
    const nodeLines = text.split('\n').filter((l) => l.startsWith(`node-${child.pid}: `));
    assert.ok(nodeLines.length >= 50, `node events: ${nodeLines.length}`);
    assert.match(nodeLines[0]!, /request: +status=20[012] path=\/api$/);
    assert.ok(text.includes('sched_switch:'));
    // One timeline: timestamps of both sides interleave.
    const stamps = text.split('\n').slice(1).filter(Boolean).map((l) => Number(/ (\d+\.\d+): /.exec(l)![1]));
    assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b));
    sameReports(file);
    const clock = spawnSync(process.execPath, [CLI, 'ctl', String(child.pid), 'trace_clock'], { encoding: 'utf8', timeout: 10_000 }).stdout;
    assert.match(clock, /\[local\]/, 'the process\'s clock is put back');
    // The process alone, no kernel events.
    const alone = join(dir, 'alone.dat');
    const r2 = spawnSync(process.execPath, [CLI, 'record', '-P', String(child.pid), '--duration', '0.5', '-o', alone], { encoding: 'utf8' });
    assert.equal(r2.status, 0, r2.stderr);
    assert.match(r2.stderr, new RegExp(`recording process ${child.pid} for 0.5 s`));
    const lines = traceCmd(['report', '-i', alone]).trimEnd().split('\n').slice(1);
    assert.ok(lines.length > 10 && lines.every((l) => l.startsWith(`node-${child.pid}: `)));
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
