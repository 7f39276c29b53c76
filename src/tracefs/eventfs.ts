/**
 * `events/` built the way upstream eventfs is (Linux 6.8+, see docs/control-tree.md):
 *
 * - One static table of entries per directory kind (`events/`, a system, an event), shared by
 *   every instance: a name, a mode and a callback that makes the file's operations, or says the
 *   file does not exist for this event (ftrace/print has no `enable`).
 * - The catalog of systems and events is shared too, and rebuilt only when events are added.
 * - Per instance there are only numbers: enable bits (in the control block); filters and
 *   triggers live with the instance (instance/rules.ts), only for events that have them.
 * - A directory node exists only while something holds it (an open file or directory handle
 *   under it); lookups, stat and readdir make nothing that lasts. chmod/chown are kept apart,
 *   by path, so they survive a node being given back.
 */
import type { EventType } from '../events/event.js';
import type { EventRegistry } from '../events/registry.js';
import { enableState, enableable, setEnabled } from '../instance/enable.js';
import { SYSTEM_FILTER_HELP } from '../instance/rules.js';
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

/** What a file callback gets: where it is. `event` is absent at system and root level. */
export interface EntryContext {
  state: TracerState;
  instance: Instance;
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

/** ftrace's system has no `filter` or `enable`, nor have its events (print, js_stack). */
const notFtraceSystem = (ctx: EntryContext) => ctx.system !== 'ftrace';
const notFtraceEvent = (ctx: EntryContext) => ctx.event!.system !== 'ftrace';

function enableNode(ctx: EntryContext, events: () => EventType[]): FileNode {
  const { control } = ctx.state;
  const { slot, rules } = ctx.instance;
  return {
    pins: ctx.instance,
    read: () => {
      const list = events();
      const state = enableState(control, slot, list);
      // One event in soft mode (triggers on it or aimed at it) reads `0*` or `1*`.
      return list.length === 1 && rules.isSoft(list[0]!.index) ? `${state.trimEnd()}*\n` : state;
    },
    write: (d) => (setEnabled(control, slot, events(), parseBool(d, 'enable')), bytes(d)),
  };
}

function eventFilterNode(ctx: EntryContext): FileNode {
  const { rules } = ctx.instance;
  const index = ctx.event!.index;
  return { pins: ctx.instance, read: () => rules.readFilter(index), write: (d) => (rules.writeFilter(index, d), bytes(d)) };
}

function systemFilterNode(ctx: EntryContext): FileNode {
  const { rules } = ctx.instance;
  const system = ctx.system!;
  return {
    pins: ctx.instance,
    read: () => SYSTEM_FILTER_HELP,
    write: (d) => (rules.writeSystemFilter(system, enableable(ctx.state.registry, system), d), bytes(d)),
  };
}

function triggerNode(ctx: EntryContext): FileNode {
  const { rules } = ctx.instance;
  const index = ctx.event!.index;
  return {
    // An open trigger does not pin its instance; read after removal it answers ENODEV.
    staleErrno: 'ENODEV',
    read: () => rules.readTriggers(index),
    write: (d) => (rules.writeTrigger(index, d), bytes(d)),
    // O_TRUNC removes only the hist family (see rules.removeHists).
    truncate: () => rules.removeHists(index),
  };
}

export const ROOT_ENTRIES: Entry[] = [
  { name: 'enable', mode: MODE_RW, open: (ctx) => enableNode(ctx, () => enableable(ctx.state.registry)) },
  { name: 'header_page', mode: MODE_RO, open: (ctx) => ({ pins: ctx.instance, read: () => HEADER_PAGE_TEXT(ctx.instance.subbuf - 16) }) },
  { name: 'header_event', mode: MODE_RO, open: () => ({ read: () => HEADER_EVENT_TEXT }) },
];

export const SYSTEM_ENTRIES: Entry[] = [
  { name: 'filter', mode: MODE_RW, exists: notFtraceSystem, open: systemFilterNode },
  { name: 'enable', mode: MODE_RW, exists: notFtraceSystem, open: (ctx) => enableNode(ctx, () => enableable(ctx.state.registry, ctx.system)) },
];

export const EVENT_ENTRIES: Entry[] = [
  { name: 'enable', mode: MODE_RW, exists: notFtraceEvent, open: (ctx) => enableNode(ctx, () => [ctx.event!]) },
  { name: 'filter', mode: MODE_RW, exists: notFtraceEvent, open: eventFilterNode },
  { name: 'trigger', mode: MODE_RW, open: triggerNode },
  { name: 'format', mode: MODE_RO, open: (ctx) => ({ staleErrno: 'ENODEV', read: () => ctx.event!.formatFile() }) },
  { name: 'id', mode: MODE_RO, open: (ctx) => ({ read: () => `${ctx.event!.id}\n` }) },
  { name: 'hist', mode: MODE_RO, open: (ctx) => ({ pins: ctx.instance, read: () => ctx.instance.rules.readHist(ctx.event!.index) }) },
];

/** Systems and their events in creation order: metadata every instance shares. */
export class EventCatalog {
  private readonly registry: EventRegistry;
  private seen = -1;
  private systems = new Map<string, { index: number; events: EventType[] }>();

  constructor(registry: EventRegistry) {
    this.registry = registry;
  }

  private hiddenVersion = 0;

  private refresh(): void {
    const all = this.registry.all();
    if (this.registry.hiddenVersion !== this.hiddenVersion) {
      // A probe came or went: rebuild (rare).
      this.hiddenVersion = this.registry.hiddenVersion;
      this.systems = new Map();
      this.seen = 0;
    }
    if (all.length === this.seen) return;
    for (let i = Math.max(0, this.seen); i < all.length; i++) {
      const e = all[i]!;
      if (this.registry.isHidden(e.index)) continue;
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
