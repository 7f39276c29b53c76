/**
 * Generated encoders: one straight-line function per event that writes its record with constant
 * offsets, so the emit path is monomorphic and allocation-free.
 *
 * Safety: the generated source is built only from
 *   - field names that passed IDENTIFIER (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), written as
 *     JSON-quoted property keys,
 *   - integers computed here (offsets, sizes, the event id), and
 *   - method names chosen from fixed tables below.
 * No other text (no format strings, no filter text, nothing read from a control file or a
 * trace file) ever reaches the Function constructor. instance/thread.ts compiles these
 * statements into each event's emit() under the same rule.
 */
import { Buffer } from 'node:buffer';
import type { EventLayout, FieldLayout } from './fields.js';
import { IDENTIFIER } from './fields.js';

/** Writes a record at `at`; `lens` holds the byte lengths size() measured for dynamic fields. */
export type Encoder = (dv: DataView, u8: Uint8Array, at: number, p: any, pid: number, lens: Int32Array) => void;
/** Payload bytes of a record (unaligned); a value over 0xffff per dynamic field means "too big". */
export type Sizer = (p: any, lens: Int32Array) => number;

const TOO_BIG = 0x7fffffff;

/** Below this length a JS loop measures a string faster than the call into C++ does. */
const SHORT_STRING = 16;

/** UTF-8 byte length. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n >= SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  }
  return n;
}

/** Copy the first `n` bytes of the UTF-8 form of `v` (a string, or anything String() accepts). */
export function writeUtf8(dv: DataView, u8: Uint8Array, at: number, v: unknown, n: number): void {
  const s = typeof v === 'string' ? v : String(v ?? '');
  if (n === s.length) {
    // Its UTF-8 form is as long as its UTF-16 one only when every char is ASCII: copy the chars,
    // four to a store (a third fewer cycles than byte stores for URL-sized strings).
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      dv.setUint32(at + i, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24), true);
    }
    for (; i < n; i++) u8[at + i] = s.charCodeAt(i);
  } else {
    Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).write(s, at, n, 'utf8');
  }
}

/** Copy a string into char[N]: at most N-1 bytes, then NULs to the end of the array. */
export function writeChars(u8: Uint8Array, at: number, v: unknown, size: number): void {
  const s = typeof v === 'string' ? v : String(v ?? '');
  const full = utf8Length(s);
  const n = Math.min(full, size - 1);
  if (full === s.length) {
    for (let i = 0; i < n; i++) u8[at + i] = s.charCodeAt(i);
  } else {
    Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).write(s, at, n, 'utf8');
  }
  u8.fill(0, at + n, at + size);
}

/** Split a 64-bit value (number or bigint) into two little-endian words. */
export function write64(dv: DataView, at: number, v: number | bigint, signed: boolean): void {
  if (typeof v === 'bigint') {
    if (signed) dv.setBigInt64(at, v, true);
    else dv.setBigUint64(at, v, true);
  } else {
    dv.setUint32(at, v >>> 0, true);
    dv.setUint32(at + 4, Math.floor(v / 4294967296) >>> 0, true);
  }
}

const SETTERS: Record<number, [string, string]> = {
  1: ['setUint8', 'setInt8'],
  2: ['setUint16', 'setInt16'],
  4: ['setUint32', 'setInt32'],
};

function key(f: FieldLayout): string {
  if (!IDENTIFIER.test(f.name)) throw new TypeError(`bad field name ${f.name}`);
  return `p[${JSON.stringify(f.name)}]`;
}

export function buildSizer(layout: EventLayout): Sizer {
  if (layout.fixed) {
    const size = layout.fixedSize;
    return () => size;
  }
  const lines = [`let n = ${layout.fixedSize} | 0, l = 0;`];
  let slot = 0;
  for (const f of layout.fields) {
    if (f.kind === 'string') {
      lines.push(`l = lens[${slot++}] = utf8Length(String(${key(f)} ?? ''));`);
      lines.push(`if (l >= 0xffff) return ${TOO_BIG}; n += l + 1;`);
    } else if (f.kind === 'bytes') {
      lines.push(`l = lens[${slot++}] = ${key(f)}.length | 0;`);
      lines.push(`if (l > 0xffff) return ${TOO_BIG}; n += l;`);
    }
  }
  lines.push('return n;');
  // eslint-disable-next-line no-new-func -- see the safety note at the top of this file
  return new Function('utf8Length', `"use strict"; return function size(p, lens) {\n${lines.join('\n')}\n};`)(utf8Length);
}

/** Helpers the encoder statements call, passed by these names to whoever compiles them. */
export const ENCODER_HELPERS = { write64, writeChars, writeUtf8 };

/**
 * The statements that write a record at `at`, given `dv`, `u8`, `p` (the payload), `pid` and
 * `lens`. Callers compile them inside their own function (an event's emit() inlines them).
 */
export function encoderStatements(layout: EventLayout, id: number): string {
  const lines = [`dv.setUint32(at, ${id >>> 0}, true);`, 'dv.setInt32(at + 4, pid, true);'];
  let slot = 0;
  let dynamic = false;
  for (const f of layout.fields) {
    const o = f.offset;
    switch (f.kind) {
      case 'int':
        lines.push(`dv.${SETTERS[f.size]![f.signed ? 1 : 0]}(at + ${o}, ${key(f)}${f.size > 1 ? ', true' : ''});`);
        break;
      case 'bool':
        lines.push(`u8[at + ${o}] = ${key(f)} ? 1 : 0;`);
        break;
      case 'long':
        lines.push(`write64(dv, at + ${o}, ${key(f)}, ${f.signed});`);
        break;
      case 'chars':
        lines.push(`writeChars(u8, at + ${o}, ${key(f)}, ${f.size});`);
        break;
      case 'string':
        if (!dynamic) lines.push(`let d = ${layout.fixedSize}, n = 0;`);
        dynamic = true;
        lines.push(`n = lens[${slot++}];`);
        lines.push(`dv.setUint32(at + ${o}, d | ((n + 1) << 16), true);`);
        lines.push(`writeUtf8(dv, u8, at + d, ${key(f)}, n);`);
        lines.push('u8[at + d + n] = 0; d += n + 1;');
        break;
      case 'bytes':
        if (!dynamic) lines.push(`let d = ${layout.fixedSize}, n = 0;`);
        dynamic = true;
        lines.push(`n = lens[${slot++}];`);
        lines.push(`dv.setUint32(at + ${o}, d | (n << 16), true);`);
        lines.push(`u8.set(${key(f)}, at + d); d += n;`);
        break;
    }
  }
  return lines.join('\n');
}

/** Compile encoderStatements() output into a standalone encoder. */
export function buildEncoder(statements: string): Encoder {
  // eslint-disable-next-line no-new-func -- see the safety note at the top of this file
  return new Function(
    ...Object.keys(ENCODER_HELPERS),
    `"use strict"; return function encode(dv, u8, at, p, pid, lens) {\n${statements}\n};`,
  )(...Object.values(ENCODER_HELPERS));
}
