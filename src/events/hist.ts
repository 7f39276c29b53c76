/**
 * Hist trigger specs as the kernel reads them (kernel/trace/trace_events_hist.c):
 * `hist:keys=F[.mod],…[:vals=F,…][:sort=F[.descending],…][:size=N][:name=X][:pause|:cont|:clear]`
 * and their normalized readback (`hist:keys=pid:vals=hitcount:sort=hitcount:size=2048`).
 * Keys and values name the event's fields, `common_pid`, `common_timestamp`; values sum, keys
 * group. Modifiers: `.hex`, `.sym`/`.sym-offset` (no symbols in JS: the address), `.execname` (common_pid), `.log2`, `.buckets=N`, `.usecs`
 * (common_timestamp). Limits as the kernel's: 3 keys, 3 values with hitcount, 2 sort keys, a
 * size that is a power of two from 128 to 131072 (default 2048).
 */
import type { ErrnoCode } from '../errno.js';
import type { FieldLayout } from './fields.js';

export const HIST_DEFAULT_SIZE = 2048;
const MAX_KEYS = 3;
const MAX_VALS = 3;
const MAX_SORT = 2;
/** TRACING_MAP_VARS_MAX. */
const MAX_VARS = 16;
const MIN_BITS = 7;
const MAX_BITS = 17;

export type HistModifier = 'hex' | 'sym' | 'sym-offset' | 'syscall' | 'execname' | 'log2' | 'buckets' | 'usecs' | 'percent' | 'graph';

export interface HistField {
  /** A field of the event, `common_pid`, `common_timestamp`, or `hitcount` (values and sort only). */
  name: string;
  modifier: HistModifier | null;
  /** `.buckets=N`. */
  buckets: number;
  /** Where it was written, for the caret of an error about it. */
  pos: number;
  /** Set by resolve(): where the value comes from. */
  layout?: FieldLayout;
  string?: boolean;
}

/** A variable's expression: a field (or common_timestamp), a reference `$var`, or `a+b` / `a-b`. */
export type HistExpr =
  | { kind: 'field'; field: HistField }
  | { kind: 'ref'; name: string; pos: number }
  | { kind: 'op'; op: '+' | '-'; a: HistExpr; b: HistExpr };

export interface HistVar {
  name: string;
  expr: HistExpr;
  text: string;
  pos: number;
  /** Set by resolveHist(): the variable holds text (it is a string field). */
  string?: boolean;
}

/** A field of the matching event used as an onmatch param, and the variable kept for it there. */
export interface HistFieldVar {
  name: string;
  field: string;
}

/** Field variables are named with this, which no variable of the user's can start with. */
export const FIELD_VAR_PREFIX = '__field_';

/** `onmatch(SYS.EVENT).trace(SYNTH,ARGS…)` (also written `.SYNTH(ARGS…)`). */
export interface HistAction {
  system: string;
  event: string;
  synth: string;
  /** `$var` (this hist's, or another hist trigger's) or a field of this event. */
  args: string[];
  /** The matching event's fields among the params, as the variables standing for them. */
  fieldVars: HistFieldVar[];
  text: string;
  pos: number;
}

export interface HistSpec {
  keys: HistField[];
  /**
   * Values after the raw hitcount (always counted, printed first unless `nohitcount`). A plain
   * `hitcount` is that one; with a modifier (`hitcount.percent`) it is a column of its own, as
   * the kernel's create_val_fields() makes it.
   */
  vals: HistField[];
  /** `:nohitcount` (`:NOHC`): the hist file leaves hitcount out. */
  noHitcount: boolean;
  /** `:clock=NAME`, read back when timestamps are used (default `global`). */
  clock: string;
  sort: { name: string; descending: boolean; pos: number }[];
  size: number;
  name: string | null;
  pause: boolean;
  cont: boolean;
  clear: boolean;
  vars: HistVar[];
  actions: HistAction[];
  /** `onmax($var)` / `onchange($var)` with `.save(fields…)` or `.snapshot()`. */
  trackers: HistTracker[];
}

