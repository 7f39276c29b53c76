/**
 * `events/` built the way upstream eventfs is (Linux 6.8+, see docs/control-tree.md):
 *
 * - One static table of entries per directory kind (`events/`, a system, an event), shared by
 *   every instance: a name, a mode and a callback that makes the file's operations, or says the
 *   file does not exist for this event (ftrace/print has no `enable`).
 * - The catalog of systems and events is shared too, and rebuilt only when events are added.
 * - Per instance there are only numbers: enable bits (in the control block) and, for filters
 *   and triggers, a 16-bit reference per event into a small table of texts.
 * - A directory node exists only while something holds it (an open file or directory handle
 *   under it); lookups, stat and readdir make nothing that lasts. chmod/chown are kept apart,
 *   by path, so they survive a node being given back.
 */
import { fail } from '../errno.js';
import type { EventType } from '../events/event.js';
import type { EventRegistry } from '../events/registry.js';
import { enableState, enableable, setEnabled } from '../instance/enable.js';
import type { Instance } from '../instance/instance.js';
import { HEADER_EVENT_TEXT, HEADER_PAGE_TEXT } from '../ring/layout.js';
import { bytes, type FileNode, type TracerState } from './files.js';
import { parseBool } from './parse.js';

/** The inode number every eventfs file shares, as in the kernel. */
export const EVENTFS_FILE_INO = 19680823;
const EVENTFS_DIR_BASE = 0x40000000;
const SLOT_SPAN = 1 << 20;
const EVENT_DIR_OFFSET = 1 << 16;

export const MODE_RW = 0o640;
export const MODE_RO = 0o440;
export const MODE_EVENTFS_DIR = 0o755;

const NO_FILTER = 'none\n';
const TRIGGER_HELP = '# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event disable_event enable_hist disable_hist hist\n';

/** What a file callback gets: where it is. `event` is absent at system and root level. */
export interface EntryContext {
  state: TracerState;
  instance: Instance;
  /** The instance's filter/trigger texts, made when a filter or trigger file is first opened. */
  texts: () => EventfsTexts;
  system?: string;
  event?: EventType;
}

export interface Entry {
  name: string;
  mode: number;
  /** Whether this directory has the file (absent: always); lookups and readdir ask only this. */
  exists?: (ctx: EntryContext) => boolean;
  /** The file's operations, made when it is opened. */
  open: (ctx: EntryContext) => FileNode;
}

/** ftrace's system has no `filter` or `enable`, and ftrace/print has neither per event. */
const notFtraceSystem = (ctx: EntryContext) => ctx.system !== 'ftrace';
const notPrintEvent = (ctx: EntryContext) => ctx.event!.index !== 0;

function enableNode(ctx: EntryContext, events: () => EventType[]): FileNode {
  const { control } = ctx.state;
  const slot = ctx.instance.slot;
  return {
    pins: ctx.instance,
    read: () => enableState(control, slot, events()),
    write: (d) => (setEnabled(control, slot, events(), parseBool(d, 'enable')), bytes(d)),
  };
}

/** `filter` and `trigger` keep their text here until issue #6 gives them meaning. */
function textNode(ctx: EntryContext, kind: 'filter' | 'trigger', key: string, pins: boolean): FileNode {
  const texts = ctx.texts();
  const empty = kind === 'filter' ? NO_FILTER : TRIGGER_HELP;
  return {
    pins: pins ? ctx.instance : undefined,
    // An open trigger does not pin its instance; read after removal it answers ENODEV.
    staleErrno: pins ? undefined : 'ENODEV',
    read: () => {
      const text = texts.get(kind, key);
      return text === undefined ? empty : `${text}\n`;
    },
    write: (d) => {
      const text = d.trim();
      texts.set(kind, key, text === '' || (kind === 'filter' && text === '0') ? undefined : text);
      return bytes(d);
    },
  };
}

export const ROOT_ENTRIES: Entry[] = [
  { name: 'enable', mode: MODE_RW, open: (ctx) => enableNode(ctx, () => enableable(ctx.state.registry)) },
  { name: 'header_page', mode: MODE_RO, open: (ctx) => ({ pins: ctx.instance, read: () => HEADER_PAGE_TEXT(ctx.instance.subbuf - 16) }) },
  { name: 'header_event', mode: MODE_RO, open: () => ({ read: () => HEADER_EVENT_TEXT }) },
];

