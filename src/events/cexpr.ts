/**
 * The C expressions of a `print fmt` line (`REC->field`, casts, arithmetic, ternaries,
 * `__get_str`, `__print_flags`, `__print_symbolic`, …), parsed once into a tree. print-fmt.ts
 * compiles the tree into printers; evaluate() here walks it exactly (BigInt), for constant
 * folding and for the records whose values leave the printers' safe-integer range. Nothing is
 * ever handed to eval or Function: format files come from files and kernels we do not control.
 *
 * Values are bigints (every integer, so 64-bit pointers and masks stay exact) or strings.
 * Identifiers the kernel leaves in formats (`vmemmap_base`, enum names) evaluate to 0, as
 * libtraceevent does.
 */

export type CValue = bigint | string;

export type CNode =
  | { t: 'num'; v: bigint; unsigned: boolean }
  | { t: 'str'; v: string }
  | { t: 'id'; name: string }
  | { t: 'field'; name: string; index: CNode | null }
  | { t: 'unary'; op: string; e: CNode }
  | { t: 'cast'; bits: number; signed: boolean; e: CNode }
  | { t: 'bin'; op: string; a: CNode; b: CNode }
  | { t: 'cond'; c: CNode; a: CNode; b: CNode }
  | { t: 'call'; name: string; args: CNode[] }
  | { t: 'list'; items: CNode[] };

export class CParseError extends Error {}

const PUNCT = ['<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '->', '(', ')', '{', '}', '[', ']', ',', '?', ':', '+', '-', '*', '/', '%', '<', '>', '&', '|', '^', '!', '~', '.'];

type Token = { k: 'num'; v: bigint; unsigned: boolean } | { k: 'str'; v: string } | { k: 'id'; v: string } | { k: 'p'; v: string };

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '"') {
      let s = '';
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < src.length) {
          s += ESCAPES[src[i + 1]!] ?? src[i + 1]!;
          i += 2;
        } else {
          s += src[i++];
        }
      }
      if (i >= src.length) throw new CParseError('unterminated string');
      i++;
      const prev = out[out.length - 1];
      // Adjacent literals join, as in C ("a" "b").
      if (prev && prev.k === 'str') prev.v += s;
      else out.push({ k: 'str', v: s });
    } else if (ch === "'") {
      const m = /^'(\\.|[^'\\])'/.exec(src.slice(i));
      if (!m) throw new CParseError('bad character literal');
      const c = m[1]!.length === 2 ? (ESCAPES[m[1]![1]!] ?? m[1]![1]!) : m[1]!;
      out.push({ k: 'num', v: BigInt(c.charCodeAt(0)), unsigned: false });
      i += m[0].length;
    } else if (/[0-9]/.test(ch)) {
      const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)/.exec(src.slice(i))!;
      const text = m[1]!;
      const v = text.length > 1 && text[0] === '0' && !/[xX]/.test(text) ? BigInt('0o' + text.slice(1)) : BigInt(text);
      out.push({ k: 'num', v, unsigned: /u/i.test(m[2]!) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0] });
      i += m[0].length;
    } else {
      const p = PUNCT.find((q) => src.startsWith(q, i));
      if (!p) throw new CParseError(`unexpected '${ch}'`);
      out.push({ k: 'p', v: p });
      i += p.length;
    }
  }
  return out;
}

const TYPE_WORDS = new Set([
  'unsigned', 'signed', 'int', 'long', 'short', 'char', 'void', 'bool', '_Bool', 'const', 'volatile', 'struct', 'enum', 'union',
  'u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', '__u8', '__u16', '__u32', '__u64', '__s8', '__s16', '__s32', '__s64',
  'size_t', 'ssize_t', 'gfp_t', 'pid_t', 'uint8_t', 'uint16_t', 'uint32_t', 'uint64_t', 'int8_t', 'int16_t', 'int32_t', 'int64_t',
  'loff_t', 'dev_t', 'ino_t', 'umode_t', 'sector_t', 'blkcnt_t', 'phys_addr_t', 'dma_addr_t', 'resource_size_t', 'xfs_ino_t',
]);

