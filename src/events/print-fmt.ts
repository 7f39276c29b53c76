/**
 * An event's `print fmt` compiled once into closures, so printing a record walks no tree and
 * makes no BigInt in the common case: field reads at fixed offsets, constants folded,
 * `__print_flags` / `__print_symbolic` tables made into arrays and maps, each conversion's
 * width and signedness resolved.
 *
 * Integers are JS numbers on this path. A 64-bit value that does not fit a safe integer (a
 * kernel pointer, -1UL) makes the closure answer NaN, and that argument is then evaluated
 * exactly by cexpr's `evaluate` (bigints) for that record only. Pointers and hex of a 64-bit
 * field never need that: they print from the field's two 32-bit halves.
 *
 * Printers write UTF-8 bytes into a ByteSink (text-sink.ts), so a report makes no string per
 * field:
 *
 *   "ptr=%p bytes=%zu", REC->ptr, REC->bytes_req
 *   → 'ptr=' · '0x' hex(hi, lo) of bytes 16..23 · ' bytes=' · uint of bytes 24..31
 *
 * Nothing is generated as source text: closures only, so format files from any kernel are
 * safe to compile.
 */
import { CEvalError, evaluate, type CNode, type CScope, type CValue } from './cexpr.js';
import { formatInteger, formatValue, pad, type Conversion } from './printf.js';
import type { KField, RecordView, SymbolTable } from './kformat.js';
import { encode, type ByteSink } from './text-sink.js';

/** One argument printed with its conversion, into the sink. */
export type ArgPrinter = (rec: RecordView, sink: ByteSink, symbols: SymbolTable | undefined) => void;

/** A number, or NaN when the exact (bigint) evaluation must decide. */
type Num = (rec: RecordView) => number;

const TWO32 = 4294967296;
const SAFE_HI = 0x200000; // 2^21: hi * 2^32 + lo stays below 2^53

export interface PrintContext {
  field(name: string): KField | undefined;
  /** The exact value of an argument (bigints, strings); throws CEvalError when it cannot. */
  scope(rec: RecordView): CScope;
}

function lengthBits(length: string): number {
  switch (length) {
    case 'hh': return 8;
    case 'h': return 16;
    case 'l': case 'll': case 'z': case 'j': case 't': case 'L': return 64;
    default: return 32;
  }
}

/** One conversion of a kernel value, as libtraceevent prints it (pointers unhashed, NULL as (nil)). */
export function formatKernel(c: Conversion, v: CValue, symbols?: SymbolTable): string {
  if (c.conv === 'p') {
    const addr = typeof v === 'bigint' ? BigInt.asUintN(64, v) : 0n;
    if (c.ext && 'SsFfB'.includes(c.ext)) {
      const sym = symbols?.lookup(addr);
      if (sym) return pad(c.ext === 's' || c.ext === 'f' || sym.offset === 0n ? sym.name : `${sym.name}+0x${sym.offset.toString(16)}`, c, false);
      return pad(`0x${addr.toString(16)}`, c, false);
    }
    return pad(addr === 0n ? '(nil)' : `0x${addr.toString(16)}`, c, false);
  }
  if (typeof v === 'string' || c.conv === 's' || c.conv === 'c') return formatValue(c, v);
  const bits = lengthBits(c.length);
  const n = c.conv === 'd' || c.conv === 'i' ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
  return formatValue(c, n);
}

/** Constant folding: the value of a node that reads no field, or undefined. */
function constant(n: CNode, ctx: PrintContext): CValue | undefined {
  switch (n.t) {
    case 'num': case 'str': return n.v;
    case 'id': return n.name === 'NULL' || n.name === 'false' ? 0n : n.name === 'true' ? 1n : ctx.field(n.name) ? undefined : 0n;
    case 'unary': case 'cast': return constant(n.e, ctx) === undefined ? undefined : fold(n);
    case 'bin': return constant(n.a, ctx) === undefined || constant(n.b, ctx) === undefined ? undefined : fold(n);
    case 'cond': return constant(n.c, ctx) === undefined || constant(n.a, ctx) === undefined || constant(n.b, ctx) === undefined ? undefined : fold(n);
    default: return undefined;
  }
}

