/**
 * Hist triggers (issue #8, first part): the spec's readback, the `hist` file in the kernel's
 * layout, modifiers, sort, limits and errors, pause/cont/clear, removal, Dropped, `if`
 * filters, trace_marker, and one table shared by every thread. The development kernel has no
 * hist triggers; the layout is the one recorded in the ftrace reference (section 4) and the
 * kernel's histogram documentation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer, TraceDatEvents, readTraceDatFile } from '../src/index.js';
import type { TraceError } from '../src/errno.js';
import { message } from './helpers/wait.js';

function setup() {
  const tracer = new Tracer({ env: {} });
  const req = tracer.defineEvent('http', 'request', { route: 'string', status: 'u16', bytes: 'u32', delta: 's32' });
  return { tracer, req, path: 'events/http/request/trigger', hist: () => tracer.read('events/http/request/hist') };
}

const code = (c: string) => (e: TraceError) => e.code === c;

test('the hist file: header, one line per key sorted by hitcount, values named, totals', () => {
  const { tracer, req, path, hist } = setup();
  tracer.write(path, 'hist:keys=status:vals=bytes');
  for (const [status, bytes, n] of [[200, 10, 3], [404, 1, 1], [500, 100, 2]] as const) for (let i = 0; i < n; i++) req.emit({ route: '/', status, bytes, delta: 0 });
  assert.equal(tracer.read(path), 'hist:keys=status:vals=hitcount,bytes:sort=hitcount:size=2048 [active]\n');
  assert.equal(hist(), [
    '# event histogram',
    '#',
    '# trigger info: hist:keys=status:vals=hitcount,bytes:sort=hitcount:size=2048 [active]',
    '#',
    '',
    '{ status:        404 } hitcount:          1  bytes:          1',
    '{ status:        500 } hitcount:          2  bytes:        200',
    '{ status:        200 } hitcount:          3  bytes:         30',
    '',
    'Totals:',
    '    Hits: 6',
    '    Entries: 3',
    '    Dropped: 0',
    '',
  ].join('\n'));
  assert.equal(tracer.read('events/http/request/enable'), '0*\n', 'a hist trigger puts its event in soft mode');
});

test('sums and keys are the kernel\'s u64s: carries past 2^32, negative values wrap, odd inputs narrowed to the field', () => {
  const { tracer, req, path, hist } = setup();
  const big = tracer.defineEvent('app', 'big', { id: 'u64', n: 'u64' });
  tracer.write('events/app/big/trigger', 'hist:keys=id:vals=n');
  for (const n of [2 ** 32 - 1, 2 ** 32 - 1, 2, 2 ** 40]) big.emit({ id: 2 ** 40, n });
  big.emit({ id: 2n ** 64n - 1n, n: 5n });
  assert.match(tracer.read('events/app/big/hist'), /\{ id: 1099511627776 \} hitcount:          4  n: 1108101562368\n/);
  assert.match(tracer.read('events/app/big/hist'), /\{ id: 18446744073709551615 \} hitcount:          1  n:          5\n/);
  // .sym: JavaScript has no symbol table, so the symbol printed is the address, as the kernel's for an unknown one.
  tracer.append('events/app/big/trigger', 'hist:keys=id.sym');
  big.emit({ id: 0xffffffff81000000n, n: 1 });
  assert.match(tracer.read('events/app/big/hist'), /^\{ id: \[ffffffff81000000\] 0xffffffff81000000 {28}\} hitcount:          1\n/m);
  tracer.write(path, 'hist:keys=status:vals=delta');
  // -3 and -4 add up to 2^64-7 (printed %llu, as the kernel); 70000 is 4464 as a u16; 200.7 is 200.
  for (const [status, delta] of [[200, -3], [200, -4], [70000, 1], [200.7, 0]] as const) req.emit({ route: '/', status, bytes: 0, delta });
  assert.match(hist(), /\{ status:        200 \} hitcount:          3  delta: 18446744073709551609\n/);
  assert.match(hist(), /\{ status:       4464 \} hitcount:          1  delta:          1\n/);
});

test('modifiers, string keys, several keys, sort by a value descending, a second hist listed first', () => {
  const { tracer, req, path, hist } = setup();
  tracer.write(path, 'hist:keys=route,status.hex:vals=bytes:sort=bytes.descending');
  tracer.append(path, 'hist:keys=bytes.log2');
  tracer.append(path, 'hist:keys=bytes.buckets=100:sort=bytes');
  tracer.append(path, 'hist:keys=common_pid.execname');
  tracer.append(path, 'hist:keys=delta');
  for (let i = 0; i < 300; i++) req.emit({ route: i % 2 ? '/a' : '/b', status: i % 3 ? 200 : 500, bytes: i, delta: -1 });
  const text = hist();
  const tables = text.split('\n\n\n');
  assert.equal(tables.length, 5);
  assert.match(tables[0]!, /trigger info: hist:keys=delta:vals=hitcount:sort=hitcount:size=2048 \[active\]/, 'newest first');
  assert.match(tables[0]!, /\{ delta: 18446744073709551615 \} hitcount:        300/, 'signed keys print as the kernel\'s %llu');
  assert.match(tables[1]!, new RegExp(`\\{ common_pid: ${tracer.threadNames()[0]!.padEnd(16)}\\[ *${process.pid}\\] \\} hitcount:        300`));
  assert.match(tables[2]!, /\{ bytes: ~ 0-99 \} hitcount:        100\n\{ bytes: ~ 100-199 \} hitcount:        100\n\{ bytes: ~ 200-299 \} hitcount:        100/);
  assert.match(tables[3]!, /\{ bytes: ~ 2\^9  \} hitcount:         43\n/);
  // /a and /b tie on bytes (the kernel leaves ties in table order too): both lead, in either order.
  const lines = tables[4]!.split('\n').filter((l) => l.startsWith('{'));
  assert.deepEqual(lines.slice(0, 2).sort(), ['/a', '/b'].map((r) => `{ route: ${r.padEnd(50)}, status: c8 } hitcount:        100  bytes:      15000`));
  assert.match(tables[4]!, /sort=bytes\.descending:size=2048/);
});

test('.percent, .graph, nohitcount, .syscall; enable_hist and disable_hist switch another event\'s hist triggers', () => {
  const { tracer, req, path, hist } = setup();
  tracer.write(path, 'hist:keys=status:vals=hitcount.percent,bytes.graph:sort=status');
  for (const [status, bytes, n] of [[200, 10, 3], [404, 40, 1]] as const) for (let i = 0; i < n; i++) req.emit({ route: '/', status, bytes, delta: 0 });
  // hitcount.percent is a column of its own after the raw hitcount, as the kernel makes it.
  assert.equal(tracer.read(path), 'hist:keys=status:vals=hitcount,hitcount.percent,bytes.graph:sort=status:size=2048 [active]\n');
  // hitcount: 3 of 4 hits; bytes: 30 and 40 against the largest, 40 (a 20-character bar).
  assert.match(hist(), /^\{ status:        200 \} hitcount:          3  hitcount \(%\):  75\.00  bytes: #{15} {5}\n\{ status:        404 \} hitcount:          1  hitcount \(%\):  25\.00  bytes: #{20}\n/m);
  tracer.write(path, 'hist:keys=status.syscall:vals=bytes:nohitcount');
  req.emit({ route: '/', status: 7, bytes: 5, delta: 0 });
  assert.equal(tracer.read(path), 'hist:keys=status.syscall:vals=bytes:sort=hitcount:size=2048:nohitcount [active]\n');
  assert.match(hist(), /^\{ status: unknown_syscall {15}\[  7\] \}  bytes:          5\n/m);
  assert.throws(() => tracer.append(path, 'hist:keys=route:nohitcount'), code('ENOENT'));
  assert.match(tracer.read('error_log'), /Non-hitcount value is required for 'nohitcount'/);
  assert.throws(() => tracer.append(path, 'hist:keys=status.percent'), code('EINVAL'));
  // enable_hist / disable_hist: pause and continue the target's hist triggers, counted on a change.
  const ctl = tracer.defineEvent('app', 'ctl', { on: 'u8' });
  const resume = tracer.defineEvent('app', 'resume', { on: 'u8' });
  tracer.write('events/app/ctl/trigger', 'disable_hist:http:request:1');
  assert.throws(() => tracer.append('events/app/ctl/trigger', 'enable_hist:http:request'), code('EEXIST'), 'one of the two per target, as enable_event/disable_event');
  tracer.write('events/app/resume/trigger', 'enable_hist:http:request:2 if on == 1');
  assert.equal(tracer.read('events/app/ctl/enable'), '0*\n');
  assert.equal(tracer.read('events/http/request/enable'), '0*\n', 'soft from its own hist trigger, not from enable_hist');
  ctl.emit({ on: 0 });
  assert.match(tracer.read(path), /\[paused\]/);
  req.emit({ route: '/', status: 7, bytes: 5, delta: 0 });
  assert.match(hist(), /bytes:          5\n/, 'paused: not counted');
  resume.emit({ on: 0 });
  assert.match(tracer.read(path), /\[paused\]/, 'its filter said no');
  resume.emit({ on: 1 });
  req.emit({ route: '/', status: 7, bytes: 5, delta: 0 });
  assert.match(hist(), /bytes:         10\n/);
  resume.emit({ on: 1 });
  assert.equal(tracer.read('events/app/resume/trigger'), 'enable_hist:http:request:count=1 if on == 1\n', 'counted on a change only');
  assert.equal(tracer.read('events/app/ctl/trigger'), 'disable_hist:http:request:count=0\n');
  // O_TRUNC removes the hist family, enable_hist/disable_hist included, and nothing else.
  tracer.append('events/app/ctl/trigger', 'traceoff if on == 9');
  tracer.open('events/app/ctl/trigger', { truncate: true }).close();
  assert.equal(tracer.read('events/app/ctl/trigger'), 'traceoff:unlimited if on == 9\n');
});

test('every readback line, with ! in front, removes its trigger (the kernel\'s rule for trigger files; named ones excepted, as in the kernel)', () => {
  const { tracer, path } = setup();
  tracer.write('synthetic_events', 'big u64 delta');
  for (const spec of [
    'hist:keys=status.hex,route:vals=bytes.percent,delta:sort=bytes.descending,status:size=128',
    'hist:keys=status.log2:vals=bytes.graph',
    'hist:keys=status.buckets=100:vals=bytes:nohitcount',
    'hist:keys=status:t0=common_timestamp.usecs,r=route:clock=mono',
    'hist:keys=status:d=delta:onmax($d).save(route,bytes)',
    'hist:keys=common_pid.execname:vals=bytes if status >= 500',
  ]) {
    tracer.append(path, spec);
    const line = tracer.read(path).split('\n')[0]!.replace(/ \[(active|paused)\]$/, '');
    tracer.append(path, `!${line}`);
    assert.match(tracer.read(path), /^# Available triggers:/, `${spec} -> ${line}`);
  }
  // A named trigger reads back as `hist:NAME:keys=…`, which the kernel's parser takes for an
  // action and refuses; it is removed with `name=` spelled out.
  tracer.append(path, 'hist:name=shared:keys=status');
  const named = tracer.read(path).split('\n')[0]!.replace(/ \[active\]$/, '');
  assert.equal(named, 'hist:shared:keys=status:vals=hitcount:sort=hitcount:size=2048');
  assert.throws(() => tracer.append(path, `!${named}`), code('EINVAL'));
  tracer.append(path, '!hist:name=shared:keys=status');
  assert.match(tracer.read(path), /^# Available triggers:/);
});

test('limits and errors: EINVAL with an error_log entry under hist:SYS:EV and a caret at the fault', () => {
  const { tracer, path } = setup();
  const bad: [string, RegExp][] = [
    ['hist:keys=nosuch', /error: Couldn't find field\n/],
    ['hist:keys=route,status,bytes,delta', /Too many keys/],
    ['hist:keys=status:vals=bytes,delta,status', /Too many values/],
    ['hist:keys=status:size=64', /Bad size/],
    ['hist:keys=status:size=262144', /Bad size/],
    ['hist:keys=status:sort=nosuch', /error: Sort field must be a key or a val\n/],
    ['hist:keys=status:vals=route', /string field as a value/],
    ['hist:keys=status.bogus', /Invalid field modifier/],
    ['hist:vals=bytes', /Missing keys/],
    ['hist:keys=status.execname', /error: Invalid field modifier\n/],
    ['hist:keys=status:x=', /error: Empty assignment\n/],
  ];
  for (const [spec, why] of bad) {
    assert.throws(() => tracer.append(path, spec), code('EINVAL'), spec);
    assert.match(tracer.read('error_log'), why, spec);
  }
  // error_log has the kernel's text; the thrown error also says what.
  assert.throws(() => tracer.append(path, 'hist:keys=status.execname'), /EINVAL: hist: Invalid field modifier: \.execname is for common_pid only/);
  tracer.write('error_log', '');
  assert.throws(() => tracer.append(path, 'hist:keys=status,nosuch'));
  assert.equal(tracer.read('error_log').split('\n').slice(1).join('\n'), '  Command: hist:keys=status,nosuch\n                            ^\n');
  assert.match(tracer.read(path), /^# Available triggers:/, 'nothing was added');
  tracer.write(path, 'hist:keys=status:size=3000');
  assert.match(tracer.read(path), /size=4096 \[active\]/, 'sizes round up to a power of two');
  assert.throws(() => tracer.append(path, 'hist:keys=status:size=3000'), code('EEXIST'));
});

test('pause, cont, clear, removal, O_TRUNC, Dropped, if filters', () => {
  const { tracer, req, path, hist } = setup();
  tracer.append(path, 'traceoff:0');
  tracer.append(path, 'hist:keys=bytes:size=128 if status == 200');
  for (let i = 0; i < 200; i++) req.emit({ route: '/', status: 200, bytes: i, delta: 0 });
  req.emit({ route: '/', status: 500, bytes: 9999, delta: 0 });
  assert.match(hist(), /Hits: 200\n {4}Entries: 128\n {4}Dropped: 72\n$/);
  assert.doesNotMatch(hist(), /bytes: +9999/);
  tracer.append(path, 'hist:keys=bytes:size=128:pause if status == 200');
  assert.match(tracer.read(path), /^hist:keys=bytes:vals=hitcount:sort=hitcount:size=128 if status == 200 \[paused\]$/m);
  req.emit({ route: '/', status: 200, bytes: 1, delta: 0 });
  assert.match(hist(), /Hits: 200\n/);
  tracer.append(path, 'hist:keys=bytes:size=128:cont');
  tracer.append(path, 'hist:keys=bytes:size=128:clear');
  req.emit({ route: '/', status: 200, bytes: 1, delta: 0 });
  assert.match(hist(), /Hits: 1\n {4}Entries: 1\n/);
  // `>` (O_TRUNC) removes only the hist triggers; `!` removes one.
  tracer.write(path, 'hist:keys=status');
  assert.deepEqual(tracer.read(path).split('\n').filter(Boolean), ['hist:keys=status:vals=hitcount:sort=hitcount:size=2048 [active]', 'traceoff:count=0']);
  tracer.append(path, '!hist:keys=status');
  assert.equal(tracer.read(path), 'traceoff:count=0\n');
  assert.equal(hist(), '');
});

test('trace_marker feeds the hist triggers of ftrace/print', () => {
  const { tracer } = setup();
  tracer.write('events/ftrace/print/trigger', 'hist:keys=buf');
  tracer.write('trace_marker', 'hello');
  tracer.write('trace_marker', 'hello');
  assert.match(tracer.read('events/ftrace/print/hist'), /\{ buf: hello\n +\} hitcount: +2\n/);
});

test('worker threads count into the same table', async () => {
  const { tracer, req, path, hist } = setup();
  tracer.write(path, 'hist:keys=status:vals=bytes');
  const workers = [0, 1].map(() => {
    const { handle, transferList } = tracer.threadHandle();
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)}).then(({ attach }) => {
        const ev = attach(workerData.handle).defineEvent('http', 'request', { route: 'string', status: 'u16', bytes: 'u32', delta: 's32' });
        for (let i = 0; i < 5000; i++) ev.emit({ route: '/', status: 200 + (i % 2), bytes: 1, delta: 0 });
        parentPort.postMessage('done');
      });`;
    const w = new Worker(src, { eval: true, workerData: { handle }, transferList });
    return message(w).then(() => w.terminate());
  });
  for (let i = 0; i < 100; i++) req.emit({ route: '/', status: 200, bytes: 1, delta: 0 });
  await Promise.all(workers);
  const text = hist();
  assert.match(text, /\{ status: +201 \} hitcount: +5000  bytes: +5000\n/);
  assert.match(text, /\{ status: +200 \} hitcount: +5100  bytes: +5100\n/);
  assert.match(text, /Hits: 10100\n/);
});

test('variables, onmatch and a synthetic event: a latency per key from a start and an end event, equal to the records\' timestamps', async () => {
  const tracer = new Tracer({ env: {} });
  const start = tracer.defineEvent('app', 'start', { id: 'u32', route: 'string' });
  const end = tracer.defineEvent('app', 'end', { id: 'u32', route: 'string' });
  tracer.write('synthetic_events', 'req_latency u64 usecs; char route[32]');
  assert.equal(tracer.read('synthetic_events'), 'req_latency\tu64 usecs; char route[32]\n');
  assert.match(tracer.read('events/synthetic/req_latency/format'), /field:unsigned long long usecs;.*\n\tfield:char route\[32\];/);
  tracer.write('events/app/start/trigger', 'hist:keys=id:ts0=common_timestamp.usecs');
  tracer.write('events/app/end/trigger', 'hist:keys=id:lat=common_timestamp.usecs-$ts0:onmatch(app.start).trace(req_latency,$lat,route)');
  assert.equal(tracer.read('events/app/end/trigger'), 'hist:keys=id:vals=hitcount:lat=common_timestamp.usecs-$ts0:sort=hitcount:size=2048:clock=global:onmatch(app.start).trace(req_latency,$lat,route) [active]\n');
  tracer.write('events/synthetic/req_latency/trigger', 'hist:keys=route:vals=usecs');
  tracer.write('events/synthetic/req_latency/enable', '1');
  tracer.write('events/app/enable', '1');
  const spin = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  for (let i = 0; i < 6; i++) {
    const route = i % 2 ? '/slow' : '/fast';
    start.emit({ id: i, route });
    spin(i % 2 ? 4 : 1);
    end.emit({ id: i, route });
  }
  end.emit({ id: 99, route: '/never-started' });
  const lines = tracer.read('trace').split('\n').filter((l) => l.includes('req_latency:'));
  assert.equal(lines.length, 6, 'one synthetic event per matched end; none for an id never started');
  const lat = lines.map((l) => [/route=(\S+)/.exec(l)![1]!, Number(/usecs=(\d+)/.exec(l)![1])] as const);
  for (const [route, us] of lat) assert.ok(route === '/slow' ? us >= 4000 : us >= 1000, `${route} ${us}`);
  // By hand: common_timestamp is each record's timestamp, so usecs = end/1000 - start/1000 (floored) of the records.
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-hist-'));
  try {
    await tracer.saveTraceDat(join(dir, 'trace.dat'));
    const events = new TraceDatEvents(await readTraceDatFile(join(dir, 'trace.dat')));
    const startUs = new Map<number, number>();
    const expected: number[] = [];
    const got: number[] = [];
    for (const r of events.records({ buffers: [''] })) {
      const ev = r.event!;
      const value = (name: string) => Number(ev.value(r, ev.field(name)!));
      if (ev.name === 'start') startUs.set(value('id'), Math.floor(r.ts / 1000));
      if (ev.name === 'end' && startUs.has(value('id'))) expected.push(Math.floor(r.ts / 1000) - startUs.get(value('id'))!);
      if (ev.name === 'req_latency') got.push(value('usecs'));
    }
    assert.deepEqual(got, expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const hist = tracer.read('events/synthetic/req_latency/hist');
  assert.match(hist, /\{ route: \/slow +\} hitcount: +3  usecs: +\d{5}\n/);
  assert.match(hist, /\{ route: \/fast +\} hitcount: +3  usecs: +\d{4,}\n/);
  // In use: the synthetic event cannot go while enabled.
  assert.throws(() => tracer.append('synthetic_events', '!req_latency'), (e: TraceError) => e.code === 'EBUSY');
});

test('onmatch params: the matching event\'s variables, plain or qualified, for the same key; narrowed to the synthetic field', () => {
  const tracer = new Tracer({ env: {} });
  const start = tracer.defineEvent('sched', 'waking', { pid: 'u32', prio: 'u32' });
  const sw = tracer.defineEvent('sched', 'switch', { next_pid: 'u32' });
  tracer.write('synthetic_events', 'wakeup u64 lat; u32 prio; pid_t pid');
  tracer.write('events/sched/waking/trigger', 'hist:keys=pid:ts0=common_timestamp.usecs,wprio=prio');
  tracer.write('events/sched/switch/trigger', 'hist:keys=next_pid:lat=common_timestamp.usecs-$ts0:onmatch(sched.waking).trace(wakeup,$lat,sched.waking.$wprio,next_pid)');
  tracer.write('events/synthetic/wakeup/enable', '1');
  start.emit({ pid: 5, prio: 120 });
  start.emit({ pid: 6, prio: 99 });
  sw.emit({ next_pid: 6 });
  sw.emit({ next_pid: 5 });
  sw.emit({ next_pid: 7 });
  const got = tracer.read('trace').split('\n').filter((l) => l.includes('wakeup:')).map((l) => l.replace(/^.*wakeup: lat=\d+ /, ''));
  assert.deepEqual(got, ['prio=99 pid=6', 'prio=120 pid=5'], 'no event for a pid that never woke');
});

test('onmatch params: string variables, and fields of the matching event kept for each key by a hidden trigger', () => {
  const tracer = new Tracer({ env: {} });
  const start = tracer.defineEvent('app', 'start', { id: 'u32', route: 'string', prio: 'u32' });
  const end = tracer.defineEvent('app', 'end', { id: 'u32', status: 'u16' });
  tracer.write('synthetic_events', 'req u64 us; char route[16]; u32 prio; u16 status');
  const endPath = 'events/app/end/trigger';
  assert.throws(() => tracer.append(endPath, 'hist:keys=id:onmatch(app.start).trace(req,$x,$x,app.start.prio,status)'), /EINVAL: hist: Matching event histogram not found: app\.start needs a hist trigger to keep prio in for each key/);
  assert.match(tracer.read('error_log'), /hist:app:end: error: Matching event histogram not found\n/);
  tracer.write('events/app/start/trigger', 'hist:keys=id:ts0=common_timestamp.usecs,r=route');
  const bad: [string, RegExp][] = [
    ['hist:keys=id:x=$r+id', /String type can not be an operand in expression: \$r/],
    ['hist:keys=id:l=common_timestamp.usecs-$ts0:onmatch(app.start).trace(req,$r,$r,app.start.prio,status)', /Param type doesn't match synthetic event field type: \$r is text, req\.us is not/],
    ['hist:keys=id:l=common_timestamp.usecs-$ts0:onmatch(app.start).trace(req,$l,$r,app.start.nosuch,status)', /Couldn't find field: app\.start\.nosuch/],
    ['hist:keys=id:l=common_timestamp.usecs-$ts0:onmatch(app.start).trace(req,$l,$r,app.other.prio,status)', /Invalid action param: only fields of the matching event \(app\.start\) can be qualified/],
  ];
  for (const [spec, why] of bad) {
    assert.throws(() => tracer.append(endPath, spec), (e: TraceError) => e.code === 'EINVAL' && why.test(e.message), spec);
    assert.match(tracer.read('error_log'), /hist:app:end: error: /);
  }
  assert.equal(tracer.read('events/app/start/trigger'), 'hist:keys=id:vals=hitcount:ts0=common_timestamp.usecs,r=route:sort=hitcount:size=2048:clock=global [active]\n', 'failed writes leave no hidden trigger');
  tracer.append(endPath, 'hist:keys=id:l=common_timestamp.usecs-$ts0:onmatch(app.start).trace(req,$l,$r,app.start.prio,status)');
  assert.equal(tracer.read('events/app/start/trigger').split('\n').length, 2, 'the field variable\'s trigger is hidden');
  tracer.write('events/synthetic/req/enable', '1');
  start.emit({ id: 1, route: '/a-very-long-route-name', prio: 7 });
  start.emit({ id: 2, route: '/b', prio: 9 });
  end.emit({ id: 2, status: 404 });
  end.emit({ id: 1, status: 200 });
  const got = tracer.read('trace').split('\n').filter((l) => l.includes('req:')).map((l) => l.replace(/^.*req: us=\d+ /, ''));
  assert.deepEqual(got, ['route=/b prio=9 status=404', 'route=/a-very-long-ro prio=7 status=200']);
  // While the end trigger reads its variables, the start trigger stays: `!` is EBUSY, O_TRUNC removes nothing (the kernel's hist_unreg_all()).
  const startLine = tracer.read('events/app/start/trigger').split('\n')[0]!.replace(/ \[active\]$/, '');
  assert.throws(() => tracer.append('events/app/start/trigger', `!${startLine}`), code('EBUSY'));
  tracer.open('events/app/start/trigger', { truncate: true }).close();
  assert.equal(tracer.read('events/app/start/trigger'), `${startLine} [active]\n`);
  // Removing the end trigger lets go of the hidden one: with the start trigger gone too, no soft mode is left.
  tracer.open(endPath, { truncate: true }).close();
  tracer.open('events/app/start/trigger', { truncate: true }).close();
  assert.equal(tracer.read('events/app/start/enable'), '0\n');
});

test('variable and action errors: EINVAL, logged under hist:SYS:EV', () => {
  const tracer = new Tracer({ env: {} });
  tracer.defineEvent('app', 'end', { id: 'u32', route: 'string' });
  tracer.write('synthetic_events', 'lat_only u64 usecs');
  const path = 'events/app/end/trigger';
  const bad: [string, RegExp][] = [
    ['hist:keys=id:lat=common_timestamp.usecs-$nosuch', /Couldn't find variable: \$nosuch/],
    ['hist:keys=id:lat=common_timestamp.usecs:onmatch(app.end).trace(nosynth,$lat)', /Couldn't find synthetic event: nosynth/],
    ['hist:keys=id:lat=common_timestamp.usecs:onmatch(app.end).trace(lat_only,$lat,id)', /Param count doesn't match synthetic event field count: lat_only has 1/],
    ['hist:keys=id:lat=common_timestamp.usecs:onmatch(app.nosuch).trace(lat_only,$lat)', /Invalid subsystem or event name: app\.nosuch/],
    ['hist:keys=id:a=id:a=id', /Variable already defined: a/],
    ['hist:keys=id:a=id+id-id', /Too many subexpressions \(3 max\)/],
    ['hist:keys=id:lat=common_timestamp.usecs:onmatch(app.end).trace(lat_only,$nowhere)', /Couldn't find variable: \$nowhere/],
    ['hist:keys=id:onmatch(app.end).trace(lat_only,end.route)', /Invalid action param: end\.route \(a field of the matching event is written SYS\.EVENT\.FIELD\)/],
  ];
  for (const [spec, why] of bad) {
    assert.throws(() => tracer.append(path, spec), (e: TraceError) => e.code === 'EINVAL' && why.test(e.message), spec);
    // The log has the kernel's own text: the part of the message before any detail.
    assert.ok(tracer.read('error_log').includes(`hist:app:end: error: ${why.source.replace(/\\/g, '').split(': ')[0]}\n`), spec);
  }
  for (const [line, why] of [['bogus', /Malformed synthetic event command/], ['x u128 a', /Invalid type: u128/], ['y u64 a; u32 a', /Field name used twice/]] as const) {
    assert.throws(() => tracer.append('synthetic_events', line), (e: TraceError) => e.code === 'EINVAL');
    assert.match(tracer.read('error_log'), why);
  }
  tracer.append('synthetic_events', '!lat_only');
  assert.equal(tracer.read('synthetic_events'), '');
  assert.throws(() => tracer.stat('events/synthetic/lat_only'), (e: TraceError) => e.code === 'ENOENT');
});

test('name=: hist triggers of one name share their table across events, and must match', () => {
  const tracer = new Tracer({ env: {} });
  const a = tracer.defineEvent('app', 'a', { status: 'u16' });
  const b = tracer.defineEvent('app', 'b', { status: 'u16', other: 'u32' });
  tracer.write('events/app/a/trigger', 'hist:name=both:keys=status');
  tracer.write('events/app/b/trigger', 'hist:name=both:keys=status');
  a.emit({ status: 200 });
  b.emit({ status: 200, other: 1 });
  b.emit({ status: 500, other: 1 });
  for (const ev of ['a', 'b']) {
    const text = tracer.read(`events/app/${ev}/hist`);
    assert.match(text, /trigger info: hist:both:keys=status:vals=hitcount:sort=hitcount:size=2048 \[active\]/);
    assert.match(text, /\{ status: +200 \} hitcount: +2\n/);
    assert.match(text, /Hits: 3\n/);
  }
  assert.throws(() => tracer.append('events/app/b/trigger', 'hist:name=both:keys=other'), (e: TraceError) => e.code === 'EINVAL');
  assert.match(tracer.read('error_log'), /Named hist trigger doesn't match existing named trigger/);
});

test('onmax($var).save(fields) keeps the worst case per key; onmax($var).snapshot() freezes the buffer at a new maximum', () => {
  const tracer = new Tracer({ env: {} });
  const start = tracer.defineEvent('app', 'start', { worker: 'u32', id: 'u32', route: 'string' });
  const end = tracer.defineEvent('app', 'end', { worker: 'u32', id: 'u32', route: 'string' });
  tracer.write('events/app/enable', '1');
  tracer.write('events/app/start/trigger', 'hist:keys=worker:ts0=common_timestamp.usecs');
  tracer.write('events/app/end/trigger', 'hist:keys=worker:lat=common_timestamp.usecs-$ts0:onmax($lat).save(id,route)');
  tracer.append('events/app/end/trigger', 'hist:keys=worker:lat2=common_timestamp.usecs-$ts0:onmax($lat2).snapshot()');
  assert.equal(tracer.instance().snapshotAllocated, true, 'snapshot() allocates the spare buffer');
  assert.match(tracer.read('events/app/end/trigger'), /^hist:keys=worker:vals=hitcount:lat=common_timestamp\.usecs-\$ts0:sort=hitcount:size=2048:clock=global:onmax\(\$lat\)\.save\(id,route\) \[active\]$/m);
  const spin = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  // Worker 1's worst request is id 11 (/slow); worker 2's is id 21.
  const plan: [number, number, string, number][] = [[1, 10, '/a', 1], [1, 11, '/slow', 6], [1, 12, '/b', 2], [2, 20, '/c', 1], [2, 21, '/worst', 9], [2, 22, '/d', 1]];
  for (const [worker, id, route, ms] of plan) {
    start.emit({ worker, id, route });
    spin(ms);
    end.emit({ worker, id, route });
  }
  const tables = tracer.read('events/app/end/hist').split('\n\n\n');
  const saved = tables.find((t) => t.includes('.save('))!;
  assert.match(saved, /\{ worker: +1 \} hitcount: +3\n\tmax: +\d{4,}  id: +11  route: \/slow {27}\n/);
  assert.match(saved, /\{ worker: +2 \} hitcount: +3\n\tmax: +\d{4,}  id: +21  route: \/worst {26}\n/);
  const snap = tables.find((t) => t.includes('.snapshot()'))!;
  assert.match(snap, /\nSnapshot taken \(see tracing\/snapshot\)\.  Details:\n\ttriggering value \{ onmax\(\$lat2\) \}: +\d{4,}\n\ttriggered by event with key: \{ worker: +2 \}\n/);
  // The snapshot holds what led up to the new maximum: its last event is the end of id 21.
  const last = tracer.read('snapshot').split('\n').filter((l) => l && !l.startsWith('#')).at(-1)!;
  assert.match(last, /end: worker=2 id=21 route=\/worst/);
});