/** Width and signedness of a cast type, from its words (pointers are 64-bit unsigned). */
function castOf(words: string[], pointer: boolean): { bits: number; signed: boolean } {
  if (pointer) return { bits: 64, signed: false };
  const has = (w: string) => words.includes(w);
  const unsigned = has('unsigned') || words.some((w) => /^(__)?u\d+$|^uint\d+_t$|^size_t$|^gfp_t$|^dma_addr_t$|^phys_addr_t$/.test(w));
  const sized = words.map((w) => /^(?:__)?[us](\d+)$|^u?int(\d+)_t$/.exec(w)).find(Boolean);
  let bits = 32;
  if (sized) bits = Number(sized[1] ?? sized[2]);
  else if (has('char') || has('bool') || has('_Bool')) bits = 8;
  else if (has('short')) bits = 16;
  else if (has('long') || words.some((w) => /size_t|loff_t|addr_t|sector_t/.test(w))) bits = 64;
  return { bits, signed: !unsigned && !has('bool') };
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(off = 0): Token | undefined {
    return this.toks[this.i + off];
  }

  private isP(v: string, off = 0): boolean {
    const t = this.peek(off);
    return t !== undefined && t.k === 'p' && t.v === v;
  }

  private expect(v: string): void {
    if (!this.isP(v)) throw new CParseError(`expected '${v}'`);
    this.i++;
  }

  get done(): boolean {
    return this.i >= this.toks.length;
  }

  /** A comma-separated list of expressions (the arguments after the format string). */
  list(): CNode[] {
    const out: CNode[] = [];
    while (!this.done) {
      out.push(this.cond());
      if (this.done) break;
      this.expect(',');
    }
    return out;
  }

  cond(): CNode {
    const c = this.binary(0);
    if (!this.isP('?')) return c;
    this.i++;
    const a = this.cond();
    this.expect(':');
    const b = this.cond();
    return { t: 'cond', c, a, b };
  }

  private static readonly LEVELS = [['||'], ['&&'], ['|'], ['^'], ['&'], ['==', '!='], ['<', '>', '<=', '>='], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];

  private binary(level: number): CNode {
    if (level >= Parser.LEVELS.length) return this.unary();
    let a = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (!t || t.k !== 'p' || !Parser.LEVELS[level]!.includes(t.v)) return a;
      this.i++;
      a = { t: 'bin', op: t.v, a, b: this.binary(level + 1) };
    }
  }

  /** `(type words [*...])` at the cursor: the cast's length in tokens, or 0. */
  private castLength(): number {
    if (!this.isP('(')) return 0;
    let j = 1;
    let words = 0;
    let known = false;
    for (;;) {
      const t = this.peek(j);
      if (!t) return 0;
      if (t.k === 'id') {
        if (t.v === 'REC') return 0;
        if (TYPE_WORDS.has(t.v) || /_t$/.test(t.v)) known = true;
        words++;
      } else if (t.k === 'p' && t.v === '*') {
        known = known || words > 0;
      } else if (t.k === 'p' && t.v === ')') {
        return known && words > 0 ? j + 1 : 0;
      } else {
        return 0;
      }
      j++;
    }
  }

  private unary(): CNode {
    const t = this.peek();
    if (t && t.k === 'p' && ['-', '!', '~', '+'].includes(t.v)) {
      this.i++;
      const e = this.unary();
      if (t.v === '-' && e.t === 'num' && e.unsigned) return { t: 'num', v: BigInt.asUintN(64, -e.v), unsigned: true };
      return t.v === '+' ? e : { t: 'unary', op: t.v, e };
    }
    if (t && t.k === 'p' && t.v === '&') {
      this.i++;
      return this.unary(); // &REC->field: libtraceevent treats it as the field
    }
    const cast = this.castLength();
    if (cast) {
      const words: string[] = [];
      let pointer = false;
      for (let j = 1; j < cast - 1; j++) {
        const w = this.peek(j)!;
        if (w.k === 'id') words.push(w.v);
        else pointer = true;
      }
      this.i += cast;
      const { bits, signed } = castOf(words, pointer);
      return { t: 'cast', bits, signed, e: this.unary() };
    }
    return this.postfix(this.primary());
  }

  private postfix(e: CNode): CNode {
    for (;;) {
      if (this.isP('->') || this.isP('.')) {
        this.i++;
        const name = this.peek();
        if (!name || name.k !== 'id') throw new CParseError('expected a field name after ->');
        this.i++;
        e = { t: 'field', name: name.v, index: null };
      } else if (this.isP('[')) {
        this.i++;
        const index = this.cond();
        this.expect(']');
        if (e.t !== 'field') throw new CParseError('indexing something other than a field');
        e = { t: 'field', name: e.name, index };
      } else {
        return e;
      }
    }
  }

  private primary(): CNode {
    const t = this.peek();
    if (!t) throw new CParseError('unexpected end of expression');
    this.i++;
    if (t.k === 'num') return { t: 'num', v: t.v, unsigned: t.unsigned };
    if (t.k === 'str') return { t: 'str', v: t.v };
    if (t.k === 'id') {
      if (this.isP('(')) {
        this.i++;
        const args: CNode[] = [];
        while (!this.isP(')')) {
          args.push(this.cond());
          if (!this.isP(')')) this.expect(',');
        }
        this.i++;
        return { t: 'call', name: t.v, args };
      }
      return { t: 'id', name: t.v };
    }
    if (t.v === '(') {
      const e = this.cond();
      this.expect(')');
      return e;
    }
    if (t.v === '{') {
      const items: CNode[] = [];
      while (!this.isP('}')) {
        items.push(this.cond());
        if (!this.isP('}')) this.expect(',');
      }
      this.i++;
      return { t: 'list', items };
    }
    throw new CParseError(`unexpected '${t.v}'`);
  }
}

