import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CEvalError, evaluate, parsePrintFmt } from './cexpr.js';
import { EventFormat, type RecordView } from './kformat.js';
import { formatKernel } from './print-fmt.js';
import { parseFormat, type Conversion } from './printf.js';
import { Kallsyms } from './symbols.js';

/** A kernel-style format file with fields of every width and both signs, strings and an array. */
function formatFile(print: string): string {
  return `name: probe
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long a;\toffset:8;\tsize:8;\tsigned:0;
\tfield:long b;\toffset:16;\tsize:8;\tsigned:1;
\tfield:unsigned int c;\toffset:24;\tsize:4;\tsigned:0;
\tfield:int d;\toffset:28;\tsize:4;\tsigned:1;
\tfield:unsigned short e;\toffset:32;\tsize:2;\tsigned:0;
\tfield:signed char f;\toffset:34;\tsize:1;\tsigned:1;
\tfield:char name[8];\toffset:35;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] str;\toffset:44;\tsize:4;\tsigned:0;
\tfield:unsigned long arr[2];\toffset:48;\tsize:16;\tsigned:0;

print fmt: ${print}
`;
}

const PRINT = [
  '"a=%lu b=%ld ax=%llx ap=%p as=%pS c=%u d=%d e=%hu f=%hhd x=%08x l=%-6d| o=%o h=%#x n=%s s=%s r=%lu',
  ' m=%lu k=%ld t=%s fl=%s sy=%s q=%ld w=%d z=%x p2=%p u=%u"',
  ', REC->a, REC->b, REC->a, REC->a, (void *)REC->a, REC->c, REC->d, REC->e, REC->f, REC->c, REC->d, REC->c, REC->c',
  ', REC->name, __get_str(str), REC->arr[1]',
  ', REC->a != -1UL ? REC->a : 0, REC->b / 3 + REC->b % 7, REC->f < 0 ? "neg" : "pos"',
  ', __print_flags(REC->c, "|", { 1, "A" }, { 2, "B" }, { 0xf0, "HI" })',
  ', __print_symbolic(REC->e, { 0, "zero" }, { 1, "one" }, { 65535, "max" })',
  ', (REC->a & 0xffffffffUL) << 3, (int)(REC->d >> 2), ~REC->c, ((struct page *)vmemmap_base) + REC->a, REC->a >= 18446744073709551615UL',
].join('');

const EDGES = [0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n,
  0xffffffff81000000n, 0xffff888100abc040n];

function record(rand: () => number, u64: (n: number) => bigint): RecordView {
  const u8 = new Uint8Array(96);
  const dv = new DataView(u8.buffer);
  dv.setUint16(0, 700, true);
  dv.setBigUint64(8, u64(0), true);
  dv.setBigUint64(16, u64(1), true);
  dv.setUint32(24, Number(u64(2) & 0xffffffffn), true);
  dv.setUint32(28, Number(u64(3) & 0xffffffffn), true);
  dv.setUint16(32, Number(u64(4) & 0xffffn), true);
  dv.setUint8(34, Number(u64(5) & 0xffn));
  const name = 'slab\u00e9'.slice(0, Math.floor(rand() * 6));
  u8.set(Buffer.from(name, 'utf8').subarray(0, 7), 35);
  const str = ['', 'kmalloc-64', 'dentry', 'x'.repeat(20)][Math.floor(rand() * 4)]!;
  u8.set(Buffer.from(str), 64);
  dv.setUint32(44, ((str.length + 1) << 16) | 64, true);
  dv.setBigUint64(48, u64(6), true);
  dv.setBigUint64(56, u64(7), true);
  return { dv, u8, start: 0, length: 64 + str.length + 1 };
}

/** What the exact evaluation prints: each argument through cexpr and formatKernel, as before compilation. */
function exact(ev: EventFormat, rec: RecordView, symbols: Kallsyms): string {
  const { fmt, args } = parsePrintFmt(ev.printText);
  let i = 0;
  try {
    return parseFormat(fmt).map((s) => (typeof s === 'string' ? s : formatKernel(s as Conversion, evaluate(args[i++]!, ev.scope(rec)), symbols))).join('');
  } catch (err) {
    if (err instanceof CEvalError) return ev.printRaw(rec, { symbols });
    throw err;
  }
}

test('compiled print fmt printers print what the exact evaluation prints, at every width and past 2^53', () => {
  const ev = new EventFormat(formatFile(PRINT), 'test');
  assert.equal(ev.printNote, '');
  const symbols = new Kallsyms('ffffffff81000000 T _text\nffffffff81000040 T start_kernel\n');
  let x = 12345;
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  const u64 = () => (rand() < 0.5 ? EDGES[Math.floor(rand() * EDGES.length)]! : BigInt(Math.floor(rand() * 2 ** 32)) * BigInt(Math.floor(rand() * 4) === 0 ? 2 ** 32 : 1) + BigInt(Math.floor(rand() * 2 ** 32)));
  for (let n = 0; n < 3000; n++) {
    const rec = record(rand, () => u64() & (2n ** 64n - 1n));
    assert.equal(ev.print(rec, { symbols }), exact(ev, rec, symbols), `record ${n}`);
  }
});

test('a record too short for a field prints its raw fields, as before compilation', () => {
  const ev = new EventFormat(formatFile('"a=%lu c=%u", REC->a, REC->c'), 'test');
  const u8 = new Uint8Array(32);
  const rec = { dv: new DataView(u8.buffer), u8, start: 0, length: 20 };
  assert.equal(ev.print(rec), ev.printRaw(rec));
});
