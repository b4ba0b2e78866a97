/**
 * New pending jobs reach the core at most `arrivalsPerCycle` a cycle (arrivalQueue.ts): the
 * queue hands out the highest priority and then the oldest first; the scheduler thread plans a
 * burst over several cycles, says how many wait (`backlog`), and binds each job once; the loop
 * runs those cycles without waiting for its tick.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../../api/spec.ts';
import type { Job } from '../../api/types.ts';
import { openStore } from '../../store/sqlStore.ts';
import { SchedulingLoop } from '../loop.ts';
import { ArrivalQueue } from './arrivalQueue.ts';
import { ThreadedPlanner } from './plannerThread.ts';

const job = (id: number, priority: number, createdAt: number, tenant = 'a'): Job => ({ id: String(id), tenant, createdAt, spec: { priority } }) as unknown as Job;

function cpuJob(name: string, priority = 0): JobSpec {
  const r = parseJobSpec({ name, priority, tasks: [{ replicas: 1, gpus: 0, cpu: 1, memory: '1Gi', command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

test('the arrival queue hands out at most its share a cycle: highest priority first, then the oldest; a job held again replaces its older self, one dropped is gone', () => {
  const q = new ArrivalQueue(3);
  for (const [id, prio, at] of [[1, 0, 100], [2, 5, 300], [3, 0, 50], [4, 5, 200], [5, 9, 400], [6, 0, 60]] as const) q.hold(job(id, prio, at));
  q.hold(job(3, 0, 50)); // its newer object: still one entry
  q.drop('6');
  assert.equal(q.size, 5);
  assert.deepEqual(q.take().map((j) => j.id), ['5', '4', '2']);
  assert.deepEqual(q.take().map((j) => j.id).sort(), ['1', '3'], 'the rest fit: all of them');
  assert.equal(q.size, 0);
  assert.deepEqual(q.take(), []);
  assert.throws(() => new ArrivalQueue(0), /positive integer/);
});

test("at one priority the tenants take turns: another tenant's job waits one cycle behind a tenant's burst, not the whole burst; a higher priority still goes first", () => {
  const q = new ArrivalQueue(4);
  for (let i = 0; i < 10; i++) q.hold(job(i, 0, 100 + i, 'bulk'));
  q.hold(job(20, 0, 500, 'small'));
  q.hold(job(21, 0, 501, 'small'));
  q.hold(job(22, 0, 502, 'other'));
  assert.deepEqual(q.take().map((j) => j.id), ['0', '20', '22', '1'], "each tenant's oldest, oldest tenant head first, then round two");
  q.hold(job(30, 7, 900, 'bulk'));
  assert.deepEqual(q.take().map((j) => j.id), ['30', '21', '2', '3'], 'the higher priority first, then the turn goes on');
  assert.deepEqual(q.take().map((j) => j.id), ['4', '5', '6', '7']);
  assert.deepEqual(q.take().map((j) => j.id).sort(), ['8', '9']);
});

test('the scheduler thread takes in a burst over several cycles, the most urgent first, reports what waits, and binds every job once', async () => {
  const store = await openStore('memory:');
  const thread = await ThreadedPlanner.start('tide', 'tide', {}, { arrivalsPerCycle: 3 });
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: [], simulated: true }, 0);
    await store.submit('default', cpuJob('first'), null, 1000);
    let now = 2000;
    const cycle = async (): Promise<{ bound: string[]; backlog: number }> => {
      now += 1000;
      await thread.refresh(store, now);
      const plan = await thread.plan(await store.snapshot(), now);
      assert.ok(await store.applyPlan(plan, now));
      const names = new Map((await store.snapshot()).openJobs.map((j) => [j.id, j.name]));
      return { bound: plan.binds.map((b) => names.get(b.jobId) ?? b.jobId).sort(), backlog: plan.backlog ?? 0 };
    };
    assert.deepEqual(await cycle(), { bound: ['first'], backlog: 0 }, 'the first cycle reads every open job: no cap');
    for (let i = 0; i < 6; i++) await store.submit('default', cpuJob(`low-${i}`), null, 3000 + i);
    await store.submit('default', cpuJob('urgent', 100), null, 3100);
    assert.deepEqual(await cycle(), { bound: ['low-0', 'low-1', 'urgent'], backlog: 4 }, 'the most urgent, then the oldest');
    assert.deepEqual(await cycle(), { bound: ['low-2', 'low-3', 'low-4'], backlog: 1 });
    assert.deepEqual(await cycle(), { bound: ['low-5'], backlog: 0 });
    assert.deepEqual(await cycle(), { bound: [], backlog: 0 });
    const states = (await store.snapshot()).openJobs.map((j) => j.state);
    assert.equal(states.length, 8);
    assert.ok(states.every((s) => s === 'admitted'), states.join(','));
  } finally {
    await thread.close();
    await store.close();
  }
});

test('the loop runs the cycles a backlog needs without waiting for its tick', async () => {
  const store = await openStore('memory:');
  const thread = await ThreadedPlanner.start('tide', 'tide', {}, { arrivalsPerCycle: 2 });
  const loop = new SchedulingLoop(store, thread, { serverId: 's', tickMs: 60_000, leaseTtlMs: 120_000, nodeLeaseMs: 600_000, clock: Date.now });
  let cycles = 0;
  loop.observe(() => void cycles++);
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: [], simulated: true }, Date.now());
    loop.start();
    while (cycles === 0) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 7; i++) await store.submit('default', cpuJob(`j${i}`), null, Date.now());
    loop.poke();
    let admitted = 0;
    for (const end = Date.now() + 15_000; Date.now() < end && admitted < 7; await new Promise((r) => setTimeout(r, 50))) admitted = (await store.snapshot()).openJobs.filter((j) => j.state === 'admitted').length;
    assert.equal(admitted, 7, 'all bound, well before the 60-s tick');
    assert.ok(cycles >= 5, `${cycles} cycles: one poked, then one per share of the backlog`);
    assert.equal(loop.backlog, 0);
  } finally {
    await loop.stop();
    await thread.close();
    await store.close();
  }
});
