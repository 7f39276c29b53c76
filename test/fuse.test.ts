/**
 * The control tree mounted through FUSE and driven from a shell, in the manner of the kernel's
 * ftrace selftests (enable through event, system and top files, set_event, instances removed
 * while busy, trace_marker into trace). Shell commands run asynchronously: this process serves
 * the mount, so a synchronous call into it would deadlock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tracer } from '../src/index.js';
import { needFuse } from './helpers/tracefs.js';
import { exited, output } from './helpers/wait.js';

/** Run a bash script in `cwd`; resolves with stdout+stderr and the exit code. */
function sh(cwd: string, script: string): Promise<{ out: string; code: number }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ out: stdout + stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}

function mounted(dir: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

async function withMount(fn: (dir: string, tracer: Tracer) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-mnt-'));
  const tracer = new Tracer();
  tracer.defineEvent('http', 'request', { status: 'u16' });
  tracer.defineEvent('http', 'response', { bytes: 'u32' });
  tracer.defineEvent('db', 'query', { rows: 'u32' });
  await tracer.mount(dir);
  try {
    await fn(dir, tracer);
  } finally {
    await tracer.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('FUSE: enable through event, system and top files; set_event and the X state agree', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    const r = await sh(dir, [
      'stat -c %a .',
      'cat events/enable',
      'echo 1 > events/http/request/enable',
      'cat events/http/enable events/enable set_event',
      'echo 1 > events/http/enable; cat events/http/enable set_event',
      'echo 0 > events/enable; cat set_event events/enable',
      'echo db:query >> set_event; echo http:response >> set_event; cat set_event',
      'echo > set_event; cat set_event events/enable',
    ].join('; '));
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, [
      '700', '0', 'X', 'X', 'http:request', '1', 'http:request', 'http:response', '0',
      // set_event lists in the order the events were defined, as the kernel's follows its event list.
      'http:response', 'db:query', '0', '',
    ].join('\n'));
  });
});

test('FUSE: bad writes fail with the kernel\'s errnos; creation, removal and renames are refused', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    const cases: [string, string][] = [
      ['echo 2 > events/enable', 'Invalid argument'],
      ['echo abc > tracing_on', 'Invalid argument'],
      ['echo 1 > events/http/request/format', 'Invalid argument'],
      ['cat trace_marker', 'Invalid argument'],
      ['echo x > newfile', 'Permission denied'],
      ['rm tracing_on', 'Operation not permitted'],
      ['mkdir events/x', 'Operation not permitted'],
      ['mkdir instances/a && mkdir instances/a', 'File exists'],
      ['rmdir instances/nosuch', 'No such file or directory'],
      [`cat events/${'x'.repeat(256)}`, 'No such file or directory'],
      [`cat per_cpu/${'x'.repeat(256)}`, 'File name too long'],
    ];
    for (const [cmd, message] of cases) {
      const r = await sh(dir, cmd);
      assert.notEqual(r.code, 0, cmd);
      assert.ok(r.out.includes(message), `${cmd}: ${r.out}`);
    }
  });
});

test('FUSE: an instance is busy while a file that pins it is open, and removable after', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    const r = await sh(dir, [
      'mkdir instances/x',
      'exec 3< instances/x/trace',
      'rmdir instances/x 2>&1 | grep -c busy',
      'exec 3<&-',
      'exec 4< instances/x/events/http/request/format',
      'rmdir instances/x && echo removed',
      'cat <&4; echo "rc=$?"',
      'ls instances | wc -l',
    ].join('; '));
    // The stale fd fails to read. The kernel says ENODEV (so does the tree's own API); through
    // libfuse's path-based API it is ENOENT, as libfuse finds no path under a removed directory.
    assert.match(r.out, /^1\nremoved\nrc=1\n0\ncat: -: No such file or directory\n$/);
  });
});

test('FUSE: snapshot, filters and triggers from a shell, with the kernel\'s errors', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir, tracer) => {
    const request = tracer.defineEvent('http', 'request', { status: 'u16' });
    tracer.write('events/http/enable', '1');
    request.emit({ status: 200 });
    const r = await sh(dir, [
      'echo 1 > snapshot && grep -c status=200 snapshot',
      'echo "status >= 500" > events/http/request/filter && cat events/http/request/filter',
      'echo "bogus == 1" > events/http/request/filter; cat events/http/request/filter | head -3',
      'echo traceoff > events/http/request/trigger && cat events/http/request/trigger events/http/request/enable',
      'echo traceon > events/http/request/trigger',
    ].join('; '));
    // stdout, then stderr (sh() puts them one after the other).
    const want = '1\nstatus >= 500\nbogus == 1\n      ^\nparse_error: Field not found\ntraceoff:unlimited\n1*\n';
    assert.ok(r.out.startsWith(want), r.out);
    assert.match(r.out, /write error: Invalid argument\n.*write error: File exists\n$/);
  });
});

