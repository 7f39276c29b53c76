/**
 * How tracefs control files parse what is written to them, checked against a live kernel:
 * kstrtoul_from_user(base 10) accepts `+`, leading zeros and one trailing newline, and rejects
 * spaces, `0x`, signs other than `+`, and the empty string (EINVAL); values past 2^64-1 give
 * ERANGE. String settings (trace_clock, current_tracer) are stripped of surrounding whitespace.
 */
import { fail } from '../errno.js';

const DECIMAL = /^\+?[0-9]+$/;

export function parseUnsigned(data: string, what: string): number {
  const text = data.endsWith('\n') ? data.slice(0, -1) : data;
  if (!DECIMAL.test(text)) fail('EINVAL', `${what}: '${data.trim()}' is not an unsigned decimal number`);
  const value = BigInt(text.replace(/^\+/, ''));
  if (value > 0xffffffffffffffffn) fail('ERANGE', `${what}: ${text} is out of range`);
  return Number(value);
}

/** 0 or 1, as events/*\/enable and options/* accept. */
export function parseBool(data: string, what: string): boolean {
  const v = parseUnsigned(data, what);
  if (v > 1) fail('EINVAL', `${what}: only 0 or 1 is accepted`);
  return v === 1;
}

export function parseWord(data: string, what: string): string {
  const word = data.trim();
  if (!word) fail('EINVAL', `${what}: empty value`);
  return word;
}
