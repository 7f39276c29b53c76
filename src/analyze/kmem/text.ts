/**
 * kmem events from text: the kernel's `trace`/`trace_pipe` (any trace options that keep the
 * `COMM-PID [CPU] … TS: EVENT: fields` shape) and `trace-cmd report` (with or without its
 * buffer prefix and kmem plugin). Call sites in every form: `sym+0xoff/0xsize` (5.4+),
 * trace-cmd's `sym+0xoff`, legacy bare hex addresses (resolved through a symbol table),
 * `0x…` unresolved, and ` [mod]` module suffixes. Pointers hashed (`00000000` + hash), raw,
 * `0x…`, or `(nil)`.
 *
 * Lines are scanned as bytes (a typed array's loads are about twice as fast as charCodeAt on the
 * same text here): no string is made but for values kept (interned), no regular expression per line.
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


const HEX = /^[0-9a-fA-F]{8,16}$/;

const NL = 10;

export class KmemTextParser {
  readonly problems = newProblems();
  private readonly ev = newEvent();
  private readonly onEvent: (ev: KmemEvent) => void;
  private readonly symbols: Kallsyms | null;
  private readonly siteCache = new Map<string, string>();
  /** Task, gfp and cache names: few distinct values, so no string is made for one seen before. */
  private readonly strings = new RangeInterner();
  /** Raw call sites (`sym+0xoff/0xsize`), likewise. */
  private readonly sites = new RangeInterner();
  /** The start of a line cut at the end of the last chunk. */
  private rest: Buffer = Buffer.alloc(0);

  constructor(onEvent: (ev: KmemEvent) => void, symbols: Kallsyms | null = null) {
    this.onEvent = onEvent;
    this.symbols = symbols;
  }

  /** Feed a chunk (any split); complete lines are parsed now. */
  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let start = 0;
    let nl = text.indexOf(NL);
    if (this.rest.length) {
      // Finish the line cut at the end of the last chunk without joining whole chunks.
      if (nl < 0) {
        this.rest = Buffer.concat([this.rest, text]);
        return;
      }
      const line = Buffer.concat([this.rest, text.subarray(0, nl)]);
      this.rest = Buffer.alloc(0);
      this.line(line, 0, line.length);
      start = nl + 1;
      nl = text.indexOf(NL, start);
    }
    for (; nl >= 0; nl = text.indexOf(NL, start)) {
      this.line(text, start, nl);
      start = nl + 1;
    }
    this.rest = Buffer.from(text.subarray(start)); // a copy: the chunk is the reader's
  }

  /** The input ended: a last line without a newline is parsed too (a cut one is malformed). */
  end(): void {
    if (this.rest.length) this.line(this.rest, 0, this.rest.length);
    this.rest = Buffer.alloc(0);
  }

  private bad(text: Buffer, start: number, end: number, why: string): void {
    const p = this.problems;
    p.malformed++;
    if (p.examples.length < MAX_EXAMPLES) p.examples.push({ line: p.lines, text: text.toString('latin1', start, Math.min(end, start + 200)), why });
  }

  private line(text: Buffer, start: number, end: number): void {
    const p = this.problems;
    p.lines++;
    if (end > start && text[end - 1]! === 13) end--;
    // Skip blanks and comments.
    let i = start;
    while (i < end && text[i]! === 32) i++;
    if (i >= end || text[i]! === 35) return;
    // COMM-PID [CPU]: the first '[' after a space (a comm may hold one).
    let open = find(text, 91, i, end);
    while (open > 0 && text[open - 1]! !== 32) open = find(text, 91, open + 1, end);
    if (open < 0 || open >= end) return this.notEvent(text, start, end);
    open--;
    const close = find(text, 93, open, end);
    if (close < 0 || close >= end) return this.notEvent(text, start, end);
    const cpu = digits(text, open + 2, close);
    let dash = open - 1;
    while (dash >= i && text[dash]! !== 45) dash--;
    if (dash < i || cpu < 0) return this.notEvent(text, start, end);
    // TS: EVENT:
    const tsEnd = findColonSpace(text, close, end);
    if (tsEnd < 0 || tsEnd >= end) return this.notEvent(text, start, end);
    const nameEnd = find(text, 58, tsEnd + 2, end);
    if (nameEnd < 0 || nameEnd >= end) return this.notEvent(text, start, end);
    const name = eventName(text, tsEnd + 2, nameEnd);
    const kind = name ? KINDS[name]! : -1;
    if (kind < 0) {
      const other = text.toString('latin1', tsEnd + 2, nameEnd);
      p.unknown.set(other, (p.unknown.get(other) ?? 0) + 1);
      return;
    }
    const ev = this.ev;
    ev.kind = kind;
    ev.event = name;
    ev.cpu = cpu;
    let tsStart = tsEnd - 1;
    while (tsStart > close && text[tsStart]! !== 32) tsStart--;
    ev.ts = timestamp(text, tsStart + 1, tsEnd);
    if (!this.fields(text, nameEnd + 1, end, kind)) return this.bad(text, start, end, this.why);
    if (kind === ALLOC) {
      // Only allocations are broken down by task.
      let commStart = i;
      const prefix = findColonSpace(text, i, dash);
      if (prefix >= 0 && prefix < dash) commStart = prefix + 2;
      while (text[commStart]! === 32) commStart++;
      ev.comm = this.strings.get(text, commStart, dash);
      // The pid runs to the first space: a record-tgid column (`(   3271)`) may follow it.
      let pidEnd = dash + 1;
      while (pidEnd < open && text[pidEnd]! !== 32) pidEnd++;
      ev.pid = digits(text, dash + 1, pidEnd);
    }
    p.events++;
    this.onEvent(ev);
  }

  private why = '';

  /**
   * One pass over `key=value` tokens, dispatching on the key's first letters: no per-key search,
   * no slices but for the values kept as strings (call site, gfp flags, cache name).
   */
  private fields(text: Buffer, from: number, end: number, kind: number): boolean {
    const ev = this.ev;
    let site = -1;
    let siteEnd = -1;
    let ptr = -2;
    let req = -1;
    let alloc = -1;
    ev.cache = '';
    ev.gfp = '';
    ev.node = -1;
    ev.order = 0;
    ev.migratetype = 0;
    let pos = from;
    while (pos < end) {
      while (pos < end && (text[pos]! === 32 || text[pos]! === 40)) {
        // A `(call_site)` plugin prefix of trace-cmd: skip it whole.
        if (text[pos]! === 40) {
          const close = findPair(text, 41, 32, pos, end);
          pos = close < 0 || close > end ? end : close + 1;
        } else pos++;
      }
      if (pos >= end) break;
      let stop = find(text, 32, pos, end);
      if (stop < 0 || stop > end) stop = end;
      const eq = find(text, 61, pos, stop);
      if (eq < 0 || eq >= stop) {
        pos = stop;
        continue;
      }
      const v = eq + 1;
      const keyLen = eq - pos;
      const c0 = text[pos]!;
      const c1 = text[pos + 1]!;
      if (c0 === 99 && keyLen === 9) {
        site = v; // call_site
        siteEnd = stop;
      } else if (c0 === 112 && keyLen === 3) {
        ptr = c1 === 116 ? hexKey(text, v, stop) : c1 === 102 && kind >= PAGE_ALLOC ? hexKey(text, v, stop) : ptr; // ptr, pfn
      } else if (c0 === 98 && keyLen === 9) {
        req = digits(text, v, stop); // bytes_req
      } else if (c0 === 98 && keyLen === 11) {
        alloc = digits(text, v, stop); // bytes_alloc
      } else if (c0 === 103) {
        ev.gfp = this.strings.get(text, v, stop); // gfp_flags
      } else if (c0 === 110 && c1 === 111) {
        ev.node = signedDigits(text, v, stop); // node
      } else if (c0 === 110 && c1 === 97) {
        ev.cache = this.strings.get(text, v, stop); // name
      } else if (c0 === 111 && keyLen === 5) {
        ev.order = digits(text, v, stop); // order
      } else if (c0 === 109 && keyLen === 11) {
        ev.migratetype = digits(text, v, stop); // migratetype
      } else if (c0 === 112 && c1 === 97 && kind >= PAGE_ALLOC && ptr === -2) {
        ptr = hexKey(text, v, stop); // page=, when there is no pfn=
      }
      pos = stop;
    }
    if (kind >= PAGE_ALLOC) {
      ev.site = '';
      if (ptr < 0) return this.fail(ptr === -2 ? 'no pfn=' : 'bad pfn=');
      if (ev.order < 0) return this.fail('bad order=');
      ev.ptr = ptr;
      return true;
    }
    if (site < 0 || ptr === -2) return this.fail('no call_site= or ptr=');
    if (ptr < 0) return this.fail('bad ptr=');
    ev.ptr = ptr;
    ev.site = this.callSite(text, site, siteEnd, end);
    if (kind === ALLOC) {
      if (req < 0 || alloc < 0) return this.fail(req === -1 && alloc === -1 ? 'no bytes_req= or bytes_alloc=' : 'bytes are not numbers');
      ev.req = req;
      ev.alloc = alloc;
    }
    return true;
  }

  private fail(why: string): false {
    this.why = why;
    return false;
  }

  private notEvent(text: Buffer, start: number, end: number): void {
    const lost = text.indexOf('[LOST ', start);
    if (lost >= 0 && lost < end) {
      this.problems.lostEvents += parseInt(text.toString('latin1', lost + 6, end), 10) || 0;
      return;
    }
    this.bad(text, start, end, 'not an event line');
  }

  /**
   * `sym+0xoff/0xsize [mod]` → `sym+0xoff [mod]`; a bare hex address through the symbols. The
   * value at text[from, after) is compared with the last one first: runs of one call site are
   * common (RCU batches, loops), and then no string is made at all.
   */
  private callSite(text: Buffer, from: number, after: number, end: number): string {
    let site: string | undefined;
    const len = after - from;
    if (len === this.lastRaw.length && same(text, from, this.lastRaw)) site = this.lastSite;
    else {
      // Interned: a site seen before makes no string, and its Map key hashes once.
      const raw = this.sites.get(text, from, after);
      site = this.siteCache.get(raw) ?? this.resolveSite(raw);
      this.lastRaw = raw;
      this.lastSite = site;
    }
    // ` [mod]` follows the value after a space.
    if (after + 1 < end && text[after]! === 32 && text[after + 1]! === 91) {
      const close = find(text, 93, after, end);
      if (close > 0 && close < end) return `${site} ${text.toString('latin1', after + 1, close + 1)}`;
    }
    return site;
  }

  private lastRaw = '';
  private lastSite = '';

  private resolveSite(raw: string): string {
    const slash = raw.indexOf('/');
    let site = slash > 0 ? raw.slice(0, slash) : raw;
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
    return site;
  }
}