const NO_FIELDS: CScope = { field: () => undefined, dynamic: () => undefined };

function fold(n: CNode): CValue | undefined {
  try {
    return evaluate(n, NO_FIELDS);
  } catch (err) {
    if (err instanceof CEvalError) return undefined; // e.g. a division by zero: left to each record
    throw err;
  }
}

const safe = (v: bigint) => v >= -(2n ** 53n) && v <= 2n ** 53n;

/** An integer field (no string, no dynamic array) read as a number; NaN past the record or the safe range. */
function readField(f: KField, elementOffset: number): Num {
  const off = f.offset + elementOffset;
  const size = f.arrayLength > 0 ? f.size / f.arrayLength : f.size;
  const end = off + size;
  switch (size) {
    case 1: return f.signed ? (r) => (end > r.length ? NaN : r.dv.getInt8(r.start + off)) : (r) => (end > r.length ? NaN : r.u8[r.start + off]!);
    case 2: return f.signed ? (r) => (end > r.length ? NaN : r.dv.getInt16(r.start + off, true)) : (r) => (end > r.length ? NaN : r.dv.getUint16(r.start + off, true));
    case 4: return f.signed ? (r) => (end > r.length ? NaN : r.dv.getInt32(r.start + off, true)) : (r) => (end > r.length ? NaN : r.dv.getUint32(r.start + off, true));
    case 8:
      return f.signed
        ? (r) => {
          if (end > r.length) return NaN;
          const hi = r.dv.getInt32(r.start + off + 4, true);
          return hi >= -SAFE_HI && hi < SAFE_HI ? hi * TWO32 + r.dv.getUint32(r.start + off, true) : NaN;
        }
        : (r) => {
          if (end > r.length) return NaN;
          const hi = r.dv.getUint32(r.start + off + 4, true);
          return hi < SAFE_HI ? hi * TWO32 + r.dv.getUint32(r.start + off, true) : NaN;
        };
    default: return () => NaN;
  }
}

/** A field usable as a number: integer, not a string or dynamic array. */
function numericField(ctx: PrintContext, name: string): KField | undefined {
  const f = ctx.field(name);
  return f && !f.isString && !f.dataLoc ? f : undefined;
}

/** Bitwise and/or/xor on non-negative safe integers, as the 64-bit unsigned C operation. */
function bitwise(op: string): ((a: number, b: number) => number) | null {
  const apply = op === '&' ? (x: number, y: number) => x & y : op === '|' ? (x: number, y: number) => x | y : op === '^' ? (x: number, y: number) => x ^ y : null;
  if (!apply) return null;
  return (a, b) => {
    if (!(a >= 0 && b >= 0)) return NaN; // NaN, or a negative value (64 set bits above): exact path
    if (a < TWO32 && b < TWO32) return apply(a, b) >>> 0;
    return (apply(Math.floor(a / TWO32), Math.floor(b / TWO32)) >>> 0) * TWO32 + (apply(a >>> 0, b >>> 0) >>> 0);
  };
}

function arithmetic(op: string): ((a: number, b: number) => number) | null {
  switch (op) {
    case '+': return (a, b) => { const r = a + b; return Number.isSafeInteger(r) ? r : NaN; };
    case '-': return (a, b) => { const r = a - b; return Number.isSafeInteger(r) ? r : NaN; };
    case '*': return (a, b) => { const r = a * b; return Number.isSafeInteger(r) ? r : NaN; };
    // Exact for operands within 32 bits (a float quotient of larger ones may round).
    case '/': return (a, b) => (b !== 0 && Math.abs(a) <= 0x7fffffff && Math.abs(b) <= 0x7fffffff ? Math.trunc(a / b) : NaN);
    case '%': return (a, b) => (b !== 0 && a === a ? a % b : NaN);
    case '<<': return (a, b) => { const r = a * 2 ** (b & 63); return a >= 0 && Number.isSafeInteger(r) ? r : NaN; };
    case '>>': return (a, b) => (b === b ? Math.floor(a / 2 ** (b & 63)) : NaN);
    case '<': return (a, b) => (a !== a || b !== b ? NaN : a < b ? 1 : 0);
    case '>': return (a, b) => (a !== a || b !== b ? NaN : a > b ? 1 : 0);
    case '<=': return (a, b) => (a !== a || b !== b ? NaN : a <= b ? 1 : 0);
    case '>=': return (a, b) => (a !== a || b !== b ? NaN : a >= b ? 1 : 0);
    case '==': return (a, b) => (a !== a || b !== b ? NaN : a === b ? 1 : 0);
    case '!=': return (a, b) => (a !== a || b !== b ? NaN : a !== b ? 1 : 0);
    case '&&': return (a, b) => (a !== a || b !== b ? NaN : a !== 0 && b !== 0 ? 1 : 0);
    case '||': return (a, b) => (a !== a || b !== b ? NaN : a !== 0 || b !== 0 ? 1 : 0);
    default: return bitwise(op);
  }
}

