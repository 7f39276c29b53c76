/**
 * nftrace kmem: both call-site forms give one account; hand-checked totals; unmatched frees,
 * kfree(NULL) and still-live reuse counted exactly under both policies; trace.dat and trace-cmd
 * text agree; a kernel tree built here (gcc) gives exact static sizes and no prefix double
 * counting; a vmlinux's DWARF places functions; bad input is counted, not fatal; the CLI's
 * classic files.
 *
 * Fixtures (test/fixtures/kmem): the first 5,000 events of a Linux 6.18 kmem capture, its first
 * 2,000 rewritten with legacy hex call sites, and the kallsyms lines those resolve to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { KmemAccount, sortedSites, type Site } from '../src/analyze/kmem/account.js';
import { readKmemEvents } from '../src/analyze/kmem/input.js';
import { readTextParallel } from '../src/analyze/kmem/parallel.js';
import { KmemTextParser } from '../src/analyze/kmem/text.js';
import { accountFile } from '../src/analyze/kmem/report.js';
import { buildRings } from '../src/analyze/kmem/rings.js';
import { scanTree } from '../src/analyze/kmem/tree.js';
import { vmlinuxDb } from '../src/analyze/kmem/vmlinux.js';
import { Kallsyms } from '../src/events/symbols.js';
import { needKernel } from './helpers/tracefs.js';

const FIX = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const text = (name: string) => gunzipSync(readFileSync(join(FIX, name))).toString('latin1');

function account(input: string, symbols: Kallsyms | null = null, options = {}): { acc: KmemAccount; parser: KmemTextParser } {
  const acc = new KmemAccount(options);
  const parser = new KmemTextParser((ev) => acc.add(ev), symbols);
  parser.push(input);
  parser.end();
  return { acc, parser };
}

const rows = (sites: Iterable<Site>) => sortedSites(sites, 'current_dynamic').map((s) => `${s.site} ${s.total} ${s.net} ${s.netReq} ${s.allocs} ${s.frees}`);

test('legacy hex call sites resolved through kallsyms give the same account as sym+0xoff/0xsize', () => {
  const modern = text('kmem/kmem_head5000.txt.gz').split('\n').slice(0, 2012).join('\n');
  const legacy = text('kmem/legacy_callsite_hex_head2000.txt.gz');
  const a = account(modern);
  const symbols = Kallsyms.load(join(FIX, 'kmem/kallsyms-subset.txt.gz'));
  const b = account(legacy, symbols);
  assert.equal(a.parser.problems.events, 2000);
  assert.equal(b.parser.problems.events, 2000);
  assert.equal(b.parser.problems.unresolved, 0);
  assert.deepEqual(rows(b.acc.sites.values()), rows(a.acc.sites.values()));
  assert.deepEqual([...b.acc.unmatchedBySite].sort(), [...a.acc.unmatchedBySite].sort());
  // Without symbols, legacy sites stay addresses and are counted as unresolved.
  const c = account(legacy);
  assert.ok(c.parser.problems.unresolved > 0);
  assert.ok([...c.acc.sites.keys()].every((k) => k.startsWith('0xffffffff')));
});

const LINE = (cpu: number, ts: string, event: string, fields: string) => `            bash-100     [00${cpu}] .....  ${ts}: ${event}: ${fields}`;

test('hand-checked account: totals, waste, net, unmatched frees, kfree(NULL), reuse under both policies', () => {
  const trace = [
    '# tracer: nop',
    LINE(0, '1.000001', 'kmalloc', 'call_site=foo+0x10/0x40 ptr=00000000000000a1 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false'),
    LINE(0, '1.000002', 'kmalloc', 'call_site=foo+0x10/0x40 ptr=00000000000000a2 bytes_req=60 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false'),
    LINE(1, '1.000003', 'kmem_cache_alloc', 'call_site=bar+0x8/0x20 ptr=00000000000000b1 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=0 accounted=false'),
    LINE(0, '1.000004', 'kfree', 'call_site=baz+0x4/0x10 ptr=00000000000000a1'),
    LINE(0, '1.000005', 'kfree', 'call_site=baz+0x4/0x10 ptr=0000000000000000'),
    LINE(0, '1.000006', 'kfree', 'call_site=baz+0x4/0x10 ptr=00000000000000ff'),
    LINE(1, '1.000007', 'kmem_cache_free', 'call_site=qux+0x1/0x10 ptr=00000000000000c1 name=filp'),
    // bar's object is allocated again at the same address without a free in between.
    LINE(1, '1.000008', 'kmem_cache_alloc', 'call_site=bar+0x9/0x20 ptr=00000000000000b1 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=0 accounted=false'),
    LINE(0, '1.000009', 'sched_switch', 'prev_comm=bash prev_pid=100'),
  ].join('\n');
  const { acc, parser } = account(trace);
  assert.equal(parser.problems.events, 8);
  assert.deepEqual([...parser.problems.unknown], [['sched_switch', 1]]);
  const foo = acc.sites.get('foo+0x10')!;
  assert.deepEqual([foo.total, foo.net, foo.net - foo.netReq, foo.allocs, foo.frees], [192, 64, 4, 2, 1]);
  assert.equal(acc.nullFrees, 1);
  assert.equal(acc.unmatchedFrees, 2, 'ff and c1');
  assert.deepEqual([...acc.unmatchedByCache], [['filp', 1]]);
  assert.deepEqual(acc.unmatchedBytes(), { bytes: 0, frees: 0 }, 'no filp allocation seen: its size is unknown');
  assert.equal(acc.duplicates, 1);
  // Policy free: bar+0x8's object was freed implicitly, so only bar+0x9's is live.
  assert.equal(acc.sites.get('bar+0x8')!.net, 0);
  assert.equal(acc.sites.get('bar+0x9')!.net, 192);
  assert.equal(acc.liveCount, 2);
  // Policy keep (trace_analyze): the earlier one stays live forever.
  const kept = account(trace, null, { duplicates: 'keep' }).acc;
  assert.equal(kept.sites.get('bar+0x8')!.net, 192);
  assert.equal(kept.liveCount, 3);
  // The classic account file.
  const file = accountFile(sortedSites(acc.sites.values(), 'total_dynamic'));
  assert.deepEqual(file.split('\n').slice(0, 9), [
    'current bytes allocated:        256',
    'current bytes requested:        252',
    'current wasted bytes:             4',
    'number of allocs:                 4',
    'number of frees:                  1',
    'number of callers:                3',
    '',
    '   total    waste      net alloc/free  caller',
    '---------------------------------------------',
  ]);
  // All three tie on total: the call site breaks the tie.
  assert.deepEqual(file.split('\n').slice(9, 12), [
    '     192        0        0     1/0     bar+0x8',
    '     192        0      192     1/0     bar+0x9',
    '     192        4       64     2/1     foo+0x10',
  ]);
});

test('by task: comm-PID, also with a record-tgid column; the comm alone when the pid is unknown', () => {
  const fields = 'call_site=foo+0x10/0x40 ptr=00000000000000a1 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false';
  const trace = [
    `            bash-3271    (   3271) [000] ..... 1.000001: kmalloc: ${fields}`,
    `            find-42      [001] ..... 1.000002: kmalloc: ${fields.replace('a1', 'a2')}`,
    `           <...>-x       [001] ..... 1.000003: kmalloc: ${fields.replace('a1', 'a3')}`,
  ].join('\n');
  const { acc } = account(trace);
  assert.deepEqual([...acc.byComm.keys()].sort(), ['<...>', 'bash-3271', 'find-42']);
});

test('bad input is counted with line numbers and the run goes on', () => {
  const trace = [
    LINE(0, '1.000001', 'kmalloc', 'call_site=foo+0x10/0x40 ptr=00000000000000a1 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1'),
    'garbage that is not a trace line',
    LINE(0, '1.000002', 'kmalloc', 'call_site=foo+0x10/0x40 bytes_req=100'),
    LINE(0, '1.000003', 'kmalloc', 'call_site=foo+0x10/0x40 ptr=00000000000000a2 bytes_req=x bytes_alloc=y'),
    'CPU:1 [LOST 17 EVENTS]',
    LINE(0, '1.000004', 'kfree', 'call_site=foo+0x10/0x40 ptr=00000000000000a1'),
    LINE(0, '1.000005', 'kmalloc', 'call_site=foo+0x10/0x40 ptr=000000000'),
  ].join('\n');
  const { acc, parser } = account(trace);
  const p = parser.problems;
  assert.equal(p.events, 2);
  assert.equal(p.malformed, 4);
  assert.deepEqual(p.examples.map((e) => e.line), [2, 3, 4, 7]);
  assert.equal(p.lostEvents, 17);
  assert.equal(acc.sites.get('foo+0x10')!.frees, 1);
});

test('trace.dat and trace-cmd report text of the same recording give the same account', async () => {
  const dat = new KmemAccount();
  const p1 = await readKmemEvents(join(FIX, 'trace-dat/kmem_tc_small_v6.dat.gz'), (ev) => dat.add(ev));
  const txt = new KmemAccount();
  const p2 = await readKmemEvents(join(FIX, 'trace-dat/kmem_tc_small_v6_report.txt.gz'), (ev) => txt.add(ev));
  assert.equal(p1.events, p2.events);
  assert.ok(p1.events > 20000);
  assert.deepEqual(rows(txt.sites.values()), rows(dat.sites.values()));
  assert.equal(txt.pageAllocs, dat.pageAllocs);
  assert.equal(txt.pageBytes, dat.pageBytes);
  assert.equal(dat.duplicates, txt.duplicates);
  assert.deepEqual([...txt.byGfp.keys()].sort(), [...dat.byGfp.keys()].sort(), 'gfp flags print the same');
});

/** A tiny kernel tree: fs/ext/inode.c (alloc and alloc_inode), mm/slab.c (data only too), lib/x.c. */
function buildTree(dir: string): void {
  const files: Record<string, string> = {
    'fs/ext/inode.c': 'int alloc(int x) { return x + 1; }\nint alloc_inode(int x) { return alloc(x) * 3 + 7; }\n',
    'mm/slab.c': 'int table[1000];\nint big_table[30000] = {1};\nint kmalloc_impl(int n) { return table[n]; }\n',
    'lib/x.c': 'static int helper(int a) { return a * a; }\nint lib_fn(int a) { return helper(a) + 1; }\n',
    'scripts/tool.c': 'int not_kernel(void) { return 0; }\n',
  };
  for (const [rel, src] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, src);
    execFileSync('gcc', ['-O1', '-fno-inline', '-c', path, '-o', path.replace(/\.c$/, '.o')]);
  }
}