/** The known event name text[start, end) is, without making a string; '' if none. By length first. */
function eventName(text: Buffer, start: number, end: number): string {
  const is = (name: string) => (same(text, start, name) ? name : '');
  switch (end - start) {
    case 5: return is('kfree');
    case 7: return is('kmalloc');
    case 12: return is('mm_page_free') || is('kmalloc_node');
    case 13: return is('mm_page_alloc');
    case 15: return is('kmem_cache_free');
    case 16: return is('kmem_cache_alloc');
    case 20: return is('mm_page_free_batched');
    case 21: return is('kmem_cache_alloc_node');
    default: return '';
  }
}

/**
 * Strings of text ranges, made once per distinct value: a range equal to the last one of its
 * length, or found by a hash of its characters, costs a compare and no allocation.
 */
class RangeInterner {
  private readonly byHash = new Map<number, string[]>();
  private readonly lastByLength: string[] = [];

  get(text: Buffer, start: number, end: number): string {
    const len = end - start;
    const last = this.lastByLength[len];
    if (last !== undefined && same(text, start, last)) return last;
    let h = len;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text[i]!, 0x01000193);
    let bucket = this.byHash.get(h);
    if (bucket) {
      for (const s of bucket) {
        if (s.length === len && same(text, start, s)) {
          if (len < 256) this.lastByLength[len] = s;
          return s;
        }
      }
    } else this.byHash.set(h, (bucket = []));
    const s = text.toString('latin1', start, end);
    bucket.push(s);
    if (len < 256) this.lastByLength[len] = s;
    return s;
  }
}

