/**
 * Event `format` files (the kernel's, and ours: they have the same shape) turned into event
 * descriptors that decode raw records and print them the way `trace-cmd report` does.
 *
 * A print fmt this code cannot fully understand never stops decoding: the event then prints
 * its raw fields (`name=value ...`) and `printNote` says why.
 */
import { CEvalError, CParseError, parsePrintFmt, type CScope, type CValue } from './cexpr.js';
import { parseFormat, type Conversion } from './printf.js';
import { compileArg, formatKernel, type ArgPrinter } from './print-fmt.js';
import { ByteSink, encode } from './text-sink.js';

/** Where print() builds its text. */
const scratch = new ByteSink(1 << 12);

export interface KField {
  name: string;
  /** The declared type without the name and array suffix, e.g. `unsigned long`, `__data_loc char[]`. */
  type: string;
  offset: number;
  size: number;
  signed: boolean;
  /** Element count of a fixed array (`char comm[16]` → 16), 0 otherwise. */
  arrayLength: number;
  dataLoc: 'data' | 'rel' | null;
  /** char arrays and __data_loc char[]: print as text. */
  isString: boolean;
  isPointer: boolean;
}

/** Symbol lookup for %pS / %ps (kallsyms). */
export interface SymbolTable {
  lookup(addr: bigint): { name: string; offset: bigint } | null;
}

export interface PrintOptions {
  symbols?: SymbolTable;
}

export class FormatError extends Error {}

const FIELD_LINE = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);\s*(?:signed:(-?\d+);)?/;

function parseField(decl: string, offset: number, size: number, signed: boolean): KField {
  const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?\s*$/.exec(decl.trim());
  if (!m) throw new FormatError(`cannot read field declaration '${decl}'`);
  const type = m[1]!.trim();
  const dataLoc = /^__data_loc\b/.test(type) ? 'data' : /^__rel_loc\b/.test(type) ? 'rel' : null;
  const arrayLength = m[3] !== undefined && m[3] !== '' ? Number(m[3]) || 0 : 0;
  const isChar = /\bchar\b/.test(type);
  return {
    name: m[2]!,
    type: m[3] !== undefined ? `${type}[${m[3]}]` : type,
    offset,
    size,
    signed,
    arrayLength,
    dataLoc,
    isString: isChar && (dataLoc !== null || m[3] !== undefined),
    isPointer: /\*/.test(type),
  };
}

/** Read an integer of `size` bytes at `at`. */
function readInt(dv: DataView, at: number, size: number, signed: boolean): bigint {
  switch (size) {
    case 1: return BigInt(signed ? dv.getInt8(at) : dv.getUint8(at));
    case 2: return BigInt(signed ? dv.getInt16(at, true) : dv.getUint16(at, true));
    case 4: return BigInt(signed ? dv.getInt32(at, true) : dv.getUint32(at, true));
    case 8: return signed ? dv.getBigInt64(at, true) : dv.getBigUint64(at, true);
    default: return 0n;
  }
}

const utf8 = new TextDecoder('utf-8');

function cString(u8: Uint8Array, start: number, end: number): string {
  let stop = start;
  while (stop < end && u8[stop] !== 0) stop++;
  return utf8.decode(u8.subarray(start, stop));
}

/** One record: its bytes are u8[start, start + length). */
export interface RecordView {
  dv: DataView;
  u8: Uint8Array;
  start: number;
  length: number;
}

export class EventFormat {
  readonly name: string;
  readonly id: number;
  readonly system: string;
  readonly fields: KField[];
  readonly commonFields: KField[];
  readonly printText: string;
  /** Why the print fmt is not used (raw fields are printed instead), or ''. */
  readonly printNote: string;
  /** The print fmt compiled: text before each argument's printer, and the text after the last (UTF-8). */
  private readonly literals: Uint8Array[] = [];
  private readonly printers: ArgPrinter[] = [];
  private readonly byName = new Map<string, KField>();
  private readonly rawConversions = new Map<string, { conv: Conversion; has0x: boolean }>();

  constructor(text: string, system: string) {
    this.system = system;
    const name = /^name:\s*(\S+)/m.exec(text);
    const id = /^ID:\s*(\d+)/m.exec(text);
    if (!name || !id) throw new FormatError('format file without name: or ID:');
    this.name = name[1]!;
    this.id = Number(id[1]);
    const common: KField[] = [];
    const own: KField[] = [];
    let seenBlank = false;
    const body = text.slice(text.indexOf('format:') + 'format:'.length, text.includes('print fmt:') ? text.indexOf('print fmt:') : undefined);
    for (const line of body.split('\n')) {
      if (line.trim() === '') {
        if (common.length) seenBlank = true;
        continue;
      }
      const m = FIELD_LINE.exec(line);
      if (!m) continue;
      const f = parseField(m[1]!, Number(m[2]), Number(m[3]), m[4] === '1');
      (seenBlank || !f.name.startsWith('common_') ? own : common).push(f);
    }
    this.commonFields = common;
    this.fields = own;
    for (const f of [...common, ...own]) this.byName.set(f.name, f);
    const pf = /^print fmt:\s*(.*)$/m.exec(text);
    this.printText = pf ? pf[1]! : '';
    this.printNote = this.compilePrint();
  }

  field(name: string): KField | undefined {
    return this.byName.get(name);
  }

