import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectEvents, tracefsMountIn } from './tracefs.js';

test('tracefs is found in /proc/mounts, escaped spaces and all; debugfs/tracing is the fallback', () => {
  const mounts = 'sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\nnodev /mnt/my\\040trace tracefs rw 0 0\n';
  assert.equal(tracefsMountIn(mounts), '/mnt/my trace');
  assert.equal(tracefsMountIn('sysfs /sys sysfs rw 0 0\n'), null);
});

test('event selections: system, system:event, bare event, globs, all; a miss names itself', () => {
  const available = new Map([
    ['sched', ['sched_switch', 'sched_wakeup', 'sched_waking']],
    ['kmem', ['kmalloc', 'kfree']],
  ]);
  assert.deepEqual([...selectEvents(available, ['sched'])], [['sched', ['sched_switch', 'sched_wakeup', 'sched_waking']]]);
  assert.deepEqual([...selectEvents(available, ['sched:sched_wak*', 'kfree'])], [['sched', ['sched_wakeup', 'sched_waking']], ['kmem', ['kfree']]]);
  assert.deepEqual([...selectEvents(available, ['kmem:*', 'kmem:kfree'])], [['kmem', ['kmalloc', 'kfree']]]);
  assert.equal([...selectEvents(available, ['all'])].flatMap(([, e]) => e).length, 5);
  assert.throws(() => selectEvents(available, ['sched', 'nosuch:event']), /no event matches 'nosuch:event'/);
  // Regex metacharacters in a selection are literal, never a pattern.
  assert.throws(() => selectEvents(available, ['sched:sched_(switch)']), /no event matches/);
});