/** Split `"fmt", args...` (the text after `print fmt: `) into the format and argument trees. */
export function parsePrintFmt(text: string): { fmt: string; args: CNode[] } {
  const toks = tokenize(text);
  const first = toks.shift();
  if (!first || first.k !== 'str') throw new CParseError('print fmt does not start with a string');
  if (toks.length && !(toks[0]!.k === 'p' && toks[0]!.v === ',')) throw new CParseError('expected , after the format string');
  const parser = new Parser(toks.slice(1));
  return { fmt: first.v, args: parser.list() };
}

/** What evaluation needs from a record. */
export interface CScope {
  /** A field's value: integers as bigint, char arrays and __data_loc strings as string; undefined if unknown. */
  field(name: string, index: number): CValue | undefined;
  /** __get_str / __get_dynamic_array contents. */
  dynamic(name: string): CValue | undefined;
}

export class CEvalError extends Error {}

function truthy(v: CValue): boolean {
  return typeof v === 'string' ? true : v !== 0n;
}

function num(v: CValue): bigint {
  if (typeof v === 'bigint') return v;
  throw new CEvalError('string used as a number');
}

/** __print_flags(value, delim, {mask, "NAME"}, ...) as libtraceevent prints it. */
function printFlags(value: bigint, delim: string, flags: [bigint, string][]): string {
  let out = '';
  let printed = false;
  let v = BigInt.asUintN(64, value);
  for (const [mask, name] of flags) {
    const m = BigInt.asUintN(64, mask);
    if (v === 0n && m === 0n) {
      out += name;
      break;
    }
    if (m !== 0n && (v & m) === m) {
      if (printed && delim) out += delim;
      out += name;
      printed = true;
      v &= ~m;
    }
  }
  if (v !== 0n) {
    if (printed && delim) out += delim;
    out += `0x${v.toString(16)}`;
  }
  return out;
}

function pairs(items: CNode[], scope: CScope): [bigint, string][] {
  const out: [bigint, string][] = [];
  for (const item of items) {
    if (item.t !== 'list' || item.items.length !== 2) throw new CEvalError('expected { value, "name" }');
    const name = evaluate(item.items[1]!, scope);
    if (typeof name !== 'string') continue; // { 0, NULL } terminator
    // An enum name the kernel left unresolved (no TRACE_DEFINE_ENUM) matches nothing, as in
    // libtraceevent: guessing its value would print a wrong name.
    if (item.items[0]!.t === 'id') continue;
    out.push([num(evaluate(item.items[0]!, scope)), name]);
  }
  return out;
}