/**
 * A safe integer compared with a constant outside the safe range (`REC->pfn != -1UL`): the
 * answer is known unless the value itself is NaN.
 */
function compareWithBig(op: string, x: Num, big: bigint, bigOnRight: boolean): Num | null {
  const less = bigOnRight ? big > 0n : big < 0n; // whether the left operand is the smaller one
  const answers: Record<string, boolean> = { '==': false, '!=': true, '<': less, '<=': less, '>': !less, '>=': !less };
  const answer = answers[op];
  if (answer === undefined) return null;
  const r = answer ? 1 : 0;
  return (rec) => (x(rec) !== x(rec) ? NaN : r);
}

/** The node as a number-valued closure, or null when it is not (strings, helpers). */
function compileNum(n: CNode, ctx: PrintContext): Num | null {
  const k = constant(n, ctx);
  if (k !== undefined) {
    if (typeof k !== 'bigint' || !safe(k)) return null;
    const v = Number(k);
    return () => v;
  }
  switch (n.t) {
    case 'id': {
      const f = numericField(ctx, n.name);
      return f ? readField(f, 0) : null;
    }
    case 'field': {
      const f = numericField(ctx, n.name);
      if (!f) return null;
      if (n.index === null) return readField(f, 0);
      const index = constant(n.index, ctx);
      if (typeof index !== 'bigint' || f.arrayLength === 0 || index < 0n || index >= BigInt(f.arrayLength)) return null;
      return readField(f, Number(index) * (f.size / f.arrayLength));
    }
    case 'unary': {
      const e = compileNum(n.e, ctx);
      if (!e) return null;
      if (n.op === '-') return (r) => -e(r);
      if (n.op === '!') return (r) => { const v = e(r); return v !== v ? NaN : v === 0 ? 1 : 0; };
      return null; // ~x sets the 64-bit high bits: exact path
    }
    case 'cast': {
      const e = compileNum(n.e, ctx);
      if (!e) return null;
      return castNum(e, n.bits, n.signed);
    }
    case 'bin': {
      const ka = constant(n.a, ctx);
      const kb = constant(n.b, ctx);
      // x & BIG keeps only x's bits: the constant's bits above 2^53 cannot matter.
      const narrow = (k: CValue | undefined) => (n.op === '&' && typeof k === 'bigint' && !safe(k) ? BigInt.asUintN(53, k) : k);
      const a = compileNumOr(n.a, narrow(ka), ctx);
      const b = compileNumOr(n.b, narrow(kb), ctx);
      if (a && !b && typeof kb === 'bigint') return compareWithBig(n.op, a, kb, true);
      if (b && !a && typeof ka === 'bigint') return compareWithBig(n.op, b, ka, false);
      const op = arithmetic(n.op);
      if (!a || !b || !op) return null;
      return (r) => op(a(r), b(r));
    }
    case 'cond': {
      const c = compileNum(n.c, ctx);
      const a = compileNum(n.a, ctx);
      const b = compileNum(n.b, ctx);
      if (!c || !a || !b) return null;
      return (r) => { const v = c(r); return v !== v ? NaN : v !== 0 ? a(r) : b(r); };
    }
    default:
      return null;
  }
}

function compileNumOr(n: CNode, k: CValue | undefined, ctx: PrintContext): Num | null {
  if (typeof k === 'bigint' && safe(k)) {
    const v = Number(k);
    return () => v;
  }
  return compileNum(n, ctx);
}

