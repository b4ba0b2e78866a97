/**
 * The active tasks kept between reads (store/activeTasks.ts): a store's snapshot and node list
 * see every bind, start, stop and exit, also those another server makes on the same database
 * (the snapshot at once, the node list within a second), and on PostgreSQL also a task write
 * committed late by a transaction older than the read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import { ACTIVE_TASKS_Q } from './activeTasks.ts';
import { OPEN_JOBS_Q } from './openJobs.ts';
import { Q } from './queries.ts';
import { openStore } from './sqlStore.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

function spec(name: string, gpus: number): JobSpec {
  const r = parseJobSpec({ name, tasks: [{ replicas: 2, gpus, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const node = { id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512_000, gpus: [0, 1, 2, 3].map((index) => ({ index, model: 'H100', memoryMib: 80_000, uuid: `u${index}` })), simulated: true };

const active = async (s: Store): Promise<string[]> => (await s.snapshot()).activeTasks.map((t) => `${t.jobId}.${t.index}:${t.state}@${t.node}[${t.gpus.join(',')}]`);
const gpuUse = async (s: Store): Promise<readonly number[]> => (await s.listNodes())[0]?.gpuUsedMilli ?? [];
/**
 * The node list's GPU use once it shows `expected`: another server's task changes show in it
 * within a second (its kept tasks are taken as they are while this server wrote none and they
 * are under a second old: SqlStore.listNodes); fails with what it showed last after 3 s.
 */
async function gpuUseSoon(s: Store, expected: readonly number[]): Promise<readonly number[]> {
  const deadline = Date.now() + 3000;
  let use = await gpuUse(s);
  while (JSON.stringify(use) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    use = await gpuUse(s);
  }
  return use;
}

/** Submits a 2-task job of `gpus` GPUs per task and binds it to n1 from GPU `first` on. */
async function bound(s: Store, name: string, gpus: number, first: number, now: number): Promise<string> {
  const [job] = (await s.submit('default', spec(name, gpus), null, now)).jobs;
  const id = job?.id ?? '';
  const tasks = [0, 1].map((index) => ({ index, node: 'n1', gpus: Array.from({ length: gpus }, (_, g) => first + index * gpus + g), gpuMilli: 1000 * gpus }));
  assert.equal(await s.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks }], preemptions: [], pending: [] }, now), true);
  return id;
}

for (const factory of storeFactories().filter((f) => f.name !== 'memory')) {
  test(`active tasks between reads see another server's binds, starts and exits: ${factory.name}`, { ...(factory.skip !== undefined ? { skip: factory.skip } : {}) }, async () => {
    const { store: a, url, cleanup } = await factory.open();
    const b = await openStore(url);
    try {
      await a.registerNode(node, 1000);
      const first = await bound(a, 'first', 1, 0, 1000);
      assert.deepEqual(await active(a), [`${first}.0:assigned@n1[0]`, `${first}.1:assigned@n1[1]`]);
      assert.deepEqual(await gpuUse(a), [1000, 1000, 0, 0]);
      // The other server binds a job, starts the first one's tasks and then ends one of them.
      const second = await bound(b, 'second', 1, 2, 2000);
      const runs = ((await b.heartbeat('n1', [], [], 2001)) ?? []).filter((d) => d.jobId === first).map((d) => d.runId);
      await b.heartbeat('n1', [], runs.map((runId) => ({ runId, state: 'running' as const, pid: 1, exitCode: null })), 2002);
      assert.deepEqual(await active(a), [`${first}.0:running@n1[0]`, `${first}.1:running@n1[1]`, `${second}.0:assigned@n1[2]`, `${second}.1:assigned@n1[3]`]);
      await b.heartbeat('n1', [], [{ runId: runs[0] ?? '', state: 'exited', pid: 1, exitCode: 0 }, { runId: runs[1] ?? '', state: 'running', pid: 1, exitCode: null }], 2003);
      await b.cancel(second, 'test', 2004);
      assert.deepEqual(await active(a), [`${first}.1:running@n1[1]`, `${second}.0:stopping@n1[2]`, `${second}.1:stopping@n1[3]`], 'an exit leaves, a cancel stops');
      assert.deepEqual(await gpuUseSoon(a, [0, 1000, 1000, 1000]), [0, 1000, 1000, 1000]);
      // Unchanged since: the same tasks, as the same objects.
      const before = (await a.snapshot()).activeTasks;
      const after = (await a.snapshot()).activeTasks;
      assert.equal(after.length, 3);
      after.forEach((t, i) => assert.equal(t, before[i]));
      // The node is lost: every task of it ends.
      await b.expireNodes(10_000, 10_001);
      assert.deepEqual(await active(a), []);
      assert.deepEqual(await gpuUseSoon(a, [0, 0, 0, 0]), [0, 0, 0, 0]);
    } finally {
      await b.close();
      await cleanup();
    }
  });
}

