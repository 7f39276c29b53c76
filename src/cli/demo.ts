/**
 * `nftrace demo` (what `npm start` runs): a small node:http service instrumented with nftrace
 * events, loaded from inside the process for a few seconds; then the head of `trace`, each
 * buffer's `stats`, and what an event costs next to a clock read. And the flight recorder's
 * story: the noisy events flood the top level, while a rare error in an instance of its own
 * takes a snapshot of what led up to it (written to a file as it happens); last, a child
 * process that crashes leaves a dump, opened here as `nftrace report` would.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TraceDatEvents, Tracer, flightRecorder, readTraceDatFile } from '../index.js';
import { reportText } from '../format/report.js';

export interface DemoOptions {
  seconds: number;
  connections: number;
  lines: number;
  out: (text: string) => void;
}

/** The worker's event, defined here too so that it can be enabled before the worker starts. */
export const HASH_EVENT = ['work', 'hash', { id: 'u32', bytes: 'u32', digest: 'char[12]' }] as const;

function defineEvents(tracer: Tracer) {
  tracer.defineEvent(...HASH_EVENT);
  return {
    request: tracer.defineEvent('http', 'request', { id: 'u32', method: 'string', url: 'string' }),
    response: tracer.defineEvent('http', 'response', { id: 'u32', status: 'u16', micros: 'u32' }, {
      print: { fmt: 'id=%u status=%u took=%uus', args: ['id', 'status', 'micros'] },
    }),
    query: tracer.defineEvent('db', 'query', { table: 'char[16]', key: 'u32', rows: 'u16', hit: 'bool' }),
    error: tracer.defineEvent('app', 'error', { id: 'u32', code: 'u16', message: 'string' }),
  };
}

/** The service: GET /users/N looks a user up in a "database"; POST /hash hashes the body on a worker. */
function startServer(tracer: Tracer, worker: Worker) {
  const ev = defineEvents(tracer);
  const cache = new Map<number, string>();
  const pending = new Map<number, (digest: string) => void>();
  worker.on('message', (m: { id: number; digest: string }) => pending.get(m.id)?.(m.digest));
  let nextId = 0;
  const server = http.createServer((req, res) => {
    const id = ++nextId;
    const start = performance.now();
    ev.request.emit({ id, method: req.method ?? '', url: req.url ?? '' });
    const finish = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
      ev.response.emit({ id, status, micros: Math.round((performance.now() - start) * 1000) });
    };
    const user = /^\/users\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && user && Number(user[1]) === 499 && id % 7 === 0) {
      // The rare failure the flight recorder is there for.
      ev.error.emit({ id, code: 503, message: 'user store timed out' });
      finish(503, 'try again');
    } else if (req.method === 'GET' && user) {
      const key = Number(user[1]);
      const hit = cache.has(key);
      if (!hit) cache.set(key, `user ${key}`);
      ev.query.emit({ table: 'users', key, rows: 1, hit });
      finish(200, cache.get(key)!);
    } else if (req.method === 'POST' && req.url === '/hash') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        pending.set(id, (digest) => {
          pending.delete(id);
          finish(200, digest);
        });
        worker.postMessage({ id, body: Buffer.concat(chunks) });
      });
    } else {
      finish(404, 'not found');
    }
  });
  return server;
}

/** Keep `connections` requests in flight until `until` (ms, performance.now()). */
async function drive(port: number, connections: number, until: number, progress: (done: number) => void) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let done = 0;
  const one = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const post = n % 4 === 0;
      const req = http.request({ port, agent, method: post ? 'POST' : 'GET', path: post ? '/hash' : n % 10 === 1 ? '/nope' : `/users/${n % 500}` }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(post ? `payload ${n}` : undefined);
    });
  const loop = async (c: number) => {
    for (let n = c; performance.now() < until; n += connections) {
      await one(n);
      done++;
    }
  };
  const timer = setInterval(() => progress(done), 1000);
  try {
    await Promise.all(Array.from({ length: connections }, (_, c) => loop(c)));
  } finally {
    clearInterval(timer);
    agent.destroy();
  }
  return done;
}

