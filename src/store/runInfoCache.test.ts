/** The heartbeat answers' per-attempt cache (store/runInfoCache.ts): entries expire spread, those read together together; changed jobs and moved nodes are forgotten. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobSpec } from '../api/spec.ts';
import { RunInfoCache, type ChangedJob, type RunInfo, type RunRow } from './runInfoCache.ts';

const info = { row: { name: 'j', task_count: 1, stop_grace_ms: null, power_cap_watts: null } as RunRow, spec: {} as JobSpec, peers: [] } satisfies RunInfo;

/** How long after it was set an entry is still answered (to the ms). */
function lifetime(c: RunInfoCache, job: number, at: number): number {
  let lo = 0;
  let hi = 31_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (c.get(job, 0, at + mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

test('RunInfoCache: entries live 75-100 % of the TTL, spread by when they were read; those read at one time expire together', () => {
  const c = new RunInfoCache(30_000);
  const base = 1_765_000_000_000;
  c.set(1, 0, info, base, c.readGeneration);
  c.set(2, 0, info, base, c.readGeneration);
  assert.equal(lifetime(c, 1, base), lifetime(c, 2, base), 'read by one heartbeat: expire together');
  const lives = Array.from({ length: 100 }, (_, i) => {
    c.set(100 + i, 0, info, base + 7 * i, c.readGeneration);
    return lifetime(c, 100 + i, base + 7 * i);
  });
  assert.ok(lives.every((l) => l >= 22_499 && l < 30_000), `within 75-100 % of 30 s: ${Math.min(...lives)}-${Math.max(...lives)}`);
  assert.ok(new Set(lives).size > 50, 'spread');
  assert.ok(Math.max(...lives) - Math.min(...lives) > 5_000, 'over more than 5 s');
});

test('RunInfoCache: a check forgets the jobs whose stop grace or power cap changed since the last, everything when the nodes moved, and what a read begun before it found', async () => {
  const c = new RunInfoCache(600_000, 50_000, 250);
  let changed: ChangedJob[] = [];
  let nodes = 'v1';
  let watermark = 10;
  const check = (at: number): Promise<void> =>
    c.current(
      async () => ({ next: ++watermark, rows: changed }),
      async () => nodes,
      at,
    );
  await check(0);
  for (const job of [1, 2, 3]) c.set(job, 0, info, 1_000, c.readGeneration);
  c.seed(4, 0, { ...info, row: { ...info.row, power_cap_watts: 300 } }, 1_000);
  assert.ok(c.get(2, 0, 1_000) && !c.get(2, 1, 1_000), 'per attempt');
  changed = [{ id: 2, stop_grace_ms: '0', power_cap_watts: null }];
  await check(100);
  assert.ok(c.get(2, 0, 1_000), 'not checked again within 250 ms');
  const before = c.readGeneration;
  // Jobs 3 and 4 changed too, but not in what an entry holds (they started, say): kept. PostgreSQL answers BIGINT as a string.
  changed.push({ id: 3, stop_grace_ms: null, power_cap_watts: null }, { id: '4', stop_grace_ms: null, power_cap_watts: '300' });
  await check(400);
  assert.equal(c.get(2, 0, 1_000), undefined, 'job 2 changed its stop grace: forgotten');
  assert.ok(c.get(1, 0, 1_000) && c.get(3, 0, 1_000) && c.get(4, 0, 1_000), 'the others kept');
  changed = [{ id: 4, stop_grace_ms: null, power_cap_watts: 250 }];
  await check(700);
  assert.equal(c.get(4, 0, 1_000), undefined, 'job 4 changed its power cap: forgotten');
  changed = [];
  c.set(2, 0, info, 1_000, before);
  assert.equal(c.get(2, 0, 1_000), undefined, 'read before the check: not kept');
  nodes = 'v2';
  await check(1_000);
  assert.equal(c.get(1, 0, 1_000), undefined, 'a node registered again: everything forgotten');
  c.set(1, 0, info, 1_000, c.readGeneration);
  const failing = c.current(async () => { throw new Error('db down'); }, async () => nodes, 1_300);
  await failing;
  assert.equal(c.get(1, 0, 1_000), undefined, 'a failed check forgets everything');
});
