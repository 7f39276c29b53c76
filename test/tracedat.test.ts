import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { report, reportText, statReport, type ReportOptions } from '../src/format/report.js';
import { parseTraceDat } from '../src/format/tracedat/reader.js';
import { TraceDatError } from '../src/format/tracedat/cursor.js';
import { TraceDatEvents } from '../src/format/tracedat/records.js';
import { contentOf, encodeTraceDat, writeTraceDat } from '../src/format/tracedat/writer.js';
import { needTraceCmd, traceCmd } from './helpers/trace-cmd.js';

const fixtures = new URL('../../test/fixtures/trace-dat/', import.meta.url);
const fixture = (name: string) => gunzipSync(readFileSync(new URL(name, fixtures)));
const dat6 = fixture('kmem_tc_small_v6.dat.gz');
const tmp = mkdtempSync(join(tmpdir(), 'nftrace-dat-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function ours(bytes: Uint8Array, options: ReportOptions, name = 'fixture.dat'): Promise<string> {
  const events = new TraceDatEvents(await parseTraceDat(bytes, name));
  return reportText(events, options);
}

const MODES: [string, ReportOptions, string][] = [
  ['-N', { plugins: false }, 'kmem_tc_small_v6_report_N.txt.gz'],
  ['-R', { raw: true, plugins: false }, 'kmem_tc_small_v6_report_R.txt.gz'],
  ['default (plugins)', { plugins: true }, 'kmem_tc_small_v6_report.txt.gz'],
  ['-l -t', { plugins: true, latency: true, nanoseconds: true }, 'kmem_tc_small_v6_report_l_t.txt.gz'],
];

for (const [flags, options, expected] of MODES) {
  test(`report ${flags} matches trace-cmd line for line on the 6.18 kmem capture`, async () => {
    const want = fixture(expected).toString('utf8').split('\n');
    const got = (await ours(dat6, options)).split('\n');
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.equal(got[i], want[i], `line ${i + 1}`);
  });
}

test('v7 from trace-cmd convert (zstd) reads the same as trace-cmd reads it', async (t) => {
  if (!needTraceCmd(t)) return;
  const v6 = join(tmp, 'in6.dat');
  const v7 = join(tmp, 'tc7.dat');
  writeFileSync(v6, dat6);
  traceCmd(['convert', '--file-version', '7', '--compression', 'zstd', '-i', v6, '-o', v7]);
  const expected = traceCmd(['report', '-N', '-i', v7]);
  assert.equal(await ours(readFileSync(v7), { plugins: false }), expected);
  // --stat: the saved kernel stats (with the instance's "Buffer:" heading), and for v6 where the data lies.
  for (const [file, bytes] of [[v6, dat6], [v7, readFileSync(v7)]] as const) {
    assert.equal(statReport(await parseTraceDat(bytes, file)), traceCmd(['report', '--stat', '-i', file]), file);
  }
});

for (const [version, compression] of [[6, 'none'], [7, 'zstd'], [7, 'zlib'], [7, 'none']] as const) {
  test(`our writer, v${version} ${compression}: we read back what we wrote`, async () => {
    const bytes = await encodeTraceDat(contentOf(await parseTraceDat(dat6, 'in')), { version, compression });
    const back = await parseTraceDat(bytes, 'out');
    assert.equal(back.version, version);
    assert.equal(back.compression, version === 6 ? 'none' : compression);
    const want = fixture('kmem_tc_small_v6_report_N.txt.gz').toString('utf8');
    assert.equal(await ours(bytes, { plugins: false }), want);
  });
}

for (const [version, compression] of [[6, 'none'], [7, 'zstd'], [7, 'none']] as const) {
  test(`trace-cmd report reads our v${version} ${compression} file`, async (t) => {
    if (!needTraceCmd(t)) return;
    const out = join(tmp, `ours-${version}-${compression}.dat`);
    await writeTraceDat(out, contentOf(await parseTraceDat(dat6, 'in')), { version, compression });
    const want = fixture('kmem_tc_small_v6_report_N.txt.gz').toString('utf8');
    assert.equal(traceCmd(['report', '-N', '-i', out]), want);
  });
}

/** A small file for fuzzing: the fixture's formats and first pages, no kallsyms. */
async function smallFile(version: 6 | 7, compression: 'none' | 'zstd'): Promise<Uint8Array> {
  const content = contentOf(await parseTraceDat(dat6, 'in'));
  content.kallsyms = '';
  content.buffers = content.buffers.map((b) => ({ ...b, cpus: b.cpus.map((pages) => (pages as Uint8Array).subarray(0, 2 * content.pageSize)) }));
  return encodeTraceDat(content, { version, compression });
}

test('fuzz: 10^4 flipped or truncated files give a clean error naming file and offset, or a correct read', async (t) => {
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const bases = [await smallFile(6, 'none'), await smallFile(7, 'zstd')];
  let clean = 0;
  let errors = 0;
  let slowest = 0;
  for (let i = 0; i < 10_000; i++) {
    const base = bases[i % bases.length]!;
    let bytes: Uint8Array;
    if (i % 4 === 0) {
      bytes = base.subarray(0, rand(base.length));
    } else {
      bytes = Uint8Array.from(base);
      for (let k = 1 + rand(4); k > 0; k--) bytes[rand(bytes.length)] ^= 1 << rand(8);
    }
    const start = performance.now();
    try {
      const events = new TraceDatEvents(await parseTraceDat(bytes, 'fuzz.dat'));
      for (const chunk of report(events, { plugins: true })) assert.ok(chunk instanceof Uint8Array);
      clean++;
    } catch (err) {
      if (!(err instanceof TraceDatError)) throw new Error(`case ${i}: not a clean error: ${(err as Error).stack}`);
      assert.match(err.message, /^fuzz\.dat: .+ at byte \d+: /);
      errors++;
    }
    slowest = Math.max(slowest, performance.now() - start);
  }
  // Both outcomes must occur, or the mutations stopped testing anything.
  assert.ok(clean > 0 && errors > 0, `${clean} read cleanly, ${errors} refused`);
  t.diagnostic(`${clean} read cleanly, ${errors} refused; slowest ${slowest.toFixed(0)} ms (a hang would hit the test timeout)`);
});

test('a Node snapshot saved as trace.dat (v6 and v7): trace-cmd shows every event and field, as our reader does', async (t) => {
  if (!needTraceCmd(t)) return;
  const { Tracer } = await import('../src/index.js');
  const tracer = new Tracer();
  const request = tracer.defineEvent('http', 'request', { method: 'string', status: 'u16', bytes: 'u64', ok: 'bool', tag: 'char[8]' });
  const done = tracer.defineEvent('http', 'response', { id: 'u32', micros: 'u32' }, { print: { fmt: 'id=%u took=%uus', args: ['id', 'micros'] } });
  tracer.write('events/enable', '1');
  for (let i = 0; i < 500; i++) {
    request.emit({ method: i % 2 ? 'GET' : 'POST', status: 200 + (i % 3), bytes: 2n ** 40n + BigInt(i), ok: i % 2 === 0, tag: 'abc' });
    done.emit({ id: i, micros: i * 3 });
  }
  tracer.write('trace_marker', 'hello from the marker');
  for (const version of [6, 7] as const) {
    const file = join(tmp, `node-${version}.dat`);
    await tracer.saveTraceDat(file, { version });
    const text = traceCmd(['report', '-i', file]);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 1 + 1000 + 1);
    assert.match(lines[1001]!, / print: +0x0: hello from the marker$/);
    assert.match(lines[1]!, / request: +method=POST status=200 bytes=1099511627776 ok=1 tag=abc$/);
    assert.match(lines[1000]!, / response: +id=499 took=1497us$/);
    assert.equal(await ours(readFileSync(file), { plugins: true }), text);
    assert.match(traceCmd(['dump', '--summary', '-i', file]), new RegExp(`Tracing meta data in file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:[^]*\\[Events format, 1 systems\\]`));
    assert.equal(statReport(await parseTraceDat(readFileSync(file), file)), traceCmd(['report', '--stat', '-i', file]));
  }
});
