/**
 * The control tree's lifetimes and directory semantics, each checked against the live kernel
 * (as root) with the same operations on a fresh kernel instance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, mkdirSync, openSync, opendirSync, readSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Tracer } from '../src/index.js';
import { EVENTFS_FILE_INO } from '../src/tracefs/eventfs.js';
import { needKernel } from './helpers/tracefs.js';

/** Files whose open fd makes rmdir of the instance fail with EBUSY (reference §5.2). */
const PINNING = [
  'trace', 'trace_pipe', 'tracing_on', 'buffer_size_kb', 'set_event', 'error_log', 'trace_marker', 'current_tracer',
  'per_cpu/cpu0/trace', 'per_cpu/cpu0/stats', 'events/enable', 'events/header_page', 'events/sched/enable',
  'events/sched/filter', 'events/sched/sched_switch/enable', 'events/sched/sched_switch/filter',
];
/** Held open, these let rmdir succeed. */
const NOT_PINNING = ['events/sched/sched_switch/format', 'events/sched/sched_switch/id', 'events/sched/sched_switch/trigger'];

function errno(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

function tracer(): Tracer {
  const t = new Tracer();
  t.defineEvent('sched', 'sched_switch', { prev_pid: 's32', next_pid: 's32' });
  t.defineEvent('sched', 'sched_waking', { pid: 's32' });
  return t;
}

/** What happens with `file` held open while the instance is removed: rmdir's result, then reads on the stale fd. */
function oursPin(file: string): string {
  const t = tracer();
  t.mkdir('instances/x');
  const f = t.open(`instances/x/${file}`);
  const rm = errno(() => t.rmdir('instances/x'));
  const after = rm === 'ok' ? errno(() => f.read()) : '-';
  f.close();
  if (rm !== 'ok') t.rmdir('instances/x');
  return `${rm} ${after}`;
}

function kernelPin(root: string, file: string): string {
  const dir = join(root, 'instances', `nftrace-pin-${process.pid}`);
  mkdirSync(dir);
  const flags = file === 'trace_marker' ? constants.O_WRONLY : constants.O_RDONLY | constants.O_NONBLOCK;
  const fd = openSync(join(dir, file), flags);
  const rm = errno(() => rmdirSync(dir));
  const after = rm === 'ok' ? errno(() => readSync(fd, Buffer.alloc(4096))) : '-';
  closeSync(fd);
  if (rm !== 'ok') rmdirSync(dir);
  return `${rm} ${after}`;
}

test('open files pin an instance exactly where the kernel\'s do; stale format/trigger give ENODEV, id still reads', (t) => {
  const ours = Object.fromEntries([...PINNING, ...NOT_PINNING].map((f) => [f, oursPin(f)]));
  for (const f of PINNING) assert.equal(ours[f], 'EBUSY -', f);
  assert.deepEqual(NOT_PINNING.map((f) => ours[f]), ['ok ENODEV', 'ok ok', 'ok ENODEV']);
  const root = needKernel(t);
  if (!root) return;
  const kernel = Object.fromEntries([...PINNING, ...NOT_PINNING].map((f) => [f, kernelPin(root, f)]));
  assert.deepEqual(ours, kernel);
});

test('a held directory does not pin; getdents on it after removal is EINVAL, as in the kernel', (t) => {
  const tr = tracer();
  tr.mkdir('instances/x');
  const dir = tr.opendir('instances/x/events/sched');
  assert.deepEqual(dir.readdir(), ['filter', 'enable', 'sched_switch', 'sched_waking']);
  tr.rmdir('instances/x');
  const ours = errno(() => dir.readdir());
  dir.close();
  assert.equal(ours, 'EINVAL');
  assert.equal(errno(() => tr.readdir('instances/x/events')), 'ENOENT');
  const root = needKernel(t);
  if (!root) return;
  const kdir = join(root, 'instances', `nftrace-dir-${process.pid}`);
  mkdirSync(kdir);
  const handle = opendirSync(join(kdir, 'events/sched'));
  rmdirSync(kdir);
  assert.equal(errno(() => handle.readSync()), ours);
  handle.closeSync();
});

test('eventfs: nodes exist only while held; stat and readdir build nothing; inode numbers as the kernel gives them', () => {
  const tr = tracer();
  tr.mkdir('instances/a');
  const tree = tr.controlTree;
  assert.equal(tree.heldNodes(), 0);
  for (const name of tr.readdir('instances/a/events/sched')) tr.stat(`instances/a/events/sched/${name}`);
  assert.equal(tree.heldNodes(), 0, 'a walk leaves nothing behind');
  const f = tr.open('instances/a/events/sched/sched_switch/format');
  const g = tr.open('instances/a/events/sched/sched_switch/id');
  assert.equal(tree.heldNodes(), 1);
  f.close();
  g.close();
  assert.equal(tree.heldNodes(), 0, 'the last release gives the node back');
  // Files share one number; directories each have their own, stable, and never that one.
  assert.equal(tr.stat('instances/a/events/sched/sched_switch/enable').ino, EVENTFS_FILE_INO);
  const dirs = ['events/sched', 'events/sched/sched_switch', 'events/sched/sched_waking', 'instances/a/events/sched', 'instances/a/events/sched/sched_switch'];
  const inos = dirs.map((d) => tr.stat(d).ino);
  assert.equal(new Set(inos).size, dirs.length);
  assert.ok(!inos.includes(EVENTFS_FILE_INO));
  assert.deepEqual(dirs.map((d) => tr.stat(d).ino), inos);
  assert.equal(tr.stat('events/sched').nlink, 1);
});

test('modes and ownership: as the kernel sets them, and chmod/chown survive the node being given back', (t) => {
  const tr = tracer();
  tr.mkdir('instances/m');
  const paths = ['instances/m', 'instances/m/tracing_on', 'instances/m/trace_pipe', 'instances/m/trace_marker', 'instances/m/buffer_total_size_kb',
    'instances/m/events', 'instances/m/events/sched', 'instances/m/events/sched/sched_switch', 'instances/m/events/sched/sched_switch/format',
    'instances/m/events/sched/sched_switch/enable', 'instances/m/per_cpu', 'instances/m/per_cpu/cpu0', 'instances/m/per_cpu/cpu0/stats',
    'instances/m/options', 'instances/m/options/overwrite'];
  const ours = paths.map((p) => (tr.stat(p).mode & 0o7777).toString(8));
  tr.chmod('instances/m/events/sched/sched_switch/enable', 0o600);
  const held = tr.open('instances/m/events/sched/sched_switch/id');
  held.close();
  assert.equal(tr.stat('instances/m/events/sched/sched_switch/enable').mode & 0o7777, 0o600);
  assert.equal(tr.stat('instances/m/events/sched/sched_waking/enable').mode & 0o7777, 0o640);
  tr.chown('instances/m/events/sched/sched_switch', 1234, -1);
  assert.equal(tr.stat('instances/m/events/sched/sched_switch').uid, 1234);
  const root = needKernel(t);
  if (!root) return;
  const kdir = join(root, 'instances', `nftrace-mode-${process.pid}`);
  mkdirSync(kdir);
  try {
    const kernel = paths.map((p) => (statSync(join(kdir, p.replace('instances/m', ''))).mode & 0o7777).toString(8));
    assert.deepEqual(ours, kernel);
  } finally {
    rmdirSync(kdir);
  }
});

test('names over NAME_MAX fail at once (ENOENT in events/, ENAMETOOLONG elsewhere); creation with EACCES', () => {
  const tr = tracer();
  const long = 'x'.repeat(256);
  assert.equal(errno(() => tr.stat(`events/${long}`)), 'ENOENT');
  assert.equal(errno(() => tr.stat(`per_cpu/${long}`)), 'ENAMETOOLONG');
  assert.equal(errno(() => tr.mkdir(`instances/${long}`)), 'ENAMETOOLONG');
  assert.equal(errno(() => tr.stat('events/nosuch')), 'ENOENT');
  assert.equal(errno(() => tr.stat('events/sched/sched_switch/inject')), 'ENOENT');
  assert.equal(errno(() => tr.controlTree.open('newfile', { create: true })), 'EACCES');
  assert.equal(errno(() => tr.controlTree.unlink('tracing_on')), 'EPERM');
  assert.equal(errno(() => tr.mkdir('events/newsys')), 'EPERM');
  assert.equal(errno(() => tr.rmdir('events/sched')), 'EPERM');
  // ftrace/print has format, id, trigger and hist only, like the kernel's.
  assert.deepEqual(tr.readdir('events/ftrace/print'), ['trigger', 'format', 'id', 'hist']);
});

test('find over the tree terminates, visits every entry once, and leaves no node held', () => {
  const tr = tracer();
  tr.mkdir('instances/a');
  tr.mkdir('instances/b');
  const seenDirs = new Set<number>();
  let entries = 0;
  const walk = (path: string) => {
    const ino = tr.stat(path).ino;
    assert.ok(!seenDirs.has(ino), `loop at ${path}`);
    seenDirs.add(ino);
    for (const name of tr.readdir(path)) {
      entries++;
      const child = path ? `${path}/${name}` : name;
      if ((tr.stat(child).mode & 0o170000) === 0o040000) walk(child);
    }
  };
  walk('');
  assert.ok(entries > 100);
  assert.equal(tr.controlTree.heldNodes(), 0);
});

test('README (top level) and available_tracers (every instance) exist for ftracetest\'s 00basic; current_tracer takes only nop', () => {
  const tracer = new Tracer();
  tracer.mkdir('instances/basic');
  assert.match(tracer.read('README'), /mini-HOWTO/);
  for (const file of ['available_tracers', 'current_tracer', 'trace', 'trace_marker', 'tracing_on', 'set_event']) {
    assert.ok(tracer.readdir('').includes(file), `top level lists ${file}`);
    assert.ok(tracer.readdir('instances/basic').includes(file), `an instance lists ${file}`);
    assert.match(tracer.read('README'), new RegExp(`^  ${file} `, 'm'), `README explains ${file}`);
  }
  assert.ok(!tracer.readdir('instances/basic').includes('README'), 'README is top level only, as in the kernel');
  assert.equal(tracer.read('available_tracers'), 'nop\n');
  assert.equal(tracer.read('instances/basic/available_tracers'), 'nop\n');
  for (const [value, code] of [['function', 'EINVAL'], ['nop', 'ok'], ['', 'EINVAL']] as const) {
    let got = 'ok';
    try {
      tracer.write('current_tracer', value);
    } catch (err) {
      got = (err as { code: string }).code;
    }
    assert.equal(got, code, `current_tracer <- '${value}'`);
    assert.equal(tracer.read('current_tracer'), 'nop\n');
  }
});

test('filter and trigger read back what was set; 0 clears a filter', () => {
  const tr = tracer();
  assert.equal(tr.read('events/sched/sched_switch/filter'), 'none\n');
  tr.write('events/sched/sched_switch/filter', 'prev_pid > 10');
  assert.equal(tr.read('events/sched/sched_switch/filter'), 'prev_pid > 10\n');
  tr.write('events/sched/sched_switch/filter', '0');
  assert.equal(tr.read('events/sched/sched_switch/filter'), 'none\n');
  assert.match(tr.read('events/sched/sched_switch/trigger'), /^# Available triggers:/);
  // A system filter that took reads the help text again, as in the kernel.
  tr.write('events/sched/filter', 'prev_pid > 10');
  assert.match(tr.read('events/sched/filter'), /^### global filter ###\n/);
  assert.equal(tr.read('events/sched/sched_switch/filter'), 'prev_pid > 10\n');
});

test('directory operations fail with the kernel\'s errnos (same table on a kernel instance as root)', (t) => {
  const long = 'n'.repeat(256);
  type Op = [name: string, ours: (tr: Tracer) => unknown, kernel: (root: string, inst: string) => unknown];
  const OPS: Op[] = [
    ['mkdir an existing instance', (tr) => tr.mkdir('instances/x'), (r, i) => mkdirSync(join(r, 'instances', i))],
    ['rmdir a missing instance', (tr) => tr.rmdir('instances/nosuch'), (r) => rmdirSync(join(r, 'instances/nftrace-nosuch'))],
    ['mkdir a 256-byte name', (tr) => tr.mkdir(`instances/${long}`), (r) => mkdirSync(join(r, 'instances', long))],
    ['mkdir in events/', (tr) => tr.mkdir('instances/x/events/newsys'), (r, i) => mkdirSync(join(r, 'instances', i, 'events/newsys'))],
    ['mkdir in an instance', (tr) => tr.mkdir('instances/x/newdir'), (r, i) => mkdirSync(join(r, 'instances', i, 'newdir'))],
    ['rmdir events', (tr) => tr.rmdir('instances/x/events'), (r, i) => rmdirSync(join(r, 'instances', i, 'events'))],
    ['rmdir a system', (tr) => tr.rmdir('instances/x/events/sched'), (r, i) => rmdirSync(join(r, 'instances', i, 'events/sched'))],
    ['unlink a file', (tr) => tr.controlTree.unlink('instances/x/tracing_on'), (r, i) => unlinkSync(join(r, 'instances', i, 'tracing_on'))],
    ['create a file', (tr) => tr.controlTree.open('instances/x/newfile', { create: true }), (r, i) => closeSync(openSync(join(r, 'instances', i, 'newfile'), 'w'))],
    ['stat a missing event', (tr) => tr.stat('instances/x/events/sched/nosuch'), (r, i) => statSync(join(r, 'instances', i, 'events/sched/nosuch'))],
    ['stat a 256-byte event name', (tr) => tr.stat(`instances/x/events/${long}`), (r, i) => statSync(join(r, 'instances', i, 'events', long))],
  ];
  const tr = tracer();
  tr.mkdir('instances/x');
  const ours = OPS.map(([name, fn]) => `${name}: ${errno(() => fn(tr))}`);
  // An overlong name inside events/ is simply not found: eventfs does not check the length.
  assert.deepEqual(ours.map((l) => l.split(': ')[1]), ['EEXIST', 'ENOENT', 'ENAMETOOLONG', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'EACCES', 'ENOENT', 'ENOENT']);
  const root = needKernel(t);
  if (!root) return;
  const inst = `nftrace-ops-${process.pid}`;
  mkdirSync(join(root, 'instances', inst));
  try {
    assert.deepEqual(OPS.map(([name, , fn]) => `${name}: ${errno(() => fn(root, inst))}`), ours);
  } finally {
    rmdirSync(join(root, 'instances', inst));
  }
});

test('trace_pipe_raw hands out pages once buffer_percent is reached, all of them when forced, with missed-event flags', () => {
  const tr = tracer();
  const ev = tr.defineEvent('sched', 'sched_waking', { pid: 's32' });
  tr.write('events/sched/sched_waking/enable', '1');
  assert.equal(tr.read('buffer_percent'), '50\n');
  assert.equal(errno(() => tr.write('buffer_percent', '101')), 'EINVAL');
  const raw = tr.open('per_cpu/cpu0/trace_pipe_raw');
  for (let i = 0; i < 10; i++) ev.emit({ pid: i });
  assert.equal(raw.readPage(), null, 'far below 50% full');
  const page = raw.readPage(true)!;
  assert.equal(page.length, 4096);
  const dv = new DataView(page.buffer, page.byteOffset);
  assert.equal(dv.getUint32(8, true), 160, 'ten 16-byte events');
  assert.equal(raw.readPage(true), null);
  // Overrun the small buffer: the next page says events were lost, and how many.
  tr.write('buffer_size_kb', '8');
  const raw2 = tr.open('per_cpu/cpu0/trace_pipe_raw');
  raw.close();
  for (let i = 0; i < 1000; i++) ev.emit({ pid: i });
  tr.write('buffer_percent', '0');
  const first = raw2.readPage()!;
  const commit = new DataView(first.buffer, first.byteOffset).getUint32(8, true);
  assert.ok(commit & 0x80000000, 'RB_MISSED_EVENTS');
  const size = commit & 0x3fffffff;
  // The count is stored after the data only where it fits, as the kernel does.
  if (size + 8 <= 4080) {
    assert.ok(commit & 0x40000000, 'RB_MISSED_STORED');
    assert.ok(new DataView(first.buffer, first.byteOffset).getBigUint64(16 + size, true) > 0n);
  } else {
    assert.equal(commit & 0x40000000, 0);
  }
  raw2.close();
});
