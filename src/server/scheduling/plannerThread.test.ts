/**
 * The scheduler thread plans as the adapter does on the request thread: same snapshots in (the
 * second one sent as a delta), same plans out; an unknown scheduler is refused at start; when
 * the thread dies, the server's planner slot plans on the request thread.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../../api/spec.ts';
import { openStore } from '../../store/sqlStore.ts';
import { changedReasons } from './changedReasons.ts';
import { CoreSchedulerAdapter } from './coreAdapter.ts';
import { PlannerSlot, ThreadedPlanner } from './plannerThread.ts';
import { liveEnergy } from './energyStages.ts';
import { DEFAULT_POWER_MODEL } from '../../core/energy/powerModel.ts';
import { DEFAULT_PRICES } from '../../core/energy/pricing.ts';
import { BudgetGate } from '../usage/budgetGate.ts';

function spec(name: string, gpus: number): JobSpec {
  const r = parseJobSpec({ name, tasks: [{ replicas: 1, gpus, command: 'true' }] });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

for (const [scheduler, placement] of [['fifo', 'bestfit'], ['tide', 'tide']] as const)
test(`the scheduler thread plans what the adapter plans, over deltas, live inputs included (${scheduler}/${placement})`, async () => {
  const store = await openStore('memory:');
  // With the energy stages as the server runs them (the worker gets them cloned): caps chosen alike.
  const energy = liveEnergy({ consolidate: { suspendSeconds: 1 } }, DEFAULT_POWER_MODEL, DEFAULT_PRICES).stages;
  const live = { tenants: [{ name: 'default', weight: 2 }], gpuSpeeds: { H100: 1 }, energy };
  const thread = await ThreadedPlanner.start(scheduler, placement, {}, live);
  const local = await CoreSchedulerAdapter.create(scheduler, placement, {}, live);
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 4 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `u${i}` })), simulated: true }, 0);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(...(await store.submit('default', spec(`j${i}`, 1 + (i % 3)), null, 1000 + i)).jobs.map((j) => j.id));
    const expect = async (now: number): Promise<void> => {
      // The thread's adapter reads the store through this thread: the same inputs as the local one.
      await thread.refresh(store, now);
      await local.refresh(store, now, true);
      const snap = await store.snapshot();
      const full = local.plan(snap, now);
      const want = { ...full, pending: changedReasons(full.pending, snap) };
      const got = await thread.plan(snap, now);
      assert.deepEqual(got, want);
      assert.ok(await store.applyPlan(got, now));
    };
    await expect(5000);
    await store.cancel(ids[1] ?? '', 'test', 6000);
    await store.submit('default', spec('late', 1), null, 6000);
    await expect(7000);
    const snap = await store.snapshot();
    assert.ok(snap.openJobs.some((j) => j.state === 'admitted'), 'the plans bound jobs');
    assert.ok(thread.sentCounts.withoutSpec > 0, 'jobs that changed state went without their specs');
    // Tasks start, one ends, a node joins (the node order changes): still the same plans.
    const runs = (await store.heartbeat('n1', [], [], 7100)) ?? [];
    await store.heartbeat('n1', [{ index: 0, utilization: 90, memoryUsedMib: 1, powerWatts: 500 }], runs.map((r, i) => ({ runId: r.runId, state: i === 0 ? ('exited' as const) : ('running' as const), pid: 1, exitCode: 0 })), 7200);
    await store.registerNode({ id: 'n0', address: 'http://127.0.0.1:2', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 2 }, (_, i) => ({ index: i, model: 'A100', memoryMib: 81_920, uuid: `v${i}` })), simulated: true }, 7300);
    await expect(8000);
    // Several changes in one cycle (jobs submitted, the oldest waiting one cancelled): the thread
    // brings its pending list up to date from the changes alone, and still plans the same.
    const walks = thread.jobWalks;
    for (let i = 0; i < 5; i++) await store.submit('default', spec(`burst${i}`, 4), null, 8100 + i);
    const oldest = (await store.snapshot()).openJobs.find((j) => j.state === 'pending');
    assert.ok(oldest, 'a job waits');
    await store.cancel(oldest.id, 'test', 8200);
    await expect(8300);
    assert.equal(thread.jobWalks, walks, 'the job delta came from the store\'s recorded changes (two refreshes of them), not a walk over every open job');
    // Once the plans have nothing left to change, a cycle after a heartbeat that changed only
    // telemetry sends no job, task or node again.
    await expect(9000);
    await expect(9100);
    const before = { ...thread.sentCounts };
    const running = ((await store.snapshot()).activeTasks.filter((t) => t.node === 'n1' && t.state === 'running'));
    const live = await Promise.all(running.map(async (t) => (await store.listTasks(t.jobId)).find((x) => x.index === t.index)?.runId ?? ''));
    await store.heartbeat('n1', [{ index: 0, utilization: 10, memoryUsedMib: 1, powerWatts: 100 }], live.map((runId) => ({ runId, state: 'running' as const, pid: 1, exitCode: null })), 9160);
    await expect(9200);
    assert.deepEqual({ ...thread.sentCounts, cycles: 0 }, { ...before, cycles: 0 }, 'no job, task or node sent again');
    assert.equal(thread.sentCounts.cycles, before.cycles + 1);
    // A node suspended by power saving (migration 011) is sent again: its state and since when.
    // (Too small for any job: nothing is placed on it, so it may be suspended.)
    await store.registerNode({ id: 'n2', address: 'http://127.0.0.1:3', cpuMilli: 1, memoryMib: 1, gpus: [], simulated: true }, 9300);
    await expect(9400);
    const nodesSent = thread.sentCounts.nodes;
    assert.ok(await store.setNodePower('n2', 'suspended', 9500, 'test'));
    await expect(9600);
    assert.equal(thread.sentCounts.nodes, nodesSent + 1, 'the suspended node, and only it');
  } finally {
    await thread.close();
    await store.close();
  }
});

test('the energy stages run in the scheduler thread: a lone job gets the cap the adapter chooses', async () => {
  const store = await openStore('memory:');
  const live = { energy: liveEnergy({}, DEFAULT_POWER_MODEL, DEFAULT_PRICES).stages };
  const thread = await ThreadedPlanner.start('tide', 'tide', {}, live);
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 4 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `u${i}` })), simulated: true }, 0);
    await store.submit('default', spec('lone', 1), null, 1000);
    await thread.refresh(store, 2000);
    const got = await thread.plan(await store.snapshot(), 2000);
    const want = (await CoreSchedulerAdapter.create('tide', 'tide', {}, live)).plan(await store.snapshot(), 2000);
    assert.equal(got.binds.length, 1);
    assert.ok(typeof got.binds[0]?.powerCapWatts === 'number' && got.binds[0].powerCapWatts < 700);
    assert.equal(got.binds[0]?.powerCapWatts, want.binds[0]?.powerCapWatts);
  } finally {
    await thread.close();
    await store.close();
  }
});

test('the scheduler thread refuses an unknown scheduler at start', async () => {
  await assert.rejects(ThreadedPlanner.start('no-such-scheduler', 'bestfit'), /unknown scheduler 'no-such-scheduler'/);
});

test('a scheduler thread that dies hands the planning to the request thread: the next cycle still binds', async () => {
  const store = await openStore('memory:');
  const thread = await ThreadedPlanner.start('tide', 'tide');
  const lost: string[] = [];
  const slot = new PlannerSlot(await CoreSchedulerAdapter.create('tide', 'tide'), (e) => lost.push(e.message));
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 4 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `u${i}` })), simulated: true }, 0);
    await store.submit('default', spec('first', 1), null, 1000);
    slot.use(thread);
    assert.equal(slot.current, thread);
    await slot.refresh(store, 2000);
    assert.equal((await slot.plan(await store.snapshot(), 2000)).binds.length, 1, 'planned on the thread');
    assert.ok(slot.awayMs > 0, 'the wait on the thread is told (the loop rests only for its own thread)');
    assert.equal(new BudgetGate(slot, store, DEFAULT_PRICES).awayMs, slot.awayMs, 'through the budget gate the server wraps it in');
    await thread.close(); // as a crash would end it
    await new Promise((r) => setTimeout(r, 50));
    await store.submit('default', spec('second', 1), null, 3000);
    await slot.refresh(store, 4000);
    const plan = await slot.plan(await store.snapshot(), 4000);
    assert.equal(plan.binds.length, 2, 'planned on the request thread (the first job, never applied, too)');
    assert.equal(slot.awayMs, 0, 'no wait on another thread now');
    assert.equal(lost.length, 1, 'told once');
    assert.match(lost[0] ?? '', /scheduler thread exited/);
  } finally {
    await thread.close();
    await store.close();
  }
});

test('the scheduler thread does not write again the reasons it wrote, through replans that make new reason objects', async () => {
  const store = await openStore('memory:');
  const thread = await ThreadedPlanner.start('tide', 'tide', { quantumSeconds: 1 });
  try {
    await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 2 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `u${i}` })), simulated: true }, 0);
    // The first runs (not preemptible: the replans leave it be); the rest wait for its GPUs, with
    // estimates from its time limit that each replan makes anew, the same.
    for (let i = 0; i < 6; i++) await store.submit('default', { ...spec(`pair${i}`, 2), preemptible: false, timeLimitSeconds: 3600 }, null, 1000 + i);
    const cycle = async (now: number): Promise<string[]> => {
      await thread.refresh(store, now);
      const plan = await thread.plan(await store.snapshot(), now);
      assert.ok(await store.applyPlan(plan, now));
      return plan.pending.map((p) => p.jobId);
    };
    assert.equal((await cycle(5000)).length, 5, 'each waiting job gets its reason');
    // The first replan words them its way (a 1 s quantum: every cycle is a replan now) …
    assert.equal((await cycle(7000)).length, 5);
    // … and each after it makes new reason objects with the same words and estimates.
    for (const now of [9000, 11_000, 13_000]) assert.deepEqual(await cycle(now), [], `at ${now}`);
    const waiting = (await store.snapshot()).openJobs.filter((j) => j.state === 'pending');
    assert.equal(waiting.length, 5);
    for (const j of waiting) assert.match(j.reason ?? '', /^waiting-for-resources/);
  } finally {
    await thread.close();
    await store.close();
  }
});
