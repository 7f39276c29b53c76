/**
 * kmem events from text: the kernel's `trace`/`trace_pipe` (any trace options that keep the
 * `COMM-PID [CPU] … TS: EVENT: fields` shape) and `trace-cmd report` (with or without its
 * buffer prefix and kmem plugin). Call sites in every form: `sym+0xoff/0xsize` (5.4+),
 * trace-cmd's `sym+0xoff`, legacy bare hex addresses (resolved through a symbol table),
 * `0x…` unresolved, and ` [mod]` module suffixes. Pointers hashed (`00000000` + hash), raw,
 * `0x…`, or `(nil)`.
 *
 * Lines are scanned with indexOf on a latin1 string per chunk: no regular expression per line.
 */
import type { Kallsyms } from '../../events/symbols.js';
import { ALLOC, FREE, PAGE_ALLOC, PAGE_FREE, type KmemEvent, newEvent } from './account.js';

/** Events the analyzer reads, and what each is. */
const KINDS: Record<string, number> = {
  kmalloc: ALLOC,
  kmalloc_node: ALLOC,
  kmem_cache_alloc: ALLOC,
  kmem_cache_alloc_node: ALLOC,
  kfree: FREE,
  kmem_cache_free: FREE,
  mm_page_alloc: PAGE_ALLOC,
  mm_page_free: PAGE_FREE,
  mm_page_free_batched: PAGE_FREE,
};

export interface ParseProblems {
  lines: number;
  events: number;
  /** Lines that are not events, or events missing a field they must have. */
  malformed: number;
  /** The first few, with line numbers. */
  examples: { line: number; text: string; why: string }[];
  /** Events of other kinds, by name: skipped. */
  unknown: Map<string, number>;
  /** Legacy hex call sites no symbol table resolved. */
  unresolved: number;
  /** `[LOST n EVENTS]` lines of trace_pipe. */
  lostEvents: number;
}

const MAX_EXAMPLES = 5;

export function newProblems(): ParseProblems {
  return { lines: 0, events: 0, malformed: 0, examples: [], unknown: new Map(), unresolved: 0, lostEvents: 0 };
}

/** The low 52 bits of a hex address or hash (exact for kernel addresses), 0 for NULL forms. */
export function pointerKey(text: string): number {
  if (text === '(nil)') return 0;
  const hex = text.startsWith('0x') ? text.slice(2) : text;
  const v = parseInt(hex.length > 13 ? hex.slice(-13) : hex, 16);
  return Number.isNaN(v) ? -1 : v;
}

const HEX = /^[0-9a-fA-F]{8,16}$/;

export class KmemTextParser {
  readonly problems = newProblems();
  private readonly ev = newEvent();
  private readonly onEvent: (ev: KmemEvent) => void;
  private readonly symbols: Kallsyms | null;
  private readonly siteCache = new Map<string, string>();
  private rest = '';
  /** Where the last value field() returned ends. */
  private valueEnd = 0;

  constructor(onEvent: (ev: KmemEvent) => void, symbols: Kallsyms | null = null) {
    this.onEvent = onEvent;
    this.symbols = symbols;
  }

