import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Tracer, TraceError } from '../src/index.js';
import { needKernel, withKernelInstance } from './helpers/tracefs.js';

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as TraceError).code;
  }
};

const events = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

test('the README example works as written', async () => {
  const tracer = new Tracer();
  const request = tracer.defineEvent('http', 'request', { method: 'string', status: 'u16' });
  tracer.write('events/http/request/enable', '1');
  request.emit({ method: 'GET', status: 200 });
  assert.match(tracer.read('trace'), /request: method=GET status=200\n$/);
  assert.throws(() => tracer.write('buffer_size_kb', '0'), { code: 'EINVAL' });
  tracer.mkdir('instances/errors');
  const pipe = tracer.open('trace_pipe');
  const lines: string[] = [];
  for await (const line of pipe) {
    lines.push(line);
    break;
  }
  assert.match(lines[0]!, /method=GET/);
});

test('enable via event, system, top level and set_event stays coherent', () => {
  const t = new Tracer();
  t.defineEvent('http', 'request', { status: 'u16' });
  t.defineEvent('http', 'response', { status: 'u16' });
  t.defineEvent('db', 'query', { ms: 'u32' });
  assert.equal(t.read('events/enable'), '0\n');
  t.write('events/http/request/enable', '1');
  assert.equal(t.read('events/http/enable'), 'X\n');
  assert.equal(t.read('events/enable'), 'X\n');
  t.write('events/http/enable', '1');
  assert.equal(t.read('set_event'), 'http:request\nhttp:response\n');
  t.append('set_event', 'db:query');
  assert.equal(t.read('events/enable'), '1\n');
  t.append('set_event', '!http:*');
  assert.equal(t.read('set_event'), 'db:query\n');
  // `>` disables everything first, even when the write is then refused.
  assert.equal(code(() => t.write('set_event', 'nosuch')), 'EINVAL');
  assert.equal(t.read('set_event'), '');
  t.write('set_event', 'request');
  assert.equal(t.read('set_event'), 'http:request\n');
  assert.equal(t.read('available_events'), 'http:request\nhttp:response\ndb:query\n');
  assert.equal(code(() => t.read('instances/nope/available_events')), 'ENOENT');
});

test('a disabled event records nothing; each instance records what it enables', () => {
  const t = new Tracer();
  const ev = t.defineEvent('app', 'tick', { n: 'u32' });
  ev.emit({ n: 1 });
  assert.equal(ev.enabled, false);
  t.mkdir('instances/a');
  t.write('instances/a/events/app/tick/enable', '1');
  ev.emit({ n: 2 });
  t.write('events/app/tick/enable', '1');
  ev.emit({ n: 3 });
  assert.deepEqual(events(t.read('trace')).map((l) => l.split(': ').pop()), ['n=3']);
  assert.deepEqual(events(t.read('instances/a/trace')).map((l) => l.split(': ').pop()), ['n=2', 'n=3']);
  t.write('instances/a/tracing_on', '0');
  ev.emit({ n: 4 });
  assert.equal(events(t.read('instances/a/trace')).length, 2);
  assert.equal(events(t.read('trace')).length, 2);
  // Enabled only where tracing is off: the event is off at its first test.
  t.write('tracing_on', '0');
  assert.equal(ev.enabled, false);
  ev.emit({ n: 5 });
  t.write('instances/a/tracing_on', '1');
  assert.equal(ev.enabled, true);
  ev.emit({ n: 6 });
  assert.deepEqual(events(t.read('instances/a/trace')).map((l) => l.split(': ').pop()), ['n=2', 'n=3', 'n=6']);
  assert.equal(events(t.read('trace')).length, 2);
});

