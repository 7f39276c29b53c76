/**
 * `nftrace demo` (what `npm start` runs): a small node:http service instrumented with nftrace
 * events, loaded from inside the process for a few seconds; then the head of `trace`, each
 * buffer's `stats`, and what an event costs next to a clock read.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Tracer } from '../index.js';

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
    if (req.method === 'GET' && user) {
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
  costs(out);
}