export interface HistTracker {
  handler: 'onmax' | 'onchange';
  variable: string;
  action: 'save' | 'snapshot';
  /** save(): this event's fields, kept with the value that set the max (or changed). */
  fields: string[];
  /** Set by resolveHist(): which saved fields are strings. */
  strings?: boolean[];
  text: string;
  pos: number;
}

/**
 * A hist spec the kernel would refuse. `text` is what error_log shows: the kernel's own message
 * (trace_events_hist.c's err_text) wherever it has one; `detail` (what, which) goes only into
 * the thrown error's message, as the caret already points at it in the log.
 */
export class HistError extends Error {
  readonly code: ErrnoCode;
  readonly text: string;
  readonly pos: number;

  constructor(text: string, pos: number, detail = '', code: ErrnoCode = 'EINVAL') {
    super(`${code}: ${text}${detail ? `: ${detail}` : ''}`);
    this.name = 'HistError';
    this.code = code;
    this.text = text;
    this.pos = pos;
  }

  /** The thrown message's text, without the errno. */
  get summary(): string {
    return this.message.slice(this.code.length + 2);
  }
}

const HIST_CLOCKS = ['local', 'global', 'counter', 'uptime', 'perf', 'mono', 'mono_raw', 'boot', 'tai', 'x86-tsc'];

const MODIFIERS = new Set(['hex', 'sym', 'sym-offset', 'syscall', 'execname', 'log2', 'usecs', 'percent', 'graph']);

function parseField(text: string, at: number, allowHitcount: boolean): HistField {
  const dot = text.indexOf('.');
  const name = dot < 0 ? text : text.slice(0, dot);
  const mod = dot < 0 ? null : text.slice(dot + 1);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new HistError("Couldn't find field", at, text);
  if (name === 'hitcount' && !allowHitcount) throw new HistError("hitcount can't be a key", at);
  if (mod === null) return { name, modifier: null, buckets: 0, pos: at };
  const buckets = /^buckets=(\d+)$/.exec(mod);
  if (buckets) {
    const n = Number(buckets[1]);
    if (n < 2 || !Number.isSafeInteger(n)) throw new HistError('Invalid field modifier', at + dot + 1, 'buckets need a size from 2 to 2^53-1');
    return { name, modifier: 'buckets', buckets: n, pos: at };
  }
  if (!MODIFIERS.has(mod)) throw new HistError('Invalid field modifier', at + dot + 1, mod);
  return { name, modifier: mod as HistModifier, buckets: 0, pos: at };
}

function list(value: string, at: number, allowHitcount: boolean): HistField[] {
  let pos = at;
  return value.split(',').map((f) => {
    const field = parseField(f, pos, allowHitcount);
    pos += f.length + 1;
    return field;
  });
}

