/**
 * Control-file writes: every case gives the errno the kernel gives and leaves the file reading
 * what the kernel's reads afterwards. Expected results were recorded on Linux 6.18; as root the
 * same table also runs against a fresh kernel instance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { Tracer } from '../src/index.js';
import { needKernel, withKernelInstance } from './helpers/tracefs.js';

type Case = [path: string, data: string, expect: string];

// expect: 'ok' or the errno code.
const CASES: Case[] = [
  ['tracing_on', '1', 'ok'], ['tracing_on', '0\n', 'ok'], ['tracing_on', '2', 'ok'], ['tracing_on', 'abc', 'EINVAL'],
  ['tracing_on', '-1', 'EINVAL'], ['tracing_on', '', 'EINVAL'], ['tracing_on', '\n', 'EINVAL'], ['tracing_on', ' 1 ', 'EINVAL'],
  ['tracing_on', '+1', 'ok'], ['tracing_on', '0x1', 'EINVAL'], ['tracing_on', '01', 'ok'], ['tracing_on', '1\n\n', 'EINVAL'],
  ['tracing_on', '1 ', 'EINVAL'], ['tracing_on', '18446744073709551616', 'ERANGE'], ['tracing_on', '0', 'ok'],
  ['buffer_size_kb', '0', 'EINVAL'], ['buffer_size_kb', 'abc', 'EINVAL'], ['buffer_size_kb', '-5', 'EINVAL'],
  ['buffer_size_kb', '8', 'ok'], ['buffer_size_kb', '8\n', 'ok'], ['buffer_size_kb', ' 8', 'EINVAL'], ['buffer_size_kb', '0x10', 'EINVAL'],
  ['buffer_size_kb', '99999999999', 'ENOMEM'], ['buffer_size_kb', '1', 'ok'], ['buffer_size_kb', '+4', 'ok'], ['buffer_size_kb', '16 ', 'EINVAL'],
  ['buffer_size_kb', '100', 'ok'],
  ['buffer_subbuf_size_kb', '0', 'EINVAL'], ['buffer_subbuf_size_kb', '3', 'ok'], ['buffer_subbuf_size_kb', '5', 'ok'],
  ['buffer_subbuf_size_kb', '2048', 'EINVAL'], ['buffer_subbuf_size_kb', 'abc', 'EINVAL'], ['buffer_subbuf_size_kb', '513', 'EINVAL'],
  ['buffer_subbuf_size_kb', '4', 'ok'],
  ['buffer_total_size_kb', '5', 'EINVAL'],
  ['trace_clock', 'mono', 'ok'], ['trace_clock', 'counter', 'ok'], ['trace_clock', 'bogus', 'EINVAL'], ['trace_clock', '', 'EINVAL'],
  ['trace_clock', 'local\n', 'ok'], ['trace_clock', ' mono', 'ok'], ['trace_clock', 'mono ', 'ok'], ['trace_clock', '[local]', 'EINVAL'],
  ['trace_clock', 'local', 'ok'],
  ['current_tracer', 'nop', 'ok'], ['current_tracer', 'bogus', 'EINVAL'], ['current_tracer', '', 'EINVAL'],
  ['available_tracers', 'nop', 'EINVAL'],
  ['events/enable', '1', 'ok'], ['events/enable', '0', 'ok'], ['events/enable', '2', 'EINVAL'], ['events/enable', 'X', 'EINVAL'],
  ['events/enable', 'abc', 'EINVAL'], ['events/enable', '', 'EINVAL'], ['events/enable', '0x1', 'EINVAL'], ['events/enable', ' 1', 'EINVAL'],
  ['events/enable', '1 ', 'EINVAL'],
  ['events/sched/enable', '1', 'ok'], ['events/sched/enable', '0', 'ok'], ['events/sched/enable', '2', 'EINVAL'],
  ['events/sched/sched_switch/enable', '1', 'ok'], ['events/sched/sched_switch/enable', 'abc', 'EINVAL'],
  ['events/sched/sched_switch/enable', '0', 'ok'],
  ['events/sched/sched_switch/format', 'x', 'EINVAL'], ['events/sched/sched_switch/id', '1', 'EINVAL'],
  ['events/header_page', 'x', 'EINVAL'],
  ['set_event', 'sched:sched_switch', 'ok'], ['set_event', 'nosuch', 'EINVAL'], ['set_event', 'nosys:*', 'EINVAL'],
  ['set_event', '!sched:sched_switch', 'ok'], ['set_event', '\n', 'ok'], ['set_event', 'sched_switch', 'ok'],
  ['set_event', 'nosuch:nosuch', 'EINVAL'], ['set_event', '!sched_switch', 'ok'],
  ['trace', 'ignored', 'ok'],
  ['buffer_percent', '30', 'ok'], ['buffer_percent', '101', 'EINVAL'], ['buffer_percent', 'abc', 'EINVAL'],
  ['buffer_percent', '-1', 'EINVAL'], ['buffer_percent', ' 5', 'EINVAL'], ['buffer_percent', '0', 'ok'], ['buffer_percent', '50', 'ok'],
  ['error_log', 'x', 'ok'],
];

/** Files whose contents mean the same in both, so the readback after each write must agree. */
const SAME_READBACK = new Set(['tracing_on', 'buffer_size_kb', 'buffer_subbuf_size_kb', 'current_tracer', 'events/sched/sched_switch/enable', 'buffer_percent']);

