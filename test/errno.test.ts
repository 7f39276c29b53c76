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

function ours(): (path: string, data: string) => [string, string] {
  const tracer = new Tracer();
  tracer.defineEvent('sched', 'sched_switch', { prev_pid: 's32', next_pid: 's32' });
  tracer.mkdir('instances/errno');
  return (path, data) => {
    const full = `instances/errno/${path}`;
    let result = 'ok';
    try {
      tracer.write(full, data);
    } catch (err) {
      result = (err as { code?: string }).code ?? String(err);
    }
    let after = '';
    try {
      after = tracer.read(full);
    } catch {
      after = '<unreadable>';
    }
    return [result, after];
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
  const wrong = CASES.map(([path, data, expect]) => [path, data, expect, run(path, data)[0]]).filter((r) => r[2] !== r[3]);
  assert.deepEqual(wrong, []);
});

test('failed writes leave the file reading what it read before', () => {
  const run = ours();
  for (const [path, data, expect] of CASES) {
    if (expect === 'ok') continue;
    const before = run(path, '\u0000')[1]; // a refused write: just reads the state
    const [result, after] = run(path, data);
    assert.equal(result, expect);
    assert.equal(after, before, `${path} <- ${JSON.stringify(data)} changed the file`);
  }
});

test('same errnos and readbacks as the live kernel', (t) => {
  const root = needKernel(t);
  if (!root) return;
  withKernelInstance(root, (dir) => {
    const k = kernel(dir);
    const o = ours();
    const diffs: string[] = [];
    for (const [path, data] of CASES) {
      const [kr, kAfter] = k(path, data);
      const [or, oAfter] = o(path, data);
      if (kr !== or) diffs.push(`${path} <- ${JSON.stringify(data)}: kernel ${kr}, ours ${or}`);
      if (SAME_READBACK.has(path) && kAfter !== oAfter) {
        diffs.push(`${path} <- ${JSON.stringify(data)}: kernel reads ${JSON.stringify(kAfter)}, ours ${JSON.stringify(oAfter)}`);
      }
    }
    // Restore what the kernel instance may not be removed with.
    k('tracing_on', '1');
    assert.deepEqual(diffs, []);
  });
});
