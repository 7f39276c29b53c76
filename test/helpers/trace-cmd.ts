/**
 * trace-cmd as a test oracle: skip with a reason when it is not installed, except under CI=true
 * (where .ci/run installs it) — then the test must run and fail instead.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function needTraceCmd(t: TestContext): boolean {
  const probe = spawnSync('trace-cmd', ['--version'], { encoding: 'utf8' });
  if (!probe.error) return true;
  const why = 'trace-cmd is not installed (apt-get install trace-cmd)';
  if (process.env.CI === 'true') throw new Error(`CI=true but ${why}`);
  t.skip(why);
  return false;
}

/** Run trace-cmd and return its stdout; throws with its stderr on failure. */
export function traceCmd(args: string[]): string {
  const r = spawnSync('trace-cmd', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`trace-cmd ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}
