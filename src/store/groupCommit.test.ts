/**
 * Submissions committed together (store/groupCommit.ts): concurrent submissions share one
 * transaction, yet each keeps its own outcome: a refused one writes nothing, a client key used
 * twice in one batch is an idempotent retry (or a conflict, with another spec), and two servers
 * racing for one key both answer the winner's jobs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import { GroupCommit } from './groupCommit.ts';
import { openStore, SqlStore } from './sqlStore.ts';
import { storeFactories } from './testing.ts';

function spec(name: string, over: Record<string, unknown> = {}): JobSpec {
  const r = parseJobSpec({ name, tasks: [{ replicas: 2, gpus: 1, command: 'true' }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

test('GroupCommit: requests that come together share a batch; each gets its own outcome; a failed batch fails its requests only', async () => {
  const batches: number[][] = [];
  const g = new GroupCommit<number, number>(async (items) => {
    if (items.includes(13)) throw new Error('batch failed');
    batches.push([...items]);
    return items.map((i) => (i < 0 ? { error: new Error(`bad ${i}`) } : { ok: i * 10 }));
  }, 4);
  const results = await Promise.allSettled([1, 2, -3, 4, 5, 6].map((i) => g.run(i)));
  assert.deepEqual(batches, [[1, 2, -3, 4], [5, 6]]);
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), [10, 20, 'bad -3', 40, 50, 60]);
  await assert.rejects(g.run(13), /batch failed/);
  assert.equal(await g.run(7), 70, 'the next batch runs');
});

for (const factory of storeFactories()) {
  test(`concurrent submissions are committed together, each with its own outcome: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      const batches = (store as SqlStore).submits.batches;
      const tx = (store as SqlStore).sqlStats.totals().transactions;
      const refuse = (): void => {
        throw new Error('no node could run it');
      };
      const results = await Promise.allSettled([
        store.submit('default', spec('a'), null, 1),
        store.submit('default', spec('b'), 'key-b', 1),
        store.submit('default', spec('refused'), null, 1, refuse),
        store.submit('default', spec('b'), 'key-b', 1),
        store.submit('default', spec('b-other'), 'key-b', 1),
        store.submit('default', spec('arr', { array: 3 }), 'key-arr', 1),
      ]);
      assert.equal((store as SqlStore).submits.batches, batches + 1, 'one batch');
      assert.equal((store as SqlStore).sqlStats.totals().transactions, tx + 1, 'one transaction');
      const value = (i: number) => {
        const r = results[i];
        if (r?.status !== 'fulfilled') throw new Error(`submission ${i} failed: ${String((r as PromiseRejectedResult | undefined)?.reason)}`);
        return r.value;
      };
      assert.equal(value(0).created, true);
      assert.equal(value(1).created, true);
      assert.match(String((results[2] as PromiseRejectedResult).reason), /no node could run it/);
      assert.deepEqual([value(3).created, value(3).conflict, value(3).jobs.map((j) => j.id)], [false, false, value(1).jobs.map((j) => j.id)], 'a retry in the same batch: the first one\'s job');
      assert.deepEqual([value(4).created, value(4).conflict], [false, true], 'the key with another spec: a conflict');
      // The array waits as one job standing for its 3 elements (migration 019).
      const arr = value(5).jobs;
      assert.deepEqual(arr.map((j) => [j.name, j.arrayIndex, j.arrayCount, j.arrayId != null]), [['arr-[0-2]', 0, 3, true]]);
      const names = (await store.listJobs({})).map((j) => j.name);
      assert.deepEqual(names, ['a', 'b', 'arr-[0-2]'], 'the refused one wrote nothing');
      assert.equal((await store.listTasks(value(0).jobs[0]?.id ?? '')).length, 2);
      assert.equal((await store.listTasks(arr[0]?.id ?? '')).length, 2, "the array's job has one element's tasks");
      assert.equal((await store.listEvents({})).filter((e) => e.type === 'job:submitted').length, 3);
      // The array again under its key: its job, found in one read.
      const again = await store.submit('default', spec('arr', { array: 3 }), 'key-arr', 2);
      assert.deepEqual([again.created, again.conflict, again.jobs.map((j) => j.id)], [false, false, arr.map((j) => j.id)]);
      const single = await store.submit('default', spec('arr'), 'key-arr', 2);
      assert.equal(single.conflict, true, 'a single job under an array\'s key');
      // Counts are of elements: a, b and the array's 3.
      assert.equal(await (store as SqlStore).countJobs('pending', 0), 5);
      assert.equal(await (store as SqlStore).countJobs('pending', Number(value(1).jobs[0]?.id)), 3);
      assert.equal(await store.countOpenJobs('default'), 5);
    } finally {
      await cleanup();
    }
  });
}

for (const factory of storeFactories()) {
  test(`concurrent submissions with distinct keys go in together: a statement per hundred jobs, not per job: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store, cleanup } = await factory.open();
    try {
      const first = await store.submit('default', spec('kept'), 'key-kept', 1);
      const stats = (store as SqlStore).sqlStats;
      const statements = (match: (sql: string) => boolean): number => [...stats.bySql].filter(([sql]) => match(sql)).reduce((n, [, c]) => n + c.statements, 0);
      const inserts = (): number => statements((sql) => sql.startsWith('INSERT INTO jobs'));
      const arrays = (): number => statements((sql) => sql.startsWith('INSERT INTO arrays'));
      const taskInserts = (): number => statements((sql) => sql.startsWith('INSERT INTO tasks'));
      const keyReads = (): number => statements((sql) => /client_key IN \(|client_key = k\.key/.test(sql));
      const [tx, before, arraysBefore, tasksBefore, readsBefore] = [stats.totals().transactions, inserts(), arrays(), taskInserts(), keyReads()];
      const refuse = (): void => {
        throw new Error('no node could run it');
      };
      const results = await Promise.allSettled([
        ...Array.from({ length: 30 }, (_, i) => store.submit(i % 2 ? 'default' : 'other', spec(`s${i}`), i % 3 ? `key-${i}` : null, 2)),
        store.submit('default', spec('kept'), 'key-kept', 2),
        store.submit('default', spec('refused'), 'key-refused', 2, refuse),
        store.submit('default', spec('arr', { array: 4 }), 'key-arr', 2),
      ]);
      assert.equal(stats.totals().transactions, tx + 1, 'one transaction');
      // The array is one job row (migration 019): 31 rows in one insert, their 62 tasks in another.
      assert.equal(inserts() - before, 1, "one insert for the batch's 31 jobs");
      assert.equal(taskInserts() - tasksBefore, 1, "one insert for the batch's 62 tasks");
      assert.equal(arrays() - arraysBefore, 1, "the array's own row");
      assert.equal(keyReads() - readsBefore, 2, 'the client keys read once per tenant');
      const ok = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
      assert.deepEqual(ok.slice(0, 30).map((r) => [r?.created, r?.jobs.map((j) => j.name)]), Array.from({ length: 30 }, (_, i) => [true, [`s${i}`]]));
      assert.deepEqual([ok[30]?.created, ok[30]?.jobs[0]?.id], [false, first.jobs[0]?.id], 'a retry: the job it made before');
      assert.match(String((results[31] as PromiseRejectedResult).reason), /no node could run it/);
      assert.deepEqual(ok[32]?.jobs.map((j) => [j.name, j.arrayIndex, j.arrayCount]), [['arr-[0-3]', 0, 4]]);
      const jobs = await store.listJobs({});
      assert.equal(jobs.length, 32, 'the first, 30, and the array\'s one job; the refused one wrote nothing');
      assert.equal(jobs.find((j) => j.name === 's0')?.tenant, 'other');
      for (const r of ok.slice(0, 30)) assert.equal((await store.listTasks(r?.jobs[0]?.id ?? '')).length, 2, 'each job with its tasks');
      assert.equal((await store.listTasks(ok[32]?.jobs[0]?.id ?? '')).length, 2, "the array's job with one element's tasks");
      assert.equal((await store.listEvents({})).filter((e) => e.type === 'job:submitted').length, 32);
      // Open jobs are counted by elements: the first, 15 and the array's 4; the other tenant's 15.
      assert.deepEqual([await store.countOpenJobs('default'), await store.countOpenJobs('other')], [20, 15]);
      // Under its key again: the job it made.
      const again = await store.submit('default', spec('s1'), 'key-1', 3);
      assert.deepEqual([again.created, again.jobs[0]?.id], [false, ok[1]?.jobs[0]?.id]);
      // 250 at once: a batch (and a transaction) per hundred submissions, an insert per hundred jobs.
      const [tx2, before2] = [stats.totals().transactions, inserts()];
      const many = await Promise.all(Array.from({ length: 250 }, (_, i) => store.submit('default', spec(`m${i}`), `m-${i}`, 4)));
      assert.equal(stats.totals().transactions - tx2, 3, 'three transactions for 250 submissions');
      assert.equal(inserts() - before2, 3, 'three inserts for 250 jobs');
      assert.deepEqual(many.map((r) => [r.created, r.jobs.map((j) => j.name)]), Array.from({ length: 250 }, (_, i) => [true, [`m${i}`]]));
      assert.equal(new Set(many.map((r) => r.jobs[0]?.id)).size, 250);
      assert.equal(await store.countOpenJobs('default'), 270);
    } finally {
      await cleanup();
    }
  });
}

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`two servers racing for one client key both answer the winner's jobs: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store: a, url, cleanup } = await factory.open();
    const b = await openStore(url);
    try {
      const all = await Promise.all([0, 1, 2, 3].flatMap((i) => [a.submit('default', spec(`x${i}`), 'race', 1), b.submit('default', spec(`x${i}`), 'race', 1), a.submit('default', spec(`y${i}`), null, 1)]));
      const raced = all.filter((_, i) => i % 3 !== 2);
      assert.equal(raced.filter((r) => r.created).length, 1, 'one winner');
      const winner = raced.find((r) => r.created)?.jobs[0]?.id;
      for (const r of raced) assert.equal(r.jobs[0]?.id, winner);
      assert.equal((await a.listJobs({})).length, 5, 'the winner and the four without a key');
    } finally {
      await b.close();
      await cleanup();
    }
  });
}