/** A C integer conversion to `bits` on a number; NaN where the result leaves the safe range. */
function castNum(e: Num, bits: number, signed: boolean): Num {
  if (bits >= 64) return signed ? e : (r) => { const v = e(r); return v >= 0 ? v : NaN; };
  const shift = 32 - bits;
  if (bits === 32) return signed ? (r) => { const v = e(r); return v !== v ? NaN : v | 0; } : (r) => { const v = e(r); return v !== v ? NaN : v >>> 0; };
  if (signed) return (r) => { const v = e(r); return v !== v ? NaN : (v << shift) >> shift; };
  const mask = 2 ** bits - 1;
  return (r) => { const v = e(r); return v !== v ? NaN : v & mask; };
}

/** Writes a string-valued node; false (having written nothing) when the exact path must decide. */
type StrWriter = (rec: RecordView, sink: ByteSink) => boolean;

/** A char array or dynamic string field, its bytes up to the NUL (UTF-8 passes through as is). */
function stringField(f: KField): StrWriter {
  const off = f.offset;
  const fixedEnd = f.size === 0 ? -1 : off + f.size;
  return (r, sink) => {
    const recordEnd = r.start + r.length;
    if (f.dataLoc) {
      const loc = r.dv.getUint32(r.start + off, true);
      const start = r.start + (loc & 0xffff) + (f.dataLoc === 'rel' ? off + 4 : 0);
      sink.cString(r.u8, start, Math.min(start + (loc >>> 16), recordEnd));
    } else {
      sink.cString(r.u8, r.start + off, fixedEnd < 0 ? recordEnd : Math.min(r.start + fixedEnd, recordEnd));
    }
    return true;
  };
}

/** `{ value, "NAME" }` pairs as constants; null when an entry is not constant. */
function constantPairs(items: CNode[], ctx: PrintContext): [bigint, string][] | null {
  const out: [bigint, string][] = [];
  for (const item of items) {
    if (item.t !== 'list' || item.items.length !== 2) return null;
    const name = constant(item.items[1]!, ctx);
    if (name === undefined) return null;
    if (typeof name !== 'string') continue; // { 0, NULL } terminator
    if (item.items[0]!.t === 'id') continue; // an unresolved enum name matches nothing (cexpr's rule)
    const v = constant(item.items[0]!, ctx);
    if (typeof v !== 'bigint') return null;
    out.push([v, name]);
  }
  return out;
}

/** Distinct values whose text a table printer keeps (flag words repeat; counters would not). */
const MEMO_LIMIT = 4096;

/** Distinct addresses whose %pS text is kept. */
const SYMBOL_MEMO_LIMIT = 1 << 16;

/**
 * __print_flags on 32-bit values, libtraceevent's algorithm (cexpr's printFlags), each value's
 * text encoded once made; past 32 bits the exact path decides.
 */
function flagsPrinter(value: Num, delim: string, flags: [number, string][]): StrWriter {
  const memo = new Map<number, Uint8Array>();
  const text = (word: number) => {
    let v = word;
    let out = '';
    let printed = false;
    for (const [m, name] of flags) {
      if (v === 0 && m === 0) {
        out += name;
        break;
      }
      if (m !== 0 && ((v & m) >>> 0) === m) {
        if (printed && delim) out += delim;
        out += name;
        printed = true;
        v = (v & ~m) >>> 0;
      }
    }
    if (v !== 0) {
      if (printed && delim) out += delim;
      out += `0x${v.toString(16)}`;
    }
    return encode(out);
  };
  return (r, sink) => {
    const v = value(r);
    if (!(v >= 0 && v < TWO32)) return false;
    let out = memo.get(v);
    if (out === undefined) {
      out = text(v);
      if (memo.size < MEMO_LIMIT) memo.set(v, out);
    }
    sink.bytes(out);
    return true;
  };
}

const HEX_PREFIX = encode('0x');
const NIL = encode('(nil)');