test('field types: integers, 64-bit as number or bigint, bool, char[N], strings, bytes', () => {
  const t = new Tracer();
  const ev = t.defineEvent('types', 'all', {
    a: 'u8', b: 's8', c: 'u16', d: 's16', e: 'u32', f: 's32', g: 'u64', h: 's64', i: 'bool', j: 'char[8]', k: 'string', l: 'bytes',
  });
  t.write('events/enable', '1');
  ev.emit({ a: 255, b: -1, c: 65535, d: -2, e: 4294967295, f: -3, g: 2n ** 64n - 1n, h: -4, i: true, j: 'truncated!', k: 'héllo', l: new Uint8Array([1, 0xab]) });
  assert.equal(
    events(t.read('trace'))[0]!.split('all: ')[1],
    'a=255 b=-1 c=65535 d=-2 e=4294967295 f=-3 g=18446744073709551615 h=-4 i=1 j=truncat k=héllo l=01 ab',
  );
  const format = t.read('events/types/all/format');
  assert.match(format, /\tfield:unsigned long long g;\toffset:24;\tsize:8;\tsigned:0;\n/);
  assert.match(format, /\tfield:char j\[8\];\toffset:41;\tsize:8;\tsigned:0;\n/);
  assert.match(format, /\tfield:__data_loc char\[\] k;\toffset:52;\tsize:4;\tsigned:0;\n/);
  assert.match(format, /print fmt: "a=%u b=%d .* k=%s l=%s", REC->a, REC->b, .* __get_str\(k\), __print_hex\(__get_dynamic_array\(l\), __get_dynamic_array_len\(l\)\)\n$/);
});

test('events may give their own print format', () => {
  const t = new Tracer();
  const ev = t.defineEvent('http', 'done', { method: 'string', status: 'u16', ms: 'u32' }, {
    print: { fmt: '%s -> %03u in %5u ms', args: ['method', 'status', 'ms'] },
  });
  t.write('events/enable', '1');
  ev.emit({ method: 'PUT', status: 7, ms: 42 });
  assert.match(t.read('trace'), /done: PUT -> 007 in    42 ms\n$/);
  assert.match(t.read('events/http/done/format'), /print fmt: "%s -> %03u in %5u ms", __get_str\(method\), REC->status, REC->ms\n$/);
  assert.throws(() => t.defineEvent('http', 'bad', { a: 'u8' }, { print: { fmt: '%d %d', args: ['a'] } }), { code: 'EINVAL' });
  assert.throws(() => t.defineEvent('http', 'done', { method: 'u8' }), { code: 'EEXIST' });
  assert.throws(() => t.defineEvent('bad-system', 'x', {}), { code: 'EINVAL' });
  assert.throws(() => t.defineEvent('s', 'x', { 'bad name': 'u8' } as never), { code: 'EINVAL' });
});

test('trace_marker: kernel format file, truncation to what fits, EBADF when off, EIO when full', () => {
  const t = new Tracer();
  assert.equal(t.write('trace_marker', 'hello'), 5);
  assert.equal(t.write('trace_marker', ''), 0);
  assert.equal(t.write('trace_marker', 'x'.repeat(5000)), 4054);
  const lines = events(t.read('trace'));
  assert.match(lines[0]!, /tracing_mark_write: hello$/);
  assert.match(lines[1]!, /tracing_mark_write: $/);
  assert.equal(lines[2]!.split('tracing_mark_write: ')[1]!.length, 4054);
  assert.equal(t.read('events/ftrace/print/id'), '5\n');
  assert.equal(code(() => t.read('events/ftrace/print/enable')), 'ENOENT');
  assert.equal(code(() => t.read('trace_marker')), 'EINVAL');
  t.write('tracing_on', '0');
  assert.equal(code(() => t.write('trace_marker', 'x')), 'EBADF');
  t.write('tracing_on', '1');
  t.write('buffer_size_kb', '7');
  t.write('options/overwrite', '0');
  let eio = 0;
  for (let i = 0; i < 400; i++) if (code(() => t.write('trace_marker', `msg ${i}`)) === 'EIO') eio++;
  assert.ok(eio > 0);
  assert.match(t.read('per_cpu/cpu0/stats'), new RegExp(`dropped events: ${eio}\n`));
});

