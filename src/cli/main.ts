#!/usr/bin/env node
/** The `nftrace` command. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const HELP = `Usage: nftrace <command> [options]

Commands:
  demo      run a small HTTP service traced by nftrace, load it, and print the
            head of its trace, each buffer's stats and what an event costs
  help      show this help

Options for demo:
  --seconds N       how long to drive load (default 3)
  --connections N   requests in flight at once (default 16)
  --lines N         lines of trace to print (default 30)

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
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

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