export const SYSTEM_ENTRIES: Entry[] = [
  { name: 'filter', mode: MODE_RW, exists: notFtraceSystem, open: (ctx) => textNode(ctx, 'filter', ctx.system!, true) },
  { name: 'enable', mode: MODE_RW, exists: notFtraceSystem, open: (ctx) => enableNode(ctx, () => enableable(ctx.state.registry, ctx.system)) },
];

export const EVENT_ENTRIES: Entry[] = [
  { name: 'enable', mode: MODE_RW, exists: notPrintEvent, open: (ctx) => enableNode(ctx, () => [ctx.event!]) },
  { name: 'filter', mode: MODE_RW, exists: notPrintEvent, open: (ctx) => textNode(ctx, 'filter', String(ctx.event!.index), true) },
  { name: 'trigger', mode: MODE_RW, open: (ctx) => textNode(ctx, 'trigger', String(ctx.event!.index), false) },
  { name: 'format', mode: MODE_RO, open: (ctx) => ({ staleErrno: 'ENODEV', read: () => ctx.event!.formatFile() }) },
  { name: 'id', mode: MODE_RO, open: (ctx) => ({ read: () => `${ctx.event!.id}\n` }) },
];

/** Systems and their events in creation order: metadata every instance shares. */
export class EventCatalog {
  private readonly registry: EventRegistry;
  private seen = -1;
  private systems = new Map<string, { index: number; events: EventType[] }>();

  constructor(registry: EventRegistry) {
    this.registry = registry;
  }

  private refresh(): void {
    const all = this.registry.all();
    if (all.length === this.seen) return;
    for (let i = Math.max(0, this.seen); i < all.length; i++) {
      const e = all[i]!;
      let sys = this.systems.get(e.system);
      if (!sys) this.systems.set(e.system, (sys = { index: this.systems.size, events: [] }));
      sys.events.push(e);
    }
    this.seen = all.length;
  }

  systemNames(): string[] {
    this.refresh();
    return [...this.systems.keys()];
  }

  system(name: string): { index: number; events: EventType[] } | undefined {
    this.refresh();
    return this.systems.get(name);
  }
}

/** Stable, unique directory inode numbers; never the shared file number. */
export function systemDirIno(slot: number, systemIndex: number): number {
  return EVENTFS_DIR_BASE + slot * SLOT_SPAN + 1 + systemIndex;
}

export function eventDirIno(slot: number, eventIndex: number): number {
  return EVENTFS_DIR_BASE + slot * SLOT_SPAN + EVENT_DIR_OFFSET + eventIndex;
}

/** Filter and trigger texts of one instance: a 16-bit reference per event into a pool of texts. */
export class EventfsTexts {
  private readonly maxEvents: number;
  /** Made on the first filter or trigger written: an untouched instance has none. */
  private filterRef: Uint16Array | null = null;
  private triggerRef: Uint16Array | null = null;
  private readonly pool: (string | undefined)[] = [undefined];
  private readonly free: number[] = [];
  /** System-level filters, by system name (few, and rarely set). */
  private readonly systemFilters = new Map<string, string>();

  constructor(maxEvents: number) {
    this.maxEvents = maxEvents;
  }

  private refs(kind: 'filter' | 'trigger'): Uint16Array {
    if (kind === 'filter') return (this.filterRef ??= new Uint16Array(this.maxEvents));
    return (this.triggerRef ??= new Uint16Array(this.maxEvents));
  }

  /** `key` is an event index, or a system name for a system's filter. */
  get(kind: 'filter' | 'trigger', key: string): string | undefined {
    if (!/^\d+$/.test(key)) return kind === 'filter' ? this.systemFilters.get(key) : undefined;
    const refs = kind === 'filter' ? this.filterRef : this.triggerRef;
    return refs ? this.pool[refs[Number(key)]!] : undefined;
  }

  set(kind: 'filter' | 'trigger', key: string, text: string | undefined): void {
    if (!/^\d+$/.test(key)) {
      if (text === undefined) this.systemFilters.delete(key);
      else this.systemFilters.set(key, text);
      return;
    }
    const refs = this.refs(kind);
    const index = Number(key);
    const old = refs[index]!;
    if (old) {
      this.pool[old] = undefined;
      this.free.push(old);
    }
    if (text === undefined) {
      refs[index] = 0;
      return;
    }
    const ref = this.free.pop() ?? this.pool.length;
    if (ref > 0xffff) fail('ENOMEM', 'too many filters and triggers');
    this.pool[ref] = text;
    refs[index] = ref;
  }
}
