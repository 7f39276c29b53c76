/**
 * Which events an instance records: per-event enable bytes in the control block, and the
 * kernel's ways of setting them (`set_event` lines, `events/enable`, `events/<sys>/enable`).
 * ftrace's events (print, js_stack) cannot be enabled (the kernel gives them no `enable` file).
 */
import { fail } from '../errno.js';
import type { EventType } from '../events/event.js';
import type { EventRegistry } from '../events/registry.js';
import type { ControlBlock } from './control.js';

/** Events that have an enable switch (not the tracer's own ftrace events), optionally of one system. */
export function enableable(registry: EventRegistry, system?: string): EventType[] {
  return registry.all().filter((e) => e.system !== 'ftrace' && !registry.isHidden(e.index) && (system === undefined || e.system === system));
}

/** `0`, `1`, `X` when mixed, `?` when there are no events: what events/enable files read. */
export function enableState(control: ControlBlock, slot: number, events: EventType[]): string {
  let on = 0;
  for (const e of events) if (control.isEnabled(slot, e.index)) on++;
  if (events.length === 0) return '?\n';
  return on === 0 ? '0\n' : on === events.length ? '1\n' : 'X\n';
}

export function setEnabled(control: ControlBlock, slot: number, events: EventType[], on: boolean): void {
  if (events.every((e) => control.isEnabled(slot, e.index) === on)) return;
  control.change(() => {
    for (const e of events) control.setEnabled(slot, e.index, on);
  });
}

/**
 * Events one `set_event` token names: `sys:ev`, `sys:*`, `*:ev`, `*:*`, `:*`, or a bare word
 * that is a system or an event name (and `*`). Empty means nothing matched.
 */
export function matchEvents(registry: EventRegistry, token: string): EventType[] {
  const colon = token.indexOf(':');
  const all = enableable(registry);
  const glob = (pattern: string, value: string) => pattern === '' || pattern === '*' || pattern === value;
  if (colon < 0) return all.filter((e) => token === '*' || e.system === token || e.name === token);
  const sys = token.slice(0, colon);
  const ev = token.slice(colon + 1);
  return all.filter((e) => glob(sys, e.system) && glob(ev, e.name));
}

/**
 * Apply what was written to set_event. `truncate` (an O_TRUNC open, `echo >`) first disables
 * every event, and that stays done even when a later token is refused, as in the kernel.
 */
export function writeSetEvent(control: ControlBlock, registry: EventRegistry, slot: number, data: string, truncate: boolean): void {
  if (truncate) setEnabled(control, slot, enableable(registry), false);
  for (const raw of data.split(/\s+/)) {
    if (!raw) continue;
    const off = raw.startsWith('!');
    const token = off ? raw.slice(1) : raw;
    const events = matchEvents(registry, token);
    if (events.length === 0) fail('EINVAL', `set_event: no event matches '${token}'`);
    setEnabled(control, slot, events, !off);
  }
}

export function readSetEvent(control: ControlBlock, registry: EventRegistry, slot: number): string {
  return enableable(registry)
    .filter((e) => control.isEnabled(slot, e.index))
    .map((e) => `${e.system}:${e.name}\n`)
    .join('');
}
