/**
 * The incremental snapshot (store/openJobs.ts): a store's snapshot sees every change to the open
 * jobs, also those another server makes on the same database, and on PostgreSQL also a write
 * committed after a snapshot by a transaction that began before it; rows read again unchanged
 * (the watermark held back by that transaction) keep their objects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import type { Job } from '../api/types.ts';
import { openJobsById, startedJobs } from './openJobIndex.ts';
import { openStore } from './sqlStore.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';
import type { SqlStats } from './sqlStats.ts';

function spec(name: string): JobSpec {
  const r = parseJobSpec({ name, tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

/**
 * n single jobs submitted at once, in that order: group-committed, a hundred to a transaction (an
 * array is one job row now, migration 019, so it no longer makes many rows).
 */
async function submitMany(s: Store, n: number, name: string, now: number): Promise<Job[]> {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => s.submit('default', spec(`${name}-${i}`), null, now)));
  return results.map((r) => r.jobs[0] as Job);
}

const open = async (s: Store): Promise<string[]> => (await s.snapshot()).openJobs.map((j) => `${j.name}:${j.state}:${j.reason ?? ''}`);

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`incremental snapshot sees another server's writes: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store: a, url, cleanup } = await factory.open();
    const b = await openStore(url);
    try {
      const [first] = (await a.submit('default', spec('first'), null, 1000)).jobs;
      assert.deepEqual(await open(a), ['first:pending:submitted']);
      // The other server submits, cancels and sets a reason; the first one's next snapshot has them all.
      const [second] = (await b.submit('default', spec('second'), null, 2000)).jobs;
      await b.submit('default', spec('third'), null, 2000);
      await b.cancel(first?.id ?? '', 'test', 3000);
      await b.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: second?.id ?? '', reason: 'waiting', estimatedStart: 5000 }] }, 3000);
      assert.deepEqual(await open(a), ['second:pending:waiting', 'third:pending:submitted']);
      const snap = await a.snapshot();
      assert.equal(snap.openJobs[0]?.estimatedStart, 5000);
      assert.equal(snap.openJobs[0]?.spec.name, 'second', 'the spec comes with the job');
      // The store's index of the list (openJobIndex.ts) follows it: every open job by id, none started.
      const byId = openJobsById(snap.openJobs);
      assert.deepEqual([...byId.keys()].sort(), snap.openJobs.map((j) => j.id).sort());
      assert.equal(byId.get(second?.id ?? ''), snap.openJobs[0]);
      assert.deepEqual(startedJobs(snap.openJobs), []);
      // Unchanged since: the same jobs again, the same list.
      assert.deepEqual(await open(a), ['second:pending:waiting', 'third:pending:submitted']);
      assert.equal((await a.snapshot()).openJobs, snap.openJobs);
    } finally {
      await b.close();
      await cleanup();
    }
  });
}

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`the jobs a bind makes of an array's waiting rest are taken in without reading their specs: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      await store.registerNode({ id: 'wide', address: 'http://127.0.0.1:1', cpuMilli: 1_000_000, memoryMib: 1 << 24, gpus: Array.from({ length: 300 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `w${i}` })), simulated: true }, 0);
      const r = parseJobSpec({ name: 'gpus', array: 300, tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const rest = (await store.submit('default', r.spec, null, 1000)).jobs[0] as Job;
      await store.snapshot();
      const binds = Array.from({ length: 300 }, (_, i) => ({ jobId: rest.id, attempt: 0, tasks: [{ index: 0, node: 'wide', gpus: [i], gpuMilli: 1000 }] }));
      assert.ok(await store.applyPlan({ binds, preemptions: [], pending: [] }, 2000));
      const stats = (store as unknown as { sqlStats: SqlStats }).sqlStats;
      stats.reset();
      const after = await store.snapshot();
      assert.equal(after.openJobs.filter((j) => j.state === 'admitted').length, 300, 'its 300 elements, placed one to a GPU');
      assert.deepEqual([...stats.bySql].filter(([sql]) => sql.startsWith('SELECT id, spec FROM jobs')), [], 'no spec read');
      assert.equal(after.openJobs.find((j) => j.arrayIndex === 7)?.spec.name, 'gpus-7');
    } finally {
      await cleanup();
    }
  });
}

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`the scheduler's own pending reasons are taken in, not read again: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store: a, url, cleanup } = await factory.open();
    const b = await openStore(url);
    try {
      const jobs = await submitMany(a, 1_200, 'many', 1000);
      assert.equal(new Set(jobs.map((j) => j.id)).size, 1_200);
      const before = await a.snapshot();
      const pending = jobs.map((j, i) => ({ jobId: j.id, reason: `waiting-for-resources: ${i}`, estimatedStart: i === 7 ? 9_000 : null }));
      assert.ok(await a.applyPlan({ binds: [], preemptions: [], pending }, 2000));
      const stats = (a as unknown as { sqlStats: SqlStats }).sqlStats;
      stats.reset();
      const after = await a.snapshot();
      const reread = [...stats.bySql].filter(([sql]) => sql.includes('FROM jobs WHERE version >=')).reduce((n, [, c]) => n + c.rows, 0);
      // On PostgreSQL the first 500, written in the plan's own transaction with its binds, are read again.
      assert.equal(reread, factory.name === 'postgres' ? 500 : 0, 'no job row read again past the plan\'s transaction');
      assert.equal(after.openJobs, before.openJobs, 'no job changed for the scheduler');
      assert.equal(after.openJobs[7]?.reason, 'waiting-for-resources: 7', 'the job objects show their reasons');
      assert.equal(after.openJobs[7]?.estimatedStart, 9_000);
      assert.equal((await b.getJob(jobs[1_100]?.id ?? ''))?.reason, 'waiting-for-resources: 1100');
      // Another server's write, and this one's next to it, are still read.
      await b.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: jobs[3]?.id ?? '', reason: 'elsewhere', estimatedStart: null }] }, 3000);
      assert.ok(await a.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: jobs[4]?.id ?? '', reason: 'here', estimatedStart: null }] }, 3000));
      const last = await a.snapshot();
      assert.deepEqual([last.openJobs[3]?.reason, last.openJobs[4]?.reason, last.openJobs[5]?.reason], ['elsewhere', 'here', 'waiting-for-resources: 5']);
      assert.notEqual(last.openJobs[3], after.openJobs[3]);
      // A job changed since the mirror read it keeps that change: the reason waits for the next plan.
      await b.cancel(jobs[6]?.id ?? '', 'default', 4000);
      assert.ok(await a.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: jobs[6]?.id ?? '', reason: 'late', estimatedStart: null }] }, 4000));
      assert.equal((await a.getJob(jobs[6]?.id ?? ''))?.state, 'cancelled');
      assert.ok(!(await a.snapshot()).openJobs.some((j) => j.id === jobs[6]?.id));
      // A reason not written (its job changed since), last in its batch, leaves no version for
      // the mirror to pass over that another write could take next.
      await b.cancel(jobs[9]?.id ?? '', 'default', 5000);
      assert.ok(await a.applyPlan({ binds: [], preemptions: [], pending: [jobs[8], jobs[9]].map((j) => ({ jobId: j?.id ?? '', reason: 'again', estimatedStart: null })) }, 5000));
      await b.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: jobs[10]?.id ?? '', reason: 'from b', estimatedStart: null }] }, 5100);
      const open = (await a.snapshot()).openJobs;
      assert.deepEqual([8, 9, 10].map((i) => open.find((j) => j.id === jobs[i]?.id)?.reason ?? 'gone'), ['again', 'gone', 'from b']);
      // A bind and a reason in one plan: the bind is read (on PostgreSQL both share a transaction id).
      await a.registerNode({ id: 'm1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: [{ index: 0, model: 'H100', memoryMib: 81_920, uuid: 'm1-0' }], simulated: true }, 5200);
      assert.ok(await a.applyPlan({ binds: [{ jobId: jobs[11]?.id ?? '', attempt: 0, tasks: [{ index: 0, node: 'm1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [{ jobId: jobs[12]?.id ?? '', reason: 'beside a bind', estimatedStart: null }] }, 5300));
      const next = (await a.snapshot()).openJobs;
      assert.deepEqual([11, 12].map((i) => [next.find((j) => j.id === jobs[i]?.id)?.state, next.find((j) => j.id === jobs[i]?.id)?.reason]), [['admitted', null], ['pending', 'beside a bind']]);
    } finally {
      await b.close();
      await cleanup();
    }
  });
}

const pgFactory = storeFactories().find((f) => f.name === 'postgres');
test('incremental snapshot on PostgreSQL: a write committed late, by a transaction older than the snapshot, is read', { ...(pgFactory?.skip !== undefined ? { skip: pgFactory.skip } : {}) }, async () => {
  if (!pgFactory) throw new Error('no postgres factory');
  const { store, url, cleanup } = await pgFactory.open();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const [job] = (await store.submit('default', spec('late'), null, 1000)).jobs;
    assert.deepEqual(await open(store), ['late:pending:submitted']);
    await client.query('BEGIN');
    await client.query('UPDATE jobs SET reason = $1 WHERE id = $2', ['from a slow transaction', Number(job?.id)]);
    // A snapshot while that transaction is open; then another server's quick write commits first.
    await store.submit('default', spec('quick'), null, 2000);
    assert.deepEqual(await open(store), ['late:pending:submitted', 'quick:pending:submitted']);
    // The open transaction holds the watermark back, so each snapshot reads 'quick' again: at the
    // version it had, it changes nothing (the same job objects, the same list: the scheduler's delta is empty).
    const held = (await store.snapshot()).openJobs;
    assert.equal((await store.snapshot()).openJobs, held, 'rows read again unchanged keep their objects');
    await client.query('COMMIT');
    assert.deepEqual(await open(store), ['late:pending:from a slow transaction', 'quick:pending:submitted']);
  } finally {
    await client.end();
    await cleanup();
  }
});

test('SQLite: jobs changed since the last snapshot are caught up in pages, writes between pages are read after, and the list is what a fresh read finds', async () => {
  const sqlite = storeFactories().find((f) => f.name === 'sqlite');
  if (!sqlite) throw new Error('no sqlite factory');
  const { store: a, url, cleanup } = await sqlite.open();
  const b = await openStore(url);
  const show = (jobs: readonly { id: string; state: string; reason: string | null }[]): string[] => jobs.map((j) => `${j.id}:${j.state}:${j.reason ?? ''}`);
  try {
    await a.submit('default', spec('before'), null, 1000);
    await a.snapshot();
    // Another server's burst (what this one inserts itself, its mirror takes in without a read).
    const jobs = await submitMany(b, 4_500, 'burst', 2000);
    await a.cancel(jobs[10]?.id ?? '', 'default', 2100);
    const stats = (a as unknown as { sqlStats: SqlStats }).sqlStats;
    stats.reset();
    // Another server writes while the pages are read (between them the connection is free).
    const snapping = a.snapshot();
    await b.submit('default', spec('during'), null, 2200);
    await b.cancel(jobs[4_000]?.id ?? '', 'default', 2300);
    const first = await snapping;
    const pages = [...stats.bySql].filter(([sql]) => sql.includes('ORDER BY version, id LIMIT')).reduce((n, [, c]) => n + c.statements, 0);
    assert.ok(pages >= 3, `4,500 changed jobs in pages of 2,000: ${pages} pages`);
    assert.ok(first.openJobs.length >= 4_499, 'the burst is in');
    const fresh = await openStore(url);
    try {
      const again = await a.snapshot();
      assert.deepEqual(show(again.openJobs), show((await fresh.snapshot()).openJobs), 'the same as a fresh read');
      assert.ok(again.openJobs.some((j) => j.name === 'during'));
      assert.ok(!again.openJobs.some((j) => j.id === jobs[4_000]?.id || j.id === jobs[10]?.id));
    } finally {
      await fresh.close();
    }
  } finally {
    await b.close();
    await cleanup();
  }
});

for (const factory of storeFactories().filter((f) => f.name !== 'memory'))
test(`the jobs a server submits are taken into its mirror without a read back, and are what a fresh read finds; later changes and another server's are read: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
  const { store: a, url, cleanup } = await factory.open();
  const b = await openStore(url);
  const show = (jobs: readonly Job[]): string[] => jobs.map((j) => `${j.id}:${j.name}:${j.state}:${j.reason ?? ''}:${j.arrayId ?? ''}:${j.arrayIndex ?? ''}:${j.arrayCount ?? ''}:${j.spec.name}:${JSON.stringify(j.spec)}`);
  const stats = (a as unknown as { sqlStats: SqlStats }).sqlStats;
  const rowsRead = (): number => [...stats.bySql].filter(([sql]) => /^SELECT id, tenant, name/.test(sql) || sql.startsWith('SELECT id, spec FROM jobs')).reduce((n, [, c]) => n + c.rows, 0);
  try {
    // The first read, of no job: on PostgreSQL a row written before it would be read again
    // (unchanged, harmlessly) whenever a transaction elsewhere on the cluster held the watermark back.
    assert.deepEqual((await a.snapshot()).openJobs, []);
    stats.reset();
    // 1,200 jobs in 12 transactions, each a version range the mirror skips: on PostgreSQL a
    // transaction id, not always next to the one before (other transactions on the cluster come
    // between), and a read skips at most 16 ranges (openJobs.ts MAX_GAPS); with the three below, 15.
    const jobs = await submitMany(a, 1_200, 'burst', 2000);
    const single = (await a.submit('default', spec('single'), 'key-1', 2001)).jobs;
    // An array's elements wait as one job: one row taken in.
    const [array] = (await a.submit('default', { ...spec('arr'), array: 500 }, 'key-arr', 2001)).jobs;
    // Cancelled before the next snapshot: the cancel is read after the hand-over, and wins.
    const gone = (await a.submit('default', spec('gone'), null, 2002)).jobs[0]?.id ?? '';
    await a.cancel(gone, 'default', 2003);
    stats.reset();
    const first = await a.snapshot();
    assert.equal(rowsRead(), 1, 'no job row or spec read back but the cancelled one');
    assert.equal(first.openJobs.length, 1_202);
    assert.ok(!first.openJobs.some((j) => j.id === gone));
    assert.ok(first.openJobs.some((j) => j.id === single[0]?.id));
    const taken = first.openJobs.find((j) => j.id === array?.id);
    assert.deepEqual([taken?.name, taken?.arrayIndex, taken?.arrayCount, taken?.arrayId], ['arr-[0-499]', 0, 500, array?.arrayId]);
    // Changed since (here and by another server): those rows are read.
    await a.cancel(jobs[7]?.id ?? '', 'default', 2100);
    await b.submit('default', spec('theirs'), null, 2200);
    await b.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: jobs[9]?.id ?? '', reason: 'waiting', estimatedStart: 5000 }] }, 2300);
    const again = await a.snapshot();
    assert.ok(rowsRead() >= 3, 'the changed rows are read');
    const fresh = await openStore(url);
    try {
      assert.deepEqual(show(again.openJobs), show((await fresh.snapshot()).openJobs), 'the same as a fresh read');
    } finally {
      await fresh.close();
    }
    assert.ok(!again.openJobs.some((j) => j.id === jobs[7]?.id), 'the cancelled one left');
    assert.equal(again.openJobs.find((j) => j.id === jobs[9]?.id)?.reason, 'waiting');
  } finally {
    await b.close();
    await cleanup();
  }
});

