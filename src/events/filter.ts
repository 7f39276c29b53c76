/**
 * Event filters in the kernel's grammar (kernel/trace/trace_events_filter.c), compiled to
 * closures over the payload an event is emitted with, so a filtered-out event is never written.
 * User text is only ever tokenized here: field names select among the event's fields, values
 * become numbers, strings and glob patterns; nothing is evaluated.
 *
 * The parser follows the kernel step by step because its errors are part of the interface:
 * which errno a bad filter gives (EINVAL, or the odd -1/-2/-3 the kernel's paren and quote
 * checks return: EPERM, ENOENT, ESRCH), the message, and the byte the caret points at.
 *
 * Grammar: `expr := term {("&&"|"||") term}` with `&&` binding tighter; `term := "!" term |
 * "(" expr ")" | field OP value`. A predicate is run as the kernel's program: each entry tests
 * one predicate and on a given result jumps forward (see predicateParse).
 */
import type { ErrnoCode } from '../errno.js';
import { IDENTIFIER, type FieldLayout } from './fields.js';

/** Kernel filter error texts (FILT_ERR_*), by the name the kernel gives them. */
export const FILTER_ERRORS = {
  INVALID_OP: 'Invalid operator',
  TOO_MANY_OPEN: "Too many '('",
  TOO_MANY_CLOSE: "Too few '('",
  MISSING_QUOTE: 'Missing matching quote',
  MISSING_BRACE_OPEN: "Missing '{'",
  MISSING_BRACE_CLOSE: "Missing '}'",
  OPERAND_TOO_LONG: 'Operand too long',
  EXPECT_STRING: 'Expecting string field',
  EXPECT_DIGIT: 'Expecting numeric field',
  ILLEGAL_FIELD_OP: 'Illegal operation for field type',
  FIELD_NOT_FOUND: 'Field not found',
  ILLEGAL_INTVAL: 'Illegal integer value',
  BAD_SUBSYS_FILTER: "Couldn't find or set field in one of a subsystem's events",
  TOO_MANY_PREDS: 'Too many terms in predicate expression',
  INVALID_FILTER: 'Meaningless filter expression',
  INVALID_CPULIST: 'Invalid cpulist',
  FUNCTION_NOT_FOUND: 'Function not found',
  INVALID_VALUE: 'Invalid value (did you forget quotes)?',
} as const;

export type FilterErrorName = keyof typeof FILTER_ERRORS;

/** A filter that does not parse: the errno of the write, and what the filter file then shows. */
export class FilterError extends Error {
  readonly code: ErrnoCode;
  /** null: the kernel set no error code (the file shows `Error: (0)`, error_log says `Error`). */
  readonly error: FilterErrorName | null;
  /** Byte offset the caret points at. */
  readonly pos: number;

  constructor(code: ErrnoCode, error: FilterErrorName | null, pos: number) {
    super(`${code}: ${error ? FILTER_ERRORS[error] : 'Error'} at offset ${pos}`);
    this.name = 'FilterError';
    this.code = code;
    this.error = error;
    this.pos = pos;
  }

  /** The text error_log gives after `error: `. */
  get text(): string {
    return this.error ? FILTER_ERRORS[this.error] : 'Error';
  }
}

/**
 * What a filter file reads after a failed write: append_filter_err() stores the text, a caret
 * line and the message, each ending in a newline, and reading adds one more.
 */
export function failedFilterText(filter: string, err: FilterError): string {
  if (!err.error) return `${filter}\nError: (0)\n\n`;
  const width = Math.min(err.pos, filter.length);
  return `${filter}\n${' '.repeat(width)}^\nparse_error: ${err.text}\n\n`;
}

/** What a predicate reads. Payload fields read `p`; the thread's constants are folded in. */
export type FilterOperand =
  | {
    kind: 'number'; size: number; signed: boolean; read: (p: any) => unknown;
    /** For payload fields up to 32 bits: a JS expression over `p` giving the stored value (see operandFor). */
    expr?: string;
  }
  | { kind: 'string'; read: (p: any) => unknown }
  | { kind: 'const-string'; value: string }
  | { kind: 'cpu'; value: number };

/** Finds a field by name (event fields, then CPU/COMM, then common fields), or undefined. */
export type FieldLookup = (name: string) => FilterOperand | undefined;

