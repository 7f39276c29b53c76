#!/usr/bin/env node
/** The `nftrace` command. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { OrderBy } from '../analyze/kmem/account.js';

const HELP = `Usage: nftrace <command> [options]

Commands:
  demo      run a small HTTP service traced by nftrace, load it, and print the
            head of its trace, each buffer's stats and what an event costs
  record    record the kernel's events into a trace.dat (root)
  report    print a trace.dat (the kernel's, trace-cmd's or ours) like trace-cmd report
  convert   turn a trace.dat into chrome-json (Perfetto UI), text, or trace.dat v6/v7
  recover   turn a flight recorder's persist file into a trace.dat
  kmem      kernel memory allocations per call site (trace_analyze's successor)
  list      the kernel's event systems, events, instances or clocks
  stat      the state of the kernel's tracing (events, filters, buffers, instances)
  ctl       read or write a control file of a traced Node process (its control socket)
  cat       print a control file of a traced Node process; trace_pipe streams
  ls        list a directory of a traced Node process's control tree
  mount     mount a traced Node process's control tree through FUSE
  help      show this help ('nftrace help COMMAND' or 'nftrace COMMAND --help' for one)

Options:
  -h, --help        show this help
  -v, --version     print the version
`;

/** Each command's options (parseArgs form) and help. */
const COMMANDS = {
  demo: {
    usage: `Usage: nftrace demo [--seconds N] [--connections N] [--lines N]

  --seconds N       how long to drive load (default 3)
  --connections N   requests in flight at once (default 16)
  --lines N         lines of trace to print (default 30)
`,
    options: {
      seconds: { type: 'string' },
      connections: { type: 'string' },
      lines: { type: 'string' },
    },
  },
  record: {
    usage: `Usage: nftrace record -e EVENT [-e EVENT ...] | -P PID [options] [-- COMMAND [ARGS...]]

Records the kernel's events (root) in a private instance, or in -B's, reading every CPU's
trace_pipe_raw until COMMAND exits, --duration passes, or Ctrl-C; then disables what it
enabled, removes its instance, writes the trace.dat and prints each CPU's losses.

  -e EVENT          SYSTEM, SYSTEM:EVENT, EVENT, with * and ? globs, or 'all' (repeatable)
  -B NAME           record in instance NAME (created if missing, kept if it existed)
  -b KB             buffer_size_kb per CPU
  -P PID            also record Node process PID (it calls tracer.listen()): its threads'
                    buffers go beside the kernel's CPUs as buffer node-PID, both on the mono clock
  -o FILE           output (default trace.dat)
  --duration S      stop after S seconds
  --file-version V  6 or 7 (default 7)
  --compression C   zstd, zlib or none (v7 only; default zstd)
`,
    options: {
      event: { type: 'string', short: 'e', multiple: true },
      buffer: { type: 'string', short: 'B' },
      'buffer-kb': { type: 'string', short: 'b' },
      pid: { type: 'string', short: 'P' },
      output: { type: 'string', short: 'o' },
      duration: { type: 'string' },
      'file-version': { type: 'string' },
      compression: { type: 'string' },
    },
  },
  report: {
    usage: `Usage: nftrace report [-i FILE] [options]

  -i FILE           input (default trace.dat)
  -N                no plugins (trace-cmd -N)
  -R                raw field values
  -t                nanosecond timestamps
  -l                latency columns (flags, preempt depth)
  --cpu N           only CPU N (repeatable)
  -F EVENT          only these events: name, system or system:name (repeatable)
  --stat            the buffer statistics recorded in the file
`,
    options: {
      input: { type: 'string', short: 'i' },
      N: { type: 'boolean', short: 'N' },
      R: { type: 'boolean', short: 'R' },
      t: { type: 'boolean', short: 't' },
      l: { type: 'boolean', short: 'l' },
      cpu: { type: 'string', multiple: true },
      F: { type: 'string', short: 'F', multiple: true },
      stat: { type: 'boolean' },
    },
  },
  convert: {
    usage: `Usage: nftrace convert [-i FILE] --to FORMAT [-o FILE]

  -i FILE           input (default trace.dat)
  --to FORMAT       chrome-json, text, dat6 or dat7
  -o FILE           output (default: standard output; required for dat6/dat7)
`,
    options: {
      input: { type: 'string', short: 'i' },
      output: { type: 'string', short: 'o' },
      to: { type: 'string' },
    },
  },
  recover: {
    usage: `Usage: nftrace recover FILE [-o OUT.dat] [--file-version V]

Reads a persist file written by flightRecorder({ persist: FILE }) (also after SIGKILL, an
OOM kill or abort()) and writes the pages it holds as a trace.dat. Says how many pages each
buffer got back, whether the newest page was cut off mid-write, and what could not be read.

  -o FILE           output (default trace.dat)
  --file-version V  6 or 7 (default 7, zstd)
`,
    options: {
      output: { type: 'string', short: 'o' },
      'file-version': { type: 'string' },
    },
  },
  kmem: {
    usage: `Usage: nftrace kmem [-f FILE] [options]
       nftrace kmem --live [--duration S] [options] [-- COMMAND [ARGS...]]

Accounts kmem events (kmalloc, kmem_cache_alloc, kfree, kmem_cache_free, their _node forms,
and the page allocator's mm_page_*) per call site: total, waste, net (live) bytes,
allocations and frees; reports unmatched frees, kfree(NULL) and allocations at addresses
still live; breaks the account down by slab cache, gfp flags, CPU, task and NUMA node.

Input:
  -f, --file FILE        ftrace text (trace, trace_pipe), trace-cmd report text or a
                         trace.dat (v6/v7); .gz is read as is; '-' or a pipe: stdin
  --live                 record the kmem events from the kernel first (root), until
                         COMMAND exits, --duration S passes or Ctrl-C
  --kallsyms FILE        System.map or /proc/kallsyms (.gz too) for legacy hex call sites
  --time START,END       only events in this window (seconds, as the trace prints them)
  --malloc, --cache      only kmalloc/kfree, or only kmem_cache_* (both: everything)
  --duplicates POLICY    an allocation at a still-live address: free (default: the earlier
                         one was freed without an event) or keep (trace_analyze's way)

Where in the kernel (needed only for rings, static sizes and -b):
  -k, --kernel TREE      a built kernel tree: System.map and *.o with their .c
  --vmlinux FILE         a vmlinux with DWARF (e.g. Debian's linux-image-*-dbg) instead
  --db-file FILE         a database saved with --save-db instead of scanning
  --save-db FILE         save the scanned tree as JSON for --db-file
  -b, --start-branch DIR limit the account and rings to DIR (e.g. fs/ext4)

Output (default: an aligned summary on stdout):
  -o, --order-by KEY     current_dynamic (default), total_dynamic, alloc_count,
                         free_count or waste; ties by call site
  --by-function          merge the call sites of each function
  --top N                rows per table in the summary (default 25)
  --json, --csv          the account as JSON or CSV on stdout instead
  -c, --account-file F   trace_analyze's account file
  -l, --callers-file F   trace_analyze's callers file
  -r, --rings-file F     ring chart as SVG
  -a, --rings-attr A     static, current, current_dynamic (default), total_dynamic, waste
  --html FILE            a self-contained HTML report: rings and sortable tables
`,
    options: {
      file: { type: 'string', short: 'f' },
      kernel: { type: 'string', short: 'k' },
      vmlinux: { type: 'string' },
      kallsyms: { type: 'string' },
      'start-branch': { type: 'string', short: 'b' },
      'rings-file': { type: 'string', short: 'r' },
      'rings-attr': { type: 'string', short: 'a' },
      malloc: { type: 'boolean' },
      cache: { type: 'boolean' },
      'account-file': { type: 'string', short: 'c' },
      'callers-file': { type: 'string', short: 'l' },
      'order-by': { type: 'string', short: 'o' },
      'save-db': { type: 'string' },
      'db-file': { type: 'string' },
      'by-function': { type: 'boolean' },
      json: { type: 'boolean' },
      csv: { type: 'boolean' },
      html: { type: 'string' },
      time: { type: 'string' },
      duplicates: { type: 'string' },
      top: { type: 'string' },
      live: { type: 'boolean' },
      duration: { type: 'string' },
    },
  },
  list: {
    usage: `Usage: nftrace list [-e [REGEX]] [-B] [-C]

  (no option)       the event systems, with how many events each has
  -e [REGEX]        events as SYSTEM:EVENT, those matching REGEX if given
  -B                the kernel's instances
  -C                the trace clocks, the selected one in brackets
`,
    options: {
      events: { type: 'boolean', short: 'e' },
      instances: { type: 'boolean', short: 'B' },
      clocks: { type: 'boolean', short: 'C' },
    },
  },
  stat: {
    usage: `Usage: nftrace stat [-B NAME]

  -B NAME           an instance instead of the top level
`,
    options: {
      buffer: { type: 'string', short: 'B' },
    },
  },
  ctl: {
    usage: `Usage: nftrace ctl [-a] PID PATH [VALUE]

Reads PATH of process PID's control tree, or writes VALUE to it as 'echo VALUE > PATH' does.
The process must serve its tree with tracer.listen(). Errors carry the kernel's errno.
  -a, --append      write as 'echo VALUE >> PATH' does: adds a probe, synthetic event or
                    trigger without first clearing the file (a '>' to dynamic_events removes
                    every probe, as in the kernel)
  nftrace ctl 4242 events/http/enable 1
  nftrace ctl 4242 instances/x/buffer_size_kb
  nftrace ctl -a 4242 dynamic_events 'f:app/user ./lib/users.js:fetchUser%return id=$arg1:u32'
`,
    options: {
      append: { type: 'boolean', short: 'a' },
    },
  },
  cat: {
    usage: `Usage: nftrace cat PID PATH

Prints PATH of process PID's control tree; trace_pipe streams until Ctrl-C.
`,
    options: {},
  },
  ls: {
    usage: `Usage: nftrace ls PID [PATH]

Lists a directory of process PID's control tree (the top when PATH is absent).
`,
    options: {},
  },
  mount: {
    usage: `Usage: nftrace mount PID DIR

Mounts process PID's control tree (served by tracer.listen()) at DIR through FUSE, private to
you, until Ctrl-C. Then 'echo 1 > DIR/events/http/enable' and 'cat DIR/trace_pipe' work.
Needs FUSE (apt-get install -y libfuse2 fuse).
`,
    options: {},
  },
} satisfies Record<string, { usage: string; options: ParseArgsConfig['options'] }>;