test('buffer_size_kb resizes keep the newest events; per-thread sizes read X at the top', () => {
  const t = new Tracer();
  const ev = t.defineEvent('app', 'n', { n: 'u32' });
  t.write('events/enable', '1');
  for (let n = 0; n < 1000; n++) ev.emit({ n });
  t.write('buffer_size_kb', '8');
  assert.equal(t.read('buffer_size_kb'), '11\n');
  const kept = events(t.read('trace'));
  assert.equal(kept.at(-1)!.split('n=')[1], '999');
  assert.ok(kept.length < 1000 && kept.length > 400);
  const { handle } = t.threadHandle();
  void handle;
  t.write('per_cpu/cpu1/buffer_size_kb', '20');
  assert.equal(t.read('per_cpu/cpu1/buffer_size_kb'), '23\n');
  assert.equal(t.read('buffer_size_kb'), 'X\n');
  assert.equal(t.read('buffer_total_size_kb'), '34\n');
  t.write('buffer_size_kb', '100');
  assert.equal(t.read('buffer_size_kb'), '103\n');
  ev.emit({ n: 1000 });
  assert.equal(events(t.read('trace')).at(-1)!.split('n=')[1], '1000');
});

test('trace_clock: lists like the kernel, switching clears; counter timestamps are counts', () => {
  const t = new Tracer();
  const ev = t.defineEvent('app', 'n', { n: 'u32' });
  t.write('events/enable', '1');
  ev.emit({ n: 1 });
  assert.equal(t.read('trace_clock'), '[local] counter mono\n');
  t.write('trace_clock', 'counter');
  assert.equal(t.read('trace_clock'), 'local [counter] mono\n');
  assert.equal(events(t.read('trace')).length, 0);
  ev.emit({ n: 2 });
  ev.emit({ n: 3 });
  const [a, b] = events(t.read('trace')).map((l) => Number(/\.\.\.\.\. +(\d+):/.exec(l)![1]));
  assert.equal(b! - a!, 1);
  t.write('trace_clock', 'mono');
  ev.emit({ n: 4 });
  const ts = Number(/ (\d+\.\d+):/.exec(events(t.read('trace'))[0]!)![1]);
  const now = Number(process.hrtime.bigint()) / 1e9;
  assert.ok(Math.abs(now - ts) < 1, `mono is CLOCK_MONOTONIC (${ts} vs ${now})`);
});

test('trace and trace_pipe: clear with O_TRUNC only, consume, EBUSY for a second reader, LOST lines', () => {
  const t = new Tracer();
  const ev = t.defineEvent('app', 'n', { n: 'u32' });
  t.write('events/enable', '1');
  for (let n = 0; n < 5; n++) ev.emit({ n });
  t.append('trace', 'ignored');
  assert.equal(events(t.read('trace')).length, 5);
  const pipe = t.open('trace_pipe');
  assert.equal(code(() => t.open('trace_pipe')), 'EBUSY');
  assert.equal(code(() => t.open('per_cpu/cpu0/trace_pipe')), 'EBUSY');
  assert.equal(pipe.read().split('\n').filter(Boolean).length, 5);
  assert.equal(pipe.read(), '');
  assert.match(t.read('trace'), /entries-written: 0\/0 /);
  assert.match(t.read('per_cpu/cpu0/stats'), /read events: 5\n/);
  t.write('buffer_size_kb', '7');
  for (let n = 0; n < 2000; n++) ev.emit({ n });
  const text = pipe.read();
  assert.match(text, /^CPU:0 \[LOST \d+ EVENTS\]\n/);
  pipe.close();
  for (let n = 0; n < 3; n++) ev.emit({ n });
  t.write('trace', '');
  assert.match(t.read('trace'), /entries-written: 0\/0 /);
  assert.match(t.read('per_cpu/cpu0/stats'), /^entries: 0\noverrun: 0\n.*read events: 0\n$/s);
});

test('instances: mkdir/rmdir errnos, EBUSY while a pinning file is open', () => {
  const t = new Tracer();
  t.mkdir('instances/x');
  assert.equal(code(() => t.mkdir('instances/x')), 'EEXIST');
  assert.equal(code(() => t.rmdir('instances/nope')), 'ENOENT');
  assert.equal(code(() => t.mkdir('instances/' + 'a'.repeat(256))), 'ENAMETOOLONG');
  assert.equal(code(() => t.mkdir('elsewhere')), 'EPERM');
  const f = t.open('instances/x/trace');
  assert.equal(code(() => t.rmdir('instances/x')), 'EBUSY');
  f.close();
  const fmt = t.open('instances/x/events/ftrace/print/format');
  t.rmdir('instances/x');
  fmt.close();
  assert.equal(code(() => t.read('instances/x/trace')), 'ENOENT');
  t.mkdir('instances/x');
  assert.equal(t.read('instances/x/tracing_on'), '1\n');
});

