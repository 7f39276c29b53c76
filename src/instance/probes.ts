/**
 * Function probes on JavaScript modules (`dynamic_events`): each definition (probe.ts) becomes
 * an ordinary event, and the function is replaced on the object it was found on (a CommonJS
 * module's exports, a class prototype) by a wrapper that emits the event, fetching its
 * arguments only when the event is recorded or triggered somewhere. Return probes emit after
 * the call returns, or when a returned promise settles, with the time taken. Removing a probe
 * puts the original function back.
 *
 * What probes reach: calls made through the exports object or the prototype, and, once
 * `--import nftrace/register` made namespaces patchable, an ES module's exports as its
 * importers see them. Calls through a reference taken earlier (a CommonJS destructuring, calls
 * inside the module) are not seen (see docs/dynamic-events.md).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fail } from '../errno.js';
import type { EventType } from '../events/event.js';
import { IDENTIFIER, type FieldSpec } from '../events/fields.js';
import {
  ProbeError, fieldType, parseProbe, probeLine, type FetchArg, type ProbeDef,
} from '../events/probe.js';
import { monoNow } from './clock.js';
import { ESM_NAMESPACES } from './esm-namespaces.js';

/** What the probes need of their tracer. */
export interface ProbeHost {
  defineEvent(system: string, name: string, fields: FieldSpec, print: { fmt: string; args: string[] }): ProbeEvent;
  /** Enabled or triggered in any instance. */
  inUse(type: EventType): boolean;
  hide(type: EventType, hidden: boolean): void;
  logError(location: string, command: string, text: string, pos: number): void;
  comm: string;
}

/** The event a probe (or a synthetic event) writes: a TraceEvent of the main thread. */
export interface ProbeEvent {
  readonly def: EventType;
  emit(p: Record<string, unknown>): void;
  /** emit() at a time already read with monoNow(). */
  emitAt(p: Record<string, unknown>, mono: number): void;
  /** Recorded or triggered somewhere now (tracing_on counts). */
  readonly enabled: boolean;
}

interface Probe {
  def: ProbeDef;
  type: EventType;
  holder: Record<string, unknown>;
  key: string;
  /** The function was the holder's own property (else inherited: the wrapper is deleted again on removal). */
  own: boolean;
  /** The function as it was before any probe on it. */
  original: (...args: unknown[]) => unknown;
  /** What the wrapper calls: the original, or the wrapper of an armed probe defined before it on the same function. */
  next: (...args: unknown[]) => unknown;
  wrapper: (...args: unknown[]) => unknown;
  /** The wrapper is in place: the event is enabled or triggered in some instance (see sync()). */
  armed: boolean;
  hits: number;
  failures: number;
}

const LOCATION = 'trace_fprobe';