export type Predicate = (p: any) => boolean;

const OPS = ['~', '!=', '==', '<=', '<', '>=', '>', '&'] as const;
type Op = (typeof OPS)[number];
const NUM_BUF = 24;
const MAX_STRING = 256;

const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isAlnum = (c: string | undefined) => c !== undefined && /^[A-Za-z0-9]$/.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

const INVERT = 1;
const PROCESS_AND = 2;
const PROCESS_OR = 4;

/** Parse and compile `text`; throws FilterError. An all-true filter never needs compiling away. */
export function compileFilter(text: string, lookup: FieldLookup): Predicate {
  const { parens, preds } = calcStack(text);
  if (preds === 0) throw new FilterError('EINVAL', null, 0);
  return predicateParse(text, parens, preds, (at, pos) => parsePred(text, at, pos, lookup));
}

/**
 * First pass over the string, as calc_stack(): count predicates and paren depth, and find
 * unbalanced parentheses and quotes. Its error returns are -1, -2, -3 in the kernel, which
 * reach user space as EPERM, ENOENT and ESRCH.
 */
function calcStack(str: string): { parens: number; preds: number } {
  let isPred = false;
  let preds = 0;
  let open = 1;
  let maxOpen = 1;
  let quote = '';
  let lastQuote = 0;
  let i = 0;
  for (; i < str.length; i++) {
    const c = str[i]!;
    if (isSpace(c)) continue;
    if (quote) {
      if (c === quote) quote = '';
      continue;
    }
    switch (c) {
      case "'":
      case '"':
        quote = c;
        lastQuote = i;
        break;
      case '|':
      case '&':
        if (str[i + 1] !== c) break;
        isPred = false;
        continue;
      case '(':
        isPred = false;
        open++;
        maxOpen = Math.max(maxOpen, open);
        continue;
      case ')':
        isPred = false;
        if (open === 1) throw new FilterError('EPERM', 'TOO_MANY_CLOSE', i);
        open--;
        continue;
    }
    if (!isPred) {
      preds++;
      isPred = true;
    }
  }
  if (quote) throw new FilterError('ESRCH', 'MISSING_QUOTE', lastQuote);
  if (open !== 1) {
    // Find the '(' left open, walking back.
    let level = open;
    for (i--; i > 0; i--) {
      const c = str[i]!;
      if (quote) {
        if (c === quote) quote = '';
        continue;
      }
      if (c === '(') {
        if (level === open) throw new FilterError('ENOENT', 'TOO_MANY_OPEN', i);
        level--;
      } else if (c === ')') level++;
      else if (c === "'" || c === '"') quote = c;
    }
    throw new FilterError('ENOENT', 'TOO_MANY_OPEN', 0);
  }
  return { parens: maxOpen, preds };
}

/**
 * The kernel's predicate_parse(): one pass over the string builds a program of predicates,
 * each with the result that makes it branch (`when`) and where to (`target`), then two passes
 * shorten the jumps and fold the `!` inversions in. Worked example in the kernel's comment.
 */
