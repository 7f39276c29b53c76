/**
 * The live kernel tracefs as a test oracle. Tests that need it skip with a reason when it is not
 * usable (not root, no tracefs), except under CI=true, where they must run and fail instead.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

function mountPoint(): string | null {
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, dir, type] = line.split(' ');
      if (type === 'tracefs' && dir) return dir;
    }
  } catch {
    return null;
  }
  return null;
}

let cached: string | null | undefined;

/** The tracefs mount, mounting it at /sys/kernel/tracing if needed; null when unusable. */
export function tracefs(): { dir: string | null; why: string } {
  if (cached !== undefined) return { dir: cached, why: cached ? '' : 'no tracefs (needs root and a kernel with tracefs)' };
  cached = null;
  if (process.getuid?.() !== 0) return { dir: null, why: 'not root: the live tracefs comparison needs root' };
  let dir = mountPoint();
  if (!dir) {
    try {
      mkdirSync('/sys/kernel/tracing', { recursive: true });
      execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'ignore' });
      dir = mountPoint();
    } catch {
      dir = null;
    }
  }
  cached = dir && existsSync(`${dir}/instances`) ? dir : null;
  return { dir: cached, why: cached ? '' : 'tracefs could not be mounted' };
}

/** Skip (or, under CI=true, fail) when the kernel is not available. Returns the mount. */
export function needKernel(t: TestContext): string | null {
  const { dir, why } = tracefs();
  if (dir) return dir;
  if (process.env.CI === 'true') throw new Error(`CI=true but the kernel oracle is unavailable: ${why}`);
  t.skip(why);
  return null;
}

/** Run fn with a fresh kernel instance directory, always removed afterwards. */
export function withKernelInstance<T>(root: string, fn: (dir: string) => T): T {
  const dir = `${root}/instances/nftrace-test-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  mkdirSync(dir);
  try {
    return fn(dir);
  } finally {
    rmdirSync(dir);
  }
}