  /** Feed a chunk (any split); complete lines are parsed now. */
  push(chunk: Buffer | string): void {
    const text = this.rest + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(text, start, nl);
      start = nl + 1;
    }
    this.rest = text.slice(start);
  }

  /** The input ended: a last line without a newline is parsed too (a cut one is malformed). */
  end(): void {
    if (this.rest) this.line(this.rest, 0, this.rest.length);
    this.rest = '';
  }

  private bad(text: string, start: number, end: number, why: string): void {
    const p = this.problems;
    p.malformed++;
    if (p.examples.length < MAX_EXAMPLES) p.examples.push({ line: p.lines, text: text.slice(start, Math.min(end, start + 200)), why });
  }

  private line(text: string, start: number, end: number): void {
    const p = this.problems;
    p.lines++;
    if (end > start && text.charCodeAt(end - 1) === 13) end--;
    // Skip blanks and comments.
    let i = start;
    while (i < end && text.charCodeAt(i) === 32) i++;
    if (i >= end || text.charCodeAt(i) === 35) return;
    // COMM-PID [CPU]
    const open = text.indexOf(' [', i);
    if (open < 0 || open >= end) return this.notEvent(text, start, end);
    const close = text.indexOf(']', open);
    if (close < 0 || close >= end) return this.notEvent(text, start, end);
    const cpu = parseInt(text.slice(open + 2, close), 10);
    const dash = text.lastIndexOf('-', open);
    if (dash < i || Number.isNaN(cpu)) return this.notEvent(text, start, end);
    const pid = parseInt(text.slice(dash + 1, open), 10);
    let commStart = i;
    // trace-cmd's buffer prefix: `NAME:   comm-pid`.
    const prefix = text.indexOf(': ', i);
    if (prefix >= 0 && prefix < dash) commStart = prefix + 2;
    // TS: EVENT:
    const tsEnd = text.indexOf(': ', close);
    if (tsEnd < 0 || tsEnd >= end) return this.notEvent(text, start, end);
    const nameEnd = text.indexOf(':', tsEnd + 2);
    if (nameEnd < 0 || nameEnd >= end) return this.notEvent(text, start, end);
    const name = text.slice(tsEnd + 2, nameEnd);
    const kind = KINDS[name];
    if (kind === undefined) {
      p.unknown.set(name, (p.unknown.get(name) ?? 0) + 1);
      return;
    }
    const ev = this.ev;
    ev.kind = kind;
    ev.event = name;
    ev.cpu = cpu;
    ev.pid = pid;
    ev.comm = text.slice(commStart, dash).trim();
    ev.ts = timestamp(text, text.lastIndexOf(' ', tsEnd) + 1, tsEnd);
    const fields = nameEnd + 1;
    if (kind === ALLOC || kind === FREE) {
      const site = this.field(text, 'call_site=', fields, end);
      const siteEnd = this.valueEnd;
      const ptr = this.field(text, 'ptr=', fields, end);
      if (site === null || ptr === null) return this.bad(text, start, end, 'no call_site= or ptr=');
      ev.site = this.callSite(text, site, siteEnd, end);
      ev.ptr = pointerKey(ptr);
      if (ev.ptr < 0) return this.bad(text, start, end, `bad pointer '${ptr}'`);
      ev.cache = this.field(text, 'name=', fields, end) ?? '';
      if (kind === ALLOC) {
        const req = this.field(text, 'bytes_req=', fields, end);
        const alloc = this.field(text, 'bytes_alloc=', fields, end);
        if (req === null || alloc === null) return this.bad(text, start, end, 'no bytes_req= or bytes_alloc=');
        ev.req = +req;
        ev.alloc = +alloc;
        if (Number.isNaN(ev.req) || Number.isNaN(ev.alloc)) return this.bad(text, start, end, 'bytes are not numbers');
        ev.gfp = this.field(text, 'gfp_flags=', fields, end) ?? '';
        const node = this.field(text, 'node=', fields, end);
        ev.node = node === null ? -1 : parseInt(node, 10);
      }
    } else {
      const pfn = this.field(text, 'pfn=', fields, end) ?? this.field(text, 'page=', fields, end);
      if (pfn === null) return this.bad(text, start, end, 'no pfn=');
      ev.site = '';
      ev.ptr = pointerKey(pfn);
      const order = this.field(text, 'order=', fields, end);
      ev.order = order === null ? 0 : parseInt(order, 10);
      ev.migratetype = parseInt(this.field(text, 'migratetype=', fields, end) ?? '0', 10);
      ev.gfp = this.field(text, 'gfp_flags=', fields, end) ?? '';
      if (ev.ptr < 0 || Number.isNaN(ev.order)) return this.bad(text, start, end, 'bad pfn= or order=');
    }
    p.events++;
    this.onEvent(ev);
  }

  private notEvent(text: string, start: number, end: number): void {
    const lost = text.indexOf('[LOST ', start);
    if (lost >= 0 && lost < end) {
      this.problems.lostEvents += parseInt(text.slice(lost + 6, end), 10) || 0;
      return;
    }
    this.bad(text, start, end, 'not an event line');
  }

  /** The value after `key` up to the next space, searching from `from`; null when absent. */
  private field(text: string, key: string, from: number, end: number): string | null {
    let at = text.indexOf(key, from);
    // A key must start a word (ptr= is also the tail of other keys' names).
    while (at > 0 && at < end && text.charCodeAt(at - 1) !== 32 && text.charCodeAt(at - 1) !== 41) at = text.indexOf(key, at + 1);
    if (at < 0 || at >= end) return null;
    const v = at + key.length;
    let stop = text.indexOf(' ', v);
    if (stop < 0 || stop > end) stop = end;
    this.valueEnd = stop;
    return text.slice(v, stop);
  }

  /** `sym+0xoff/0xsize [mod]` → `sym+0xoff [mod]`; a bare hex address through the symbols. */
  private callSite(text: string, raw: string, after: number, end: number): string {
    const cached = this.siteCache.get(raw);
    let site = cached;
    if (site === undefined) {
      const slash = raw.indexOf('/');
      site = slash > 0 ? raw.slice(0, slash) : raw;
      if (HEX.test(site) && !site.includes('+')) {
        const hit = this.symbols?.lookup(BigInt(`0x${site}`));
        if (hit) {
          const mod = this.symbols!.module(hit.name);
          site = `${hit.name}+0x${hit.offset.toString(16)}${mod ? ` [${mod}]` : ''}`;
        } else {
          this.problems.unresolved++;
          site = `0x${site}`;
        }
      }
      this.siteCache.set(raw, site);
    }
    // ` [mod]` follows the value after a space.
    if (after + 1 < end && text.charCodeAt(after) === 32 && text.charCodeAt(after + 1) === 91) {
      const close = text.indexOf(']', after);
      if (close > 0 && close < end) return `${site} ${text.slice(after + 1, close + 1)}`;
    }
    return site;
  }
}

/** `seconds.fraction` (micro- or nanoseconds) as integer nanoseconds. */
function timestamp(text: string, start: number, end: number): number {
  const dot = text.indexOf('.', start);
  if (dot < 0 || dot > end) return parseInt(text.slice(start, end), 10) * 1e9 || 0;
  const secs = parseInt(text.slice(start, dot), 10);
  const frac = text.slice(dot + 1, end);
  return secs * 1e9 + parseInt(frac.padEnd(9, '0').slice(0, 9), 10);
}