/** The node as a string writer, or null when it is not string-valued (or not understood here). */
function compileStr(n: CNode, ctx: PrintContext): StrWriter | null {
  const k = constant(n, ctx);
  if (typeof k === 'string') {
    const bytes = encode(k);
    return (_r, sink) => {
      sink.bytes(bytes);
      return true;
    };
  }
  if (k !== undefined) return null;
  switch (n.t) {
    case 'id':
    case 'field': {
      const f = ctx.field(n.name);
      return f && f.isString && (n.t === 'id' || n.index === null) ? stringField(f) : null;
    }
    case 'cast': return compileStr(n.e, ctx);
    case 'cond': {
      const c = compileNum(n.c, ctx);
      const a = compileStr(n.a, ctx);
      const b = compileStr(n.b, ctx);
      if (!c || !a || !b) return null;
      return (r, sink) => {
        const v = c(r);
        return v !== v ? false : v !== 0 ? a(r, sink) : b(r, sink);
      };
    }
    case 'call': {
      if (n.name === '__get_str' || n.name === '__get_rel_str') {
        const a = n.args[0];
        const f = a && (a.t === 'id' || a.t === 'field') ? ctx.field(a.name) : undefined;
        return f && f.isString && f.dataLoc ? stringField(f) : null;
      }
      if (n.name === '__print_flags' && n.args.length >= 2) {
        const value = compileNum(n.args[0]!, ctx);
        const delim = constant(n.args[1]!, ctx);
        const pairs = constantPairs(n.args.slice(2), ctx);
        if (!value || !pairs || !pairs.every(([m]) => m >= 0n && m < BigInt(TWO32))) return null;
        return flagsPrinter(value, typeof delim === 'string' ? delim : '', pairs.map(([m, s]) => [Number(m), s]));
      }
      if ((n.name === '__print_symbolic' || n.name === '__print_symbolic_u64') && n.args.length >= 1) {
        const value = compileNum(n.args[0]!, ctx);
        const pairs = constantPairs(n.args.slice(1), ctx);
        if (!value || !pairs || !pairs.every(([v]) => v >= 0n && safe(v))) return null;
        const labels = new Map<number, Uint8Array>();
        for (const [v, s] of pairs) if (!labels.has(Number(v))) labels.set(Number(v), encode(s));
        return (r, sink) => {
          const v = value(r);
          if (!(v >= 0)) return false; // negative (matched as 64-bit unsigned) or NaN: exact path
          const label = labels.get(v);
          if (label) {
            sink.bytes(label);
          } else {
            sink.bytes(HEX_PREFIX);
            sink.hexNumber(v);
          }
          return true;
        };
      }
      return null;
    }
    default:
      return null;
  }
}

/** A 64-bit integer field, under casts that keep all its 64 bits. */
function wholeField64(n: CNode, ctx: PrintContext): KField | undefined {
  while (n.t === 'cast' && n.bits === 64) n = n.e;
  if (n.t !== 'field' && n.t !== 'id') return undefined;
  if (n.t === 'field' && n.index !== null) return undefined;
  const f = numericField(ctx, n.name);
  return f && f.size === 8 && f.arrayLength === 0 ? f : undefined;
}

/**
 * %pS and friends of a 64-bit field: the symbol text per address, encoded once (call sites
 * repeat), keyed by the address's two halves as small integers.
 */
function symbolPrinter(f: KField, exactText: (r: RecordView, symbols: SymbolTable | undefined) => string): ArgPrinter {
  let table: SymbolTable | undefined;
  let cache = new Map<number, Map<number, Uint8Array>>();
  let kept = 0;
  const off = f.offset;
  return (r, sink, symbols) => {
    if (off + 8 > r.length) {
      sink.text(exactText(r, symbols));
      return;
    }
    if (symbols !== table) {
      table = symbols;
      cache = new Map();
      kept = 0;
    }
    const hi = r.dv.getInt32(r.start + off + 4, true);
    const lo = r.dv.getInt32(r.start + off, true);
    let byLo = cache.get(hi);
    if (!byLo) cache.set(hi, (byLo = new Map()));
    let text = byLo.get(lo);
    if (text === undefined) {
      text = encode(exactText(r, symbols));
      // Call sites are a few thousand; a field of arbitrary addresses must not grow this forever.
      if (kept++ < SYMBOL_MEMO_LIMIT) byLo.set(lo, text);
    }
    sink.bytes(text);
  };
}