function predicateParse(str: string, nrParens: number, nrPreds: number, parse: (at: number, pos: number) => { pred: Predicate; len: number }): Predicate {
  const preds: Predicate[] = [];
  const target: number[] = [];
  const when: number[] = [];
  const inverts: number[] = [];
  const stack: number[] = [0];
  let invert = 0;
  let ptr = 0;
  let expectPred = true;
  const update = (n: number, inv: number) => {
    const t = target[n]!;
    const s = target[t]!;
    when[t] = inv;
    target[t] = n;
    target[n] = s;
  };
  outer: while (ptr < str.length) {
    const next = ptr++;
    const c = str[next];
    if (isSpace(c)) continue;
    if (c === '(') {
      if (stack.length > nrParens + 1) throw new FilterError('EINVAL', null, 0);
      stack.push(invert);
      continue;
    }
    if (c === '!' && str[next + 1] !== '=' && str[next + 1] !== '~') {
      invert = invert ? 0 : 1;
      continue;
    }
    if (preds.length >= nrPreds) throw new FilterError('EPERM', 'TOO_MANY_PREDS', next);
    const n = preds.length;
    inverts[n] = invert;
    target[n] = n - 1;
    when[n] = 0;
    const { pred, len } = parse(next, ptr);
    preds.push(pred);
    ptr = next + len;
    expectPred = false;
    for (;;) {
      const at = ptr++;
      const t = str[at];
      if (isSpace(t)) continue;
      let op = t;
      if (t === undefined || t === ')') {
        // end or close paren
      } else if ((t === '&' || t === '|') && str[at + 1] === t) {
        ptr++;
      } else {
        throw new FilterError('EPERM', 'TOO_MANY_PREDS', at);
      }
      const top = stack.length - 1;
      invert = stack[top]! & INVERT;
      if (stack[top]! & PROCESS_AND) {
        update(preds.length - 1, invert);
        stack[top]! &= ~PROCESS_AND;
      }
      if (op === '&') {
        stack[top]! |= PROCESS_AND;
        expectPred = true;
        break;
      }
      if (stack[top]! & PROCESS_OR) {
        update(preds.length - 1, invert ? 0 : 1);
        stack[top]! &= ~PROCESS_OR;
      }
      if (op === '|') {
        stack[top]! |= PROCESS_OR;
        expectPred = true;
        break;
      }
      if (op === undefined) break outer;
      if (top === 0) throw new FilterError('EPERM', 'TOO_MANY_CLOSE', ptr);
      stack.pop();
      op = '';
    }
  }
  if (stack.length !== 1) throw new FilterError('ENOENT', 'TOO_MANY_OPEN', ptr);
  // A dangling `&&`, `||` or `!`: Linux 6.12 rejects it (6.18 accepts it and ignores the operator).
  if (expectPred || invert !== (stack[0]! & INVERT)) throw new FilterError('EINVAL', 'INVALID_FILTER', str.length);
  const N = preds.length;
  target[N] = 1;
  target[N + 1] = 0;
  when[N] = 0;
  when[N + 1] = 0;
  target[N - 1] = N;
  when[N - 1] = 0;
  for (let i = N - 1; i--;) {
    const t = target[i]!;
    if (when[i] === when[t]) target[i] = target[t]!;
  }
  for (let i = 0; i < N; i++) when[i] = inverts[i]! ^ when[i]!;
  return program(preds, when, target);
}

/** Run the program: entry i tests preds[i]; on `when[i]` it jumps to target[i] + 1. */
function program(preds: Predicate[], when: number[], target: number[]): Predicate {
  const N = preds.length;
  if (N === 1) {
    const only = preds[0]!;
    // when 1: branch past TRUE to FALSE on a match; when 0: a match falls through to TRUE.
    return when[0] ? (p) => !only(p) : only;
  }
  const branchOn = when.slice(0, N).map((w) => w === 1);
  const jump = target.slice(0, N).map((t) => t + 1);
  return (p) => {
    let i = 0;
    while (i < N) i = preds[i]!(p) === branchOn[i] ? jump[i]! : i + 1;
    return i === N;
  };
}