/** The commands of a write to a dynamic-event file: one per line, `#` comments and blank lines left out. */
export function commandLines(data: string): string[] {
  return data.split('\n').map((line) => line.replace(/#.*$/, '').trim()).filter(Boolean);
}

export class Probes {
  private readonly host: ProbeHost;
  private readonly probes: Probe[] = [];
  private readonly require = createRequire(join(process.cwd(), 'noop.js'));

  constructor(host: ProbeHost) {
    this.host = host;
  }

  read(): string {
    return this.probes.map((p) => probeLine(p.def)).join('');
  }

  /** `fprobe_profile`, in kprobe_profile's layout: each probe's hits and failed fetches. */
  profile(): string {
    return this.probes.map((p) => `  ${p.def.event.padEnd(44)} ${String(p.hits).padStart(15)} ${String(p.failures).padStart(15)}\n`).join('');
  }

  /** O_TRUNC: remove every probe, or none (EBUSY) if one is in use. */
  clear(): void {
    const busy = this.probes.find((p) => this.host.inUse(p.type));
    if (busy) fail('EBUSY', `${busy.def.group}/${busy.def.event} is enabled or triggered`);
    for (const p of [...this.probes]) this.detach(p);
  }

  /** One write: each line a definition or a removal. */
  write(data: string): void {
    for (const text of commandLines(data)) this.apply(text);
  }

  private apply(text: string): void {
    let parsed: ReturnType<typeof parseProbe>;
    try {
      parsed = parseProbe(text);
    } catch (err) {
      if (!(err instanceof ProbeError)) throw err;
      this.host.logError(LOCATION, text, err.text, err.pos);
      fail('EINVAL', `dynamic_events: ${err.text}`);
    }
    if (!('module' in parsed)) {
      const p = this.probes.find((x) => x.def.event === parsed.event && (parsed.group === null || x.def.group === parsed.group));
      if (!p) fail('ENOENT', `no probe ${parsed.group ? `${parsed.group}/` : ''}${parsed.event}`);
      if (this.host.inUse(p.type)) fail('EBUSY', `${p.def.group}/${p.def.event} is enabled or triggered`);
      this.detach(p);
      return;
    }
    const def = parsed;
    if (this.probes.some((p) => p.def.group === def.group && p.def.event === def.event)) fail('EEXIST', `${def.group}/${def.event} exists`);
    const bad = (why: string, pos: number): never => {
      this.host.logError(LOCATION, text, why, pos);
      fail('EINVAL', `dynamic_events: ${why}`);
    };
    // Carets: under the module, and under the function after it.
    const at = text.indexOf(def.module);
    const funcAt = at + def.module.length + 1;
    const name = def.func.join('.');
    let exports: unknown;
    let esm = false;
    try {
      exports = this.require(def.module);
      // require() of an ES module (Node 20.19+) gives its read-only namespace.
      esm = Object.prototype.toString.call(exports) === '[object Module]';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_REQUIRE_ESM') return bad(`Module not found: ${def.module} (${code ?? (err as Error).message})`, at);
      esm = true;
    }
    if (esm) {
      exports = this.esmNamespace(def.module) ?? bad(ESM_NAMESPACES.size === 0
        ? `${def.module} is an ES module: start node with --import nftrace/register to probe ES modules`
        : `${def.module} is an ES module not imported yet`, at);
    }
    let holder = exports as Record<string, unknown>;
    for (const part of def.func.slice(0, -1)) {
      const next = holder?.[part];
      if (next === null || (typeof next !== 'object' && typeof next !== 'function')) return bad(`No such function: ${name}`, funcAt);
      holder = next as Record<string, unknown>;
    }
    const key = def.func[def.func.length - 1]!;
    const original = holder?.[key];
    if (typeof original !== 'function') return bad(`No such function: ${name}`, funcAt);
    const desc = Object.getOwnPropertyDescriptor(holder, key);
    if (desc?.get && !desc.set) return bad(`Cannot patch ${name}: exported through a getter (a re-export?): probe the module that defines it`, at);
    if (desc && !desc.get && !desc.writable) return bad(`Cannot patch ${name}: read-only property`, at);
    if (!desc && !Object.isExtensible(holder)) return bad(`Cannot patch ${name}: its object is frozen or sealed`, at);
    // The event: the fetched arguments, plus the time taken for a return probe.
    const fields: FieldSpec = {};
    for (const a of def.args) fields[a.name] = fieldType(a.type);
    if (def.isReturn) fields.duration_ns = 'u64';
    const fmt = [
      `(${`${def.module}:${name}`.replace(/%/g, '%%')}${def.isReturn ? ' <- return' : ''})`,
      ...def.args.map((a) => `${a.name}=${conversion(a)}`),
      ...(def.isReturn ? ['duration_ns=%llu'] : []),
    ].join(' ');
    let event: ProbeEvent;
    try {
      event = this.host.defineEvent(def.group, def.event, fields, { fmt, args: Object.keys(fields) });
    } catch (err) {
      return bad(`Cannot define ${def.group}/${def.event}: ${(err as Error).message}`, 0);
    }
    // Another probe on the same function: both wrap the function as it was before either.
    const first = this.probes.find((p) => p.holder === holder && p.key === key);
    const probe: Probe = {
      def, type: event.def, holder, key,
      own: first ? first.own : Object.hasOwn(holder, key),
      original: first ? first.original : original as Probe['original'],
      next: null!, wrapper: null!, armed: false, hits: 0, failures: 0,
    };
    probe.next = probe.original;
    probe.wrapper = wrapperFor(probe, event, this.host.comm);
    // Set once now, so a target that cannot be patched fails the definition, not a later enable.
    const before = holder[key];
    try {
      holder[key] = probe.wrapper;
    } catch (err) {
      this.host.hide(event.def, true);
      return bad(`Cannot patch ${name}: ${(err as Error).message}`, at);
    }
    if (holder[key] !== probe.wrapper) {
      holder[key] = before;
      this.host.hide(event.def, true);
      return bad(`Cannot patch ${name}: the assignment did not take (a setter that ignores it?)`, at);
    }
    this.host.hide(event.def, false);
    warnLocalCalls(def, esm ? null : this.require, key);
    this.probes.push(probe);
    probe.armed = this.host.inUse(probe.type);
    this.link(probe);
  }

  /**
   * Put each probe's wrapper in place while its event is enabled or triggered in some instance
   * (the kernel arms a kprobe on enable too), and the original function otherwise, so a probe
   * nobody uses costs its function nothing. Called after every configuration change.
   */
  sync(): void {
    for (const p of this.probes) {
      const want = this.host.inUse(p.type);
      if (want === p.armed) continue;
      p.armed = want;
      this.link(p);
    }
  }

  /**
   * Chain the armed probes on p's function, in the order they were defined, in front of the
   * original, and put the chain (or the original alone) in its place, unless someone else
   * replaced what we had put there.
   */
  private link(p: Probe): void {
    const site = this.probes.filter((x) => x.holder === p.holder && x.key === p.key);
    const current = p.holder[p.key];
    const ours = current === p.original || site.some((x) => x.wrapper === current);
    let next = p.original;
    for (const x of site) {
      if (!x.armed) continue;
      x.next = next;
      next = x.wrapper;
    }
    if (!ours) return;
    try {
      if (next === p.original && !p.own) delete p.holder[p.key];
      else p.holder[p.key] = next;
    } catch (err) {
      // Frozen since the probe was defined: a configuration change must not fail for it.
      process.emitWarning(`cannot ${p.armed ? 'arm' : 'disarm'} probe ${p.def.group}/${p.def.event}: ${(err as Error).message}`, { code: 'NFTRACE_PROBE_PARTIAL' });
    }
  }

  private detach(p: Probe): void {
    p.armed = false;
    this.link(p);
    this.host.hide(p.type, true);
    this.probes.splice(this.probes.indexOf(p), 1);
  }

  /** The patchable namespace nftrace/register keeps for an ES module, by its resolved URL. */
  private esmNamespace(specifier: string): Record<string, unknown> | undefined {
    const urls: string[] = [];
    if (specifier.startsWith('.') || isAbsolute(specifier)) urls.push(pathToFileURL(resolve(process.cwd(), specifier)).href);
    else {
      try {
        urls.push(import.meta.resolve(specifier));
      } catch {
        // Not resolvable from here: only an exact URL can match.
      }
    }
    urls.push(specifier);
    for (const url of urls) {
      const ns = ESM_NAMESPACES.get(url);
      if (ns) return ns;
    }
    return undefined;
  }

}

function conversion(a: FetchArg): string {
  if (a.type === 'string') return '"%s"';
  const bits = Number(a.type.slice(1));
  const ll = bits === 64 ? 'll' : '';
  return a.type[0] === 'x' ? `0x%${ll}x` : a.type[0] === 's' ? `%${ll}d` : `%${ll}u`;
}

/**
 * Calls a probe cannot see, said when it is defined: a module function that the module also
 * calls by its local name (`add(…)` rather than `exports.add(…)`). Read from the source text,
 * so a hint, not proof; silent when the source cannot be read.
 */
function warnLocalCalls(def: ProbeDef, require: NodeJS.Require | null, key: string): void {
  if (def.func.length !== 1 || require === null) return;
  let source: string;
  try {
    source = readFileSync(require.resolve(def.module), 'utf8');
  } catch {
    return;
  }
  // Calls by the bare name: not a property access (`.add(`), not the definition itself.
  const name = key.replace(/\$/g, '\\$');
  const calls = source.match(new RegExp(`(?<![.\\w$])${name}\\s*\\(`, 'g'))?.length ?? 0;
  const definitions = source.match(new RegExp(`function\\s*\\*?\\s*${name}\\s*\\(|(?:\\{|,)\\s*${name}\\s*\\(`, 'g'))?.length ?? 0;
  if (calls - definitions <= 0) return;
  process.emitWarning(`${def.module}:${key} is also called inside its module by its local name; the probe ${def.group}/${def.event} sees only calls made through the exports`, { code: 'NFTRACE_PROBE_PARTIAL' });
}

/** A fetched value as its type wants it, or the type's default and a counted failure. */
function converter(a: FetchArg): (v: unknown, probe: Probe) => unknown {
  const numeric = a.type !== 'string';
  return (v, probe) => {
    if (typeof v === 'number' && numeric) {
      if (Number.isFinite(v)) return Math.trunc(v);
    } else if (!numeric) {
      if (v !== undefined && v !== null) return typeof v === 'object' ? Object.prototype.toString.call(v) : String(v);
    } else {
      if (typeof v === 'bigint') return v;
      if (typeof v === 'boolean') return v ? 1 : 0;
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (Number.isFinite(n)) return Math.trunc(n);
    }
    probe.failures++;
    return numeric ? 0 : '';
  };
}

/** A fetch's value, converted; never throws into the probed code. */
function fetcher(a: FetchArg, comm: string): (args: ArrayLike<unknown>, ret: unknown, self: unknown, probe: Probe) => unknown {
  const convert = converter(a);
  if (a.source === 'literal') return (_args, _ret, _self, probe) => convert(a.literal, probe);
  if (a.source === 'comm') return (_args, _ret, _self, probe) => convert(comm, probe);
  const { path, index } = a;
  return (args, ret, self, probe) => {
    let v: unknown = a.source === 'retval' ? ret : a.source === 'this' ? self : args[index - 1];
    try {
      for (const part of path) {
        if (v === null || v === undefined) return convert(undefined, probe);
        v = (v as Record<string, unknown>)[part];
      }
    } catch {
      return convert(undefined, probe);
    }
    return convert(v, probe);
  };
}

/**
 * The function that stands in for the original while the probe is armed, compiled per probe
 * with its record step so that every call site in it is monomorphic: V8 then reads `$argN`
 * straight from the arguments object without making it, and may keep the payload (one
 * object literal) off the heap. With the event off it only calls through. Generated under
 * events/codegen.ts's rule: field names that passed IDENTIFIER (the event's definition checked
 * them), JSON-quoted, integers and fixed text; nothing else.
 */
function wrapperFor(probe: Probe, event: ProbeEvent, comm: string): (...args: unknown[]) => unknown {
  const { def, original } = probe;
  const scope: Record<string, unknown> = { probe, event, monoNow };
  const fields = def.args.map((a, i) => {
    if (!IDENTIFIER.test(a.name)) throw new Error(`probe field name '${a.name}' is not a C identifier`);
    if (a.source === 'arg' && a.path.length === 0) {
      scope[`c${i}`] = converter(a);
      const arg = `args[${Math.trunc(a.index) - 1}]`;
      // A numeric argument that is a safe integer already needs no conversion: no call at all.
      const value = a.type === 'string' ? `c${i}(${arg}, probe)` : `(Number.isSafeInteger(v = ${arg}) ? v : c${i}(v, probe))`;
      return `${JSON.stringify(a.name)}: ${value}`;
    }
    scope[`f${i}`] = fetcher(a, comm);
    return `${JSON.stringify(a.name)}: f${i}(args, ret, self, probe)`;
  });
  // A return probe's record is stamped with the time it measured the return at (one clock read).
  if (def.isReturn) fields.push('"duration_ns": Math.max(0, (end = monoNow()) - start)');
  const call = 'construct !== undefined ? Reflect.construct(probe.next, args, construct) : Reflect.apply(probe.next, this, args)';
  const body = def.isReturn
    ? `if (!event.enabled) return ${call};
  const start = monoNow();
  const ret = ${call};
  if (ret !== null && typeof ret === 'object' && typeof ret.then === 'function') {
    // A promise: the event when it settles. Both outcomes are handled here, so this adds no unhandled rejection.
    ret.then((v) => record(this, args, v, start), (e) => record(this, args, e, start));
    return ret;
  }
  record(this, args, ret, start);
  return ret;`
    : `if (event.enabled) record(this, args, undefined, 0);
  return ${call};`;
  const source = `"use strict";
function record(self, args, ret, start) {
  let v, end;
  probe.hits++;
  try {
    ${def.isReturn ? `event.emitAt({ ${fields.join(', ')} }, end);` : `event.emit({ ${fields.join(', ')} });`}
  } catch {
    probe.failures++;
  }
}
return function () {
  const args = arguments;
  const construct = new.target;
  ${body}
};`;
  // eslint-disable-next-line no-new-func -- see the comment above
  const wrapper = new Function(...Object.keys(scope), source)(...Object.values(scope)) as (...args: unknown[]) => unknown;
  Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
  Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
  if (original.prototype !== undefined) wrapper.prototype = original.prototype;
  return wrapper;
}