type Command = keyof typeof COMMANDS;

class UsageError extends Error {}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new UsageError(`--${name} wants a positive integer, got '${value}'`);
  return n;
}

function nonNegativeInt(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} wants a number, got '${value}'`);
  return Number(value);
}

function seconds(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) throw new UsageError(`--${name} wants a number of seconds, got '${value}'`);
  return n;
}

/** `--time START,END` in seconds (as traces print them) → nanoseconds. */
function timeWindow(value: string | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$/.exec(value);
  if (!m || Number(m[1]) > Number(m[2])) throw new UsageError(`--time wants START,END in seconds (START <= END), got '${value}'`);
  return [Math.round(Number(m[1]) * 1e9), Math.round(Number(m[2]) * 1e9)];
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} wants ${allowed.join(', ')}; got '${value}'`);
  return value as T;
}

/**
 * `nftrace ctl PID dynamic_events '-:app/add'`: a control-file value may start with '-' (a
 * removal); the third positional is a value, never an option.
 */
function valueAsPositional(args: string[]): string[] {
  let seen = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args;
    if (seen === 2) return [...args.slice(0, i), '--', ...args.slice(i)];
    if (!a.startsWith('-') || a === '-') seen++;
  }
  return args;
}

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '-v' || first === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`nftrace ${pkg.version}\n`);
    return 0;
  }
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? argv[1] : undefined;
    process.stdout.write(topic && topic in COMMANDS ? COMMANDS[topic as Command].usage : HELP);
    return first === undefined ? 2 : 0;
  }
  if (!(first in COMMANDS)) throw new UsageError(`unknown command '${first}'`);
  const command = first as Command;
  const spec = COMMANDS[command];
  const { values, positionals } = parseArgs({
    args: command === 'ctl' ? valueAsPositional(argv.slice(1)) : argv.slice(1),
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, ...spec.options },
  });
  if (values.help) {
    process.stdout.write(spec.usage);
    return 0;
  }
  const v = values as Record<string, string | boolean | string[] | undefined>;
  const str = (name: string) => v[name] as string | undefined;
  const flag = (name: string) => (v[name] as boolean | undefined) ?? false;
  const list = (name: string) => v[name] as string[] | undefined;
  const noPositionals = () => {
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  };
  const out = (text: string) => process.stdout.write(text);
  switch (command) {
    case 'demo':
      noPositionals();
      const { runDemo } = await import('./demo.js');
      await runDemo({
        seconds: positiveInt('seconds', str('seconds'), 3),
        connections: positiveInt('connections', str('connections'), 16),
        lines: positiveInt('lines', str('lines'), 30),
        out,
      });
      return 0;
    case 'record': {
      const events = list('event');
      if (!events?.length && str('pid') === undefined) throw new UsageError('record needs at least one -e EVENT (or -P PID)');
      const version = Number(oneOf('file-version', str('file-version'), ['6', '7'], '7')) as 6 | 7;
      const { runRecord } = await import('./kernel.js');
      return runRecord({
        events: events ?? [],
        instance: str('buffer'),
        bufferKb: str('buffer-kb') === undefined ? undefined : positiveInt('buffer-kb (-b)', str('buffer-kb'), 0),
        pid: str('pid') === undefined ? undefined : positiveInt('pid (-P)', str('pid'), 0),
        output: str('output') ?? 'trace.dat',
        command: positionals,
        durationSec: seconds('duration', str('duration')),
        version,
        compression: oneOf('compression', str('compression'), ['zstd', 'zlib', 'none'] as const, 'zstd'),
      }, out, (text) => process.stderr.write(text));
    }
    case 'report':
      noPositionals();
      const { runReport } = await import('./report.js');
      await runReport({
        input: str('input') ?? 'trace.dat',
        plugins: !flag('N'),
        raw: flag('R'),
        nanoseconds: flag('t'),
        latency: flag('l'),
        cpus: list('cpu')?.map((c) => nonNegativeInt('cpu', c)),
        events: list('F'),
        stat: flag('stat'),
      }, process.stdout);
      return 0;
    case 'convert': {
      noPositionals();
      const to = str('to');
      if (to !== 'chrome-json' && to !== 'text' && to !== 'dat6' && to !== 'dat7') throw new UsageError('--to wants chrome-json, text, dat6 or dat7');
      const { runConvert } = await import('./report.js');
      await runConvert(str('input') ?? 'trace.dat', to, str('output'), process.stdout);
      return 0;
    }
    case 'recover': {
      if (positionals.length !== 1) throw new UsageError(positionals.length ? `unexpected argument '${positionals[1]}'` : 'recover needs a persist FILE');
      const version = oneOf('file-version', str('file-version'), ['6', '7'] as const, '7');
      const { runRecover } = await import('./report.js');
      await runRecover(positionals[0]!, str('output') ?? 'trace.dat', version === '6' ? 6 : 7, process.stdout);
      return 0;
    }
    case 'kmem': {
      if (!flag('live') && positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (a command needs --live)`);
      if (flag('json') && flag('csv')) throw new UsageError('--json and --csv: choose one');
      const { runKmem } = await import('./kmem.js');
      const { ORDERS } = await import('../analyze/kmem/account.js');
      const { RING_ATTRS } = await import('../analyze/kmem/rings.js');
      await runKmem({
        file: str('file'),
        kernel: str('kernel'),
        vmlinux: str('vmlinux'),
        kallsyms: str('kallsyms'),
        branch: str('start-branch'),
        ringsFile: str('rings-file'),
        ringsAttr: oneOf('rings-attr', str('rings-attr'), RING_ATTRS, 'current_dynamic'),
        malloc: flag('malloc'),
        cache: flag('cache'),
        accountFile: str('account-file'),
        callersFile: str('callers-file'),
        orderBy: oneOf('order-by', str('order-by'), Object.keys(ORDERS) as OrderBy[], 'current_dynamic'),
        saveDb: str('save-db'),
        dbFile: str('db-file'),
        byFunction: flag('by-function'),
        json: flag('json'),
        csv: flag('csv'),
        html: str('html'),
        time: timeWindow(str('time')),
        duplicates: oneOf('duplicates', str('duplicates'), ['free', 'keep'] as const, 'free'),
        top: positiveInt('top', str('top'), 25),
        live: flag('live'),
        durationSec: seconds('duration', str('duration')),
        command: positionals.length ? positionals : undefined,
      }, out, (line) => process.stderr.write(`${line}\n`));
      return 0;
    }
    case 'list':
      if (positionals.length > (flag('events') ? 1 : 0)) throw new UsageError(`unexpected argument '${positionals.at(-1)}'`);
      (await import('./kernel.js')).runList({ events: flag('events'), pattern: positionals[0], instances: flag('instances'), clocks: flag('clocks') }, out);
      return 0;
    case 'stat':
      noPositionals();
      (await import('./kernel.js')).runStat({ instance: str('buffer') }, out);
      return 0;
    case 'ctl':
      if (positionals.length > 3) throw new UsageError(`unexpected argument '${positionals[3]}'`);
      await (await import('./ctl.js')).runCtl(positionals[0], positionals[1], positionals[2], out, flag('append'));
      return 0;
    case 'cat':
      if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
      await (await import('./ctl.js')).runCat(positionals[0], positionals[1], out);
      return 0;
    case 'ls':
      if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
      await (await import('./ctl.js')).runLs(positionals[0], positionals[1], out);
      return 0;
    case 'mount':
      if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
      await (await import('./ctl.js')).runMount(positionals[0], positionals[1], (text) => process.stderr.write(text));
      return 0;
  }
}

// `nftrace report | head`: a closed pipe ends the command quietly, as it does for trace-cmd.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { usage?: boolean }).usage === true || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`nftrace: ${(err as Error).message}\n${usage ? "Try 'nftrace --help'.\n" : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