/** Parse the text after `hist` (starting with `:`). Positions in errors count from `offset`. */
export function parseHist(param: string, offset: number, fieldVarsAllowed = false): HistSpec {
  const spec: HistSpec = {
    keys: [], vals: [], noHitcount: false, clock: 'global',
    sort: [], size: HIST_DEFAULT_SIZE, name: null, pause: false, cont: false, clear: false, vars: [], actions: [], trackers: [],
  };
  let pos = offset;
  for (const token of param.split(':')) {
    const eq = token.indexOf('=');
    const key = eq < 0 ? token : token.slice(0, eq);
    const value = eq < 0 ? '' : token.slice(eq + 1);
    const at = pos + eq + 1;
    if (eq >= 0 && value === '') throw new HistError('Empty assignment', pos, token);
    switch (key) {
      case '':
        if (token) throw new HistError(`Invalid token '${token}'`, pos);
        break;
      case 'key':
      case 'keys':
        spec.keys = list(value, at, false);
        if (spec.keys.length > MAX_KEYS) throw new HistError('Too many keys', at);
        break;
      case 'val':
      case 'vals':
      case 'values':
        // nohitcount may come later: a plain `hitcount` is dropped (or made a column) at the end.
        spec.vals = list(value, at, true);
        break;
      case 'clock':
        // The kernel's trace clocks; nftrace's timestamps all come from one (see docs/hist.md).
        if (!HIST_CLOCKS.includes(value)) throw new HistError("Couldn't set trace_clock", at, value);
        spec.clock = value;
        break;
      case 'nohitcount':
      case 'NOHC':
        spec.noHitcount = true;
        break;
      case 'sort': {
        spec.sort = value.split(',').map((s) => {
          const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\.(descending|ascending))?$/.exec(s);
          if (!m) throw new HistError(s ? 'Invalid sort modifier' : 'Empty sort field', at, s);
          return { name: m[1]!, descending: m[2] === 'descending', pos: at };
        });
        if (spec.sort.length > MAX_SORT) throw new HistError('Too many sort fields (Max = 2)', at);
        break;
      }
      case 'size': {
        const n = Number(value);
        if (!/^\d+$/.test(value)) throw new HistError(`Invalid size '${value}'`, at);
        const bits = Math.ceil(Math.log2(Math.max(1, n)));
        if (bits < MIN_BITS || bits > MAX_BITS) throw new HistError('Bad size', at);
        spec.size = 2 ** bits;
        break;
      }
      case 'name':
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new HistError(`Invalid name '${value}'`, at);
        spec.name = value;
        break;
      case 'pause':
        spec.pause = true;
        break;
      case 'cont':
      case 'continue':
        spec.cont = true;
        break;
      case 'clear':
        spec.clear = true;
        break;
      default: {
        const action = /^onmatch\(([A-Za-z_]\w*)\.([A-Za-z_]\w*)\)\.(?:trace\(([A-Za-z_]\w*)(?:,([^)]*))?\)|([A-Za-z_]\w*)\(([^)]*)\))$/.exec(token);
        if (action) {
          const synth = action[3] ?? action[5]!;
          const args = (action[3] ? action[4] : action[6]) ?? '';
          // `SYS.EVENT.$var` names a variable as `$var` does (the qualifier only disambiguates);
          // `SYS.EVENT.field`, a field of the matching event, becomes a variable that a hidden
          // hist trigger on that event keeps for each key (the kernel's field variables).
          const [system, event] = [action[1]!, action[2]!];
          const fieldVars: HistFieldVar[] = [];
          const list = (args ? args.split(',') : []).map((raw) => {
            const a = raw.trim().replace(/^[A-Za-z_]\w*\.[A-Za-z_]\w*\.(?=\$)/, '');
            const qualified = /^([A-Za-z_]\w*)\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)$/.exec(a);
            if (!qualified) return a;
            if (qualified[1] !== system || qualified[2] !== event) throw new HistError('Invalid action param', pos, `only fields of the matching event (${system}.${event}) can be qualified: ${a}`);
            const name = `${FIELD_VAR_PREFIX}${system}_${event}_${qualified[3]}`;
            fieldVars.push({ name, field: qualified[3]! });
            return `$${name}`;
          });
          spec.actions.push({ system, event, synth, args: list, fieldVars, text: token, pos });
          break;
        }
        const tracker = /^(onmax|onchange)\(\$([A-Za-z_]\w*)\)\.(save\(([^)]*)\)|snapshot\(\))$/.exec(token);
        if (tracker) {
          const fields = tracker[4] ? tracker[4].split(',') : [];
          if (tracker[3]!.startsWith('save') && fields.length === 0) throw new HistError('No params found for save()', pos);
          spec.trackers.push({ handler: tracker[1] as 'onmax' | 'onchange', variable: tracker[2]!, action: tracker[3]!.startsWith('save') ? 'save' : 'snapshot', fields, text: token, pos });
          break;
        }
        if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
          // `a=EXPR,b=EXPR`: several variables in one parameter, as the kernel reads them back.
          let from = pos;
          for (const def of token.split(',')) {
            const defEq = def.indexOf('=');
            const name = def.slice(0, defEq);
            if (defEq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || (name.startsWith(FIELD_VAR_PREFIX) && !fieldVarsAllowed)) throw new HistError('Malformed assignment', from, def);
            if (spec.vars.some((v) => v.name === name)) throw new HistError('Variable already defined', from, name);
            if (spec.vars.length === MAX_VARS) throw new HistError('Too many variables defined', from, `${MAX_VARS} at most`);
            const text = def.slice(defEq + 1);
            spec.vars.push({ name, expr: parseExpr(text, from + defEq + 1), text, pos: from });
            from += def.length + 1;
          }
          break;
        }
        if (/^on\w+\(/.test(token)) throw new HistError('No action found', pos, token);
        throw new HistError(`Invalid hist parameter '${key}'`, pos);
      }
    }
    pos += token.length + 1;
  }
  if (spec.keys.length === 0) throw new HistError('Missing keys', offset);
  // A plain `hitcount` is the raw count already there, except under nohitcount, where it is a column.
  if (!spec.noHitcount) spec.vals = spec.vals.filter((f) => f.name !== 'hitcount' || f.modifier !== null);
  if (spec.vals.length + 1 > MAX_VALS) throw new HistError('Too many values', spec.vals[MAX_VALS - 1]!.pos);
  if (spec.noHitcount && spec.vals.length === 0) throw new HistError("Non-hitcount value is required for 'nohitcount'", offset, '', 'ENOENT');
  if (spec.sort.length === 0) spec.sort = [{ name: 'hitcount', descending: false, pos: offset }];
  return spec;
}