/** ns per call of fn over n calls, best of three. */
function nsPerOp(n: number, fn: (n: number) => void): number {
  fn(Math.min(n, 100_000));
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    fn(n);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / n);
  }
  return best;
}

function costs(out: (text: string) => void): void {
  const tracer = new Tracer();
  const off = tracer.defineEvent('cost', 'off', { a: 'u32', b: 'u32', c: 'u32' });
  const on = tracer.defineEvent('cost', 'on', { a: 'u32', b: 'u32', c: 'u32' });
  const text = tracer.defineEvent('cost', 'text', { a: 'u32', s: 'string' });
  tracer.write('events/cost/on/enable', '1');
  tracer.write('events/cost/text/enable', '1');
  let sink = 0;
  const rows: [string, number][] = [
    ['disabled event', nsPerOp(10_000_000, (n) => { for (let i = 0; i < n; i++) off.emit({ a: i, b: 2, c: 3 }); })],
    ['clock read (performance.now)', nsPerOp(2_000_000, (n) => { for (let i = 0; i < n; i++) sink += performance.now(); })],
    ['enabled event, 3 numbers', nsPerOp(2_000_000, (n) => { for (let i = 0; i < n; i++) on.emit({ a: i, b: 2, c: 3 }); })],
    ['enabled event, number + 20-char string', nsPerOp(2_000_000, (n) => { for (let i = 0; i < n; i++) text.emit({ a: i, s: 'GET /api/v1/users/42' }); })],
  ];
  if (sink < 0) out('');
  out('What an event costs here (best of 3; `npm run bench` compares with pino, OpenTelemetry and more):\n');
  for (const [name, ns] of rows) out(`  ${name.padEnd(40)} ${ns.toFixed(1).padStart(7)} ns\n`);
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { out } = options;
  const tracer = new Tracer();
  const { handle, transferList } = tracer.threadHandle('hasher');
  const worker = new Worker(new URL('./demo-worker.js', import.meta.url), { workerData: { handle }, transferList });
  const server = startServer(tracer, worker);
  tracer.write('events/enable', '1');
  // An instance of its own for one event, in a small buffer: it keeps the latest responses.
  tracer.mkdir('instances/responses');
  tracer.write('instances/responses/buffer_size_kb', '64');
  tracer.write('instances/responses/events/http/response/enable', '1');
  // The flight recorder: every event in a small overwrite buffer of its own; the first error
  // takes a snapshot (what led up to it), which the recorder writes to a file right away.
  const dumps = mkdtempSync(join(tmpdir(), 'nftrace-demo-'));
  tracer.mkdir('instances/errors');
  tracer.write('instances/errors/buffer_size_kb', '16');
  tracer.write('instances/errors/events/enable', '1');
  tracer.write('instances/errors/events/app/error/trigger', 'snapshot:1');
  const recorder = flightRecorder(tracer, { dir: dumps, snapshots: true, signals: [] });
  latencyProbes(tracer);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  out(`nftrace demo: http://127.0.0.1:${port}, ${options.connections} connections for ${options.seconds} s\n`);
  const started = performance.now();
  const requests = await drive(port, options.connections, started + options.seconds * 1000, (done) => {
    out(`  ${((performance.now() - started) / 1000).toFixed(0)} s: ${done} requests\n`);
  });
  const elapsed = (performance.now() - started) / 1000;
  server.close();
  await worker.terminate();

  out(`\n${requests} requests in ${elapsed.toFixed(1)} s (${Math.round(requests / elapsed)}/s)\n\n`);
  out(`---- head of trace (${options.lines} lines) ----\n`);
  out(tracer.read('trace').split('\n').slice(0, options.lines).join('\n') + '\n');
  for (let cpu = 0; cpu < 2; cpu++) {
    out(`\n---- per_cpu/cpu${cpu}/stats ----\n`);
    out(tracer.read(`per_cpu/cpu${cpu}/stats`));
  }
  out('\n---- instances/responses: last 3 lines of trace ----\n');
  out(tracer.read('instances/responses/trace').trimEnd().split('\n').slice(-3).join('\n') + '\n\n');
  await flightStory(tracer, recorder, dumps, out);
  latencyStory(tracer, out);
  costs(out);
}

