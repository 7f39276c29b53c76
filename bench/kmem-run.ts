/** For bench/kmem.ts: analyze one input in a process of its own; print events, seconds and peak RSS as JSON. */
import { KmemAccount } from '../src/analyze/kmem/account.js';
import { readKmemEvents } from '../src/analyze/kmem/input.js';

const file = process.argv[2]!;
const account = new KmemAccount();
const start = process.hrtime.bigint();
const problems = await readKmemEvents(file, (ev) => account.add(ev));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(`${JSON.stringify({ events: problems.events, seconds, maxRssKB: process.resourceUsage().maxRSS, sites: account.sites.size, live: account.liveCount })}\n`);