/** `common_timestamp.usecs-$ts0`, `$a+$b`, a field: left to right, + and - only, as the kernel's. */
function parseExpr(text: string, at: number): HistExpr {
  const ops = [...text.matchAll(/[+-]/g)];
  if (ops.length > 1) throw new HistError('Too many subexpressions (3 max)', at);
  const operand = (t: string, pos: number): HistExpr => {
    if (t.startsWith('$')) {
      if (!/^\$[A-Za-z_][A-Za-z0-9_]*$/.test(t)) throw new HistError("Couldn't find variable", pos, t);
      return { kind: 'ref', name: t.slice(1), pos };
    }
    return { kind: 'field', field: parseField(t, pos, false) };
  };
  if (ops.length === 0) return operand(text, at);
  const i = ops[0]!.index!;
  return { kind: 'op', op: text[i] as '+' | '-', a: operand(text.slice(0, i), at), b: operand(text.slice(i + 1), at + i + 1) };
}

/** Every `$var` an expression reads. */
export function exprRefs(e: HistExpr): { name: string; pos: number }[] {
  if (e.kind === 'ref') return [{ name: e.name, pos: e.pos }];
  if (e.kind === 'op') return [...exprRefs(e.a), ...exprRefs(e.b)];
  return [];
}

/** Check the fields against the event; fills layout/string. Errors name the field and point at it. */
export function resolveHist(spec: HistSpec, fields: readonly FieldLayout[]): void {
  const resolve = (f: HistField, isKey: boolean) => {
    const at = f.pos;
    if (f.name === 'common_timestamp') {
      if (f.modifier !== null && f.modifier !== 'usecs') throw new HistError('Invalid field modifier', at, `${f.modifier} on common_timestamp`);
      return;
    }
    if (f.name === 'common_pid') {
      if (f.modifier === 'usecs') throw new HistError('Invalid field modifier', at, '.usecs is for common_timestamp');
      return;
    }
    if (f.name === 'hitcount') return; // a value column counting hits (one per hit)
    if ((f.modifier === 'percent' || f.modifier === 'graph') && isKey) throw new HistError('Invalid field modifier', at, `.${f.modifier} is for values only`);
    if (f.modifier === 'syscall' && !isKey) throw new HistError('Invalid field modifier', at, '.syscall is for keys only');
    if (f.modifier === 'execname') throw new HistError('Invalid field modifier', at, '.execname is for common_pid only');
    if (f.modifier === 'usecs') throw new HistError('Invalid field modifier', at, '.usecs is for common_timestamp');
    const layout = fields.find((x) => x.name === f.name);
    if (!layout || layout.kind === 'bytes') throw new HistError("Couldn't find field", at, f.name);
    f.layout = layout;
    f.string = layout.kind === 'string' || layout.kind === 'chars';
    if (f.string && !isKey) throw new HistError(`Can't use a string field as a value: ${f.name}`, at);
    if (f.string && f.modifier) throw new HistError('Invalid field modifier', at, `a string key takes none: ${f.name}`);
  };
  for (const k of spec.keys) resolve(k, true);
  for (const v of spec.vals) resolve(v, false);
  const resolveExpr = (e: HistExpr): void => {
    if (e.kind === 'field') resolve(e.field, false);
    else if (e.kind === 'op') {
      for (const side of [e.a, e.b]) {
        const stringRef = side.kind === 'ref' && spec.vars.some((v) => v.name === side.name && v.string);
        if (stringRef || (side.kind === 'field' && fields.find((x) => x.name === side.field.name && (x.kind === 'string' || x.kind === 'chars')))) {
          throw new HistError('String type can not be an operand in expression', side.kind === 'ref' ? side.pos : side.kind === 'field' ? side.field.pos : 0);
        }
        resolveExpr(side);
      }
    }
  };
  // A string field alone makes a string variable (`r=route`), as the kernel's; the others are
  // numeric, and an expression may not read a string.
  for (const v of spec.vars) {
    if (v.expr.kind !== 'field') continue;
    resolve(v.expr.field, true);
    v.string = v.expr.field.string === true;
  }
  for (const v of spec.vars) if (v.expr.kind !== 'field') resolveExpr(v.expr);
  for (const t of spec.trackers) {
    const tracked = spec.vars.find((v) => v.name === t.variable);
    if (!tracked) throw new HistError("Couldn't find onmax or onchange variable", t.pos, `$${t.variable}`);
    if (tracked.string) throw new HistError('For onmax(x) or onchange(x), x must be a variable', t.pos, `$${t.variable} holds text`);
    for (const f of t.fields) if (f !== 'common_pid' && !fields.some((x) => x.name === f)) throw new HistError("Couldn't find field", t.pos, f);
    t.strings = t.fields.map((f) => {
      const kind = fields.find((x) => x.name === f)?.kind;
      return kind === 'string' || kind === 'chars';
    });
  }
  for (const a of spec.actions) {
    for (const arg of a.args) {
      // A `$var` not defined here is another hist trigger's (found when the trigger is added).
      if (arg.startsWith('$')) continue;
      if (arg.includes('.')) throw new HistError('Invalid action param', a.pos, `${arg} (a field of the matching event is written SYS.EVENT.FIELD)`);
      if (arg !== 'common_pid' && !fields.some((f) => f.name === arg)) throw new HistError("Couldn't find param", a.pos, arg);
    }
  }
  for (const s of spec.sort) {
    if (s.name !== 'hitcount' && !spec.keys.some((k) => k.name === s.name) && !spec.vals.some((v) => v.name === s.name)) {
      throw new HistError('Sort field must be a key or a val', s.pos, s.name);
    }
  }
}

