/**
 * A hist trigger's per-hit code, compiled per trigger (as emit() is per event) so that each
 * reads its payload fields with its own type feedback: one key and one value cost a couple
 * of loads, a hash, a probe of the key table and three adds into this thread's lane.
 *
 * Fast path per field: a number that is a non-negative integer within the field's range needs
 * no narrowing; anything else (negative, fractional, bigint, text) goes through the generic
 * getters of hist-map.ts. Safety, as events/codegen.ts: the source is fixed text, integers,
 * and field names that passed IDENTIFIER, JSON-quoted; nothing else.
 */
import { IDENTIFIER } from '../events/fields.js';
import type { HistField, HistSpec } from '../events/hist.js';
import { monoNow } from './clock.js';
import { fieldGetter, keyGetter, laneAdd, log2Bucket, type HistMap } from './hist-map.js';

/** What runs after the counts for a hist with variables, actions or trackers: given the hit's slot. */
export type HistRest = (p: any, ts: number, slot: number) => void;

export function compileHistFire(spec: HistSpec, map: HistMap, lane: Uint32Array, pid: number, usesClock: boolean, rest: HistRest | null): (p: any, ts: number) => void {
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
    return `  map.setKey(${i}, ${read(f, `key${i}`, modify)});`;
  });
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
${keys.join('\n')}
  const at = map.find(true);
  if (at < 0) return;
  const v0 = map.valueAt(at, 0);
  laneAdd(lane, v0, 1);
${vals.join('\n')}${rest ? '\n  rest(p, ts, at);' : ''}
};`;
  // eslint-disable-next-line no-new-func -- see the module comment
  return new Function(...Object.keys(scope), source)(...Object.values(scope)) as (p: any, ts: number) => void;
}
