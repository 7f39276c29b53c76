#!/usr/bin/env node
/** The `nftrace` command. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';
import { runConvert, runReport } from './report.js';

const HELP = `Usage: nftrace <command> [options]

Commands:
  demo      run a small HTTP service traced by nftrace, load it, and print the
            head of its trace, each buffer's stats and what an event costs
  report    print a trace.dat (the kernel's, trace-cmd's or ours) like trace-cmd report
  convert   turn a trace.dat into chrome-json (Perfetto UI), text, or trace.dat v6/v7
  help      show this help

Options for demo:
  --seconds N       how long to drive load (default 3)
  --connections N   requests in flight at once (default 16)
  --lines N         lines of trace to print (default 30)

Options for report:
  -i FILE           input (default trace.dat)
  -N                no plugins (trace-cmd -N)
  -R                raw field values
  -t                nanosecond timestamps
  -l                latency columns (flags, preempt depth)
  --cpu N           only CPU N (repeatable)
  -F EVENT          only these events: name, system or system:name (repeatable)
  --stat            the buffer statistics recorded in the file

Options for convert:
  -i FILE           input (default trace.dat)
  --to FORMAT       chrome-json, text, dat6 or dat7
  -o FILE           output (default: standard output; required for dat6/dat7)

Options:
  -h, --help        show this help
  -v, --version     print the version
`;

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

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      lines: { type: 'string' },
      input: { type: 'string', short: 'i' },
      output: { type: 'string', short: 'o' },
      N: { type: 'boolean', short: 'N' },
      R: { type: 'boolean', short: 'R' },
      t: { type: 'boolean', short: 't' },
      l: { type: 'boolean', short: 'l' },
      cpu: { type: 'string', multiple: true },
      F: { type: 'string', short: 'F', multiple: true },
      stat: { type: 'boolean' },
      to: { type: 'string' },
    },
  });
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`nftrace ${pkg.version}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  switch (command) {
    case 'demo':
      await runDemo({
        seconds: positiveInt('seconds', values.seconds, 3),
        connections: positiveInt('connections', values.connections, 16),
        lines: positiveInt('lines', values.lines, 30),
        out: (text) => process.stdout.write(text),
      });
      return 0;
    case 'report':
      await runReport({
        input: values.input ?? 'trace.dat',
        plugins: !values.N,
        raw: values.R ?? false,
        nanoseconds: values.t ?? false,
        latency: values.l ?? false,
        cpus: values.cpu?.map((c) => nonNegativeInt('cpu', c)),
        events: values.F,
        stat: values.stat ?? false,
      }, process.stdout);
      return 0;
    case 'convert': {
      const to = values.to;
      if (to !== 'chrome-json' && to !== 'text' && to !== 'dat6' && to !== 'dat7') throw new UsageError("--to wants chrome-json, text, dat6 or dat7");
      await runConvert(values.input ?? 'trace.dat', to, values.output, process.stdout);
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
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
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`nftrace: ${(err as Error).message}\n${usage ? "Try 'nftrace --help'.\n" : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
