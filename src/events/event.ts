/**
 * The static description of one event, shared by every instance and thread: layout, id,
 * `format` file text, generated encoder, and how to print a record. Per-instance state (enabled
 * or not) lives elsewhere, as bytes.
 */
import { fail } from '../errno.js';
import { buildEncoder, buildSizer, encoderStatements, type Encoder, type Sizer } from './codegen.js';
import { COMMON_FIELDS, IDENTIFIER, layoutFields, type EventLayout, type FieldLayout, type FieldSpec } from './fields.js';
import { conversions, format, parseFormat, type Segment } from './printf.js';

export interface PrintSpec {
  /** printf-style format: %d %i %u %x %X %o %c %s %p, with flags, width and precision. */
  fmt: string;
  /** One field name per conversion. */
  args: string[];
}

export interface EventOptions {
  /** How `trace` prints the event; the default is the kernel's `field=value ...`. */
  print?: PrintSpec;
}

/** Ids of Node events start high so they never collide with the kernel's in a combined trace.dat. */
export const FIRST_EVENT_ID = 50000;

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

type Value = number | bigint | string;

/** What readers need of any event type: identity, its format file, and how to print a record. */
export interface EventType {
  readonly system: string;
  readonly name: string;
  readonly id: number;
  readonly index: number;
  formatFile(): string;
  /** The line text after the timestamp: `name: fields` (ftrace/print prints `tracing_mark_write: text`). */
  text(dv: DataView, off: number, len: number): string;
}

/** A format file: name, ID, the common fields, the event's fields, the print fmt line. */
export function formatFileText(name: string, id: number, fields: readonly FieldLayout[], printFmt: string): string {
  const line = (f: FieldLayout, ctype: string) =>
    `\tfield:${ctype};\toffset:${f.offset};\tsize:${f.size};\tsigned:${f.signed ? 1 : 0};\n`;
  const common = COMMON_FIELDS.map((f) => line(f, `${f.ctype} ${f.name}`)).join('');
  const own = fields.map((f) => line(f, f.ctype)).join('');
  return `name: ${name}\nID: ${id}\nformat:\n${common}\n${own}\nprint fmt: ${printFmt}\n`;
}

export class EventDef implements EventType {
  readonly system: string;
  readonly name: string;
  readonly index: number;
  readonly id: number;
  readonly spec: FieldSpec;
  readonly layout: EventLayout;
  readonly encode: Encoder;
  /** The encoder's statements, for emitters that compile it in line (see codegen.ts). */
  readonly encoderSource: string;
  readonly size: Sizer;
  readonly print: PrintSpec | undefined;
  private readonly segments: Segment[];
  private readonly printFields: (FieldLayout | undefined)[];
  /** Number of __data_loc fields: sizes measured per emit go in a scratch array this long. */
  readonly dynamicCount: number;

  constructor(system: string, name: string, index: number, spec: FieldSpec, options: EventOptions = {}, id = FIRST_EVENT_ID + index) {
    if (!NAME.test(system)) fail('EINVAL', `system name '${system}' must be a C identifier`);
    if (!NAME.test(name)) fail('EINVAL', `event name '${name}' must be a C identifier`);
    this.system = system;
    this.name = name;
    this.index = index;
    this.id = id;
    this.spec = spec;
    this.layout = layoutFields(spec);
    this.dynamicCount = this.layout.fields.filter((f) => f.kind === 'string' || f.kind === 'bytes').length;
    this.print = options.print;
    if (options.print) {
      this.segments = parseFormat(options.print.fmt);
      const convs = conversions(this.segments);
      if (convs.length !== options.print.args.length) {
        fail('EINVAL', `print format of ${system}:${name} has ${convs.length} conversions but ${options.print.args.length} args`);
      }
      this.printFields = options.print.args.map((a) => {
        if (!IDENTIFIER.test(a)) fail('EINVAL', `print arg '${a}' is not a field name`);
        const f = this.field(a);
        if (!f) fail('EINVAL', `print arg '${a}' is not a field of ${system}:${name}`);
        return f;
      });
    } else {
      this.segments = parseFormat(this.layout.fields.map((f) => `${f.name}=${defaultConversion(f)}`).join(' '));
      this.printFields = this.layout.fields;
    }
    this.encoderSource = encoderStatements(this.layout, id);
    this.encode = buildEncoder(this.encoderSource);
    this.size = buildSizer(this.layout);
  }

  field(name: string): FieldLayout | undefined {
    return this.layout.fields.find((f) => f.name === name) ?? COMMON_FIELDS.find((f) => f.name === name);
  }

  /** The text of events/<system>/<name>/format, as the kernel prints it. */
  formatFile(): string {
    return formatFileText(this.name, this.id, this.layout.fields, this.printFmt());
  }

  /** The C `print fmt:` line: a quoted format, then one REC-> argument per conversion. */
  printFmt(): string {
    const fmt = this.print ? this.print.fmt : this.layout.fields.map((f) => `${f.name}=${defaultConversion(f)}`).join(' ');
    const args = this.printFields.map((f) => printArg(f!));
    return [JSON.stringify(fmt), ...args].join(', ');
  }

  /** Decode one field of a record at `off` in `dv`. */
  value(f: FieldLayout, dv: DataView, off: number): Value {
    const at = off + f.offset;
    switch (f.kind) {
      case 'int':
      case 'bool':
        if (f.size === 1) return f.signed ? dv.getInt8(at) : dv.getUint8(at);
        if (f.size === 2) return f.signed ? dv.getInt16(at, true) : dv.getUint16(at, true);
        return f.signed ? dv.getInt32(at, true) : dv.getUint32(at, true);
      case 'long':
        return f.signed ? dv.getBigInt64(at, true) : dv.getBigUint64(at, true);
      case 'chars':
        return cString(dv, at, f.size);
      case 'string': {
        const loc = dv.getUint32(at, true);
        return cString(dv, off + (loc & 0xffff), loc >>> 16);
      }
      case 'bytes': {
        const loc = dv.getUint32(at, true);
        const start = off + (loc & 0xffff);
        const parts: string[] = [];
        for (let i = 0; i < loc >>> 16; i++) parts.push(dv.getUint8(start + i).toString(16).padStart(2, '0'));
        return parts.join(' ');
      }
    }
  }

  /** The event's fields as its print format renders them. */
  formatRecord(dv: DataView, off: number): string {
    return format(this.segments, this.printFields.map((f) => this.value(f!, dv, off)));
  }

  text(dv: DataView, off: number): string {
    return `${this.name}: ${this.formatRecord(dv, off)}`;
  }
}

function defaultConversion(f: FieldLayout): string {
  switch (f.kind) {
    case 'int':
    case 'bool':
      return f.signed ? '%d' : '%u';
    case 'long':
      return f.signed ? '%lld' : '%llu';
    default:
      return '%s';
  }
}

function printArg(f: FieldLayout): string {
  if (f.kind === 'string') return `__get_str(${f.name})`;
  if (f.kind === 'bytes') return `__print_hex(__get_dynamic_array(${f.name}), __get_dynamic_array_len(${f.name}))`;
  return `REC->${f.name}`;
}

const utf8 = new TextDecoder('utf-8');

export function cString(dv: DataView, at: number, max: number): string {
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset + at, max);
  const nul = bytes.indexOf(0);
  return utf8.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
}