export function fieldText(f: HistField): string {
  if (f.modifier === 'buckets') return `${f.name}.buckets=${f.buckets}`;
  return f.modifier ? `${f.name}.${f.modifier}` : f.name;
}

/** The kernel's readback: `hist:[NAME:]keys=…:vals=hitcount[,…]:sort=…:size=N`. */
export function histText(spec: HistSpec): string {
  const vals = [...(spec.noHitcount ? [] : ['hitcount']), ...spec.vals.map(fieldText)].join(',');
  const sort = spec.sort.map((s) => `${s.name}${s.descending ? '.descending' : ''}`).join(',');
  // Variables print as one comma list; a hist reading timestamps names its clock (the kernel's readback).
  const vars = spec.vars.length ? `:${spec.vars.map((v) => `${v.name}=${v.text}`).join(',')}` : '';
  const clock = usesTimestamp(spec) ? `:clock=${spec.clock}` : '';
  const actions = [...spec.actions, ...spec.trackers].map((a) => `:${a.text}`).join('');
  return `hist:${spec.name ? `${spec.name}:` : ''}keys=${spec.keys.map(fieldText).join(',')}:vals=${vals}${vars}:sort=${sort}:size=${spec.size}${clock}${spec.noHitcount ? ':nohitcount' : ''}${actions}`;
}

function usesTimestamp(spec: HistSpec): boolean {
  const inExpr = (e: HistExpr): boolean => (e.kind === 'field' ? e.field.name === 'common_timestamp' : e.kind === 'op' ? inExpr(e.a) || inExpr(e.b) : false);
  return [...spec.keys, ...spec.vals].some((f) => f.name === 'common_timestamp') || spec.vars.some((v) => inExpr(v.expr));
}
