/**
 * Every job scheduler of the core, run through the server's adapter on a store snapshot: gangs
 * placed whole on free GPUs only, a reason for every job left pending, quotas respected.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { jobSchedulerNames } from '../../core/scheduling/policies/index.ts';
import { openStore } from '../../store/sqlStore.ts';
import type { AppliedPlan, Store } from '../../store/store.ts';
import type { Job } from '../../api/types.ts';
import { CoreSchedulerAdapter, parseSchedulerOptions, spliceSorted } from './coreAdapter.ts';
import type { JobScheduler, PendingJob } from '../../core/scheduling/scheduler.ts';
import { Rng } from '../../core/rng.ts';
import { byJobId } from '../../core/scheduling/model.ts';

async function cluster(url = 'memory:'): Promise<Store> {
  const store = await openStore(url);
  for (const [id, model] of [['a', 'H100'], ['b', 'A100']] as const) {
    await store.registerNode({ id, address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, model, memoryMib: 81920, uuid: `${id}${i}` })), simulated: true }, 0);
  }
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  await store.putQueue({ name: 'small', gpuQuota: 2, borrowingLimit: 0 }, 0);
  const submit = async (spec: Record<string, unknown>, at: number): Promise<void> => {
    const r = parseJobSpec(spec);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    await store.submit('t', r.spec, null, at);
  };
  await submit({ name: 'gang', tasks: [{ replicas: 2, gpus: 2, command: 'x' }] }, 1000); // a gang on one GPU model
  await submit({ name: 'h100-only', tasks: [{ gpus: 1, gpuModels: ['H100'], command: 'x' }] }, 2000);
  await submit({ name: 'quota', queue: 'small', tasks: [{ gpus: 3, command: 'x' }] }, 3000); // over its quota of 2
  await submit({ name: 'huge', tasks: [{ replicas: 2, gpus: 8, command: 'x' }] }, 4000); // never fits on one model
  await submit({ name: 'cpu', tasks: [{ gpus: 0, cpu: 2, command: 'x' }] }, 5000);
  return store;
}

for (const name of jobSchedulerNames()) {
  test(`core scheduler '${name}' through the server adapter`, async () => {
    const store = await cluster();
    const adapter = await CoreSchedulerAdapter.create(name, 'bestfit');
    const snap = await store.snapshot();
    const plan = adapter.plan(snap, 10_000);
    const byName = new Map(snap.openJobs.map((j) => [j.id, j.name]));
    const used = new Map<string, number>();
    for (const b of plan.binds) {
      const job = snap.openJobs.find((j) => j.id === b.jobId);
      assert.equal(b.tasks.length, job?.tasks, `${byName.get(b.jobId)}: every task placed`);
      for (const t of b.tasks) {
        for (const g of t.gpus) {
          const key = `${t.node}/${g}`;
          used.set(key, (used.get(key) ?? 0) + t.gpuMilli / t.gpus.length);
          assert.ok((used.get(key) ?? 0) <= 1000, `GPU ${key} over-allocated`);
        }
      }
    }
    const bound = new Set(plan.binds.map((b) => byName.get(b.jobId)));
    assert.ok(!bound.has('huge'));
    const huge = snap.openJobs.find((j) => j.name === 'huge')?.id;
    assert.match(plan.pending.find((p) => p.jobId === huge)?.reason ?? '', /^unschedulable: /, 'no one model holds its gang');
    // Gavel's max-min rounds (gavel, las) do not enforce queue quotas in the core yet.
    if (!['gavel', 'las'].includes(name)) assert.ok(!bound.has('quota'), 'queue quota respected');
    for (const j of snap.openJobs) if (!bound.has(j.name)) assert.ok(plan.pending.some((p) => p.jobId === j.id && p.reason.length > 0), `${j.name} has a reason`);
    if (bound.has('h100-only')) {
      const b = plan.binds.find((x) => byName.get(x.jobId) === 'h100-only');
      assert.equal(b?.tasks[0]?.node, 'a');
    }
    assert.ok(await store.applyPlan(plan, 10_000));
    await store.close();
  });
}

test('fifo admits in order; a gang no one model could hold waits as unschedulable and holds back nothing', async () => {
  const store = await cluster();
  const plan = new CoreSchedulerAdapter('fifo', 'bestfit').plan(await store.snapshot(), 10_000);
  const snap = await store.snapshot();
  const names = (ids: string[]): string[] => ids.map((id) => snap.openJobs.find((j) => j.id === id)?.name ?? id);
  assert.deepEqual(names(plan.binds.map((b) => b.jobId)), ['gang', 'h100-only', 'cpu']);
  const reasons = new Map(plan.pending.map((p) => [names([p.jobId])[0], p.reason]));
  assert.match(reasons.get('quota') ?? '', /^over-quota/);
  assert.equal(reasons.get('huge'), 'unschedulable: 2 tasks must run at once, but the schedulable nodes can hold at most 1');
  await store.close();
});

test('fifo: a job behind a blocked head of its queue is told the head only when that job is its own', async () => {
  const store = await openStore('memory:');
  await store.registerNode({ id: 'a', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 4 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `a${i}` })), simulated: true }, 0);
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  const submit = async (tenant: string, spec: Record<string, unknown>, at: number): Promise<string> => {
    const r = parseJobSpec(spec);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return (await store.submit(tenant, r.spec, null, at)).jobs[0]?.id ?? '';
  };
  const adapter = new CoreSchedulerAdapter('fifo', 'bestfit');
  await submit('a', { name: 'running', tasks: [{ gpus: 2, command: 'x' }] }, 1000);
  assert.ok(await store.applyPlan(adapter.plan(await store.snapshot(), 1500), 1500));
  const head = await submit('a', { name: 'head', tasks: [{ gpus: 4, command: 'x' }] }, 2000);
  const own = await submit('a', { name: 'own', tasks: [{ gpus: 1, command: 'x' }] }, 3000);
  const other = await submit('b', { name: 'other', tasks: [{ gpus: 1, command: 'x' }] }, 4000);
  const reasons = new Map(adapter.plan(await store.snapshot(), 5000).pending.map((p) => [p.jobId, p.reason]));
  assert.equal(reasons.get(own), `lower-priority: behind job ${head} in queue 'default'`);
  assert.equal(reasons.get(other), "lower-priority: behind an earlier job in queue 'default'");
  await store.close();
});

test("tide (preemptive) through the adapter: a high-priority gang preempts lower-priority preemptible work", async () => {
  const store = await openStore('memory:');
  await store.registerNode({ id: 'a', address: 'http://127.0.0.1:1', cpuMilli: 64_000, memoryMib: 512 * 1024, gpus: Array.from({ length: 4 }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `a${i}` })), simulated: true }, 0);
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  const submit = async (spec: Record<string, unknown>, at: number): Promise<string> => {
    const r = parseJobSpec(spec);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return (await store.submit('t', r.spec, null, at)).jobs[0]?.id ?? '';
  };
  const adapter = await CoreSchedulerAdapter.create('tide', 'bestfit', parseSchedulerOptions(['quantumSeconds=0']));
  const low = await submit({ name: 'low', priority: 0, preemptible: true, tasks: [{ gpus: 4, command: 'x' }] }, 1000);
  assert.ok(await store.applyPlan(adapter.plan(await store.snapshot(), 2000), 2000));
  assert.equal((await store.getJob(low))?.state, 'admitted');
  const high = await submit({ name: 'high', priority: 100, tasks: [{ replicas: 2, gpus: 2, command: 'x' }] }, 3000);
  const plan = adapter.plan(await store.snapshot(), 400_000);
  assert.deepEqual(plan.preemptions.map((p) => p.jobId), [low]);
  await store.applyPlan(plan, 400_000);
  assert.equal((await store.getJob(low))?.state, 'preempted');
  // Until the victim's tasks have exited, the high-priority gang is not given their GPUs.
  assert.equal((await store.getJob(high))?.state, 'pending');
  assert.ok((await store.getNode('a'))?.gpuUsedMilli.every((m) => m <= 1000));
  const runs = ((await store.heartbeat('a', [], [], 400_001)) ?? []).map((d) => d.runId);
  await store.heartbeat('a', [], runs.map((runId) => ({ runId, state: 'exited' as const, pid: 1, exitCode: 143 })), 400_002);
  assert.equal((await store.getJob(low))?.state, 'pending', 'the victim is requeued');
  await store.applyPlan(adapter.plan(await store.snapshot(), 400_003), 400_003);
  assert.equal((await store.getJob(high))?.state, 'admitted', 'now the gang gets the GPUs');
  assert.equal((await store.getJob(low))?.state, 'pending');
  assert.deepEqual(parseSchedulerOptions(['a=1', 'b=true', 'c=x']), { a: 1, b: true, c: 'x' });
  assert.throws(() => parseSchedulerOptions(['nope']), /not key=value/);
  await store.close();
});

test('the pending list brought up to date from changes is the list a full rebuild makes (removed, changed and new jobs, at both ends)', () => {
  const rng = Rng.fromSeed(7);
  const job = (id: number): PendingJob => ({ spec: { id: String(id) }, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 } }) as unknown as PendingJob;
  for (let round = 0; round < 200; round++) {
    const size = Math.floor(rng.float() * 60);
    const list = [...new Set(Array.from({ length: size }, () => Math.floor(rng.float() * 200)))].map(job).sort(byJobId);
    const drop = new Set<string>();
    for (const p of list) if (rng.float() < 0.2) drop.add(p.spec.id);
    drop.add(String(500 + round)); // a job that was never listed
    const added = [...new Set(Array.from({ length: Math.floor(rng.float() * 10) }, () => Math.floor(rng.float() * 220)))]
      .filter((id) => !list.some((p) => p.spec.id === String(id)) || drop.has(String(id)))
      .map(job)
      .sort(byJobId);
    for (const p of added) drop.add(p.spec.id); // a changed job is dropped and added again
    const expected = [...list.filter((p) => !drop.has(p.spec.id)), ...added].sort(byJobId);
    const got = spliceSorted(list, drop, added);
    assert.deepEqual(got.map((p) => p.spec.id), expected.map((p) => p.spec.id), `round ${round}`);
    for (const p of added) assert.ok(got.includes(p), 'the added objects themselves');
  }
});

test('reasons the scheduler writes change no job for it; a reason written by another server is written again', async () => {
  const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'tide-reasons-')), 'tide.db')}`;
  const store = await cluster(url);
  const other = await openStore(url);
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  // The scheduler thread's way: each plan after the first is told what changed in the open jobs.
  let last: Job[] | null = null;
  let changed: string[] = [];
  const cycle = async (now: number): Promise<AppliedPlan> => {
    const s = await store.snapshot();
    const changes = last === null ? undefined : diff(last, s.openJobs);
    changed = changes?.upserts.map((j) => j.id) ?? [];
    last = [...s.openJobs];
    const plan = adapter.plan(s, now, true, changes);
    assert.ok(await store.applyPlan(plan, now));
    return plan;
  };
  const first = await cycle(10_000);
  assert.ok(first.pending.some((p) => p.jobId === '4'), 'the huge gang gets a reason');
  assert.equal((await store.getJob('4'))?.reason, first.pending.find((p) => p.jobId === '4')?.reason);
  assert.deepEqual((await cycle(11_000)).pending, [], 'nothing changed: no reason is written again');
  assert.ok(!changed.includes('4'), 'writing its reason made no new object of the job');
  // Another server changes what the gang shows; the core keeps its reason object for it.
  assert.ok(await other.applyPlan({ binds: [], preemptions: [], pending: [{ jobId: '4', reason: 'something else', estimatedStart: null }] }, 11_500));
  const again = await cycle(12_000);
  assert.ok(changed.includes('4'));
  assert.deepEqual(again.pending.map((p) => p.jobId), ['4']);
  assert.equal(again.pending[0]?.reason, first.pending.find((p) => p.jobId === '4')?.reason);
  assert.equal((await store.getJob('4'))?.reason, again.pending[0]?.reason);
  assert.deepEqual((await cycle(13_000)).pending, []);
  await other.close();
  await store.close();
});

/** Open jobs added or replaced (a new object) from `a` to `b`, and the ids gone. */
function diff(a: readonly Job[], b: readonly Job[]): { upserts: Job[]; removed: string[] } {
  const before = new Map(a.map((j) => [j.id, j]));
  const now = new Set(b.map((j) => j.id));
  return { upserts: b.filter((j) => before.get(j.id) !== j), removed: a.filter((j) => !now.has(j.id)).map((j) => j.id) };
}