/**
 * The first `byte` in text[from, end), or -1. A loop, not Buffer.indexOf: each call of that
 * goes into C++, which costs more than the few bytes these scans pass over.
 */
function find(text: Buffer, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (text[i] === byte) return i;
  return -1;
}

/** The first `a` followed by `b` in text[from, end), or -1. */
function findPair(text: Buffer, a: number, b: number, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (text[i] === a && text[i + 1] === b) return i;
  return -1;
}

/** The first ': ' in text[from, end), or -1. */
function findColonSpace(text: Buffer, from: number, end: number): number {
  return findPair(text, 58, 32, from, end);
}

/** Whether text at `at` holds the characters of `s`. */
function same(text: Buffer, at: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (text[at + i]! !== s.charCodeAt(i)) return false;
  return true;
}

/** Decimal digits in text[start, end) as a number; -1 if any other character (or none). */
function digits(text: Buffer, start: number, end: number): number {
  if (end <= start) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = text[i]! - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function signedDigits(text: Buffer, start: number, end: number): number {
  return text[start]! === 45 ? -digits(text, start + 1, end) : digits(text, start, end);
}

/** A hex address or hash (with or without 0x; `(nil)` is 0) as its low 52 bits; -1 if not hex. */
function hexKey(text: Buffer, start: number, end: number): number {
  if (text[start]! === 40) return 0; // (nil)
  if (text[start]! === 48 && text[start + 1]! === 120) start += 2;
  if (end <= start) return -1;
  if (end - start > 13) start = end - 13;
  let v = 0;
  for (let i = start; i < end; i++) {
    let c = text[i]!;
    if (c >= 48 && c <= 57) c -= 48;
    else if (c >= 97 && c <= 102) c -= 87;
    else if (c >= 65 && c <= 70) c -= 55;
    else return -1;
    v = v * 16 + c;
  }
  return v;
}

/** `seconds.fraction` (micro- or nanoseconds) as integer nanoseconds, 0 if unreadable. */
function timestamp(text: Buffer, start: number, end: number): number {
  let secs = 0;
  let i = start;
  for (; i < end; i++) {
    const c = text[i]! - 48;
    if (c < 0 || c > 9) break;
    secs = secs * 10 + c;
  }
  let frac = 0;
  let scale = 1e9;
  if (text[i]! === 46) {
    for (i++; i < end && scale > 1; i++) {
      const c = text[i]! - 48;
      if (c < 0 || c > 9) break;
      scale /= 10;
      frac += c * scale;
    }
  }
  return secs * 1e9 + Math.round(frac);
}
