/**
 * The flight recorder, end to end with child processes: crash dumps for each way a process can
 * die with a handler (throw, unhandled rejection, each catchable fatal signal), read back by our
 * reader and by trace-cmd, with the process dying as it would have; and the persist file after
 * deaths no handler sees (SIGKILL, abort(), heap exhaustion), turned back by `nftrace recover`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TraceDatEvents, Tracer, flightRecorder, readTraceDatFile } from '../src/index.js';
import { reportText } from '../src/format/report.js';
import { FATAL_SIGNALS } from '../src/flight/recorder.js';
import { needTraceCmd } from './helpers/trace-cmd.js';

const INDEX = new URL('../src/index.js', import.meta.url).href;
const CLOCK = new URL('../src/instance/clock.js', import.meta.url).href;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const EVENTS = 5000;

/** A child that traces EVENTS ticks (main thread and a worker), then dies the way `mode` says. */
const CHILD = `
import { Tracer, flightRecorder, attach } from ${JSON.stringify(INDEX)};
import { monoNow } from ${JSON.stringify(CLOCK)};
import { Worker } from 'node:worker_threads';
const [mode, dir, persist] = process.argv.slice(2);
const tracer = new Tracer();
const tick = tracer.defineEvent('app', 'tick', { n: 'u32' });
tracer.write('events/app/enable', '1');
tracer.mkdir('instances/errors');
tracer.write('instances/errors/events/app/enable', '1');
const rec = flightRecorder(tracer, { dir, persist: persist || undefined, persistIntervalMs: 5 });
await rec.ready();
const { handle, transferList } = tracer.threadHandle('helper');
const worker = new Worker(\`
  const { workerData, parentPort } = require('node:worker_threads');
  import(\${JSON.stringify(${JSON.stringify(INDEX)})}).then(({ attach }) => {
    const ev = attach(workerData.handle).defineEvent('app', 'tick', { n: 'u32' });
    for (let i = 0; i < 100; i++) ev.emit({ n: 100000 + i });
    parentPort.postMessage('done');
  });\`, { eval: true, workerData: { handle }, transferList });
await new Promise((r) => worker.once('message', r));
for (let i = 0; i < ${EVENTS}; i++) tick.emit({ n: i });
const settle = () => new Promise((r) => setTimeout(r, 100));
switch (mode) {
  case 'throw': setTimeout(() => { throw new Error('boom'); }, 1); break;
  case 'reject': Promise.reject(new Error('nope')); break;
  case 'kill': await settle(); process.kill(process.pid, 'SIGKILL'); break;
  case 'abort': await settle(); process.abort(); break;
  case 'oom': { await settle(); const hog = []; for (;;) hog.push(new Array(1e6).fill(hog.length)); }
  case 'window': {
    // Emit without pause and die at once: how far behind the mirror is at death.
    for (let i = 0; i < 2e6; i++) tick.emit({ n: ${EVENTS} + i });
    process.stdout.write(String(monoNow()) + '\\n');
    process.kill(process.pid, 'SIGKILL');
    break;
  }
  default: process.kill(process.pid, mode); setTimeout(() => {}, 10000);
}
`;

function runChild(mode: string, dir: string, persist = '', extraArgs: string[] = []) {
  const script = join(dirname(dir), 'child.mjs');
  writeFileSync(script, CHILD);
  return spawnSync(process.execPath, [...extraArgs, script, mode, dir, persist], { encoding: 'utf8', timeout: 60_000 });
}

async function ticks(file: string): Promise<number[]> {
  const events = new TraceDatEvents(await readTraceDatFile(file));
  const out: number[] = [];
  for (const r of events.records({ buffers: [''] })) {
    if (r.event?.name === 'tick') out.push(Number(r.event.value(r, r.event.field('n')!)));
  }
  return out;
}