/** A store with one node (`gpus` H100s, `cpuMilli`) and a default queue, and an array submitted: the id of its job (the waiting rest). */
async function arrayOnNode(node: string, gpus: number, cpuMilli: number, array: Record<string, unknown>): Promise<{ store: Store; rest: string }> {
  const store = await openStore('memory:');
  await store.registerNode({ id: node, address: 'http://127.0.0.1:1', cpuMilli, memoryMib: 512 * 1024, gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `${node}${i}` })), simulated: true }, 0);
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  const r = parseJobSpec(array);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return { store, rest: (await store.submit('t', r.spec, null, 1000)).jobs[0]?.id as string };
}

test("an array's waiting elements reach tide as one entry: the lowest start on the free GPUs, the rest keeps the reason, and quiet cycles write none again", async () => {
  const { store, rest } = await arrayOnNode('a', 8, 64_000, { name: 'arr', array: 20, tasks: [{ gpus: 1, command: 'x' }] });
  const adapter = new CoreSchedulerAdapter('tide', 'tide');
  // What the core is given: one entry for the elements that wait.
  const seen: string[][] = [];
  const core = adapter.scheduler as { cycle: JobScheduler['cycle'] };
  const inner = core.cycle.bind(core);
  core.cycle = (snap) => {
    seen.push(snap.pending.map((p) => `${p.spec.id}x${p.count ?? 1}`));
    return inner(snap);
  };
  let last: Job[] | null = null;
  const cycle = async (now: number): Promise<AppliedPlan> => {
    const s = await store.snapshot();
    const plan = adapter.plan(s, now, true, last === null ? undefined : diff(last, s.openJobs));
    last = [...s.openJobs];
    assert.ok(await store.applyPlan(plan, now));
    return plan;
  };
  const first = await cycle(10_000);
  // Eight binds of the one job, each taking an element off its front (store.applyPlan).
  assert.deepEqual(first.binds.map((b) => b.jobId), Array.from({ length: 8 }, () => rest));
  assert.equal(new Set(first.binds.map((b) => b.tasks[0]?.gpus.join())).size, 8, 'one GPU each');
  const open = (await store.snapshot()).openJobs;
  assert.deepEqual(open.map((j) => [j.name, j.state]), [['arr-[8-19]', 'pending'], ...Array.from({ length: 8 }, (_, i) => [`arr-${i}`, 'admitted'])]);
  // The rest is a new entry to the core (its count changed): it takes its reason in the next cycle
  // (the one planned with the binds was for the row before they changed it, and is not written).
  const second = await cycle(11_000);
  assert.deepEqual(second.binds, []);
  assert.ok(second.pending.length <= 1 && second.pending.every((p) => p.jobId === rest), JSON.stringify(second.pending));
  assert.match((await store.getJob(rest))?.reason ?? '', /no model has/);
  const third = await cycle(12_000);
  assert.deepEqual(seen, [[`${rest}x20`], [`${rest}x12`], [`${rest}x12`]]);
  assert.deepEqual([third.binds, third.pending], [[], []], 'nothing changed: nothing bound, no reason written again');
  await store.close();
});

