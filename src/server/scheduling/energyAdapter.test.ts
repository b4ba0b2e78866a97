/**
 * The energy stages wired into the live adapter, on a real (in-memory SQLite) store and the
 * default `tide` scheduler: the powercap stage's cap reaches the bind in watts (a job's own cap
 * wins, `maxSlowdown: 0` is never capped), a deferrable job waits for its cheaper hour with the
 * plan's wakeAt and starts then, and consolidation suspends empty nodes and wakes one for work,
 * carried out by NodePower (dry run) and seen back through the store's node states.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { DEFAULT_POWER_MODEL, gpuPower, nodeBaseWatts } from '../../core/energy/powerModel.ts';
import { DEFAULT_PRICES, type EnergyPrices } from '../../core/energy/pricing.ts';
import { bestPowerCap } from '../../core/scheduling/stages/powercap.ts';
import { openStore } from '../../store/sqlStore.ts';
import type { AppliedPlan, Store } from '../../store/store.ts';
import { NodePower } from '../power/nodePower.ts';
import { CoreSchedulerAdapter } from './coreAdapter.ts';
import { liveEnergy, type EnergyStagesConfig } from './energyStages.ts';

const T0 = Date.UTC(2026, 11, 1, 10, 30);

async function cluster(nodes: number, gpus: number): Promise<Store> {
  const store = await openStore('memory:');
  for (let n = 0; n < nodes; n++) {
    const id = `n${n}`;
    await store.registerNode({ id, address: 'http://127.0.0.1:1', cpuMilli: 16_000, memoryMib: 64 * 1024, gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `${id}-${i}` })), simulated: true }, T0 - 60_000);
  }
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  return store;
}

async function submit(store: Store, spec: Record<string, unknown>, at: number): Promise<string> {
  const r = parseJobSpec(spec);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return (await store.submit('t', r.spec, null, at)).jobs[0]?.id as string;
}

const adapter = (c: EnergyStagesConfig, prices: EnergyPrices = DEFAULT_PRICES, scheduler = 'tide') => new CoreSchedulerAdapter(scheduler, 'tide', {}, undefined, 42, { energy: liveEnergy(c, DEFAULT_POWER_MODEL, prices).stages });

test("powercap: the stage's cap reaches the bind in watts; a job's own cap wins; maxSlowdown 0 is never capped", async () => {
  const store = await cluster(1, 4);
  const plain = await submit(store, { name: 'plain', tasks: [{ gpus: 1, command: 'x' }] }, T0);
  const strict = await submit(store, { name: 'strict', maxSlowdown: 0, tasks: [{ gpus: 1, command: 'x' }] }, T0);
  const own = await submit(store, { name: 'own', powerCapWatts: 300, tasks: [{ gpus: 1, command: 'x' }] }, T0);
  // A service's replica (its spec made by the services' controller): its latency is the service's SLO.
  const parsed = parseJobSpec({ name: 'chat-0', tasks: [{ gpus: 1, command: 'serve' }] });
  assert.ok(parsed.ok);
  const replica = (await store.submit('t', { ...parsed.spec, replicaOf: '99' }, null, T0)).jobs[0]?.id as string;
  const plan = adapter({}).plan(await store.snapshot(), T0 + 1000);
  const cap = new Map(plan.binds.map((b) => [b.jobId, b.powerCapWatts]));
  const h100 = gpuPower(DEFAULT_POWER_MODEL, 'H100');
  // What the core's stage chooses for one H100 of a 4-GPU node at the default 3 % (the node's base power shared by its GPUs).
  const base = nodeBaseWatts(DEFAULT_POWER_MODEL, { cpuMilli: 16_000, memoryMib: 64 * 1024 }) / 4;
  const expected = Math.round(bestPowerCap(h100, 0.03, base, 1, h100.tdpWatts) * h100.tdpWatts);
  assert.ok(expected < h100.tdpWatts && expected >= h100.minCapWatts);
  assert.deepEqual(Object.fromEntries([plain, strict, own, replica].map((id) => [id, cap.get(id)])), { [plain]: expected, [strict]: null, [own]: 300, [replica]: null });
  // With the stage off, no cap is chosen (a job's own still holds).
  const off = adapter({ powercap: false }).plan(await store.snapshot(), T0 + 1000);
  assert.deepEqual(Object.fromEntries(off.binds.map((b) => [b.jobId, b.powerCapWatts])), { [plain]: null, [strict]: null, [own]: 300, [replica]: null });
  assert.ok(await store.applyPlan(plan, T0 + 1000));
  assert.equal((await store.getJob(plain))?.powerCapWatts, expected);
  await store.close();
});

test('powercap: while jobs wait for the model, binds run at full power', async () => {
  const store = await cluster(1, 1);
  const first = await submit(store, { name: 'first', tasks: [{ gpus: 1, command: 'x' }] }, T0);
  await submit(store, { name: 'second', tasks: [{ gpus: 1, command: 'x' }] }, T0 + 1);
  const plan = adapter({}).plan(await store.snapshot(), T0 + 1000);
  assert.deepEqual(plan.binds.map((b) => [b.jobId, b.powerCapWatts]), [[first, null]]);
  await store.close();
});

test('timeshift: a deferrable job waits for the cheaper hour its deadline allows, the plan wakes then, and it starts then', async () => {
  // 10:00–12:00 dear, the rest cheap (UTC): a job submitted at 10:30 waits for 12:00.
  const prices: EnergyPrices = { ...DEFAULT_PRICES, utcOffsetHours: 0, tariffYuanPerKwh: Array.from({ length: 24 }, (_, h) => (h === 10 || h === 11 ? 1 : 0.2)) };
  const store = await cluster(1, 4);
  const deferred = await submit(store, { name: 'batch', deferrable: true, deadline: '1d', timeLimit: '1h', tasks: [{ gpus: 1, command: 'x' }] }, T0);
  const tight = await submit(store, { name: 'tight', deferrable: true, deadline: '2h', timeLimit: '1h', tasks: [{ gpus: 1, command: 'x' }] }, T0);
  const now = await submit(store, { name: 'now', tasks: [{ gpus: 1, command: 'x' }] }, T0);
  const a = adapter({ powercap: false }, prices);
  const noon = Date.UTC(2026, 11, 1, 12);
  const plan = a.plan(await store.snapshot(), T0 + 1000);
  assert.deepEqual(plan.binds.map((b) => b.jobId).sort(), [now, tight].sort(), 'a deadline too close to wait for (1 h run + 1 h slack) is not held');
  const held = plan.pending.find((p) => p.jobId === deferred);
  assert.match(held?.reason ?? '', /^deferred-to-cheaper-hours: deferred to 12:00 \(0\.200 vs 1\.000 yuan\/kWh now\); it must start by 08:30 to meet its deadline/);
  assert.equal(held?.estimatedStart, noon);
  // tide replans within 360 s anyway; fifo, which never asks to be woken, shows the stage's own wake-up.
  assert.ok(plan.wakeAt !== undefined && plan.wakeAt <= noon);
  assert.equal(adapter({ powercap: false }, prices, 'fifo').plan(await store.snapshot(), T0 + 1000).wakeAt, noon);
  assert.ok(await store.applyPlan(plan, T0 + 1000));
  assert.equal((await store.getJob(deferred))?.estimatedStart, noon);
  assert.equal(a.plan(await store.snapshot(), noon - 1000).binds.length, 0, 'still held a second before');
  assert.deepEqual(a.plan(await store.snapshot(), noon).binds.map((b) => b.jobId), [deferred]);
  await store.close();
});

test('consolidate: empty nodes are suspended after SuspendTime, a job wakes one (and only one) and runs there once it is back', async () => {
  const store = await cluster(2, 1);
  const a = adapter({ powercap: false, consolidate: { suspendSeconds: 10, resumeSeconds: 5, resumeTimeoutSeconds: 30 } });
  const settings = liveEnergy({ consolidate: { suspendSeconds: 10, resumeSeconds: 5, resumeTimeoutSeconds: 30 } }, DEFAULT_POWER_MODEL, DEFAULT_PRICES).nodePower;
  const lines: string[] = [];
  const power = new NodePower(store, settings, { log: (l) => lines.push(l), clock: () => 0 });
  const cycle = async (at: number): Promise<AppliedPlan> => {
    const snap = await store.snapshot();
    await power.check(snap, at);
    const plan = a.plan(await store.snapshot(), at);
    assert.ok(await store.applyPlan(plan, at));
    if (plan.nodePower) await power.apply(plan.nodePower, at);
    return plan;
  };
  const states = async () => (await store.listNodes()).map((n) => n.state);
  assert.equal((await cycle(T0)).nodePower, undefined);
  assert.equal((await cycle(T0 + 9_000)).nodePower, undefined, 'not yet empty for 10 s');
  assert.deepEqual((await cycle(T0 + 10_000)).nodePower, [{ node: 'n0', state: 'off' }, { node: 'n1', state: 'off' }]);
  assert.deepEqual(await states(), ['suspended', 'suspended']);

  const job = await submit(store, { name: 'wake', tasks: [{ gpus: 1, command: 'x' }] }, T0 + 20_000);
  const woke = await cycle(T0 + 20_000);
  assert.equal(woke.binds.length, 0);
  assert.equal(woke.nodePower?.length, 1);
  assert.equal(woke.nodePower?.[0]?.state, 'on');
  const waking = woke.nodePower?.[0]?.node as string;
  const reason = woke.pending.find((p) => p.jobId === job);
  assert.equal(reason?.reason, `waiting-for-node-power-up: node ${waking} is powering up (ready in 5 s)`);
  assert.equal(reason?.estimatedStart, T0 + 25_000);
  assert.deepEqual(await states(), waking === 'n0' ? ['resuming', 'suspended'] : ['suspended', 'resuming']);
  // Waiting: the other node is not woken, and the dry run's wake-up takes resumeSeconds (heartbeats or not).
  await store.heartbeat(waking, [], [], T0 + 22_000);
  const still = await cycle(T0 + 22_000);
  assert.deepEqual([still.binds.length, still.nodePower], [0, undefined]);
  assert.match(still.pending.find((p) => p.jobId === job)?.reason ?? '', /^waiting-for-node-power-up: node n\d is powering up \(ready in 3 s\)/);
  await store.heartbeat(waking, [], [], T0 + 24_500);
  await power.check(await store.snapshot(), T0 + 25_000);
  const ran = await cycle(T0 + 25_100);
  assert.deepEqual(ran.binds.map((b) => [b.jobId, b.tasks[0]?.node]), [[job, waking]]);
  assert.ok(lines.some((l) => l.includes(`node ${waking}: ready: back after 5.0 s (dry run)`)), lines.join('\n'));
  // The busy node stays up however long it runs; the other stays suspended.
  await cycle(T0 + 100_000);
  assert.deepEqual(await states(), waking === 'n0' ? ['ready', 'suspended'] : ['suspended', 'ready']);
  await store.close();
});

test('consolidate: a node that does not come back within the resume timeout is marked down, and the work goes to another', async () => {
  const store = await cluster(2, 1);
  const c = { powercap: false, consolidate: { suspendSeconds: 10, resumeSeconds: 5, resumeTimeoutSeconds: 20 } } as const;
  const a = adapter(c);
  const power = new NodePower(store, liveEnergy(c, DEFAULT_POWER_MODEL, DEFAULT_PRICES).nodePower, { log: () => {}, clock: () => 0 });
  const cycle = async (at: number): Promise<AppliedPlan> => {
    await power.check(await store.snapshot(), at);
    const plan = a.plan(await store.snapshot(), at);
    assert.ok(await store.applyPlan(plan, at));
    if (plan.nodePower) await power.apply(plan.nodePower, at);
    return plan;
  };
  await cycle(T0);
  await cycle(T0 + 10_000);
  const job = await submit(store, { name: 'wake', tasks: [{ gpus: 1, command: 'x' }] }, T0 + 11_000);
  const first = (await cycle(T0 + 11_000)).nodePower?.[0]?.node as string;
  // No heartbeat from it (a dry run needs one too): at the timeout it is down, and the other node is woken.
  const second = await cycle(T0 + 31_000);
  assert.equal((await store.getNode(first))?.state, 'lost');
  const events = (await store.listEvents({ limit: 100 })).filter((e) => e.nodeId === first).map((e) => e.type);
  assert.deepEqual(events.slice(-3), ['node:suspended', 'node:resuming', 'node:lost']);
  const other = first === 'n0' ? 'n1' : 'n0';
  assert.deepEqual(second.nodePower, [{ node: other, state: 'on' }]);
  await store.heartbeat(other, [], [], T0 + 36_000);
  const ran = await cycle(T0 + 36_500);
  assert.deepEqual(ran.binds.map((b) => [b.jobId, b.tasks[0]?.node]), [[job, other]]);
  await store.close();
});
