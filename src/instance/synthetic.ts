/**
 * Synthetic events (`synthetic_events`): events with no emitter of their own, written by hist
 * trigger actions (`onmatch(…).trace(NAME, …)`), e.g. a latency computed from a start and an
 * end event. Syntax as the kernel's: `NAME TYPE FIELD[; TYPE FIELD …]`, `!NAME` to remove.
 * Types: u8..u64, s8..s64, int, unsigned int, long, unsigned long, pid_t, bool, `char NAME[N]`,
 * `char[] NAME` (a string). They live in the `synthetic` system.
 */
import { fail } from '../errno.js';
import type { EventType } from '../events/event.js';
import type { FieldSpec, FieldType } from '../events/fields.js';
import { commandLines, type ProbeHost } from './probes.js';

export const SYNTH_SYSTEM = 'synthetic';
const LOCATION = 'synthetic_events';

const TYPES: Record<string, FieldType> = {
  u8: 'u8', u16: 'u16', u32: 'u32', u64: 'u64', s8: 's8', s16: 's16', s32: 's32', s64: 's64',
  int: 's32', 'unsigned int': 'u32', long: 's64', 'unsigned long': 'u64', pid_t: 's32', bool: 'bool',
  'char[]': 'string',
};

interface Synth {
  name: string;
  fields: { type: string; name: string }[];
  type: EventType;
}

export class Synthetics {
  private readonly host: ProbeHost;
  private readonly events: Synth[] = [];

  constructor(host: ProbeHost) {
    this.host = host;
  }

  /** The kernel's readback: `NAME\tTYPE FIELD; TYPE FIELD`. */
  read(): string {
    return this.events.map((e) => `${e.name}\t${e.fields.map((f) => `${f.type} ${f.name}`).join('; ')}\n`).join('');
  }

  clear(): void {
    const busy = this.events.find((e) => this.host.inUse(e.type));
    if (busy) fail('EBUSY', `synthetic event ${busy.name} is in use`);
    for (const e of [...this.events]) this.remove(e);
  }

  write(data: string): void {
    for (const text of commandLines(data)) this.apply(text);
  }

  private apply(text: string): void {
    const bad = (why: string, pos: number): never => {
      this.host.logError(LOCATION, text, why, pos);
      fail('EINVAL', `synthetic_events: ${why}`);
    };
    if (text.startsWith('!')) {
      const name = text.slice(1).trim().split(/\s+/)[0]!;
      const e = this.events.find((x) => x.name === name);
      if (!e) fail('ENOENT', `no synthetic event ${name}`);
      if (this.host.inUse(e.type)) fail('EBUSY', `synthetic event ${name} is in use`);
      this.remove(e);
      return;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(text);
    if (!m) return bad('Malformed synthetic event command', 0);
    const name = m[1]!;
    if (this.events.some((e) => e.name === name)) fail('EEXIST', `synthetic event ${name} exists`);
    const fields: Synth['fields'] = [];
    const spec: FieldSpec = {};
    let pos = m[0].length - m[2]!.length;
    for (const part of m[2]!.split(';')) {
      const f = part.trim();
      const at = pos + part.indexOf(f);
      pos += part.length + 1;
      if (!f) continue;
      const arr = /^char\s+([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]$/.exec(f);
      if (arr) {
        if (spec[arr[1]!] !== undefined) return bad(`Field name used twice: ${arr[1]}`, at);
        fields.push({ type: 'char', name: `${arr[1]}[${arr[2]}]` });
        spec[arr[1]!] = `char[${Number(arr[2])}]` as FieldType;
        continue;
      }
      const fm = /^(.+?)\s+([A-Za-z_][A-Za-z0-9_]*)$/.exec(f);
      if (!fm) return bad(`Malformed synthetic event field '${f}'`, at);
      const type = fm[1]!.replace(/\s+/g, ' ');
      const ft = TYPES[type];
      if (!ft) return bad(`Invalid type: ${type}`, at);
      if (spec[fm[2]!] !== undefined) return bad(`Field name used twice: ${fm[2]}`, at);
      fields.push({ type, name: fm[2]! });
      spec[fm[2]!] = ft;
    }
    if (fields.length === 0) return bad('Synthetic event has no fields', text.length);
    let type: EventType;
    try {
      type = this.host.defineEvent(SYNTH_SYSTEM, name, spec, { fmt: fields.map((f) => `${f.name.replace(/\[\d+\]$/, '')}=${TYPES[f.type] === 'string' || f.type === 'char' ? '%s' : TYPES[f.type]!.startsWith('s') ? '%lld' : '%llu'}`).join(' '), args: Object.keys(spec) }).def;
    } catch (err) {
      return bad(`Cannot define ${name}: ${(err as Error).message}`, 0);
    }
    this.host.hide(type, false);
    this.events.push({ name, fields, type });
  }

  private remove(e: Synth): void {
    this.host.hide(e.type, true);
    this.events.splice(this.events.indexOf(e), 1);
  }
}