test('a kernel tree built here: exact static sizes from the symbol tables, one object per function, unplaced sites kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-ktree-'));
  try {
    buildTree(dir);
    const db = scanTree(dir);
    assert.deepEqual(Object.keys(db.objects).sort(), ['fs/ext/inode.o', 'lib/x.o', 'mm/slab.o'], 'scripts/ is skipped');
    const nm = (o: string) => execFileSync('nm', ['-S', '--defined-only', join(dir, o)], { encoding: 'utf8' })
      .split('\n').map((l) => l.split(' ')).filter((f) => f.length === 4 && /[tTdDbBrR]/.test(f[2]!)).reduce((n, f) => n + parseInt(f[1]!, 16), 0);
    for (const o of Object.keys(db.objects)) assert.equal(db.objects[o], nm(o), `${o} static size`);
    assert.ok(db.objects['mm/slab.o']! >= 124000, 'sizes over 100,000 are read');
    assert.equal(db.functions.alloc, 'fs/ext/inode.o');
    const trace = [
      LINE(0, '1.000001', 'kmalloc', 'call_site=alloc_inode+0x5/0x20 ptr=00000000000000a1 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1'),
      LINE(0, '1.000002', 'kmalloc', 'call_site=lib_fn+0x3/0x20 ptr=00000000000000a2 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1'),
      LINE(0, '1.000003', 'kmalloc', 'call_site=ext4_mod_fn+0x3/0x20 [ext4] ptr=00000000000000a3 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1'),
    ].join('\n');
    const { acc } = account(trace);
    assert.ok(acc.sites.has('ext4_mod_fn+0x3 [ext4]'));
    const rings = buildRings(acc.sites.values(), db, 'current_dynamic');
    const find = (path: string) => {
      const walk = (n: typeof rings): typeof rings | undefined => (n.path === path ? n : n.children.map(walk).find(Boolean));
      return walk(rings);
    };
    // 128 B once: alloc_inode's object only, not also alloc's (trace_analyze's prefix match counted it twice).
    assert.equal(find('fs')!.value, 128);
    assert.equal(find('fs/ext/inode.o')!.value, 128);
    assert.equal(find('lib/x.o')!.value, 64);
    assert.equal(find('(unplaced)/[ext4]')!.value, 32, 'outside the tree: listed, not dropped');
    assert.equal(rings.value, 224);
    const statics = buildRings([], db, 'static');
    assert.equal(statics.value, Object.values(db.objects).reduce((a, b) => a + b, 0));
    // -b: the branch alone.
    assert.equal(buildRings(acc.sites.values(), db, 'current_dynamic', 'fs').value, 128);
    // The CLI with the tree, and again from the database it saves: the same files.
    writeFileSync(join(dir, 'trace.txt'), `${trace}\n`);
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, 'kmem', '-f', join(dir, 'trace.txt'), ...args], { encoding: 'utf8' });
    const a = cli(['-k', dir, '--save-db', join(dir, 'db.json'), '-l', join(dir, 'callers-a'), '-r', join(dir, 'rings-a.svg'), '-a', 'current']);
    assert.equal(a.status, 0, a.stderr);
    const b = cli(['--db-file', join(dir, 'db.json'), '-l', join(dir, 'callers-b'), '-r', join(dir, 'rings-b.svg'), '-a', 'current']);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(readFileSync(join(dir, 'callers-b'), 'utf8'), readFileSync(join(dir, 'callers-a'), 'utf8'));
    assert.equal(readFileSync(join(dir, 'rings-b.svg'), 'utf8'), readFileSync(join(dir, 'rings-a.svg'), 'utf8'));
    assert.match(readFileSync(join(dir, 'callers-a'), 'utf8'), /^alloc_inode\+0x5 +128 +28 +fs\/ext\/inode\.o$/m);
    assert.match(cli(['-k', join(dir, 'nope')]).stderr, /kernel tree .*nope is not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--vmlinux: functions placed by the DWARF compile units of a linked image', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-vmlinux-'));
  try {
    buildTree(dir);
    const sources = ['fs/ext/inode.c', 'mm/slab.c', 'lib/x.c'];
    writeFileSync(join(dir, 'start.c'), 'int alloc_inode(int); int lib_fn(int); int kmalloc_impl(int);\nvoid _start(void) { alloc_inode(1); lib_fn(2); kmalloc_impl(3); for (;;); }\n');
    for (const version of ['4', '5']) {
      const out = join(dir, `vmlinux-${version}`);
      execFileSync('gcc', ['-g', `-gdwarf-${version}`, '-O1', '-fno-inline', '-nostdlib', '-static', '-o', out, 'start.c', ...sources], { cwd: dir });
      const db = vmlinuxDb(out);
      assert.equal(db.functions.alloc_inode, 'fs/ext/inode.o', `DWARF ${version}`);
      assert.equal(db.functions.alloc, 'fs/ext/inode.o');
      assert.equal(db.functions.lib_fn, 'lib/x.o');
      assert.equal(db.functions.kmalloc_impl, 'mm/slab.o');
    }
    assert.throws(() => vmlinuxDb(join(dir, 'fs/ext/inode.c')), /not a 64-bit little-endian ELF/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI: classic files, JSON, CSV, rings, gzip and stdin, clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-kmemcli-'));
  try {
    const input = join(FIX, 'kmem/kmem_head5000.txt.gz');
    const run = (args: string[], stdin?: Buffer) => spawnSync(process.execPath, [CLI, 'kmem', ...args], { encoding: 'utf8', input: stdin });
    const r = run(['-f', input, '-c', join(dir, 'account.txt'), '-l', join(dir, 'callers.txt'), '-r', join(dir, 'rings.svg'), '--html', join(dir, 'r.html'), '-o', 'alloc_count']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /5000 kmem events/);
    assert.match(r.stdout, /unmatched frees: 4885 .*kfree\(NULL\): 1/);
    const accountText = readFileSync(join(dir, 'account.txt'), 'utf8');
    assert.match(accountText, /^current bytes allocated: +\d+\n/);
    assert.match(accountText.split('\n')[9]!, /^ +\d+ +\d+ +\d+ +42\/0 +vm_area_dup\+0x1e$/, 'sorted by alloc_count');
    assert.match(readFileSync(join(dir, 'rings.svg'), 'utf8'), /^<svg [^>]*viewBox="0 0 800 800"/);
    assert.match(readFileSync(join(dir, 'callers.txt'), 'utf8'), /^vm_area_dup\+0x1e +\d+ +\d+ +-$/m);
    const json = JSON.parse(run(['-f', input, '--json']).stdout);
    assert.equal(json.unmatchedFrees.count, 4885);
    assert.equal(json.sites.length, 26);
    const csv = run(['-f', input, '--csv', '--by-function']).stdout.split('\n');
    assert.equal(csv[0], 'site,caller,module,object,total,net,waste,requested,allocs,frees,reused');
    const viaStdin = run(['--json'], gunzipSync(readFileSync(input)));
    assert.equal(JSON.parse(viaStdin.stdout).sites.length, 26);
    const missing = run(['-f', join(dir, 'nope.txt')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read .*nope\.txt: ENOENT/);
    assert.match(run(['-f', input, '--kallsyms', join(dir, 'nope.map')]).stderr, /cannot read symbol file .*nope\.map/);
    assert.match(run(['-f', input, '-b', 'fs']).stderr, /-b\/--start-branch needs -k TREE/);
    assert.match(run(['-f', input, '-o', 'bogus']).stderr, /--order-by wants/);
    assert.match(run(['-f', input, '--time', '9928.4937,9928.4938', '--json']).stdout, /"events": 5000/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the HTML report in headless Chromium: rings drawn, hover shows name and bytes, tables sort', async (t) => {
  const chromium = '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    if (process.env.CI === 'true') throw new Error('CI=true but Debian chromium is not installed (.ci/run installs it)');
    t.skip('no /usr/bin/chromium (apt-get install chromium)');
    return;
  }
  const { chromium: pw } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-kmemhtml-'));
  const browser = await pw.launch({
    executablePath: chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const html = join(dir, 'report.html');
    const r = spawnSync(process.execPath, [CLI, 'kmem', '-f', join(FIX, 'trace-dat/kmem_tc_small_v6.dat.gz'), '--html', html], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${html}`);
    const wedges = page.locator('#chart path[data-name]');
    assert.ok((await wedges.count()) > 10, 'wedges drawn');
    // The widest wedge of the first ring: hover it and read the box.
    const first = wedges.first();
    const name = await first.getAttribute('data-name');
    const box = (await first.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const hovered = await page.textContent('#tip');
    assert.match(hovered ?? '', /: [\d.]+ (B|KiB|MiB)$/);
    assert.ok(hovered!.length > 3 && name, `tooltip ${hovered}`);
    // Sort the call sites by allocations, then read the first column of counts.
    await page.click('#sites th:nth-child(6)');
    const counts = await page.$$eval('#sites tbody tr td:nth-child(6)', (tds) => tds.map((td) => Number(td.textContent)));
    assert.deepEqual(counts, [...counts].sort((a, b) => b - a), 'sorted by allocs, descending');
    // Kept in the temp directory for a look (KEEP_SCREENSHOT=path copies it out).
    const shot = await page.screenshot({ clip: { x: 0, y: 0, width: 900, height: 950 } });
    if (process.env.KEEP_SCREENSHOT) writeFileSync(process.env.KEEP_SCREENSHOT, shot);
    assert.ok(shot.length > 20_000, 'a screenshot with a chart in it');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--live records kmem events from the kernel around a command and accounts them', (t) => {
  if (!needKernel(t)) return;
  const r = spawnSync(process.execPath, [CLI, 'kmem', '--live', '--json', '--', 'sh', '-c', 'ls -R /usr/lib >/dev/null'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.ok(json.allocs > 100, `${json.allocs} allocations`);
  assert.ok(json.sites.length > 5);
  assert.ok(json.sites.every((s: { site: string }) => /^\S+\+0x[0-9a-f]+( \[\S+\])?$|^0x/.test(s.site)), 'call sites resolved through the kernel kallsyms');
  assert.equal(readFileSync('/proc/mounts', 'utf8').includes('nftrace-kmem'), false);
});

test('large text read by worker threads gives exactly the sequential account (ranges cut mid-line, bad lines numbered)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-kmempar-'));
  try {
    const lines = text('kmem/kmem_head5000.txt.gz').split('\n');
    // Bad lines here and there, one at the very end without a newline.
    lines.splice(3000, 0, 'garbage in the middle');
    const file = join(dir, 'k.txt');
    writeFileSync(file, `${lines.join('\n')}\n${LINE(0, '9999.000001', 'kmalloc', 'call_site=foo+0x1/0x2 ptr=0000000000000abc')}`);
    const seq = new KmemAccount();
    const p1 = await readKmemEvents(file, (ev) => seq.add(ev), { workers: 1 });
    const par = new KmemAccount();
    const p2 = await readTextParallel(file, (ev) => par.add(ev), { workers: 2, chunkBytes: 100_000 });
    assert.deepEqual(rows(par.sites.values()), rows(seq.sites.values()));
    assert.equal(par.unmatchedFrees, seq.unmatchedFrees);
    assert.deepEqual([p2.events, p2.malformed, p2.lines], [p1.events, p1.malformed, p1.lines]);
    assert.deepEqual(p2.examples, p1.examples);
    assert.deepEqual(p1.examples.map((e) => e.line), [3001, 5015]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