/** parse_pred(): `field[.mod] OP value` from `at`; returns the predicate and its length. */
function parsePred(str: string, at: number, pos: number, lookup: FieldLookup): { pred: Predicate; len: number } {
  const s0 = str.slice(at);
  let i = 0;
  while (isSpace(s0[i])) i++;
  let s = i;
  while (isAlnum(s0[i]) || s0[i] === '_') i++;
  if (i === s) throw new FilterError('EPERM', null, 0);
  const field = lookup(s0.slice(s, i));
  if (!field) throw new FilterError('EINVAL', 'FIELD_NOT_FOUND', pos + i);
  let asFunction = false;
  if (s0.startsWith('.ustring', i)) i += 8;
  if (s0.startsWith('.function', i)) {
    asFunction = true;
    i += 9;
  }
  while (isSpace(s0[i])) i++;
  const op = OPS.find((o) => s0.startsWith(o, i));
  if (!op) throw new FilterError('EINVAL', 'INVALID_OP', pos + i);
  i += op.length;
  while (isSpace(s0[i])) i++;
  s = i;
  const c = s0[i];
  if (asFunction) {
    const numeric = field.kind === 'number' && field.size === 8 && !field.signed;
    if (!numeric || (op !== '==' && op !== '!=')) throw new FilterError('EINVAL', 'ILLEGAL_FIELD_OP', pos + i);
    while (i < s0.length && !isSpace(s0[i]) && s0[i] !== ')' && s0[i] !== '&' && s0[i] !== '|') i++;
    // JavaScript events carry no kernel symbols: no function name can be found.
    throw new FilterError('EINVAL', 'FUNCTION_NOT_FOUND', pos + i);
  }
  if (field.kind === 'cpu' && s0.startsWith('CPUS', i)) {
    if (op !== '==' && op !== '!=' && op !== '&') throw new FilterError('EINVAL', 'ILLEGAL_FIELD_OP', pos + i);
    i += 4;
    if (s0[i] !== '{') throw new FilterError('EINVAL', 'MISSING_BRACE_OPEN', pos + i);
    const close = s0.indexOf('}', i);
    if (close < 0) throw new FilterError('EINVAL', 'MISSING_BRACE_CLOSE', pos + i);
    const cpus = parseCpuList(s0.slice(i + 1, close));
    if (!cpus) throw new FilterError('EINVAL', 'INVALID_CPULIST', pos + i);
    const hit = cpus.has(field.value);
    const result = op === '!=' ? !hit : op === '==' ? cpus.size === 1 && hit : hit;
    return { pred: result ? alwaysTrue : alwaysFalse, len: close + 1 };
  }
  if (c === "'" || c === '"') {
    if (op !== '==' && op !== '!=' && op !== '~') throw new FilterError('EINVAL', 'ILLEGAL_FIELD_OP', pos + i);
    if (field.kind !== 'string' && field.kind !== 'const-string') throw new FilterError('EINVAL', 'EXPECT_DIGIT', pos + i);
    for (i++; i < s0.length && s0[i] !== c; i++);
    if (i >= s0.length) throw new FilterError('ESRCH', 'MISSING_QUOTE', pos + i);
    if (i - s - 1 >= MAX_STRING) throw new FilterError('EINVAL', 'OPERAND_TOO_LONG', pos + i);
    const pattern = s0.slice(s + 1, i);
    return { pred: stringPredicate(field, op, pattern), len: i + 1 };
  }
  if (isDigit(c) || c === '-') {
    if (field.kind === 'string' || field.kind === 'const-string') throw new FilterError('EINVAL', 'EXPECT_STRING', pos + i);
    if (op === '~') throw new FilterError('EINVAL', 'ILLEGAL_FIELD_OP', pos + i);
    if (c === '-') i++;
    while (isAlnum(s0[i])) i++;
    if (i - s >= NUM_BUF) throw new FilterError('EINVAL', 'OPERAND_TOO_LONG', pos + i);
    const signed = field.kind === 'number' ? field.signed : true; // CPU is an int
    const value = parseKernelInteger(s0.slice(s, i), signed);
    if (value === null) throw new FilterError('EINVAL', 'ILLEGAL_INTVAL', pos + s);
    return { pred: numberPredicate(field, op, value), len: i };
  }
  throw new FilterError('EINVAL', 'INVALID_VALUE', pos + i);
}

const alwaysTrue: Predicate = () => true;
const alwaysFalse: Predicate = () => false;

/** kstrtoll/kstrtoull with base 0: `0x` hex, leading `0` octal, else decimal; range-checked. */
export function parseKernelInteger(text: string, signed: boolean): bigint | null {
  let t = text;
  let negative = false;
  if (t.startsWith('+')) t = t.slice(1);
  else if (t.startsWith('-')) {
    if (!signed) return null;
    negative = true;
    t = t.slice(1);
  }
  let digits: RegExp;
  let prefix = '';
  if (/^0[xX]/.test(t)) {
    digits = /^[0-9a-fA-F]+$/;
    prefix = '0x';
    t = t.slice(2);
  } else if (t.length > 1 && t.startsWith('0')) {
    digits = /^[0-7]+$/;
    prefix = '0o';
    t = t.slice(1);
  } else {
    digits = /^[0-9]+$/;
  }
  if (!digits.test(t)) return null;
  const magnitude = BigInt(prefix + t);
  if (magnitude > 0xffffffffffffffffn) return null;
  if (!signed) return magnitude;
  if (negative) return magnitude > 0x8000000000000000n ? null : -magnitude;
  return magnitude > 0x7fffffffffffffffn ? null : magnitude;
}

function parseCpuList(text: string): Set<number> | null {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 4096) return null;
    for (let c = from; c <= to; c++) cpus.add(c);
  }
  return cpus;
}

