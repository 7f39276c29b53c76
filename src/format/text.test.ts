import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TEXT_OPTIONS, formatTimestamp, statsText, traceHeader, traceLine, type TextOptions } from './text.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const fixture = (name: string) => readFileSync(fixtures + name, 'utf8');

/** A kernel line, taken apart: `comm-pid (tgid) [cpu] flags ts: text`. */
const LINE = /^ *(\S+)-(\d+) +(?:\( *(\d+)\) )?\[(\d{3})\] (?:(\S{5}) )? *([\d.]+): (.*)$/;

function reRender(name: string, opts: TextOptions, nano = true) {
  const text = fixture(name);
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.ok(lines.length > 10, `${name} has events`);
  for (const line of lines) {
    const m = LINE.exec(line);
    assert.ok(m, `parses: ${line}`);
    const [, comm, pid, tgid, cpu, flags, ts, body] = m;
    const ns = nano ? Math.round(Number(ts) * 1e6) * 1000 : Number(ts);
    const ours = traceLine(opts, nano, {
      comm: comm!, pid: Number(pid), tgid: Number(tgid ?? pid), cpu: Number(cpu), flags: flags ?? '.....', ts: ns, text: body!,
    });
    assert.equal(ours, line + '\n');
  }
  return text;
}

function headerOf(text: string): string {
  return text.split('\n').filter((l) => l.startsWith('#')).join('\n') + '\n';
}

function counts(text: string): [number, number] {
  const m = /entries-written: (\d+)\/(\d+)/.exec(text)!;
  return [Number(m[1]), Number(m[2])];
}

test('default `trace` layout: header and lines match the kernel byte for byte', () => {
  const text = reRender('default.txt', DEFAULT_TEXT_OPTIONS);
  assert.equal(traceHeader(DEFAULT_TEXT_OPTIONS, ...counts(text), 2), headerOf(text));
});

test('irq-info 0 drops the flag columns and their legend', () => {
  const opts = { ...DEFAULT_TEXT_OPTIONS, irqInfo: false };
  const text = reRender('opt_irq-info_0.txt', opts);
  assert.equal(traceHeader(opts, ...counts(text), 2), headerOf(text));
});

test('record-tgid 1 adds the TGID column and shifts the legend', () => {
  const opts = { ...DEFAULT_TEXT_OPTIONS, recordTgid: true };
  const text = reRender('opt_record-tgid_1.txt', opts);
  assert.equal(traceHeader(opts, ...counts(text), 2), headerOf(text));
});

test('context-info 0 prints only `event: fields` under a two-line header', () => {
  const text = fixture('opt_context-info_0.txt');
  const opts = { ...DEFAULT_TEXT_OPTIONS, contextInfo: false };
  assert.equal(traceHeader(opts, 0, 0, 2), headerOf(text));
  const body = text.split('\n').filter((l) => l && !l.startsWith('#'));
  for (const l of body) assert.equal(traceLine(opts, true, { comm: '', pid: 0, tgid: 0, cpu: 0, flags: '', ts: 0, text: l }), l + '\n');
});

test('the counter clock prints raw counts in a 12-wide column', () => {
  reRender('clock_counter.txt', DEFAULT_TEXT_OPTIONS, false);
  assert.equal(formatTimestamp(4, false), '           4');
});

test('trace_pipe lines are `trace` lines without the header', () => {
  reRender('trace_pipe.txt', DEFAULT_TEXT_OPTIONS);
});

test('timestamps round ns to µs as ns2usecs() does', () => {
  assert.equal(formatTimestamp(11444055154499, true), '11444.055154');
  assert.equal(formatTimestamp(11444055154500, true), '11444.055155');
  assert.equal(formatTimestamp(5_000, true), '    0.000005');
});

test('stats layout', () => {
  const text = statsText(
    { entries: 145, overrun: 255, commitOverrun: 0, bytes: 4656, oldestTs: 6265459006000, nowTs: 6265461683000, dropped: 0, read: 0 },
    true,
  );
  assert.equal(
    text,
    'entries: 145\noverrun: 255\ncommit overrun: 0\nbytes: 4656\noldest event ts:  6265.459006\nnow ts:  6265.461683\ndropped events: 0\nread events: 0\n',
  );
});