test("an array's CPU-only elements placed on one node go to the store as one bind of as many units, and become one job", async () => {
  const { store, rest } = await arrayOnNode('c', 0, 4_000, { name: 'cpu', array: 10, tasks: [{ gpus: 0, cpu: 0.5, memory: '1Gi', command: 'x' }] });
  const plan = new CoreSchedulerAdapter('tide', 'tide').plan(await store.snapshot(), 10_000);
  // Eight fit the node's 4 CPUs: one bind of eight units.
  assert.deepEqual(plan.binds.map((b) => [b.jobId, b.units, b.tasks.map((t) => t.node)]), [[rest, 8, ['c']]]);
  assert.ok(await store.applyPlan(plan, 10_000));
  const open = (await store.snapshot()).openJobs;
  assert.deepEqual(open.map((j) => [j.name, j.state, j.arrayCount]), [['cpu-[8-9]', 'pending', 2], ['cpu-[0-7]', 'admitted', 8]]);
  assert.equal((await store.listNodes())[0]?.cpuUsedMilli, 4_000);
  await store.close();
});

test("a scheduler that does not fold gets an array's waiting rest as one job per element, and its binds and reason go back to the rest", async () => {
  const { store, rest } = await arrayOnNode('g', 2, 64_000, { name: 'las', array: 5, tasks: [{ gpus: 1, command: 'x' }] });
  const adapter = await CoreSchedulerAdapter.create('las', 'bestfit');
  assert.notEqual(adapter.scheduler.folds, true);
  const plan = adapter.plan(await store.snapshot(), 10_000);
  assert.deepEqual(plan.binds.map((b) => [b.jobId, b.units, b.tasks[0]?.gpus.length]), [[rest, undefined, 1], [rest, undefined, 1]], 'two elements on the two GPUs, each a bind of the rest');
  assert.deepEqual(plan.pending.map((p) => p.jobId), [rest], 'one reason, for the rest');
  assert.ok(await store.applyPlan(plan, 10_000));
  assert.deepEqual((await store.snapshot()).openJobs.map((j) => [j.name, j.state]), [['las-[2-4]', 'pending'], ['las-0', 'admitted'], ['las-1', 'admitted']]);
  await store.close();
});
