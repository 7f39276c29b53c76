/**
 * What `nftrace kmem` writes: the aligned text summary (human sizes), trace_analyze's account
 * and callers files (plain byte counts, its layout), JSON, CSV, and the self-contained HTML
 * report (ring chart with hover, sortable tables).
 */
import type { Breakdown, KmemAccount, Site } from './account.js';
import { escapeXml, humanBytes } from './rings.js';
import type { ParseProblems } from './text.js';
import { objectOf, type TreeDb } from './tree.js';

const pad = (v: string | number, n: number) => String(v).padStart(n);

/** Merge call sites of one function (`--by-function`). */
export function byFunction(sites: Iterable<Site>): Site[] {
  const merged = new Map<string, Site>();
  for (const s of sites) {
    const key = s.module ? `${s.caller} [${s.module}]` : s.caller;
    const m = merged.get(key);
    if (!m) {
      merged.set(key, { ...s, site: key });
      continue;
    }
    m.total += s.total;
    m.totalReq += s.totalReq;
    m.net += s.net;
    m.netReq += s.netReq;
    m.allocs += s.allocs;
    m.frees += s.frees;
    m.reused += s.reused;
  }
  return [...merged.values()];
}

/** trace_analyze's account file, with its header block and `%8d %8d %8d %5d/%-5d %s` rows. */
export function accountFile(sites: Site[]): string {
  const sum = (f: (s: Site) => number) => sites.reduce((n, s) => n + f(s), 0);
  const lines = [
    `current bytes allocated: ${pad(sum((s) => s.net), 10)}`,
    `current bytes requested: ${pad(sum((s) => s.netReq), 10)}`,
    `current wasted bytes:    ${pad(sum((s) => s.net - s.netReq), 10)}`,
    `number of allocs:        ${pad(sum((s) => s.allocs), 10)}`,
    `number of frees:         ${pad(sum((s) => s.frees), 10)}`,
    `number of callers:       ${pad(sites.length, 10)}`,
    '',
    '   total    waste      net alloc/free  caller',
    '---------------------------------------------',
    ...sites.map((s) => `${pad(s.total, 8)} ${pad(s.net - s.netReq, 8)} ${pad(s.net, 8)} ${pad(s.allocs, 5)}/${String(s.frees).padEnd(5)} ${s.site}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** trace_analyze's callers file: `{:<60} {:<8} {:<8} {:<8}` name, net, waste, object. */
export function callersFile(sites: Site[], db: TreeDb | null): string {
  return sites.map((s) => `${s.site.padEnd(60)} ${String(s.net).padEnd(8)} ${String(s.net - s.netReq).padEnd(8)} ${(db ? objectOf(db, s.caller) ?? '-' : '-').padEnd(8)}`.trimEnd()).join('\n') + '\n';
}

export interface Summary {
  input: string;
  problems: ParseProblems;
  account: KmemAccount;
  sites: Site[];
  top: number;
}

function table(headers: string[], rows: (string | number)[][], align: ('l' | 'r')[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r: (string | number)[]) => r.map((c, i) => (align[i] === 'l' ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ').trimEnd();
  return [fmt(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
}

function breakdownRows(map: Map<string, Breakdown>, top: number): (string | number)[][] {
  return [...map.values()].sort((a, b) => b.net - a.net || b.total - a.total || (a.key < b.key ? -1 : 1)).slice(0, top)
    .map((b) => [b.key, b.allocs, humanBytes(b.total), humanBytes(b.net), humanBytes(b.waste)]);
}

/** The default output: totals, top call sites, what did not match, breakdowns, pages, input problems. */
export function summaryText({ input, problems, account: a, sites, top }: Summary): string {
  const sum = (f: (s: Site) => number) => sites.reduce((n, s) => n + f(s), 0);
  const out: string[] = [];
  const span = a.lastTs > a.firstTs ? ` over ${((a.lastTs - a.firstTs) / 1e9).toFixed(3)} s` : '';
  out.push(`${input}: ${problems.events} kmem events${span}; ${a.allocs} allocations, ${a.frees} frees, ${sites.length} call sites`);
  out.push(`live: ${humanBytes(sum((s) => s.net))} in ${a.liveCount} objects (requested ${humanBytes(sum((s) => s.netReq))}, wasted ${humanBytes(sum((s) => s.net - s.netReq))}); allocated in all ${humanBytes(sum((s) => s.total))}`);
  out.push('');
  out.push(...table(['total', 'waste', 'net', 'alloc/free', 'call site'],
    sites.slice(0, top).map((s) => [humanBytes(s.total), humanBytes(s.net - s.netReq), humanBytes(s.net), `${s.allocs}/${s.frees}`, s.site]), ['r', 'r', 'r', 'r', 'l']));
  if (sites.length > top) out.push(`… ${sites.length - top} more call sites (--top N, --csv or -c FILE for all)`);
  out.push('');
  const priced = a.unmatchedBytes();
  out.push(`unmatched frees: ${a.unmatchedFrees} (of objects allocated before the trace, or whose allocation was lost); kfree(NULL): ${a.nullFrees}`);
  if (priced.frees) out.push(`  ${humanBytes(priced.bytes)} in the ${priced.frees} of them from slab caches whose object size the trace shows`);
  for (const [site, n] of a.topUnmatched(5)) out.push(`  ${pad(n, 8)}  ${site}`);
  if (a.unmatchedByCache.size) out.push(`  by cache: ${[...a.unmatchedByCache].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const policy = a.options.duplicates === 'free' ? 'the earlier one counted as freed without an event' : 'the earlier one kept live (trace_analyze)';
  out.push(`allocations at a still-live address: ${a.duplicates} (${policy}; --duplicates free|keep)`);
  for (const [site, n] of a.topDuplicates(5)) out.push(`  ${pad(n, 8)}  ${site} (the earlier allocation's site)`);
  if (a.outsideWindow) out.push(`outside --time: ${a.outsideWindow} events`);
  if (a.filteredOut) out.push(`left out by --malloc/--cache: ${a.filteredOut} events`);
  for (const [title, map] of [['by slab cache', a.byCache], ['by gfp flags', a.byGfp], ['by CPU', a.byCpu], ['by task', a.byComm], ['by NUMA node', a.byNode]] as const) {
    if (map.size === 0) continue;
    out.push('', `${title}:`, ...table([title.slice(3), 'allocs', 'total', 'net', 'waste'], breakdownRows(map, top), ['l', 'r', 'r', 'r', 'r']).map((l) => `  ${l}`));
  }
  if (a.pageAllocs || a.pageFrees) {
    out.push('', `page allocator: ${a.pageAllocs} allocations, ${a.pageFrees} frees (${a.pageUnmatchedFrees} unmatched); live ${humanBytes(a.pageBytes)} in ${a.livePages} blocks`);
    out.push(...table(['migratetype and gfp', 'allocs', 'total', 'net'], [...a.pagesBy.values()].sort((x, y) => y.net - x.net).slice(0, top)
      .map((b) => [b.key, b.allocs, humanBytes(b.total), humanBytes(b.net)]), ['l', 'r', 'r', 'r']).map((l) => `  ${l}`));
  }
  out.push(...problemLines(problems));
  return `${out.join('\n')}\n`;
}

export function problemLines(p: ParseProblems): string[] {
  const out: string[] = [];
  if (p.malformed) {
    out.push('', `unreadable lines: ${p.malformed} (first ${p.examples.length}):`);
    for (const e of p.examples) out.push(`  line ${e.line}: ${e.why}: ${e.text}`);
  }
  if (p.unknown.size) out.push('', `other events, skipped: ${[...p.unknown].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${c}`).join(', ')}`);
  if (p.unresolved) out.push('', `call sites no symbol table resolved: ${p.unresolved} (give -k TREE with System.map, or --kallsyms FILE)`);
  if (p.lostEvents) out.push('', `events the kernel lost: ${p.lostEvents}`);
  return out;
}

export function sitesJson(s: Site, db: TreeDb | null): Record<string, string | number | null> {
  return { site: s.site, caller: s.caller, module: s.module || null, object: db ? objectOf(db, s.caller) ?? null : null, total: s.total, net: s.net, waste: s.net - s.netReq, requested: s.totalReq, allocs: s.allocs, frees: s.frees, reused: s.reused };
}

export function accountJson({ input, problems, account: a, sites }: Summary, db: TreeDb | null): string {
  const breakdown = (m: Map<string, Breakdown>) => [...m.values()].sort((x, y) => y.net - x.net);
  return JSON.stringify({
    input,
    events: problems.events,
    allocs: a.allocs,
    frees: a.frees,
    live: { bytes: sites.reduce((n, s) => n + s.net, 0), objects: a.liveCount },
    unmatchedFrees: { count: a.unmatchedFrees, nullFrees: a.nullFrees, knownBytes: a.unmatchedBytes(), bySite: Object.fromEntries(a.unmatchedBySite), byCache: Object.fromEntries(a.unmatchedByCache) },
    duplicates: { count: a.duplicates, policy: a.options.duplicates, bySite: Object.fromEntries(a.duplicateSites) },
    sites: sites.map((s) => sitesJson(s, db)),
    byCache: breakdown(a.byCache), byGfp: breakdown(a.byGfp), byCpu: breakdown(a.byCpu), byComm: breakdown(a.byComm), byNode: breakdown(a.byNode),
    pages: { allocs: a.pageAllocs, frees: a.pageFrees, unmatchedFrees: a.pageUnmatchedFrees, liveBytes: a.pageBytes, by: breakdown(a.pagesBy) },
    problems: { lines: problems.lines, malformed: problems.malformed, examples: problems.examples, unknown: Object.fromEntries(problems.unknown), unresolved: problems.unresolved, lostEvents: problems.lostEvents },
  }, null, 2) + '\n';
}

const csvCell = (v: string | number | null) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v ?? ''));

export function accountCsv(sites: Site[], db: TreeDb | null): string {
  const rows = sites.map((s) => sitesJson(s, db));
  const headers = ['site', 'caller', 'module', 'object', 'total', 'net', 'waste', 'requested', 'allocs', 'frees', 'reused'];
  return [headers.join(','), ...rows.map((r) => headers.map((h) => csvCell(r[h]!)).join(','))].join('\n') + '\n';
}

/** A self-contained HTML report: the ring chart with a hover box, and sortable tables. */
export function accountHtml(summary: Summary, db: TreeDb | null, svg: string): string {
  const { account: a, sites } = summary;
  const num = (v: number) => `<td data-v="${v}">${escapeXml(humanBytes(v))}</td>`;
  const rows = sites.map((s) => `<tr><td>${escapeXml(s.site)}</td><td>${escapeXml(db ? objectOf(db, s.caller) ?? '(unplaced)' : '')}</td>${num(s.total)}${num(s.net - s.netReq)}${num(s.net)}<td data-v="${s.allocs}">${s.allocs}</td><td data-v="${s.frees}">${s.frees}</td></tr>`).join('\n');
  const caches = [...a.byCache.values()].sort((x, y) => y.net - x.net).map((b) => `<tr><td>${escapeXml(b.key)}</td><td data-v="${b.allocs}">${b.allocs}</td>${num(b.total)}${num(b.net)}${num(b.waste)}</tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nftrace kmem: ${escapeXml(summary.input)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
#chart{position:relative;display:inline-block}
#tip{position:fixed;display:none;background:#222;color:#fff;padding:4px 8px;border-radius:4px;font-size:12px;pointer-events:none}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child,td:nth-child(2){text-align:left}
th{cursor:pointer;background:#f4f4f4;user-select:none}
th.sorted::after{content:" \\25BE"}
path:hover{opacity:.75}
</style></head><body>
<h1>Kernel memory by call site</h1>
<p id="summary">${escapeXml(summary.input)}: ${summary.problems.events} events, ${a.allocs} allocations, ${a.frees} frees; live ${escapeXml(humanBytes(sites.reduce((n, s) => n + s.net, 0)))}; unmatched frees ${a.unmatchedFrees} (kfree(NULL) ${a.nullFrees}); allocations at live addresses ${a.duplicates}.</p>
<div id="chart">${svg}</div><div id="tip"></div>
<h2>Call sites</h2>
<table class="sortable" id="sites"><thead><tr><th>call site</th><th>object</th><th>total</th><th>waste</th><th class="sorted">net</th><th>allocs</th><th>frees</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Slab caches</h2>
<table class="sortable" id="caches"><thead><tr><th>cache</th><th>allocs</th><th>total</th><th>net</th><th>waste</th></tr></thead><tbody>
${caches}
</tbody></table>
<script>
const tip = document.getElementById('tip');
const human = (n) => { const u = ['B','KiB','MiB','GiB']; let v = n, i = 0; while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; } return i ? v.toFixed(1) + ' ' + u[i] : n + ' B'; };
document.querySelectorAll('#chart [data-name]').forEach((el) => {
  el.addEventListener('mousemove', (e) => { tip.style.display = 'block'; tip.style.left = e.clientX + 12 + 'px'; tip.style.top = e.clientY + 12 + 'px'; tip.textContent = el.dataset.name + ': ' + human(Number(el.dataset.bytes)); });
  el.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
});
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const table = th.closest('table'); const body = table.tBodies[0];
  const down = !(th.classList.contains('sorted') && th.dataset.dir === 'down');
  table.querySelectorAll('th').forEach((h) => h.classList.remove('sorted'));
  th.classList.add('sorted'); th.dataset.dir = down ? 'down' : 'up';
  const key = (tr) => { const td = tr.children[col]; return td.dataset.v !== undefined ? Number(td.dataset.v) : td.textContent; };
  const rows = [...body.rows].sort((a, b) => { const x = key(a), y = key(b); const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y)); return down ? -c : c; });
  body.append(...rows);
}));
</script>
</body></html>
`;
}
