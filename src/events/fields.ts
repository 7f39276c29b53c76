/**
 * Field specs, the payload types TypeScript infers from them, and the C-struct layout the kernel
 * would give the same TP_STRUCT: 8 bytes of common fields, then each field at its natural
 * alignment, variable-length data (`__data_loc`) appended after the fixed part.
 */
import { fail } from '../errno.js';

export type IntType = 'u8' | 'u16' | 'u32' | 's8' | 's16' | 's32';
export type LongType = 'u64' | 's64';
export type CharArray = `char[${number}]`;
export type FieldType = IntType | LongType | 'bool' | 'string' | 'bytes' | CharArray;
export type FieldSpec = Record<string, FieldType>;

type ValueOf<T extends FieldType> = T extends LongType
  ? number | bigint
  : T extends 'bool'
    ? boolean
    : T extends 'string' | CharArray
      ? string
      : T extends 'bytes'
        ? Uint8Array
        : number;

/** The payload object an event of spec F takes: `{ method: string, status: number }`. */
export type Payload<F extends FieldSpec> = { [K in keyof F]: ValueOf<F[K]> };

export type FieldKind = 'int' | 'long' | 'bool' | 'chars' | 'string' | 'bytes';

export interface FieldLayout {
  name: string;
  type: FieldType;
  kind: FieldKind;
  /** C type text as printed in the format file, e.g. `unsigned short`, `char name[16]`. */
  ctype: string;
  offset: number;
  size: number;
  signed: boolean;
  /** For char[N]: N. */
  length: number;
}

export const COMMON_FIELDS: readonly FieldLayout[] = [
  { name: 'common_type', type: 'u16', kind: 'int', ctype: 'unsigned short', offset: 0, size: 2, signed: false, length: 0 },
  { name: 'common_flags', type: 'u8', kind: 'int', ctype: 'unsigned char', offset: 2, size: 1, signed: false, length: 0 },
  { name: 'common_preempt_count', type: 'u8', kind: 'int', ctype: 'unsigned char', offset: 3, size: 1, signed: false, length: 0 },
  { name: 'common_pid', type: 's32', kind: 'int', ctype: 'int', offset: 4, size: 4, signed: true, length: 0 },
];
export const COMMON_SIZE = 8;

const INTS: Record<IntType | LongType | 'bool', { size: number; signed: boolean; ctype: string }> = {
  u8: { size: 1, signed: false, ctype: 'unsigned char' },
  u16: { size: 2, signed: false, ctype: 'unsigned short' },
  u32: { size: 4, signed: false, ctype: 'unsigned int' },
  u64: { size: 8, signed: false, ctype: 'unsigned long long' },
  s8: { size: 1, signed: true, ctype: 'signed char' },
  s16: { size: 2, signed: true, ctype: 'short' },
  s32: { size: 4, signed: true, ctype: 'int' },
  s64: { size: 8, signed: true, ctype: 'long long' },
  bool: { size: 1, signed: false, ctype: 'bool' },
};

/** Names become C identifiers in the format file and property keys in generated code. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set(['common_type', 'common_flags', 'common_preempt_count', 'common_pid', 'CPU', 'COMM', 'cpu', 'comm']);
const CHARS = /^char\[([1-9][0-9]{0,4})\]$/;

export interface EventLayout {
  fields: FieldLayout[];
  /** Bytes of the fixed part, common fields included. */
  fixedSize: number;
  /** True when every field is fixed-size: the record size is then a constant. */
  fixed: boolean;
}

export function layoutFields(spec: FieldSpec): EventLayout {
  const fields: FieldLayout[] = [];
  let offset = COMMON_SIZE;
  let maxAlign = 4;
  let fixed = true;
  for (const [name, type] of Object.entries(spec)) {
    if (!IDENTIFIER.test(name)) fail('EINVAL', `field name '${name}' is not a C identifier`);
    if (RESERVED.has(name)) fail('EINVAL', `field name '${name}' is reserved`);
    let f: FieldLayout;
    if (type === 'string' || type === 'bytes') {
      fixed = false;
      const ctype = type === 'string' ? `__data_loc char[] ${name}` : `__data_loc unsigned char[] ${name}`;
      f = { name, type, kind: type, ctype, offset: 0, size: 4, signed: false, length: 0 };
    } else if (CHARS.test(type)) {
      const n = Number(CHARS.exec(type)![1]);
      f = { name, type, kind: 'chars', ctype: `char ${name}[${n}]`, offset: 0, size: n, signed: false, length: n };
    } else if (Object.hasOwn(INTS, type)) {
      const t = INTS[type as IntType];
      const kind: FieldKind = type === 'bool' ? 'bool' : t.size === 8 ? 'long' : 'int';
      f = { name, type, kind, ctype: `${t.ctype} ${name}`, offset: 0, size: t.size, signed: t.signed, length: 0 };
    } else {
      fail('EINVAL', `field '${name}' has unknown type '${String(type)}'`);
    }
    const align = f.kind === 'chars' || f.kind === 'bool' ? 1 : f.size;
    maxAlign = Math.max(maxAlign, align);
    offset = Math.ceil(offset / align) * align;
    f.offset = offset;
    offset += f.size;
    fields.push(f);
  }
  const fixedSize = Math.ceil(offset / maxAlign) * maxAlign;
  return { fields, fixedSize, fixed };
}
