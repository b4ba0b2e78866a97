import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import { gangJob } from './build.ts';
import type { PendingJob } from './scheduler.ts';
import { mergeSorted, PendingTable, SortedList } from './pendingTable.ts';
import { compareJobIds } from './model.ts';

const fresh = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };

test('pending records follow the snapshots: unchanged jobs keep their record, new objects get new ones', () => {
  const rng = Rng.fromSeed(5);
  const table = new PendingTable((p: PendingJob) => ({ p }));
  const order = new SortedList<{ p: PendingJob }>((a, b) => a.p.spec.submitTime - b.p.spec.submitTime || (a.p.spec.id < b.p.spec.id ? -1 : 1));
  let list: PendingJob[] = [];
  let next = 0;
  const live = new Set<object>();
  for (let step = 0; step < 400; step++) {
    // Some leave, some are replaced by a new object (preempted again), some arrive; at times many at once.
    const burst = rng.int(0, 10) === 0 ? 90 : 30;
    const kept = list.filter(() => rng.int(0, 20) > (burst > 30 ? 8 : 1)).map((p) => (rng.int(0, 30) === 0 ? { spec: p.spec, progress: fresh } : p));
    const arrivals = Array.from({ length: rng.int(0, burst) }, () => {
      const id = rng.int(0, 3) === 0 ? `a${String(rng.int(0, 999)).padStart(4, '0')}-${next++}` : `z${String(next++).padStart(6, '0')}`;
      return { spec: gangJob({ id, gpus: 1, throughput: { V100: 1 }, totalSteps: 1, submitTime: rng.int(0, 50) }), progress: fresh };
    });
    list = [...kept, ...arrivals].sort((a, b) => (a.spec.id < b.spec.id ? -1 : 1));
    const before = new Set(table.records);
    const { added, removed } = table.update(list);
    order.apply(added, removed);
    assert.equal(table.records.length, list.length);
    table.records.forEach((r, i) => assert.equal(r.p, list[i], `step ${step}: record ${i}`));
    for (const r of removed) {
      assert.ok(before.has(r) && live.delete(r));
      assert.ok(!table.records.includes(r));
    }
    for (const r of added) {
      assert.ok(!before.has(r));
      live.add(r);
    }
    assert.equal(live.size, list.length);
    for (const r of table.records) if (before.has(r)) assert.ok(!removed.includes(r));
    const sorted = [...table.records].sort((a, b) => a.p.spec.submitTime - b.p.spec.submitTime || (a.p.spec.id < b.p.spec.id ? -1 : 1));
    assert.deepEqual(order.items, sorted);
  }
});

test('mergeSorted gives a stable merge: a\'s items first on ties, whatever the sizes', () => {
  const rng = Rng.fromSeed(9);
  const byKey = (x: { k: number }, y: { k: number }): number => x.k - y.k;
  for (let round = 0; round < 300; round++) {
    const sizes = [rng.int(0, 3) === 0 ? rng.int(0, 3) : rng.int(0, 400), rng.int(0, 3) === 0 ? rng.int(0, 3) : rng.int(0, 400)];
    const spread = rng.int(1, 50);
    const [a, b] = sizes.map((n, side) => Array.from({ length: n }, (_, i) => ({ k: rng.int(0, spread), side, i })).sort((x, y) => x.k - y.k || x.i - y.i));
    const merged = mergeSorted(a as { k: number; side: number; i: number }[], b as { k: number; side: number; i: number }[], byKey);
    // The reference: a stable sort of a then b keeps a's items before b's equal ones.
    const expected = [...(a as object[]), ...(b as object[])].sort((x, y) => byKey(x as { k: number }, y as { k: number }));
    assert.deepEqual(merged, expected, `round ${round}`);
  }
});

test('job ids: decimal ids in order of value, before the others in text order; a total order', () => {
  const ids = ['100000', '99999', '9', '10', 'j0000002', 'j0000010', 'a-1', '0', '110500', '11051', 'b7'];
  assert.deepEqual([...ids].sort(compareJobIds), ['0', '9', '10', '11051', '99999', '100000', '110500', 'a-1', 'b7', 'j0000002', 'j0000010']);
  // Antisymmetric and transitive over a mixed sample (sort's comparator contract).
  const rng = Rng.fromSeed(11);
  const sample = Array.from({ length: 60 }, () => (rng.int(0, 2) === 0 ? `x${rng.int(0, 500)}` : String(rng.int(0, 200_000))));
  for (const a of sample) {
    for (const b of sample) {
      assert.equal(Math.sign(compareJobIds(a, b)), -Math.sign(compareJobIds(b, a)) || 0);
      for (const c of sample.slice(0, 15)) if (compareJobIds(a, b) < 0 && compareJobIds(b, c) < 0) assert.ok(compareJobIds(a, c) < 0, `${a} < ${b} < ${c}`);
    }
  }
});

test('arrivals with ids past a power of ten join the end of the table, as their values say', () => {
  const job = (id: number): PendingJob => ({ spec: gangJob({ id: String(id), gpus: 1, throughput: { V100: 1 }, totalSteps: 1, submitTime: 0 }), progress: fresh });
  const table = new PendingTable((p: PendingJob) => p.spec.id);
  const first = Array.from({ length: 50 }, (_, i) => job(99_970 + i));
  table.update(first);
  const arrivals = [job(100_020), job(100_021), job(110_500)];
  const { added, removed } = table.update([...first, ...arrivals]);
  assert.deepEqual([added, removed], [['100020', '100021', '110500'], []]);
  assert.deepEqual(table.records.slice(-4), ['100019', '100020', '100021', '110500']);
});