test('FUSE: a function probe, its hist and its removal from a shell; synthetic_events too', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    const libDir = mkdtempSync(join(tmpdir(), 'nftrace-fuse-probe-'));
    try {
      const file = join(libDir, 'lib.cjs');
      writeFileSync(file, 'exports.add = (a, b) => a + b;\n');
      const lib = createRequire(join(libDir, 'x.js'))(file) as { add: (a: number, b: number) => number };
      const original = lib.add;
      const define = await sh(dir, [
        `echo 'f:app/add ${file}:add a=$arg1:s32 b=$arg2:s32' >> dynamic_events`,
        'echo 1 > events/app/add/enable',
        "echo 'hist:keys=a' >> events/app/add/trigger",
        "echo 'lat u64 us' >> synthetic_events",
        'cat dynamic_events synthetic_events',
      ].join(' && '));
      assert.equal(define.out, `f:app/add ${file}:add a=$arg1:s32 b=$arg2:s32\nlat\tu64 us\n`);
      for (const a of [1, 1, 2]) lib.add(a, 10);
      const read = await sh(dir, "grep -c 'add: ' trace; grep hitcount events/app/add/hist; echo '-:app/add' >> dynamic_events");
      assert.match(read.out, /^3\n# trigger info: hist:keys=a:vals=hitcount:sort=hitcount:size=2048 \[active\]\n\{ a: +2 \} hitcount: +1\n\{ a: +1 \} hitcount: +2\n.*Device or resource busy\n$/s);
      const remove = await sh(dir, "echo 0 > events/app/add/enable && : > events/app/add/trigger && echo '-:app/add' >> dynamic_events && echo '!lat' >> synthetic_events && ls events/app; cat dynamic_events synthetic_events");
      assert.match(remove.out, /ls: cannot access 'events\/app': No such file or directory\n$/);
      assert.equal(lib.add, original);
    } finally {
      rmSync(libDir, { recursive: true, force: true });
    }
  });
});

test('FUSE: trace_marker lands in trace; cat trace_pipe blocks until an event comes, and Ctrl-C ends it', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir, tracer) => {
    const marker = await sh(dir, 'echo hello from bash > trace_marker && tail -1 trace');
    assert.match(marker.out, /tracing_mark_write: hello from bash\n$/);
    tracer.write('events/http/enable', '1');
    const request = tracer.defineEvent('http', 'request', { status: 'u16' });
    setTimeout(() => request.emit({ status: 204 }), 300);
    const started = Date.now();
    const pipe = await sh(dir, 'timeout -s INT 1.5 cat trace_pipe');
    assert.match(pipe.out, /request: status=204/);
    assert.ok(Date.now() - started >= 1000, 'the read blocked until interrupted');
    assert.ok(mounted(dir));
  });
});

test('FUSE: find and ls -R terminate; directory inode numbers are unique, files share eventfs\'s', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    const r = await sh(dir, 'mkdir instances/a instances/b; find . | wc -l; find . -type d -printf "%i\\n" | sort | uniq -d | wc -l; stat -c %i events/http/request/id events/db/query/id; ls -R >/dev/null && echo ok');
    const [entries, duplicates, ino1, ino2, ok] = r.out.trim().split('\n');
    assert.ok(Number(entries) > 100, r.out);
    assert.equal(duplicates, '0');
    assert.equal(ino1, '19680823');
    assert.equal(ino2, '19680823');
    assert.equal(ok, 'ok');
  });
});

test('FUSE: a trace_marker write longer than a sub-buffer is split as the kernel splits it (00basic/trace_marker.tc)', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir) => {
    // 4,077 characters and a newline: the kernel takes 4,054 bytes, returns that count, and the
    // shell writes the other 24 as a second event.
    const r = await sh(dir, 'echo > trace; printf "a%.0s" $(seq 4077) > /tmp/nftrace-marker-$$; echo $(cat /tmp/nftrace-marker-$$) > trace_marker; rm /tmp/nftrace-marker-$$; grep -v "^#" trace | sed "s/.*tracing_mark_write: //" | awk "{ print length(\\$0) }"');
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, '4054\n23\n', 'two print events: 4,054 bytes, then the last 23 characters and the newline');
  });
});

test('FUSE unavailable: a mount fails at once, naming what is missing and the packages', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-nofuse-'));
  try {
    const index = new URL('../src/index.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { Tracer } from '${index}'; await new Tracer().mount(${JSON.stringify(dir)});`], {
      encoding: 'utf8', timeout: 30_000, env: { ...process.env, PATH: '/nonexistent' },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /fusermount is not installed \(apt-get install -y fuse libfuse2\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FUSE: a process killed with its mount leaves no stale mount behind', async (t) => {
  if (!needFuse(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'nftrace-mnt-'));
  try {
    const index = new URL('../src/index.js', import.meta.url).href;
    const child = spawn(process.execPath, ['--input-type=module', '-e',
      `import { Tracer } from '${index}'; await new Tracer().mount(${JSON.stringify(dir)}); console.log('mounted'); setInterval(() => {}, 1000);`,
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    await output(child, child.stdout, (text) => text.includes('mounted'));
    assert.ok(mounted(dir));
    child.kill('SIGKILL');
    await exited(child);
    for (let i = 0; i < 50 && mounted(dir); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(mounted(dir), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FUSE: trace_pipe_raw gives whole sub-buffer pages once buffer_percent allows', async (t) => {
  if (!needFuse(t)) return;
  await withMount(async (dir, tracer) => {
    tracer.write('events/http/enable', '1');
    tracer.write('buffer_percent', '0');
    const request = tracer.defineEvent('http', 'request', { status: 'u16' });
    for (let i = 0; i < 100; i++) request.emit({ status: 200 });
    const r = await sh(dir, 'timeout -s INT 1 head -c 4096 per_cpu/cpu0/trace_pipe_raw | od -A d -t u4 -j 8 -N 4');
    // 100 events of 16 bytes (4-byte header, 8 common bytes, u16 status, padding) = 1600 committed.
    assert.match(r.out, /^0000008 +1600\n/);
  });
});
