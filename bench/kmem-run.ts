/** For bench/kmem.ts: analyze one input in a process of its own; print events, seconds and peak RSS as JSON. */
import { readFileSync } from 'node:fs';
import { KmemAccount } from '../src/analyze/kmem/account.js';
import { readKmemEvents } from '../src/analyze/kmem/input.js';

const file = process.argv[2]!;
const account = new KmemAccount();
const start = process.hrtime.bigint();
const problems = await readKmemEvents(file, (ev) => account.add(ev));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(`${JSON.stringify({ events: problems.events, seconds, maxRssKB: peakRssKB(), sites: account.sites.size, live: account.liveCount })}\n`);

/**
 * This process's peak RSS (VmHWM). Not resourceUsage().maxRSS: Linux carries ru_maxrss over
 * from the parent across fork and exec, so a child of a large bench process reports the parent's.
 */
function peakRssKB(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : process.resourceUsage().maxRSS;
}