/** The field's value as the record would hold it: payload numbers cut to the field's C type. */
function numericReader(field: Extract<FilterOperand, { kind: 'number' }>): (p: any) => number | bigint {
  const read = field.read;
  const bits = field.size * 8;
  if (field.size === 8) {
    return (p) => {
      const v = read(p);
      if (typeof v === 'bigint') return field.signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      const n = Math.trunc(Number(v) || 0);
      if (Number.isSafeInteger(n) && (field.signed || n >= 0)) return n;
      return field.signed ? BigInt.asIntN(64, BigInt(n)) : BigInt.asUintN(64, BigInt(n));
    };
  }
  const shift = 32 - bits;
  if (field.signed) return shift ? (p) => ((Number(read(p)) << shift) >> shift) : (p) => Number(read(p)) | 0;
  return bits === 32 ? (p) => Number(read(p)) >>> 0 : (p) => Number(read(p)) & ((1 << bits) - 1);
}

function truncate(value: bigint, size: number, signed: boolean): bigint {
  const bits = size * 8;
  return signed ? BigInt.asIntN(bits, value) : BigInt.asUintN(bits, value);
}

function compare(op: Op, a: number | bigint, b: number | bigint): boolean {
  switch (op) {
    case '==': return a == b; // eslint-disable-line eqeqeq -- number vs bigint on purpose
    case '!=': return a != b; // eslint-disable-line eqeqeq
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    case '>=': return a >= b;
    default: return false;
  }
}

function numberPredicate(field: FilterOperand, op: Op, raw: bigint): Predicate {
  if (field.kind === 'cpu') {
    // A thread is always on its own CPU: the predicate is a constant.
    const v = BigInt(field.value);
    const result = op === '&' ? (v & raw) !== 0n : compare(op, v, BigInt.asIntN(32, raw));
    return result ? alwaysTrue : alwaysFalse;
  }
  if (field.kind !== 'number') return alwaysFalse;
  const value = truncate(raw, field.size, field.signed);
  if (field.size < 8 && field.expr) return compiledCompare(field.expr, op, Number(value));
  const read = numericReader(field);
  if (field.size < 8) {
    const c = Number(value);
    switch (op) {
      case '==': return (p) => read(p) === c;
      case '!=': return (p) => read(p) !== c;
      case '<': return (p) => (read(p) as number) < c;
      case '<=': return (p) => (read(p) as number) <= c;
      case '>': return (p) => (read(p) as number) > c;
      case '>=': return (p) => (read(p) as number) >= c;
      default: return (p) => ((read(p) as number) & c) !== 0;
    }
  }
  const small = Number.isSafeInteger(Number(value)) ? Number(value) : null;
  if (op === '&') {
    return (p) => {
      const v = read(p);
      return (BigInt(v) & value) !== 0n;
    };
  }
  return (p) => {
    const v = read(p);
    return typeof v === 'number' && small !== null ? compare(op, v, small) : compare(op, BigInt(v), value);
  };
}

/**
 * A comparison on a small integer field as one generated function, so V8 inlines it whole into
 * the emitter (the filtered emit path's budget is a few ns). The source holds only `expr`, made
 * by operandFor from a field name that passed IDENTIFIER, an operator from OPS and an integer
 * we formatted: no user text (the same rule as events/codegen.ts).
 */
function compiledCompare(expr: string, op: Op, c: number): Predicate {
  if (!Number.isSafeInteger(c) || !OPS.includes(op)) throw new TypeError('bad comparison');
  const test = op === '&' ? `((${expr}) & ${c}) !== 0` : `(${expr}) ${op === '==' ? '===' : op === '!=' ? '!==' : op} ${c}`;
  // eslint-disable-next-line no-new-func -- see the comment above
  return new Function(`"use strict"; return function filter(p) { return ${test}; };`)() as Predicate;
}

/** String predicates: `==`/`!=` compare whole strings; `~` globs the kernel's way. */
function stringPredicate(field: FilterOperand, op: Op, pattern: string): Predicate {
  let not = op === '!=';
  let match: (s: string) => boolean;
  if (op === '~') {
    let pat = pattern;
    if (pat.startsWith('!')) {
      not = true;
      pat = pat.slice(1);
    }
    match = globMatcher(pat);
  } else {
    match = (s) => s === pattern;
  }
  if (field.kind === 'const-string') return match(field.value) !== not ? alwaysTrue : alwaysFalse;
  if (field.kind !== 'string') return alwaysFalse;
  const read = field.read;
  return not ? (p) => !match(String(read(p) ?? '')) : (p) => match(String(read(p) ?? ''));
}