/** An integer conversion of a number-valued node; the exact path where the number is NaN or out of its range. */
function numberPrinter(c: Conversion, value: Num, exact: ArgPrinter): ArgPrinter {
  // A pointer is 64 bits whatever the length modifier (formatKernel's rule).
  const bits = c.conv === 'p' ? 64 : lengthBits(c.length);
  const signed = c.conv === 'd' || c.conv === 'i';
  const cast = castNum(value, bits, signed);
  const plain = c.flags === '' && c.width === 0 && c.precision < 0;
  if (c.conv === 'p' && plain) {
    return (r, sink, symbols) => {
      const v = cast(r);
      if (!(v >= 0)) return exact(r, sink, symbols);
      if (v === 0) {
        sink.bytes(NIL);
      } else {
        sink.bytes(HEX_PREFIX);
        sink.hexNumber(v);
      }
    };
  }
  if (plain && signed) {
    return (r, sink, symbols) => {
      const v = cast(r);
      if (v !== v) exact(r, sink, symbols);
      else sink.int(v);
    };
  }
  if (plain && (c.conv === 'u' || c.conv === 'x')) {
    const hex = c.conv === 'x';
    return (r, sink, symbols) => {
      const v = cast(r);
      if (!(v >= 0)) exact(r, sink, symbols);
      else if (hex) sink.hexNumber(v);
      else sink.uint(v);
    };
  }
  return (r, sink, symbols) => {
    const v = cast(r);
    if (v !== v || (!signed && c.conv !== 'c' && v < 0)) return exact(r, sink, symbols);
    if (c.conv === 'c') return sink.text(formatValue(c, v));
    if (c.conv === 'p') return sink.text(pad(v === 0 ? '(nil)' : `0x${v.toString(16)}`, c, false));
    const radix = c.conv === 'o' ? 8 : c.conv === 'x' || c.conv === 'X' ? 16 : 10;
    sink.text(formatInteger(c, Math.abs(v).toString(radix), v < 0, v !== 0));
  };
}

/** A string-valued argument with its conversion: %s with width and precision counted in bytes, as C's. */
function stringPrinter(c: Conversion, str: StrWriter, exact: ArgPrinter): ArgPrinter {
  if (c.conv === 's' && c.width === 0 && c.precision < 0) {
    return (r, sink, symbols) => {
      if (!str(r, sink)) exact(r, sink, symbols);
    };
  }
  const left = c.flags.includes('-');
  return (r, sink, symbols) => {
    const mark = sink.pos;
    if (!str(r, sink)) return exact(r, sink, symbols);
    if (c.conv !== 's') {
      const s = sink.decode(mark);
      sink.pos = mark;
      return sink.text(formatValue(c, s));
    }
    if (c.precision >= 0 && sink.pos - mark > c.precision) sink.pos = mark + c.precision;
    sink.padFrom(mark, c.width, left);
  };
}

/** One argument of the print fmt, compiled for its conversion. */
export function compileArg(c: Conversion, node: CNode, ctx: PrintContext): ArgPrinter {
  const exactText = (r: RecordView, symbols: SymbolTable | undefined) => formatKernel(c, evaluate(node, ctx.scope(r)), symbols);
  const exact: ArgPrinter = (r, sink, symbols) => sink.text(exactText(r, symbols));
  const str = compileStr(node, ctx);
  if (str) return stringPrinter(c, str, exact);
  const whole = wholeField64(node, ctx);
  if (c.conv === 'p' && c.ext && 'SsFfB'.includes(c.ext)) return whole ? symbolPrinter(whole, exactText) : exact;
  const plain = c.flags === '' && c.width === 0 && c.precision < 0;
  if (whole && plain && (c.conv === 'p' || (c.conv === 'x' && lengthBits(c.length) === 64))) {
    const off = whole.offset;
    const pointer = c.conv === 'p';
    return (r, sink, symbols) => {
      if (off + 8 > r.length) return exact(r, sink, symbols);
      const lo = r.dv.getUint32(r.start + off, true);
      const hi = r.dv.getUint32(r.start + off + 4, true);
      if (pointer) {
        if (hi === 0 && lo === 0) return sink.bytes(NIL);
        sink.bytes(HEX_PREFIX);
      }
      sink.hex(hi, lo);
    };
  }
  const num = compileNum(node, ctx);
  if (num && c.conv !== 's') return numberPrinter(c, num, exact);
  return exact;
}
