import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressMap } from './address-map.js';
import { ALLOC, FREE, KmemAccount, newEvent } from './account.js';

/** Slab-like churn: a pool of addresses handed out again right after they are freed (LIFO). */
function* slabChurn(live: number, operations: number, seed = 1): Generator<{ alloc: boolean; address: number }> {
  let x = seed;
  const random = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  const base = 0x888100000000;
  const inUse: number[] = [];
  const free: number[] = [];
  for (let i = 0; i < live * 2; i++) free.push(base + i * 64);
  for (let n = 0; n < operations; n++) {
    if (inUse.length < live || (random() < 0.5 && free.length)) {
      const address = free.pop()!;
      inUse.push(address);
      yield { alloc: true, address };
    } else {
      const i = Math.floor(random() * inUse.length);
      const address = inUse[i]!;
      inUse[i] = inUse[inUse.length - 1]!;
      inUse.pop();
      free.push(address);
      yield { alloc: false, address };
    }
  }
}

test('AddressMap agrees with a Map under slab churn, and reuse of addresses does not lengthen lookups', () => {
  const ours = new AddressMap<number>();
  const reference = new Map<number, number>();
  let n = 0;
  for (const op of slabChurn(20_000, 400_000)) {
    n++;
    if (op.alloc) {
      assert.equal(ours.get(op.address), reference.get(op.address));
      ours.set(op.address, n);
      reference.set(op.address, n);
    } else {
      assert.equal(ours.delete(op.address), reference.get(op.address));
      reference.delete(op.address);
    }
  }
  assert.equal(ours.size, reference.size);
  for (const [k, v] of reference) assert.equal(ours.get(k), v);
  // What a lookup walks depends on how full the table is, not on 400k operations of churn
  // (V8's Map kept a dead entry per reuse in the chain until its next rehash).
  assert.ok(ours.capacity <= 4 * 65_536, `capacity ${ours.capacity} follows the live count, not the churn`);
  assert.ok(ours.longestRun() < 100, `longest probe run ${ours.longestRun()}`);
});

test('AddressMap delete keeps every other key reachable (backward shift across a wrapped run)', () => {
  const m = new AddressMap<string>(4);
  const keys = Array.from({ length: 16 }, (_, i) => 0xffff0000 + i * 4096);
  for (const k of keys) m.set(k, String(k));
  for (const k of keys.filter((_, i) => i % 3 === 0)) assert.equal(m.delete(k), String(k));
  keys.forEach((k, i) => assert.equal(m.get(k), i % 3 === 0 ? undefined : String(k)));
  assert.equal(m.delete(12345), undefined);
});

test('kmem account: the same result whatever the churn, allocations at reused addresses matched to their frees', () => {
  const account = new KmemAccount();
  const ev = newEvent();
  let allocs = 0;
  let frees = 0;
  for (const op of slabChurn(5_000, 100_000, 7)) {
    ev.kind = op.alloc ? ALLOC : FREE;
    ev.event = op.alloc ? 'kmem_cache_alloc' : 'kmem_cache_free';
    ev.site = 'alloc_site+0x10';
    ev.ptr = op.address;
    ev.req = 100;
    ev.alloc = 128;
    ev.cache = 'test_cache';
    if (op.alloc) allocs++;
    else frees++;
    account.add(ev);
  }
  assert.equal(account.allocs, allocs);
  assert.equal(account.frees, frees);
  assert.equal(account.unmatchedFrees, 0);
  assert.equal(account.duplicates, 0);
  assert.equal(account.liveCount, allocs - frees);
  const site = account.sites.get('alloc_site+0x10')!;
  assert.equal(site.net, (allocs - frees) * 128);
  assert.equal(site.frees, frees);
});