test('NFTRACE_EVENT and NFTRACE_BUF_SIZE apply to the top level before any event fires', () => {
  const t = new Tracer({ env: { NFTRACE_EVENT: 'http:*,db:query', NFTRACE_BUF_SIZE: '100' } });
  assert.equal(t.read('buffer_size_kb'), '103\n');
  const req = t.defineEvent('http', 'request', { s: 'u16' });
  const q = t.defineEvent('db', 'query', { ms: 'u32' });
  const other = t.defineEvent('db', 'other', { ms: 'u32' });
  req.emit({ s: 1 });
  q.emit({ ms: 2 });
  other.emit({ ms: 3 });
  assert.equal(t.read('set_event'), 'http:request\ndb:query\n');
  assert.equal(events(t.read('trace')).length, 2);
});

test('NFTRACE_* from the real environment of a fresh process', () => {
  const script = `import { Tracer } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
    const t = new Tracer(); const e = t.defineEvent('boot', 'early', { n: 'u8' }); e.emit({ n: 7 });
    process.stdout.write(t.read('trace').split('\\n').filter((l) => l && !l.startsWith('#')).join('\\n') + '|' + t.read('buffer_size_kb'));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NFTRACE_EVENT: 'boot:early', NFTRACE_BUF_SIZE: '8' }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /early: n=7\|11\n$/);
});

test('events/header_page and header_event are the kernel text', (t) => {
  const tracer = new Tracer();
  const root = needKernel(t);
  if (!root) return;
  assert.equal(tracer.read('events/header_page'), readFileSync(`${root}/events/header_page`, 'utf8'));
  assert.equal(tracer.read('events/header_event'), readFileSync(`${root}/events/header_event`, 'utf8'));
  assert.equal(tracer.read('events/ftrace/print/format'), readFileSync(`${root}/events/ftrace/print/format`, 'utf8'));
});

test('trace_marker lines have the kernel layout (timestamps, pids, comm and flags masked)', (t) => {
  const root = needKernel(t);
  if (!root) return;
  const mask = (text: string) =>
    text.split('\n').map((l) => l
      .replace(/#P:\d+/, '#P:N')
      .replace(/^ *\S+-\d+ +\[\d{3}\] \S{5} +\d+\.\d{6}: /, 'TASK-PID [CPU] FLAGS TS: '))
      .join('\n');
  const ours = new Tracer();
  // (No empty marker here: Node's writeFileSync issues no write(2) for '', so the kernel never sees it.)
  const messages = ['hello', 'with spaces  and\ttab', 'x'.repeat(300), 'ünïcode'];
  const theirs = withKernelInstance(root, (dir) => {
    for (const m of messages) writeFileSync(`${dir}/trace_marker`, m);
    return readFileSync(`${dir}/trace`, 'utf8');
  });
  for (const m of messages) ours.write('trace_marker', m);
  assert.equal(mask(ours.read('trace')), mask(theirs));
});

test('loss accounting matches the kernel: 7 KB buffer, 400 markers, both modes', (t) => {
  const root = needKernel(t);
  if (!root) return;
  const stats = (s: string) => s.replace(/(oldest event|now) ts: .*\n/g, '');
  for (const overwrite of ['1', '0']) {
    const ours = new Tracer();
    ours.write('buffer_size_kb', '7');
    ours.write('options/overwrite', overwrite);
    const theirs: string = withKernelInstance(root, (dir) => {
      writeFileSync(`${dir}/buffer_size_kb`, '7');
      writeFileSync(`${dir}/options/overwrite`, overwrite);
      // Keep every marker on one CPU so one per_cpu/stats holds them all.
      const script = `for i in $(seq 1 400); do echo -n "msg $i" > ${dir}/trace_marker 2>/dev/null; done; cat ${dir}/per_cpu/cpu0/stats`;
      return spawnSync('taskset', ['-c', '0', 'sh', '-c', script], { encoding: 'utf8' }).stdout;
    });
    for (let i = 1; i <= 400; i++) code(() => ours.write('trace_marker', `msg ${i}`));
    assert.equal(stats(ours.read('per_cpu/cpu0/stats')), stats(theirs), `overwrite=${overwrite}`);
  }
});

