/**
 * Function probes (`dynamic_events`, issue #8): entry and return probes on a CommonJS module's
 * exports and a class prototype, fetch arguments with property paths and types, promises,
 * constructors, the readback, fprobe_profile, removal and its EBUSY, and bad definitions with
 * the kernel's error_log entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer } from '../src/index.js';
import type { TraceError } from '../src/errno.js';
import { needTraceCmd, traceCmd } from './helpers/trace-cmd.js';

const LIB = `
exports.add = (a, b) => a + b;
exports.fetchUser = async (id) => { await new Promise((r) => setTimeout(r, 2)); if (id < 0) throw new Error('no such user'); return { id, name: 'user' + id }; };
class Store { constructor(data) { this.data = data; } get(key) { return this.data[key] ?? null; } }
exports.Store = Store;
class Cache extends Store {}
exports.Cache = Cache;
exports.handle = (req) => ({ status: req.url === '/' ? 200 : 404 });
`;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-probe-'));
  const file = join(dir, 'lib.cjs');
  writeFileSync(file, LIB);
  const lib = createRequire(join(dir, 'x.js'))(file);
  const tracer = new Tracer({ env: {} });
  const lines = () => tracer.read('trace').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/^.*?: /, ''));
  return { dir, file, lib, tracer, lines, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const code = (c: string) => (e: TraceError) => e.code === c;

test('entry and return probes on exports and prototypes record their fetch arguments', async () => {
  const { file, lib, tracer, lines, done } = setup();
  try {
    tracer.write('dynamic_events', `f:app/add ${file}:add a=$arg1:s32 b=$arg2:u32`);
    tracer.append('dynamic_events', `f:app/add_ret ${file}:add%return r=$retval:s64`);
    tracer.append('dynamic_events', `f:app/user ${file}:fetchUser%return id=$arg1:u32 name=$retval.name:string`);
    tracer.append('dynamic_events', `f ${file}:handle url=$arg1.url:string host=$arg1.headers.host:string n=\\7`);
    tracer.append('dynamic_events', `f:app/get ${file}:Store.prototype.get key=$arg1:string who=$comm`);
    assert.equal(tracer.read('dynamic_events'), [
      `f:app/add ${file}:add a=$arg1:s32 b=$arg2:u32`,
      `f:app/add_ret ${file}:add%return r=$retval:s64`,
      `f:app/user ${file}:fetchUser%return id=$arg1:u32 name=$retval.name:string`,
      `f:fprobes/handle__entry ${file}:handle url=$arg1.url:string host=$arg1.headers.host:string n=\\7`,
      `f:app/get ${file}:Store.prototype.get key=$arg1:string who=$comm`,
      '',
    ].join('\n'));
    assert.equal(lib.add(1, 2), 3, 'not enabled: the call goes through untouched');
    tracer.write('events/app/enable', '1');
    tracer.write('events/fprobes/enable', '1');
    assert.equal(lib.add(2, 3), 5);
    assert.equal(lib.add(-1, 7), 6);
    assert.deepEqual(await lib.fetchUser(42), { id: 42, name: 'user42' });
    await assert.rejects(lib.fetchUser(-1), /no such user/);
    lib.handle({ url: '/', headers: { host: 'example' } });
    lib.handle({ url: '/x' });
    const store = new lib.Store({ k: 1 });
    assert.ok(store instanceof lib.Store);
    assert.equal(store.get('k'), 1);
    const got = lines().map((l) => l.replace(/duration_ns=\d+/, 'duration_ns=N'));
    assert.deepEqual(got, [
      `add: (${file}:add) a=2 b=3`,
      `add_ret: (${file}:add <- return) r=5 duration_ns=N`,
      `add: (${file}:add) a=-1 b=7`,
      `add_ret: (${file}:add <- return) r=6 duration_ns=N`,
      `user: (${file}:fetchUser <- return) id=42 name="user42" duration_ns=N`,
      `user: (${file}:fetchUser <- return) id=4294967295 name="Error" duration_ns=N`,
      `handle__entry: (${file}:handle) url="/" host="example" n=0x7`,
      `handle__entry: (${file}:handle) url="/x" host="" n=0x7`,
      `get: (${file}:Store.prototype.get) key="k" who="${tracer.threadNames()[0]}"`,
    ]);
    // A rejection's $retval is the error (its name is "Error"); the missing host is a failed fetch.
    assert.match(tracer.read('fprobe_profile'), /^ {2}user {40} +2 +0$/m);
    assert.match(tracer.read('fprobe_profile'), /^ {2}handle__entry {31} +2 +1$/m);
    assert.match(tracer.read('events/app/add/format'), /field:int a;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned int b;/);
  } finally {
    done();
  }
});

test('$this fetches the receiver; a probe on an inherited method is removed without leaving a copy behind', () => {
  const { file, lib, tracer, lines, done } = setup();
  try {
    tracer.write('dynamic_events', `f:app/cget ${file}:Cache.prototype.get key=$arg1:string size=$this.data.size:u32`);
    assert.ok(!Object.hasOwn(lib.Cache.prototype, 'get'), 'not enabled: nothing is patched');
    tracer.write('events/app/enable', '1');
    assert.ok(Object.hasOwn(lib.Cache.prototype, 'get'), 'enabled: the wrapper sits on Cache.prototype');
    new lib.Cache({ k: 1, size: 3 }).get('k');
    new lib.Store({ k: 1, size: 3 }).get('k');
    assert.deepEqual(lines(), [`cget: (${file}:Cache.prototype.get) key="k" size=3`], 'Store itself is not probed');
    tracer.write('events/app/enable', '0');
    tracer.append('dynamic_events', '-:app/cget');
    assert.ok(!Object.hasOwn(lib.Cache.prototype, 'get'), 'inherited again, as before');
  } finally {
    done();
  }
});

test('removal: EBUSY while enabled or triggered, then the original function is back and the event gone', () => {
  const { file, lib, tracer, done } = setup();
  try {
    const original = lib.add;
    tracer.write('dynamic_events', `f:app/add ${file}:add a=$arg1:s32`);
    assert.equal(lib.add, original, 'defined but not enabled: the function is untouched');
    tracer.write('events/app/add/enable', '1');
    assert.notEqual(lib.add, original);
    assert.throws(() => tracer.append('dynamic_events', '-:app/add'), code('EBUSY'));
    assert.throws(() => tracer.write('dynamic_events', ''), code('EBUSY'), 'O_TRUNC too');
    tracer.write('events/app/add/enable', '0');
    tracer.write('events/app/add/trigger', 'traceoff');
    assert.throws(() => tracer.append('dynamic_events', '-:add'), code('EBUSY'), 'soft-enabled by a trigger');
    tracer.write('events/app/add/trigger', '!traceoff');
    // Aimed at by another event's enable_event trigger: soft mode, in use too.
    tracer.defineEvent('other', 'ev', { x: 'u32' });
    tracer.mkdir('instances/side');
    tracer.write('instances/side/events/other/ev/trigger', 'enable_event:app:add');
    assert.throws(() => tracer.append('dynamic_events', '-:add'), code('EBUSY'), 'soft-enabled in another instance');
    tracer.write('instances/side/events/other/ev/trigger', '!enable_event:app:add');
    const held = tracer.open('events/app/add/format');
    tracer.append('dynamic_events', '-:add');
    assert.throws(() => held.read(), code('ENODEV'), 'an open file does not block removal, and answers ENODEV after it');
    held.close();
    assert.equal(lib.add, original);
    assert.equal(tracer.read('dynamic_events'), '');
    assert.throws(() => tracer.stat('events/app/add'), code('ENOENT'));
    assert.throws(() => tracer.append('dynamic_events', '-:app/add'), code('ENOENT'));
    // The same probe again brings the event back.
    tracer.append('dynamic_events', `f:app/add ${file}:add a=$arg1:s32`);
    assert.equal(tracer.read('events/app/add/enable'), '0\n');
    assert.throws(() => tracer.append('dynamic_events', `f:app/add ${file}:add a=$arg1:s32`), code('EEXIST'));
    tracer.write('dynamic_events', '');
    assert.equal(lib.add, original, 'O_TRUNC removes every probe');
  } finally {
    done();
  }
});

test('armed only while in use: two probes on one function chain in either enable order, and the original comes back', () => {
  const { file, lib, tracer, lines, done } = setup();
  try {
    const original = lib.add;
    tracer.write('dynamic_events', `f:app/first ${file}:add a=$arg1:s32`);
    tracer.append('dynamic_events', `f:app/second ${file}:add%return r=$retval:s32`);
    assert.equal(lib.add, original, 'neither enabled');
    tracer.write('events/app/second/enable', '1');
    lib.add(1, 1);
    tracer.write('events/app/first/enable', '1');
    lib.add(2, 2);
    tracer.write('events/app/second/enable', '0');
    lib.add(3, 3);
    // tracing_on 0 keeps the wrapper (the event stays enabled) but records nothing.
    tracer.write('tracing_on', '0');
    lib.add(4, 4);
    tracer.write('tracing_on', '1');
    tracer.write('events/app/first/enable', '0');
    assert.equal(lib.add, original, 'both off again: the very function');
    assert.deepEqual(lines().map((l) => l.replace(/ duration_ns=\d+/, '')), [
      `second: (${file}:add <- return) r=2`,
      `first: (${file}:add) a=2`,
      `second: (${file}:add <- return) r=4`,
      `first: (${file}:add) a=3`,
    ]);
    tracer.write('events/app/second/enable', '1');
    tracer.append('dynamic_events', '-:app/first');
    assert.equal(lib.add(5, 5), 10);
    tracer.write('events/app/second/enable', '0');
    tracer.write('dynamic_events', '');
    assert.equal(lib.add, original);
    assert.match(tracer.read('trace'), /second: .* r=10/);
  } finally {
    done();
  }
});

test('reach: local calls are warned about; getters, read-only and frozen targets fail with a reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-reach-'));
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const file = join(dir, 'm.cjs');
    writeFileSync(file, [
      'function add(a, b) { return a + b; }',
      'function sum(xs) { return xs.reduce((t, x) => add(t, x), 0); }',
      'exports.add = add;',
      'exports.sum = sum;',
      "Object.defineProperty(exports, 'reexported', { enumerable: true, get: () => add });",
      "Object.defineProperty(exports, 'fixed', { value: add, writable: false });",
      'exports.frozen = Object.freeze({ __proto__: { inherited() {} } });',
      '',
    ].join('\n'));
    createRequire(join(dir, 'x.js'))(file);
    const tracer = new Tracer({ env: {} });
    tracer.write('dynamic_events', `f:m/add ${file}:add`);
    tracer.append('dynamic_events', `f:m/sum ${file}:sum`);
    await new Promise((r) => setImmediate(r));
    const partial = warnings.filter((w) => (w as NodeJS.ErrnoException).code === 'NFTRACE_PROBE_PARTIAL');
    assert.equal(partial.length, 1, 'add is called by its local name inside the module; sum is not');
    assert.match(partial[0]!.message, /m\.cjs:add is also called inside its module by its local name; the probe m\/add sees only calls made through the exports/);
    for (const [target, why] of [['reexported', /exported through a getter \(a re-export\?\): probe the module that defines it/], ['fixed', /read-only property/], ['frozen.inherited', /its object is frozen or sealed/]] as const) {
      assert.throws(() => tracer.append('dynamic_events', `f:m/x ${file}:${target}`), (e: TraceError) => e.code === 'EINVAL' && why.test(e.message), target);
      assert.throws(() => tracer.readdir('events/m/x'), code('ENOENT'), 'no event is left behind');
    }
    assert.match(tracer.read('error_log'), /trace_fprobe: error: Cannot patch frozen\.inherited: its object is frozen or sealed/);
  } finally {
    process.off('warning', onWarning);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('probe and synthetic events in a trace.dat: trace-cmd report prints them as our trace does', async (t) => {
  if (!needTraceCmd(t)) return;
  const { dir, file, lib, tracer, done } = setup();
  try {
    tracer.write('dynamic_events', `f:app/add ${file}:add a=$arg1:s32 b=$arg2:x32`);
    tracer.append('dynamic_events', `f:app/add_ret ${file}:add%return r=$retval:u64 who=$comm`);
    tracer.write('synthetic_events', 'sum u64 value; char note[8]');
    tracer.write('events/app/add_ret/trigger', 'hist:keys=r:onmatch(app.add_ret).trace(sum,r,who)');
    tracer.write('events/app/enable', '1');
    tracer.write('events/synthetic/enable', '1');
    lib.add(2, 40);
    const body = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('cpus=')).map((l) => l.replace(/^.*?\d+\.\d{6}: (\w+):\s+/, '$1: '));
    const ours = body(tracer.read('trace'));
    assert.deepEqual(ours.map((l) => l.replace(/duration_ns=\d+/, 'duration_ns=N')), [
      `add: (${file}:add) a=2 b=0x28`,
      `add_ret: (${file}:add <- return) r=42 who="${tracer.threadNames()[0]}" duration_ns=N`,
      `sum: value=42 note=${tracer.threadNames()[0]!.slice(0, 7)}`,
    ]);
    await tracer.saveTraceDat(join(dir, 'probes.dat'));
    assert.deepEqual(body(traceCmd(['report', '-i', join(dir, 'probes.dat')])), ours);
  } finally {
    done();
  }
});

test('bad definitions: EINVAL with a trace_fprobe error_log entry and a caret; nothing changes', () => {
  const { file, tracer, done } = setup();
  try {
    const bad: [string, RegExp, number][] = [
      // Carets: at the function, the fetch argument, the type, the second use of a name.
      [`f:app/x ${file}:nosuch`, /No such function: nosuch/, 8 + file.length + 1],
      [`f:app/x ${file}:add r=$retval`, /\$retval can be used only on retprobe/, 8 + file.length + 7],
      [`f:app/x ${file}:add a=$arg1:u128`, /Unknown type is specified/, 8 + file.length + 13],
      [`f:app/x ${file}:add a=%ax`, /Invalid fetch argument/, 8 + file.length + 7],
      ['f:app/x /no/such/module.js:add', /Module not found: \/no\/such\/module\.js/, 8],
      [`k:app/x ${file}:add`, /Unknown probe type/, 0],
      [`f:9bad/x ${file}:add`, /Group name must follow/, 2],
      [`f:app/x ${file}:add a=$arg1 a=$arg2`, /Argument name is used twice/, 8 + file.length + 13],
    ];
    for (const [def, why, caret] of bad) {
      tracer.write('error_log', '');
      assert.throws(() => tracer.append('dynamic_events', def), code('EINVAL'), def);
      const log = tracer.read('error_log').split('\n');
      assert.match(log[0]!, /^\[ *\d+\.\d{6}\] trace_fprobe: error: /);
      assert.match(log[0]!, why, def);
      assert.equal(log[1], `  Command: ${def}`);
      assert.equal(log[2], `${' '.repeat(11 + caret)}^`, def);
    }
    assert.equal(tracer.read('dynamic_events'), '');
  } finally {
    done();
  }
});

test('ES modules: with --import nftrace/register, a probe reaches the imported bindings; without, a clear error', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-esm-'));
  try {
    writeFileSync(join(dir, 'lib.mjs'), 'export function add(a, b) { return a + b; }\nexport class Greeter { hello(n) { return `hi ${n}`; } }\n');
    writeFileSync(join(dir, 'app.mjs'), `
      import { add, Greeter } from './lib.mjs';
      import { Tracer } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
      const t = new Tracer({ env: {} });
      try {
        t.write('dynamic_events', 'f:app/add ./lib.mjs:add a=$arg1:s32 b=$arg2:s32');
        t.append('dynamic_events', 'f:app/hello ./lib.mjs:Greeter.prototype.hello who=$arg1:string');
      } catch (e) { console.log(e.message); process.exit(0); }
      t.write('events/app/enable', '1');
      add(2, 3); new Greeter().hello('bob');
      console.log(t.read('trace').split('\\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/^.*?: /, '')).join('\\n'));
      t.write('events/app/enable', '0');
      t.write('dynamic_events', '');
      console.log('restored', add(1, 1));`);
    const register = fileURLToPath(new URL('../src/register.js', import.meta.url));
    const withHook = spawnSync(process.execPath, ['--import', register, 'app.mjs'], { cwd: dir, encoding: 'utf8' });
    assert.equal(withHook.status, 0, withHook.stderr);
    assert.equal(withHook.stdout, 'add: (./lib.mjs:add) a=2 b=3\nhello: (./lib.mjs:Greeter.prototype.hello) who="bob"\nrestored 2\n');
    const without = spawnSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8' });
    assert.match(without.stdout, /EINVAL: dynamic_events: \.\/lib\.mjs is an ES module: start node with --import nftrace\/register/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
