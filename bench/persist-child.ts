/**
 * For bench/flight.ts: trace with a persist file, emit as fast as possible, print the monotonic
 * time, and SIGKILL ourselves: how far behind death the newest persisted event is.
 */
import { Tracer, flightRecorder } from '../src/index.js';
import { monoNow } from '../src/instance/clock.js';

const [dir, file, interval] = process.argv.slice(2);
const tracer = new Tracer({ env: {} });
const ev = tracer.defineEvent('bench', 'num', { a: 'u32', b: 'u32', c: 'u32' });
tracer.write('events/bench/enable', '1');
const recorder = flightRecorder(tracer, { dir: dir!, signals: [], persist: file, persistIntervalMs: Number(interval) });
await recorder.ready();
const until = monoNow() + 300e6;
for (let i = 0; monoNow() < until; i++) ev.emit({ a: i, b: 2, c: 3 });
process.stdout.write(`${monoNow()}\n`);
process.kill(process.pid, 'SIGKILL');
