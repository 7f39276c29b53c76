/**
 * What the kernel's tracing is set to, in the layout of `trace-cmd stat` and `trace-cmd list`.
 */
import { KernelInstance, KernelTracefs } from './tracefs.js';

/** The lines of `trace-cmd stat` (or `stat -B NAME`) for one instance. */
export function statText(fs: KernelTracefs, inst: KernelInstance): string {
  const out: string[] = [];
  if (inst.name !== null) out.push(`Instance: ${inst.name}`);
  const tracer = inst.exists('current_tracer') ? inst.read('current_tracer').trim() : 'nop';
  if (tracer !== 'nop') out.push(`Tracer: ${tracer}`);
  out.push('', 'Events:');
  const all = inst.read('events/enable').trim();
  const enabled = inst.enabledEvents();
  if (all === '0' || enabled.length === 0) out.push(' All disabled');
  else if (all === '1') out.push(' All enabled');
  else {
    // trace-cmd lists systems, and events within them, in the directory order of the instance.
    out.push(' Individual events:');
    const on = new Set(enabled);
    const systems = new Set(enabled.map((name) => name.slice(0, name.indexOf(':'))));
    for (const system of inst.list('events')) {
      if (!systems.has(system)) continue;
      out.push(`    ${system}`);
      for (const event of inst.list(`events/${system}`)) if (on.has(`${system}:${event}`)) out.push(`        ${event}`);
    }
  }
  for (const [title, file] of [['Filters', 'filter'], ['Triggers', 'trigger']] as const) {
    const lines: string[] = [];
    for (const name of enabled) {
      const text = inst.read(`events/${name.replace(':', '/')}/${file}`);
      for (const line of text.split('\n')) {
        if (line && line !== 'none' && !line.startsWith('#')) lines.push(`  ${name} "${line}"`);
      }
    }
    if (lines.length) out.push('', `${title}:`, ...lines);
  }
  const size = inst.read('buffer_size_kb').trim();
  out.push('', 'Buffer size in kilobytes (per cpu):');
  if (/^\d+$/.test(size)) out.push(`   ${size}`);
  else for (const cpu of inst.cpus()) out.push(`   CPU ${cpu}: ${inst.read(`per_cpu/cpu${cpu}/buffer_size_kb`).trim()}`);
  if (inst.exists('buffer_total_size_kb')) out.push('', 'Buffer total size in kilobytes:', `   ${inst.read('buffer_total_size_kb').trim()}`);
  const clock = inst.clock();
  if (clock !== 'local') out.push('', `Trace clock: ${clock}`);
  out.push('', `Tracing is ${inst.read('tracing_on').trim() === '1' ? 'enabled' : 'disabled'}`, '');
  if (inst.name === null) {
    const names = fs.instanceNames();
    if (names.length) out.push('', 'Instances:', ...names.map((n) => ` ${n}`));
  }
  return `${out.join('\n')}\n`;
}

/** `system:event` lines (available_events order), those matching `pattern` (a regex) if given. */
export function eventLines(fs: KernelTracefs, pattern?: string): string[] {
  const re = pattern === undefined ? null : regex(pattern);
  return fs.availableEventNames().filter((name) => !re || re.test(name));
}

/** The systems that have events, sorted, each with how many it has. */
export function systemLines(fs: KernelTracefs): string[] {
  return [...fs.availableEvents()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([system, events]) => `${system} (${events.length})`);
}

function regex(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new Error(`bad regular expression '${pattern}': ${(err as Error).message}`);
  }
}