/**
 * Request latency per route, without touching the service: two probes on node:http (a request
 * arrives; its response ends), keyed by the client's port, a synthetic event carrying the time
 * between them, and hist triggers aggregating it — ftrace's recipe, on JavaScript functions.
 */
function latencyProbes(tracer: Tracer): void {
  tracer.write('dynamic_events', [
    'f:demo/req_start node:http:Server.prototype.emit type=$arg1:string port=$arg2.socket.remotePort:u32',
    'f:demo/req_end node:http:ServerResponse.prototype.end port=$this.socket.remotePort:u32 url=$this.req.url:string',
  ].join('\n'));
  tracer.write('synthetic_events', 'http_latency u64 usecs; char route[48]');
  tracer.write('events/demo/req_start/trigger', 'hist:keys=port:ts0=common_timestamp.usecs if type == "request"');
  tracer.write('events/demo/req_end/trigger', 'hist:keys=port:lat=common_timestamp.usecs-$ts0:onmatch(demo.req_start).trace(http_latency,$lat,url)');
  tracer.write('events/synthetic/http_latency/trigger', 'hist:keys=usecs.log2:sort=usecs');
  tracer.append('events/synthetic/http_latency/trigger', 'hist:keys=route:vals=usecs:sort=hitcount.descending');
}

function latencyStory(tracer: Tracer, out: (text: string) => void): void {
  out('---- request latency from two probes on node:http and a synthetic event ----\n');
  out(`${tracer.read('dynamic_events')}${tracer.read('events/demo/req_end/trigger')}`);
  const tables = tracer.read('events/synthetic/http_latency/hist').split('\n\n\n');
  const rows = (keys: string, n: number) => (tables.find((t) => t.includes(`hist:keys=${keys}`)) ?? '').split('\n').filter((l) => l.startsWith('{')).slice(0, n);
  out('\nlatency, log2 of microseconds (events/synthetic/http_latency/hist):\n');
  out(`${rows('usecs.log2', 24).join('\n')}\n`);
  out('\nbusiest routes, with their summed latency:\n');
  out(`${rows('route', 5).join('\n')}\n\n`);
}

/** What the flight recorder kept: the error's snapshot, its file, and a crashed child's dump. */
async function flightStory(tracer: Tracer, recorder: ReturnType<typeof flightRecorder>, dumps: string, out: (text: string) => void) {
  const errors = tracer.instance('errors');
  const top = tracer.instance().totals();
  out(`---- flight recorder ----\n`);
  out(`The top level recorded ${top.committed} events and overwrote ${top.overrun} of them.\n`);
  if (errors.snapshotCount === 0) {
    out('No request failed this time, so no snapshot was taken (run it longer: --seconds 10).\n\n');
  } else {
    await new Promise((r) => setTimeout(r, 250)); // the recorder writes snapshots within 100 ms
    const lines = tracer.read('instances/errors/snapshot').trimEnd().split('\n').filter((l) => !l.startsWith('#'));
    out(`The first app:error took a snapshot of instances/errors; its last ${Math.min(6, lines.length)} of ${lines.length} lines:\n`);
    out(lines.slice(-6).join('\n') + '\n');
    const file = recorder.files.find((f) => f.includes('snapshot'));
    out(`Written while tracing went on: ${file ?? '(not yet)'}\n  open it with: nftrace report -i ${file ?? 'FILE'}   (or trace-cmd report -i ...)\n\n`);
  }
  await recorder.close();
  const child = spawnSync(process.execPath, [fileURLToPath(new URL('./demo-crash.js', import.meta.url)), dumps], { encoding: 'utf8' });
  const said = /flight recorder wrote (\S+\.dat)/.exec(child.stderr);
  out(`A child process that throws (exit code ${child.status}) left a crash dump: ${said?.[1] ?? '(none: see its stderr)'}\n`);
  if (said) {
    out(`---- nftrace report -i ${said[1]} (last 4 lines) ----\n`);
    const lines = reportText(new TraceDatEvents(await readTraceDatFile(said[1]!)), { plugins: true }).trimEnd().split('\n');
    out(lines.slice(-4).join('\n') + '\n\n');
  }
}
