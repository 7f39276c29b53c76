/**
 * A hist trigger on one thread: compileHist() builds what runs on a hit, its counts through the
 * code compileHistFire() generates, then its variables, onmatch actions and onmax/onchange
 * trackers. The per-hit code is compiled per trigger (as emit() is per event) so that each
 * reads its payload fields with its own type feedback: one key and one value cost a couple
 * of loads, a hash, a probe of the key table and three adds into this thread's lane.
 *
 * Fast path per field: a number that is a non-negative integer within the field's range needs
 * no narrowing; anything else (negative, fractional, bigint, text) goes through the generic
 * getters of hist-map.ts. Safety, as events/codegen.ts: the source is fixed text, integers,
 * and field names that passed IDENTIFIER, JSON-quoted; nothing else.
 */
import type { EventType } from '../events/event.js';
import { IDENTIFIER } from '../events/fields.js';
import { parseHist, resolveHist, type HistExpr, type HistField, type HistSpec } from '../events/hist.js';
import type { EventRegistry } from '../events/registry.js';
import { monoNow } from './clock.js';
import { HistMap, fieldGetter, keyGetter, laneAdd, log2Bucket, type HistKey } from './hist-map.js';
import { fieldsOf, type TriggerPlan } from './rules.js';

/** What a hist trigger is compiled from (a rules update's plan). */
type HistPlan = NonNullable<TriggerPlan['hist']>;

/** What a hist trigger needs of the thread it runs on. */
export interface HistThread {
  cpu: number;
  pid: number;
  registry: EventRegistry;
  /** The thread's emitter for a synthetic event an action writes. */
  eventFor(index: number): { readonly def: EventType; emit(p: never): void };
  /** onmax(…).snapshot() saw a new maximum over all keys: take the instance's snapshot. */
  snapshot(): void;
}

/** What runs after the counts for a hist with variables, actions or trackers: the hit's slot and key values. */
type HistRest = (p: any, ts: number, slot: number, keys: HistKey[]) => void;

function compileHistFire(spec: HistSpec, map: HistMap, lane: Uint32Array, pid: number, usesClock: boolean, rest: HistRest | null): (p: any, ts: number) => void {
  const scope: Record<string, unknown> = { map, lane, laneAdd, monoNow, log2Bucket, pid, rest };
  const read = (f: HistField, generic: string, modify: (x: string) => string): string => {
    if (f.name === 'common_pid') return 'pid';
    if (f.name === 'hitcount') return '1';
    if (f.name === 'common_timestamp') return f.modifier === 'usecs' ? 'Math.floor(ts / 1000)' : 'ts';
    const layout = f.layout!;
    if (f.string || !IDENTIFIER.test(layout.name)) return `${generic}(p, ts)`;
    const max = layout.size >= 8 ? Number.MAX_SAFE_INTEGER : 2 ** (layout.size * 8 - (layout.signed ? 1 : 0)) - 1;
    return `(typeof (x = p[${JSON.stringify(layout.name)}]) === 'number' && x >= 0 && x <= ${max} && Number.isInteger(x) ? ${modify('x')} : ${generic}(p, ts))`;
  };
  const keys = spec.keys.map((f, i) => {
    scope[`key${i}`] = keyGetter(f, pid);
    const modify = f.modifier === 'log2' ? (x: string) => `log2Bucket(${x})`
      : f.modifier === 'buckets' ? (x: string) => `Math.floor(${x} / ${Math.trunc(f.buckets)}) * ${Math.trunc(f.buckets)}`
        : (x: string) => x;
    return read(f, `key${i}`, modify);
  });
  // With a `rest`, the key values go to it too: read once, kept in an array.
  const setKeys = rest
    ? `  const k = [${keys.join(', ')}];\n${keys.map((_, i) => `  map.setKey(${i}, k[${i}]);`).join('\n')}`
    : keys.map((value, i) => `  map.setKey(${i}, ${value});`).join('\n');
  const vals = spec.vals.map((f, i) => {
    scope[`val${i}`] = fieldGetter(f, pid);
    return `  laneAdd(lane, v0 + ${2 * (i + 1)}, ${read(f, `val${i}`, (x) => x)});`;
  });
  // `recorded`: the record's timestamp, or -1 when the event was not recorded (no clock read yet).
  const source = `"use strict"; return function fire(p, recorded) {
  if (map.paused) return;
  const ts = ${usesClock ? 'recorded >= 0 ? recorded : monoNow()' : '0'};
  let x;
  laneAdd(lane, 0, 1);
${setKeys}
  const at = map.find(true);
  if (at < 0) return;
  const v0 = map.valueAt(at, 0);
  laneAdd(lane, v0, 1);
${vals.join('\n')}${rest ? '\n  rest(p, ts, at, k);' : ''}
};`;
  // eslint-disable-next-line no-new-func -- see the module comment
  return new Function(...Object.keys(scope), source)(...Object.values(scope)) as (p: any, ts: number) => void;
}