const pgFactory = storeFactories().find((f) => f.name === 'postgres');
test('active tasks on PostgreSQL: a task write committed late, by a transaction older than the read, is read', { ...(pgFactory?.skip !== undefined ? { skip: pgFactory.skip } : {}) }, async () => {
  if (!pgFactory) throw new Error('no postgres factory');
  const { store, url, cleanup } = await pgFactory.open();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await store.registerNode(node, 1000);
    const id = await bound(store, 'late', 1, 0, 1000);
    assert.equal((await active(store)).length, 2);
    await client.query('BEGIN');
    await client.query("UPDATE tasks SET state = 'stopping' WHERE job_id = $1 AND idx = 0", [Number(id)]);
    // A read while that transaction is open; then a quicker write commits first.
    await bound(store, 'quick', 1, 2, 2000);
    assert.deepEqual((await active(store)).map((t) => t.split('@')[0]), [`${id}.0:assigned`, `${id}.1:assigned`, `${Number(id) + 1}.0:assigned`, `${Number(id) + 1}.1:assigned`]);
    await client.query('COMMIT');
    assert.equal((await active(store))[0], `${id}.0:stopping@n1[0]`);
  } finally {
    await client.end();
    await cleanup();
  }
});

test('SQLite plans: a page of jobs in one state walks an index from the cursor (no sort of every job in the state), and the reads of what changed walk the version indexes', () =>
  withSqliteSchema((db) => {
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE id > 5 AND state IN ('pending') ORDER BY id LIMIT 101").all() as { detail: string }[];
    const text = plan.map((p) => p.detail).join('; ');
    assert.match(text, /jobs_state_id \(state=\? AND id>\?\)/);
    assert.doesNotMatch(text, /TEMP B-TREE/);
    // The snapshot's reads of what changed walk the version indexes, never every row.
    const planOf = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql.replace('$1', '5')}`).all() as { detail: string }[]).map((p) => p.detail).join('; ');
    assert.match(planOf(OPEN_JOBS_Q.changed), /USING INDEX jobs_version \(version>\?\)/);
    assert.match(planOf(ACTIVE_TASKS_Q.changed), /USING INDEX tasks_version \(version>\?\)/);
    // A catch-up page walks the version index from where the last page ended, in its order (no sort).
    const page = planOf(OPEN_JOBS_Q.changedPage.replaceAll('$1', '5').replace('$2', '9').replace('$3', '3'));
    assert.match(page, /USING INDEX jobs_version \(version>\? AND version<\?\)/);
    assert.doesNotMatch(page, /TEMP B-TREE/);
    // A lost node's open attempts are found from its tasks by key, not among every open attempt.
    const lost = planOf(Q.attemptsLostOnNode.replace('$2', '7'));
    assert.match(lost, /task_attempts USING INDEX sqlite_autoindex_task_attempts_1 \(job_id=\? AND idx=\? AND attempt=\?\)/);
    assert.match(lost, /tasks USING (COVERING )?INDEX tasks_node_state \(node_id=\? AND state=\?\)/);
  }));

test('SQLite plans: statements over hundreds of rows of VALUES look each row up by key, never walk a table', () =>
  withSqliteSchema((db) => {
    const joins = ['touchTokens', 'admitJobs', 'bindTasks', 'insertAttempts', 'setPendingReasons', 'setPlanReasons', 'tasksStarted', 'attemptsStarted', 'jobsStarted', 'tasksExited', 'attemptsEnded', 'heartbeatNodes'] as const;
    for (const name of joins) {
      for (const n of [1, 100, 500]) {
        const sql = Q[name](n).replace(/\$(\d+)/g, '?');
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array<number>(sql.split('?').length - 1).fill(1)) as { detail: string }[]).map((p) => p.detail).join('; ');
        assert.doesNotMatch(plan, /SCAN (jobs|tasks|nodes|task_attempts|tokens)\b|AUTOMATIC COVERING INDEX/, `${name}(${n}): ${plan}`);
      }
    }
  }));

test('SQLite: a job inserted without a version (not by the store) is still versioned, so the next snapshot has it', async () => {
  const { default: Database } = await import('better-sqlite3');
  const sqlite = storeFactories().find((f) => f.name === 'sqlite');
  if (!sqlite) throw new Error('no sqlite factory');
  const { store, url, cleanup } = await sqlite.open();
  const db = new Database(url.slice('sqlite:'.length));
  try {
    const [first] = (await store.submit('default', spec('by-store', 1), null, 1)).jobs;
    assert.deepEqual((await store.snapshot()).openJobs.map((j) => j.name), ['by-store']);
    const text = JSON.stringify(first?.spec);
    db.prepare("INSERT INTO jobs (tenant, name, queue, priority, kind, state, reason, attempt, gpu_milli, task_count, preemptible, spec, client_key, created_at, updated_at) VALUES ('default', 'raw', 'default', 0, 'batch', 'pending', 'submitted', 0, 1000, 2, 1, ?, NULL, 2, 2)").run(text);
    const versions = db.prepare('SELECT name, version FROM jobs ORDER BY id').all() as { name: string; version: number }[];
    assert.ok((versions[1]?.version ?? 0) > (versions[0]?.version ?? 0), JSON.stringify(versions));
    assert.deepEqual((await store.snapshot()).openJobs.map((j) => j.name), ['by-store', 'raw']);
  } finally {
    db.close();
    await cleanup();
  }
});

/** Runs `fn` on a read-only connection to a fresh SQLite store's file (its schema, no rows). */
async function withSqliteSchema(fn: (db: import('better-sqlite3').Database) => void): Promise<void> {
  const { default: Database } = await import('better-sqlite3');
  const sqlite = storeFactories().find((f) => f.name === 'sqlite');
  if (!sqlite) throw new Error('no sqlite factory');
  const { url, cleanup } = await sqlite.open();
  const db = new Database(url.slice('sqlite:'.length), { readonly: true });
  try {
    fn(db);
  } finally {
    db.close();
    await cleanup();
  }
}
