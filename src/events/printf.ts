/**
 * A small printf for event print formats: flags `-0+ #`, width, precision, length modifiers
 * (hh h l ll z j t L; kformat.ts applies them to kernel values), conversions d i u x X o c s p %.
 * The format is parsed once; formatting never evaluates anything.
 */
import { fail } from '../errno.js';

export interface Conversion {
  flags: string;
  width: number;
  precision: number;
  /** Length modifier: '', hh, h, l, ll, z, j, t, L. */
  length: string;
  conv: string;
  /** The kernel's %p extension letter (S, s, F, f, B, ...), or ''. */
  ext: string;
}

export type Segment = string | Conversion;

const SPEC = /%([-+ #0]*)(\d+)?(?:\.(\d+))?(hh|h|ll|l|z|j|t|L)?([diuxXocsp%])/g;
/** Letters after %p that the kernel's vsprintf reads as an extension (%pS, %ps, %pB, ...). */
const POINTER_EXT = /^[SsFfBR]/;

export function parseFormat(fmt: string): Segment[] {
  const out: Segment[] = [];
  let last = 0;
  SPEC.lastIndex = 0;
  for (let m = SPEC.exec(fmt); m; m = SPEC.exec(fmt)) {
    if (m.index > last) out.push(fmt.slice(last, m.index));
    last = SPEC.lastIndex;
    if (m[5] === '%') {
      out.push('%');
      continue;
    }
    let ext = '';
    if (m[5] === 'p') {
      ext = POINTER_EXT.exec(fmt.slice(last))?.[0] ?? '';
      last += ext.length;
      SPEC.lastIndex = last;
    }
    out.push({ flags: m[1] ?? '', width: m[2] ? Number(m[2]) : 0, precision: m[3] ? Number(m[3]) : -1, length: m[4] ?? '', conv: m[5]!, ext });
  }
  const rest = fmt.slice(last);
  if (rest.includes('%')) fail('EINVAL', `unsupported conversion in print format at '${rest.slice(rest.indexOf('%'))}'`);
  if (rest) out.push(rest);
  return out;
}

export function conversions(segments: Segment[]): Conversion[] {
  return segments.filter((s): s is Conversion => typeof s !== 'string');
}

/** Pad to the conversion's width (left with `-`, zeros for numbers with `0`). */
export function pad(s: string, c: Conversion, numeric: boolean): string {
  if (s.length >= c.width) return s;
  if (c.flags.includes('-')) return s.padEnd(c.width);
  if (numeric && c.flags.includes('0') && c.precision < 0) {
    const sign = s[0] === '-' || s[0] === '+' || s[0] === ' ' ? s[0] : '';
    return sign + s.slice(sign.length).padStart(c.width - sign.length, '0');
  }
  return s.padStart(c.width);
}

/** Format one value; integers arrive as number or bigint, strings as string. */
export function formatValue(c: Conversion, v: number | bigint | string): string {
  switch (c.conv) {
    case 's': {
      let s = typeof v === 'string' ? v : String(v);
      if (c.precision >= 0) s = s.slice(0, c.precision);
      return pad(s, c, false);
    }
    case 'c':
      return pad(typeof v === 'string' ? v.slice(0, 1) : String.fromCharCode(Number(v)), c, false);
    case 'd':
    case 'i': {
      const n = typeof v === 'string' ? Number(v) : v;
      const negative = n < 0;
      return formatInteger(c, (negative ? -n : n).toString(), negative, n != 0);
    }
    default: {
      let n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
      if (n < 0n) n = BigInt.asUintN(64, n);
      return formatInteger(c, n.toString(c.conv === 'o' ? 8 : c.conv === 'u' ? 10 : 16), false, n !== 0n);
    }
  }
}

/**
 * An integer conversion from its digits (in the conversion's radix, no sign): precision, sign
 * flags for %d/%i, the `#` prefix for the others, then the width.
 */
export function formatInteger(c: Conversion, digits: string, negative: boolean, nonzero: boolean): string {
  let s = c.conv === 'X' ? digits.toUpperCase() : digits;
  if (c.conv === 'p') return pad(`0x${s}`, c, true);
  if (c.precision >= 0) s = s.padStart(c.precision, '0');
  if (c.conv === 'd' || c.conv === 'i') s = (negative ? '-' : c.flags.includes('+') ? '+' : c.flags.includes(' ') ? ' ' : '') + s;
  else if (c.flags.includes('#') && nonzero) s = (c.conv === 'o' ? '0' : c.conv === 'X' ? '0X' : c.conv === 'u' ? '' : '0x') + s;
  return pad(s, c, true);
}

export function format(segments: Segment[], values: (number | bigint | string)[]): string {
  let out = '';
  let i = 0;
  for (const s of segments) out += typeof s === 'string' ? s : formatValue(s, values[i++] ?? 0);
  return out;
}