/** filter_parse_regex(): `x*`, `*x`, `*x*` are plain searches; any other `*`, `?`, `[` or `\` is a glob. */
export function globMatcher(pattern: string): (s: string) => boolean {
  let type: 'full' | 'front' | 'end' | 'middle' = 'full';
  let body = pattern;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (i === 0) type = 'end';
      else if (i === pattern.length - 1) {
        type = type === 'end' ? 'middle' : 'front';
        body = pattern.slice(0, i);
        break;
      } else return (s) => globMatch(pattern, s);
    } else if (c === '[' || c === '?' || c === '\\') {
      return (s) => globMatch(pattern, s);
    }
  }
  if (body.startsWith('*')) body = body.slice(1);
  switch (type) {
    case 'full': return (s) => s === body;
    case 'front': return (s) => s.startsWith(body);
    case 'end': return (s) => s.endsWith(body);
    default: return (s) => s.includes(body);
  }
}

/**
 * lib/glob.c's glob_match(): `*`, `?`, `[...]` with ranges and `!` negation, `\` escapes.
 * One backtrack point, so time is bounded by pattern × string length, never exponential.
 */
export function globMatch(pat: string, str: string): boolean {
  let p = 0;
  let s = 0;
  let backPat = -1;
  let backStr = -1;
  for (;;) {
    const c = str[s];
    const d = pat[p];
    let matched = false;
    if (c === undefined) return d === undefined || (d === '*' && pat.slice(p).split('').every((x) => x === '*'));
    if (d === '?') {
      matched = true;
      p++;
    } else if (d === '*') {
      if (p + 1 === pat.length) return true;
      backPat = ++p;
      backStr = s;
      continue;
    } else if (d === '[') {
      let q = p + 1;
      const inverted = pat[q] === '!';
      if (inverted) q++;
      let hit = false;
      let a = pat[q++];
      let closed = false;
      do {
        if (a === undefined) break;
        let b = a;
        if (pat[q] === '-' && pat[q + 1] !== ']') {
          if (pat[q + 1] === undefined) break;
          b = pat[q + 1]!;
          q += 2;
          if (a > b) [a, b] = [b, a];
        }
        if (c >= a && c <= b) hit = true;
        a = pat[q++];
        if (a === ']') closed = true;
      } while (!closed);
      if (!closed) {
        // An unterminated class is a literal '['.
        if (c === '[') {
          matched = true;
          p++;
        }
      } else if (hit !== inverted) {
        matched = true;
        p = q;
      }
    } else {
      let want = d;
      let q = p + 1;
      if (d === '\\' && pat[q] !== undefined) want = pat[q++];
      if (want === c) {
        matched = true;
        p = q;
      }
    }
    if (matched) {
      s++;
      continue;
    }
    if (backPat < 0 || str[backStr] === undefined) return false;
    p = backPat;
    s = ++backStr;
  }
}

/** How a payload value becomes what a field of this size holds, as JS over `p.NAME`. */
function storedExpr(f: FieldLayout): string | undefined {
  if (!IDENTIFIER.test(f.name)) return undefined;
  const v = `p.${f.name}`;
  if (f.kind === 'bool') return `(${v} ? 1 : 0)`;
  if (f.kind !== 'int') return undefined;
  const shift = 32 - f.size * 8;
  if (f.signed) return shift ? `((${v} << ${shift}) >> ${shift})` : `(${v} | 0)`;
  return shift ? `(${v} & ${2 ** (f.size * 8) - 1})` : `(${v} >>> 0)`;
}

/** Field kinds a payload filter can read; anything else (bytes) cannot be filtered on. */
export function operandFor(f: FieldLayout, read: (p: any) => unknown): FilterOperand | undefined {
  switch (f.kind) {
    case 'int':
    case 'bool':
    case 'long':
      return { kind: 'number', size: f.size, signed: f.signed, read, expr: storedExpr(f) };
    case 'chars':
    case 'string':
      return { kind: 'string', read };
    default:
      return undefined;
  }
}