export function compileHist(plan: HistPlan, type: EventType, thread: HistThread): { fire: (p: any, ts: number) => void; map: HistMap } {
  const spec = parseHist(plan.param, 0, true);
  resolveHist(spec, fieldsOf(type));
  const map = new HistMap(spec, plan.sab, plan.lanes);
  const { pid } = thread;
  // Variables: their expressions over fields, common_timestamp and `$var`s read from the
  // table of the hist that assigns them, for the same key.
  const sources = plan.refs.map((r) => {
    if (r.param === '') return { name: r.name, map, index: r.index };
    const sourceType = thread.registry.byIndex(r.event)!;
    const sourceSpec = parseHist(r.param, 0, true);
    resolveHist(sourceSpec, fieldsOf(sourceType));
    return { name: r.name, map: new HistMap(sourceSpec, r.sab), index: r.index };
  });
  // Variables hold bigints, or text for a string field (resolveHist keeps text out of + and -).
  type Value = bigint | string | null;
  type Eval = (p: any, ts: number, k: HistKey[], own: Value[]) => Value;
  const compile = (e: HistExpr): Eval => {
    if (e.kind === 'field') {
      const get = fieldGetter(e.field, pid);
      return (p, ts) => {
        const v = get(p, ts);
        return typeof v === 'string' ? v : BigInt(v);
      };
    }
    if (e.kind === 'ref') {
      const own = spec.vars.findIndex((v) => v.name === e.name);
      const src = sources.find((x) => x.name === e.name)!;
      return own >= 0 ? (_p, _ts, k, vars) => vars[own] ?? src.map.readVar(k, src.index) : (_p, _ts, k) => src.map.readVar(k, src.index);
    }
    const a = compile(e.a);
    const b = compile(e.b);
    return e.op === '+'
      ? (p, ts, k, own) => { const x = a(p, ts, k, own); const y = b(p, ts, k, own); return x === null || y === null ? null : (x as bigint) + (y as bigint); }
      : (p, ts, k, own) => { const x = a(p, ts, k, own); const y = b(p, ts, k, own); return x === null || y === null ? null : (x as bigint) - (y as bigint); };
  };
  const vars = spec.vars.map((v) => compile(v.expr));
  // Actions: the synthetic event, its fields from `$var`s and this event's fields.
  const actions = spec.actions.map((a, i) => {
    const synth = thread.eventFor(plan.synths[i]!);
    const layouts = fieldsOf(synth.def);
    const names = layouts.map((f) => f.name);
    // Variables are bigints: a narrower field takes a number, a string field text.
    const fit = layouts.map((f) => (f.kind === 'string' || f.kind === 'chars'
      ? (v: unknown) => (typeof v === 'string' ? v : String(v))
      : f.size < 8 ? (v: unknown) => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v) : (v: unknown) => v));
    const args = a.args.map((arg) => {
      if (arg.startsWith('$')) {
        const index = spec.vars.findIndex((v) => `$${v.name}` === arg);
        if (index >= 0) return (_p: any, _k: HistKey[], own: Value[]) => own[index] ?? null;
        // Another hist trigger's variable, for this hit's key.
        const src = sources.find((x) => `$${x.name}` === arg)!;
        return (_p: any, k: HistKey[]) => src.map.readVar(k, src.index);
      }
      return arg === 'common_pid' ? () => pid : (p: any) => p[arg] as unknown;
    });
    return (p: any, k: HistKey[], own: Value[]) => {
      const payload: Record<string, unknown> = {};
      for (let j = 0; j < args.length; j++) {
        const v = args[j]!(p, k, own);
        if (v === null) return; // a variable never assigned for this key: no match
        payload[names[j]!] = fit[j]!(v);
      }
      synth.emit(payload as never);
    };
  });
  // onmax/onchange: the tracked variable, and the fields save() keeps with a new value.
  const trackers = spec.trackers.map((t, i) => {
    const index = spec.vars.findIndex((v) => v.name === t.variable);
    const fields = t.fields.map((f, j) => (f === 'common_pid' ? () => BigInt(pid)
      : t.strings![j] ? (p: any) => String(p[f] ?? '') : (p: any) => BigInt(Math.trunc(Number(p[f]) || 0))));
    return (p: any, at: number, own: Value[]) => {
      const v = own[index];
      if (typeof v !== 'bigint') return; // never assigned for this hit (tracked variables are numeric)
      if (map.track(at, i, v, t.handler === 'onmax', fields.map((f) => f(p)), t.action === 'snapshot')) thread.snapshot();
    };
  });
  const rich = vars.length > 0 || actions.length > 0 || trackers.length > 0;
  const rest: HistRest = (p, ts, at, k) => {
    const own: Value[] = [];
    for (const v of vars) own.push(v(p, ts, k, own));
    map.setVars(at, own);
    for (const act of actions) act(p, k, own);
    for (const track of trackers) track(p, at, own);
  };
  return { fire: compileHistFire(spec, map, map.lane(thread.cpu), pid, plan.param.includes('common_timestamp'), rich ? rest : null), map };
}
