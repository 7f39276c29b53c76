/**
 * The live kernel tracefs as a test oracle. Tests that need it skip with a reason when it is not
 * usable (not root, no tracefs), except under CI=true, where they must run and fail instead.
 */
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { findTracefs } from '../../src/kernel/tracefs.js';
import { fuseMissing } from '../../src/tracefs/fuse.js';

let cached: { dir: string | null; why: string } | undefined;

/** The tracefs mount (mounted at /sys/kernel/tracing if needed), or why there is none. */
export function tracefs(): { dir: string | null; why: string } {
  if (cached) return cached;
  if (process.getuid?.() !== 0) return (cached = { dir: null, why: 'not root: the live tracefs comparison needs root' });
  try {
    const dir = findTracefs();
    cached = existsSync(`${dir}/instances`) ? { dir, why: '' } : { dir: null, why: `${dir} has no instances/` };
  } catch (err) {
    cached = { dir: null, why: (err as Error).message };
  }
  return cached;
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

/** Skip (or, under CI=true, fail) when FUSE cannot mount here; says what is missing. */
export function needFuse(t: TestContext): boolean {
  const why = fuseMissing();
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true but FUSE is unavailable: ${why}`);
  t.skip(why);
  return false;
}