test('crash dumps: every way a handler sees death leaves a readable dump, and the process dies as it would have', async (t) => {
  const traceCmd = needTraceCmd(t);
  const modes = ['throw', 'reject', ...FATAL_SIGNALS];
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-crash-'));
  const matrix: string[] = [];
  try {
    for (const mode of modes) {
      const sub = join(dir, mode);
      const child = runChild(mode, sub);
      if (mode === 'throw' || mode === 'reject') {
        assert.equal(child.status, 1, `${mode}: exit code`);
        assert.match(child.stderr, mode === 'throw' ? /Error: boom/ : /Error: nope/, 'Node still reports the error');
      } else {
        assert.equal(child.signal, mode, `${mode}: the child dies of the same signal`);
      }
      const dats = readdirSync(sub).filter((f) => f.endsWith('.dat'));
      assert.equal(dats.length, 1, `${mode}: one dump (${child.stderr})`);
      const file = join(sub, dats[0]!);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(sub).mode & 0o777, 0o700);
      const got = await ticks(file);
      assert.equal(got.filter((n) => n < EVENTS).length, EVENTS, `${mode}: every main-thread event`);
      assert.equal(got.filter((n) => n >= 100000).length, 100, `${mode}: the worker's events`);
      let cmdOk = 'not run';
      if (traceCmd) {
        const r = spawnSync('trace-cmd', ['report', '-i', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
        assert.equal(r.status, 0, r.stderr);
        assert.equal((r.stdout.match(/tick: +n=/g) ?? []).length, 2 * (EVENTS + 100), `${mode}: trace-cmd sees both buffers' events`);
        cmdOk = 'ok';
      }
      matrix.push(`${mode.padEnd(18)} ${child.signal ?? `exit ${child.status}`}  dump ok  trace-cmd ${cmdOk}`);
    }
    t.diagnostic('crash-dump matrix:');
    for (const row of matrix) t.diagnostic(row);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('persist: after SIGKILL, abort() and heap exhaustion, recover gets every completed page back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-persist-'));
  try {
    for (const [mode, args] of [['kill', []], ['abort', []], ['oom', ['--max-old-space-size=64']]] as const) {
      const sub = join(dir, mode);
      const persist = join(dir, `${mode}.persist`);
      const child = runChild(mode, sub, persist, [...args]);
      assert.ok(child.signal === 'SIGKILL' || child.signal === 'SIGABRT' || child.status !== 0, `${mode}: died (${child.status} ${child.signal})`);
      assert.equal(readdirSync(sub).filter((f) => f.endsWith('.dat')).length, 0, `${mode}: no handler ran`);
      const out = join(dir, `${mode}.dat`);
      const r = spawnSync(process.execPath, [CLI, 'recover', persist, '-o', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /not closed \(the process died with the recorder running\)/);
      assert.match(r.stdout, /top level cpu0: \d+ pages recovered/);
      const got = await ticks(out);
      // The child waited 100 ms (the mirror looks every 5 ms) before dying: nothing is missing.
      assert.deepEqual(got.filter((n) => n < EVENTS), Array.from({ length: EVENTS }, (_, i) => i), `${mode}: all main-thread events in order`);
      assert.equal(got.filter((n) => n >= 100000).length, 100, `${mode}: the worker's events`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('persist: at a sudden SIGKILL mid-burst, what comes back is in order, and every hole is one recover reports', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-window-'));
  try {
    const persist = join(dir, 'w.persist');
    const child = runChild('window', join(dir, 'sub'), persist);
    assert.equal(child.signal, 'SIGKILL');
    const death = Number(child.stdout.trim());
    const out = join(dir, 'w.dat');
    const r = spawnSync(process.execPath, [CLI, 'recover', persist, '-o', out], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const events = new TraceDatEvents(await readTraceDatFile(out));
    let last = 0;
    const main: number[] = [];
    for (const rec of events.records({ buffers: [''], cpus: [0] })) {
      last = Math.max(last, rec.ts);
      if (rec.event?.name === 'tick') main.push(Number(rec.event.value(rec, rec.event.field('n')!)));
    }
    // How far behind death the mirror was is a figure for the bench (bench/flight.ts), not a test.
    t.diagnostic(`events recovered ${main.length}; newest ${((death - last) / 1e6).toFixed(2)} ms before death`);
    assert.ok(main.length > EVENTS, 'events of the burst were mirrored');
    assert.ok(last <= death, 'no recovered event is stamped after the process died');
    let holes = 0;
    for (let i = 1; i < main.length; i++) {
      assert.ok(main[i]! > main[i - 1]!, `tick ${main[i]} after ${main[i - 1]}: out of order or repeated`);
      if (main[i] !== main[i - 1]! + 1) holes++;
    }
    const gaps = Number(/top level cpu0: .*?(\d+) pages overwritten before they were saved/.exec(r.stdout)?.[1] ?? 0);
    if (holes > 0) assert.ok(gaps > 0, `${holes} holes in the ticks, but recover reported no overwritten pages:\n${r.stdout}`);
    else assert.equal(gaps, 0, `recover reported ${gaps} overwritten pages, but the ticks have no hole`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshots are written to files as they happen, and dump() can write text too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-snapfile-'));
  try {
    const tracer = new Tracer({ env: {} });
    const err = tracer.defineEvent('app', 'err', { code: 'u16' });
    tracer.mkdir('instances/errors');
    tracer.write('instances/errors/events/app/enable', '1');
    tracer.write('instances/errors/events/app/err/trigger', 'snapshot if code >= 500');
    const rec = flightRecorder(tracer, { dir: join(dir, 'd'), snapshots: true, text: true, signals: [] });
    err.emit({ code: 404 });
    err.emit({ code: 503 });
    await new Promise((r) => setTimeout(r, 400));
    const snap = rec.files.find((f) => f.includes('snapshot-errors'));
    assert.ok(snap, `a snapshot file (${rec.files.join(', ')})`);
    const lines = reportText(new TraceDatEvents(await readTraceDatFile(snap)), {});
    assert.match(lines, /err: +code=404/);
    assert.match(lines, /err: +code=503/);
    tracer.mkdir('instances/big');
    tracer.write('instances/big/buffer_subbuf_size_kb', '8');
    const [dat, big, txt] = rec.dump('manual');
    assert.match(dat!, /-manual\.dat$/);
    assert.match(big!, /-manual-big\.dat$/, 'another sub-buffer size, another file');
    assert.equal((await readTraceDatFile(big!)).pageSize, 8192);
    assert.match(readFileSync(txt!, 'utf8'), /### instance: errors\n# tracer: nop/);
    await rec.close();
    assert.equal(process.listenerCount('uncaughtExceptionMonitor'), 0, 'close() removes the handlers');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