for (const factory of storeFactories().filter((f) => f.name !== 'memory'))
test(`submissions interleaved with another server's: the read after them is at most 17 statements, and finds what a fresh read does: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
  const { store: a, url, cleanup } = await factory.open();
  const b = await openStore(url);
  const stats = (a as unknown as { sqlStats: SqlStats }).sqlStats;
  try {
    await a.snapshot();
    // Each of this server's submissions is a range its mirror skips, with the other's rows between.
    for (let i = 0; i < 40; i++) {
      await a.submit('default', spec(`mine-${i}`), null, 1000 + i);
      await b.submit('default', spec(`theirs-${i}`), null, 1000 + i);
    }
    stats.reset();
    const snap = await a.snapshot();
    const reads = [...stats.bySql].filter(([sql]) => /^SELECT id, tenant, name/.test(sql)).reduce((n, [, c]) => n + c.statements, 0);
    assert.ok(reads >= 1 && reads <= 17, `${reads} statements`);
    const fresh = await openStore(url);
    try {
      assert.deepEqual(snap.openJobs.map((j) => `${j.id}:${j.name}`), (await fresh.snapshot()).openJobs.map((j) => `${j.id}:${j.name}`));
    } finally {
      await fresh.close();
    }
    assert.equal(snap.openJobs.length, 80);
  } finally {
    await b.close();
    await cleanup();
  }
});

test('SQLite: snapshots taken together each get their turn (a catch-up never waits for the connection a snapshot holds)', { timeout: 20_000 }, async () => {
  const sqlite = storeFactories().find((f) => f.name === 'sqlite');
  if (!sqlite) throw new Error('no sqlite factory');
  const { store, cleanup } = await sqlite.open();
  try {
    await store.snapshot();
    for (let round = 0; round < 3; round++) {
      await store.submit('default', spec(`r${round}`), null, 1000 + round);
      const snaps = await Promise.all([store.snapshot(), store.snapshot(), store.snapshot()]);
      for (const s of snaps) assert.equal(s.openJobs.length, round + 1);
    }
  } finally {
    await cleanup();
  }
});