interface Ours {
  /** Write as `echo -n DATA > PATH` does: the errno ('ok' or its code) and the readback after. */
  write(path: string, data: string): [string, string];
  read(path: string): string;
}

function ours(): Ours {
  const tracer = new Tracer();
  tracer.defineEvent('sched', 'sched_switch', { prev_pid: 's32', next_pid: 's32' });
  tracer.mkdir('instances/errno');
  const read = (path: string) => {
    try {
      return tracer.read(`instances/errno/${path}`);
    } catch {
      return '<unreadable>';
    }
  };
  return {
    read,
    write: (path, data) => {
      let result = 'ok';
      try {
        tracer.write(`instances/errno/${path}`, data);
      } catch (err) {
        result = (err as { code?: string }).code ?? String(err);
      }
      return [result, read(path)];
    },
  };
}

function kernel(dir: string): (path: string, data: string) => [string, string] {
  return (path, data) => {
    let result = 'ok';
    try {
      const fd = openSync(`${dir}/${path}`, constants.O_WRONLY | constants.O_TRUNC);
      try {
        writeSync(fd, Buffer.from(data));
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      result = (err as NodeJS.ErrnoException).code ?? String(err);
    }
    let after = '';
    try {
      after = readFileSync(`${dir}/${path}`, 'utf8');
    } catch {
      after = '<unreadable>';
    }
    return [result, after];
  };
}

test('control-file writes give the kernel errno (recorded table)', () => {
  const run = ours();
  const wrong = CASES.map(([path, data, expect]) => [path, data, expect, run.write(path, data)[0]]).filter((r) => r[2] !== r[3]);
  assert.deepEqual(wrong, []);
});

test('failed writes leave the file reading what it read before', () => {
  const run = ours();
  for (const [path, data, expect] of CASES) {
    if (expect === 'ok') continue;
    const before = run.read(path);
    const [result, after] = run.write(path, data);
    assert.equal(result, expect);
    assert.equal(after, before, `${path} <- ${JSON.stringify(data)} changed the file`);
  }
});

/** Errnos with which a kernel refuses every write to a file it locks or was built without. */
const LOCKED = new Set(['EPERM', 'ENODEV']);

test('same errnos and readbacks as the live kernel', (t) => {
  const root = needKernel(t);
  if (!root) return;
  withKernelInstance(root, (dir) => {
    const k = kernel(dir);
    const o = ours();
    // What this kernel supports: a file it lacks, or one that refuses with EPERM/ENODEV every
    // write our table expects to succeed (locked, or built without it), is left out, saying so.
    const results = CASES.map(([path, data, expect]) => ({ path, data, expect, kernel: k(path, data) }));
    const unsupported = new Map<string, string>();
    for (const path of new Set(CASES.map(([p]) => p))) {
      const mine = results.filter((r) => r.path === path);
      if (mine.every((r) => r.kernel[1] === '<unreadable>' && r.kernel[0] === 'ENOENT')) unsupported.set(path, 'absent in this kernel');
      const oks = mine.filter((r) => r.expect === 'ok');
      if (oks.length && mine.every((r) => LOCKED.has(r.kernel[0]))) unsupported.set(path, `every write refused with ${[...new Set(mine.map((r) => r.kernel[0]))].join('/')} (locked or built without it)`);
    }
    for (const [path, why] of unsupported) t.diagnostic(`not compared: ${path}: ${why}`);
    const diffs: string[] = [];
    let compared = 0;
    for (const { path, data, kernel: [kr, kAfter] } of results) {
      const [or, oAfter] = o.write(path, data);
      if (unsupported.has(path)) continue;
      compared++;
      if (kr !== or) diffs.push(`${path} <- ${JSON.stringify(data)}: kernel ${kr}, ours ${or}`);
      if (SAME_READBACK.has(path) && kAfter !== oAfter) {
        diffs.push(`${path} <- ${JSON.stringify(data)}: kernel reads ${JSON.stringify(kAfter)}, ours ${JSON.stringify(oAfter)}`);
      }
    }
    // Restore what the kernel instance may not be removed with.
    k('tracing_on', '1');
    assert.ok(compared > CASES.length / 2, `only ${compared} of ${CASES.length} cases could be compared`);
    assert.deepEqual(diffs, []);
  });
});