function call(name: string, args: CNode[], scope: CScope): CValue {
  const arg = (i: number) => {
    const a = args[i];
    if (!a) throw new CEvalError(`${name}: missing argument ${i + 1}`);
    return a;
  };
  const fieldName = (i: number) => {
    const a = arg(i);
    if (a.t === 'id') return a.name;
    if (a.t === 'field') return a.name;
    throw new CEvalError(`${name}: expected a field name`);
  };
  switch (name) {
    case '__get_str':
    case '__get_rel_str':
    case '__get_dynamic_array':
    case '__get_rel_dynamic_array':
    case '__get_bitmask':
    case '__get_sockaddr': {
      const v = scope.dynamic(fieldName(0));
      if (v === undefined) throw new CEvalError(`no dynamic field ${fieldName(0)}`);
      return v;
    }
    case '__print_flags': {
      const value = num(evaluate(arg(0), scope));
      const delim = evaluate(arg(1), scope);
      return printFlags(value, typeof delim === 'string' ? delim : '', pairs(args.slice(2), scope));
    }
    case '__print_symbolic':
    case '__print_symbolic_u64': {
      const value = BigInt.asUintN(64, num(evaluate(arg(0), scope)));
      for (const [v, label] of pairs(args.slice(1), scope)) if (BigInt.asUintN(64, v) === value) return label;
      return `0x${value.toString(16)}`;
    }
    default:
      throw new CEvalError(`unsupported helper ${name}()`);
  }
}

function binary(op: string, a: bigint, b: bigint): bigint {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': if (b === 0n) throw new CEvalError('division by zero'); return a / b;
    case '%': if (b === 0n) throw new CEvalError('division by zero'); return a % b;
    case '<<': return BigInt.asUintN(64, a << (b & 63n));
    case '>>': return a >> (b & 63n);
    case '<': return a < b ? 1n : 0n;
    case '>': return a > b ? 1n : 0n;
    case '<=': return a <= b ? 1n : 0n;
    case '>=': return a >= b ? 1n : 0n;
    case '==': return a === b ? 1n : 0n;
    case '!=': return a !== b ? 1n : 0n;
    case '&': return BigInt.asUintN(64, a) & BigInt.asUintN(64, b);
    case '|': return BigInt.asUintN(64, a) | BigInt.asUintN(64, b);
    case '^': return BigInt.asUintN(64, a) ^ BigInt.asUintN(64, b);
    default: throw new CEvalError(`operator ${op}`);
  }
}

export function evaluate(n: CNode, scope: CScope): CValue {
  switch (n.t) {
    case 'num': return n.v;
    case 'str': return n.v;
    case 'id': {
      if (n.name === 'NULL') return 0n;
      if (n.name === 'true') return 1n;
      if (n.name === 'false') return 0n;
      const v = scope.field(n.name, -1);
      return v ?? 0n;
    }
    case 'field': {
      const index = n.index ? Number(num(evaluate(n.index, scope))) : -1;
      const v = scope.field(n.name, index);
      if (v === undefined) throw new CEvalError(`no field ${n.name}`);
      return v;
    }
    case 'unary': {
      const v = evaluate(n.e, scope);
      if (n.op === '!') return truthy(v) ? 0n : 1n;
      const x = num(v);
      return n.op === '-' ? -x : BigInt.asUintN(64, ~x);
    }
    case 'cast': {
      const v = evaluate(n.e, scope);
      if (typeof v === 'string') return v; // (char *)REC->buf and the like
      return n.signed ? BigInt.asIntN(n.bits, v) : BigInt.asUintN(n.bits, v);
    }
    case 'bin': {
      if (n.op === '&&') return truthy(evaluate(n.a, scope)) && truthy(evaluate(n.b, scope)) ? 1n : 0n;
      if (n.op === '||') return truthy(evaluate(n.a, scope)) || truthy(evaluate(n.b, scope)) ? 1n : 0n;
      return binary(n.op, num(evaluate(n.a, scope)), num(evaluate(n.b, scope)));
    }
    case 'cond': return truthy(evaluate(n.c, scope)) ? evaluate(n.a, scope) : evaluate(n.b, scope);
    case 'call': return call(n.name, n.args, scope);
    case 'list': throw new CEvalError('a { } list outside __print_flags/__print_symbolic');
  }
}