  private compilePrint(): string {
    if (!this.printText) return 'no print fmt';
    try {
      const { fmt, args } = parsePrintFmt(this.printText);
      const segments = parseFormat(fmt);
      const convs = segments.filter((s): s is Conversion => typeof s !== 'string');
      if (convs.length !== args.length) return `print fmt has ${convs.length} conversions for ${args.length} arguments`;
      const ctx = { field: (name: string) => this.byName.get(name), scope: (rec: RecordView) => this.scope(rec) };
      // -R prints a field with the conversion of the print fmt argument that is exactly that
      // field (a "0x" written just before it too), as libtraceevent's raw mode does. It walks
      // fields and arguments together: each search starts after the last match and wraps once;
      // a miss, or a match on the last argument, ends the walk and later fields print raw.
      const shown: { name: string; conv: Conversion; has0x: boolean }[] = [];
      let text = '';
      let before = '';
      let arg = 0;
      for (const seg of segments) {
        if (typeof seg === 'string') {
          text += seg;
          before = seg;
          continue;
        }
        const node = args[arg++]!;
        this.literals.push(encode(text));
        this.printers.push(compileArg(seg, node, ctx));
        shown.push({ name: node.t === 'field' && node.index === null ? node.name : '', conv: seg, has0x: before.endsWith('0x') });
        text = '';
        before = '';
      }
      this.literals.push(encode(text));
      let next = 0;
      for (const f of this.fields) {
        if (next >= shown.length) break;
        let found = -1;
        for (let k = 0; k < shown.length && found < 0; k++) {
          const i = (next + k) % shown.length;
          if (shown[i]!.name === f.name) found = i;
        }
        if (found < 0) break;
        this.rawConversions.set(f.name, shown[found]!);
        next = found + 1;
      }
      return '';
    } catch (err) {
      if (err instanceof CParseError || (err as { code?: string }).code === 'EINVAL') return `print fmt not understood: ${(err as Error).message}`;
      throw err;
    }
  }

  /** A field's value in a record: integers as bigint, strings as string; arrays by index. */
  value(rec: RecordView, f: KField, index = -1): CValue {
    const at = rec.start + f.offset;
    if (f.dataLoc) {
      const loc = rec.dv.getUint32(at, true);
      const len = loc >>> 16;
      const off = (loc & 0xffff) + (f.dataLoc === 'rel' ? f.offset + 4 : 0);
      const start = rec.start + off;
      const end = Math.min(start + len, rec.start + rec.length);
      if (f.isString) return cString(rec.u8, start, end);
      return [...rec.u8.subarray(start, end)].map((b) => b.toString(16).padStart(2, '0')).join('');
    }
    // A flexible `char buf[]` (size 0) runs to the end of the record.
    if (f.isString) return cString(rec.u8, at, f.size === 0 ? rec.start + rec.length : Math.min(at + f.size, rec.start + rec.length));
    if (f.arrayLength > 0) {
      const elem = f.size / f.arrayLength;
      const i = index < 0 ? 0 : index;
      if (i >= f.arrayLength) throw new CEvalError(`${f.name}[${i}] is out of range`);
      return readInt(rec.dv, at + i * elem, elem, f.signed);
    }
    if (f.offset + f.size > rec.length) throw new CEvalError(`record too short for ${f.name}`);
    return readInt(rec.dv, at, f.size, f.signed);
  }

  scope(rec: RecordView): CScope {
    return {
      field: (name, index) => {
        const f = this.byName.get(name);
        return f ? this.value(rec, f, index) : undefined;
      },
      dynamic: (name) => {
        const f = this.byName.get(name);
        return f ? this.value(rec, f) : undefined;
      },
    };
  }

  /** The event's text as `trace-cmd report -N` prints it after the name column. */
  print(rec: RecordView, options: PrintOptions = {}): string {
    scratch.pos = 0;
    this.printTo(scratch, rec, options.symbols);
    return scratch.decode();
  }

  /** print()'s text written into a sink as UTF-8 (what a report does, with no string per field). */
  printTo(sink: ByteSink, rec: RecordView, symbols: SymbolTable | undefined): void {
    if (this.printNote) {
      sink.text(this.printRaw(rec, { symbols }));
      return;
    }
    const { literals, printers } = this;
    const mark = sink.pos;
    try {
      sink.bytes(literals[0]!);
      for (let i = 0; i < printers.length; i++) {
        printers[i]!(rec, sink, symbols);
        sink.bytes(literals[i + 1]!);
      }
    } catch (err) {
      if (!(err instanceof CEvalError)) throw err;
      sink.pos = mark;
      sink.text(this.printRaw(rec, { symbols }));
    }
  }

  /**
   * ` name=value` for every field: what `trace-cmd report -R` prints, and the fallback when the
   * print fmt is not understood. Pointers print as %p, unsigned longs as a symbol or hex,
   * other integers in decimal.
   */
  printRaw(rec: RecordView, options: PrintOptions = {}): string {
    return this.fields.map((f) => ` ${f.name}=${this.rawValue(rec, f, options.symbols)}`).join('');
  }

  private rawValue(rec: RecordView, f: KField, symbols?: SymbolTable): string {
    try {
      if (f.arrayLength > 0 && !f.isString) {
        const items: string[] = [];
        for (let i = 0; i < f.arrayLength; i++) items.push(String(this.value(rec, f, i)));
        return `ARRAY[${items.join(', ')}]`;
      }
      const v = this.value(rec, f);
      const shown = this.rawConversions.get(f.name);
      if (shown) return `${shown.has0x ? '0x' : ''}${formatKernel(shown.conv, v, symbols)}`;
      if (typeof v === 'string') return v;
      if (f.isPointer) return v === 0n ? '(nil)' : `0x${BigInt.asUintN(64, v).toString(16)}`;
      if (!f.signed && /\blong\b/.test(f.type)) {
        const sym = symbols?.lookup(v);
        return sym ? `${sym.name}+0x${sym.offset.toString(16)}` : `0x${v.toString(16)}`;
      }
      return v.toString();
    } catch {
      return '?';
    }
  }
}
