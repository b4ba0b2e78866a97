/**
 * The scheduling loop: only reasons that changed are written, found by map or by binary search
 * alike; and the loop wakes at a plan's wakeAt, not only at its tick: a deferrable job held for
 * the next (cheaper) hour starts when that hour begins although the tick is a minute. Real store,
 * adapter (fifo with the timeshift stage) and loop; the loop's clock is set half a second before
 * the hour. And a stream of pokes (submissions) does not run cycles back to back; a plan made on
 * the scheduler thread asks for a rest as long as itself, not three times as the request thread's
 * time does (the longer of the two is the rest), and no rest is longer than a second.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import type { Job } from '../api/types.ts';
import { DEFAULT_POWER_MODEL } from '../core/energy/powerModel.ts';
import { DEFAULT_PRICES, type EnergyPrices } from '../core/energy/pricing.ts';
import { openStore } from '../store/sqlStore.ts';
import type { AppliedPlan, StoreSnapshot } from '../store/store.ts';
import { SchedulingLoop } from './loop.ts';
import { changedReasons, openJob } from './scheduling/changedReasons.ts';
import { CoreSchedulerAdapter } from './scheduling/coreAdapter.ts';
import { liveEnergy } from './scheduling/energyStages.ts';

const job = (id: number, reason: string | null, estimatedStart: number | null): Job => ({ id: String(id), reason, estimatedStart }) as unknown as Job;

test('changedReasons keeps the reasons and estimates that changed, whether jobs are looked up in a map or by id', () => {
  const openJobs = Array.from({ length: 100 }, (_, i) => job(i + 1, `r${i + 1}`, i === 4 ? 10_000 : null));
  const snap = { nodes: [], activeTasks: [], queues: [], openJobs } satisfies StoreSnapshot;
  const pending: AppliedPlan['pending'] = [
    { jobId: '2', reason: 'r2', estimatedStart: null },
    { jobId: '3', reason: 'new', estimatedStart: null },
    { jobId: '5', reason: 'r5', estimatedStart: 12_000 },
    { jobId: '5', reason: 'r5', estimatedStart: 16_000 },
    { jobId: '7', reason: 'r7', estimatedStart: 1 },
    { jobId: '999', reason: 'gone', estimatedStart: null },
  ];
  const want = ['3:new', '5:16000', '7:1'];
  const show = (ps: AppliedPlan['pending']): string[] => ps.map((p) => `${p.jobId}:${p.reason === 'new' ? p.reason : String(p.estimatedStart)}`);
  assert.deepEqual(show(changedReasons(pending, snap)), want, 'by binary search (few reasons)');
  assert.deepEqual(show(changedReasons(pending, snap, new Map(openJobs.map((j) => [j.id, j])))), want, 'by map');
  const many = Array.from({ length: 20 }, () => pending).flat();
  assert.equal(changedReasons(many, snap).length, 60, 'by a map built for many reasons');
  assert.equal(openJob(snap, '64')?.id, '64');
  assert.equal(openJob(snap, '0'), undefined);
  assert.equal(openJob({ ...snap, openJobs: [...openJobs].reverse() }, '17')?.id, '17', 'found out of order too');
});

test("the loop plans again at the plan's wakeAt: a deferred job starts at its hour, well before the next tick", async () => {
  const hour = 3_600_000;
  const nextHour = (Math.floor(Date.now() / hour) + 2) * hour;
  const offset = nextHour - 500 - Date.now();
  const clock = (): number => Date.now() + offset;
  const dear = new Date(nextHour - 1).getUTCHours();
  const prices: EnergyPrices = { ...DEFAULT_PRICES, utcOffsetHours: 0, tariffYuanPerKwh: Array.from({ length: 24 }, (_, h) => (h === dear ? 1 : 0.2)) };
  const store = await openStore('memory:');
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 8000, memoryMib: 16384, gpus: [{ index: 0, model: 'H100', memoryMib: 81920, uuid: 'u0' }], simulated: true }, clock());
  const spec = parseJobSpec({ name: 'night', deferrable: true, deadline: '1d', timeLimit: '1h', tasks: [{ gpus: 1, command: 'true' }] });
  assert.ok(spec.ok);
  const job = (await store.submit('default', spec.spec, null, clock())).jobs[0]?.id as string;
  const planner = new CoreSchedulerAdapter('fifo', 'bestfit', {}, undefined, 42, { energy: liveEnergy({ powercap: false }, DEFAULT_POWER_MODEL, prices).stages });
  const loop = new SchedulingLoop(store, planner, { serverId: 's', tickMs: 60_000, leaseTtlMs: 120_000, nodeLeaseMs: 600_000, clock });
  try {
    loop.start();
    for (const end = Date.now() + 10_000; Date.now() < end; ) {
      const j = await store.getJob(job);
      if (j?.state === 'admitted') break;
      if (clock() < nextHour) assert.match(j?.reason ?? '', /^(submitted|deferred-to-cheaper-hours)/, 'held until the hour');
      await new Promise((r) => setTimeout(r, 50));
    }
    const j = await store.getJob(job);
    assert.equal(j?.state, 'admitted', `started at its hour (reason: ${j?.reason})`);
    const admitted = (await store.listEvents({ jobId: job })).find((e) => e.type === 'job:admitted');
    assert.ok(admitted && admitted.at >= nextHour, 'not before the hour');
  } finally {
    await loop.stop();
    await store.close();
  }
});

/** Cycles run by a stream of pokes (a submission every 10 ms for 2 s) with a plan that takes planMs, on this thread or (away) on another; and the last cycle's rest and length (ms). */
async function cyclesUnderPokes(away: boolean, planMs = 100): Promise<{ cycles: number; restMs: number; lastMs: number }> {
  const store = await openStore('memory:');
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  const adapter = new CoreSchedulerAdapter('fifo', 'bestfit', {}, undefined, 42);
  // The real adapter, made slow: each plan takes planMs, as one over many pending jobs does.
  const planner = {
    refresh: adapter.refresh.bind(adapter),
    plan: async (s: StoreSnapshot, now: number): Promise<AppliedPlan> => (await new Promise((r) => setTimeout(r, planMs)), adapter.plan(s, now)),
    awayMs: away ? planMs : 0,
  };
  const loop = new SchedulingLoop(store, planner, { serverId: 's', tickMs: 60_000, leaseTtlMs: 120_000, nodeLeaseMs: 600_000, clock: Date.now });
  let cycles = 0;
  let lastMs = 0;
  loop.observe((seconds) => {
    cycles++;
    lastMs = seconds * 1000;
  });
  try {
    loop.start();
    // Back to back, that would be about 18 cycles.
    for (const end = performance.now() + 2000; performance.now() < end; ) {
      loop.poke();
      await new Promise((r) => setTimeout(r, 10));
    }
    return { cycles, restMs: loop.restMs, lastMs };
  } finally {
    await loop.stop();
    await store.close();
  }
}

test('a stream of pokes runs no cycle within three times the last one of its end', async () => {
  const { cycles, restMs, lastMs } = await cyclesUnderPokes(false);
  assert.equal(restMs, 3 * lastMs, 'the rest is three cycles');
  assert.ok(cycles >= 2, `pokes run cycles (${cycles})`);
  assert.ok(cycles <= 7, `cycles rest three times their length between pokes (${cycles} cycles in 2 s)`);
});

test('a plan made on the scheduler thread asks for a rest as long as itself, not three times: the request thread was free', async () => {
  const { cycles, restMs, lastMs } = await cyclesUnderPokes(true);
  assert.ok(Math.abs(restMs - Math.max(3 * (lastMs - 100), 100)) < 1e-6, `rest ${restMs} ms after a ${lastMs} ms cycle with 100 ms away`);
  assert.ok(restMs < 3 * lastMs, `less than a cycle all on the request thread would rest (${restMs} ms after ${lastMs} ms)`);
  assert.ok(cycles >= 2, `pokes run cycles (${cycles})`);
});

test('the rest is at most a second: work that came in during a long cycle waits no longer for the next', async () => {
  const { restMs, lastMs } = await cyclesUnderPokes(false, 400);
  assert.ok(lastMs >= 400);
  assert.equal(restMs, 1000, `rest after a ${lastMs} ms cycle`);
});

test("a node is not written off for the server's own stall: the time its thread was held is added to the lease", async () => {
  const store = await openStore('memory:');
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  const node = (id: string) => ({ id, address: 'http://127.0.0.1:1', cpuMilli: 8000, memoryMib: 16384, gpus: [{ index: 0, model: 'H100', memoryMib: 81920, uuid: `u-${id}` }], simulated: true });
  await store.registerNode(node('n1'), Date.now());
  const planner = new CoreSchedulerAdapter('fifo', 'bestfit', {}, undefined, 42);
  const lease = 400;
  const loop = new SchedulingLoop(store, planner, { serverId: 's', tickMs: 60_000, leaseTtlMs: 120_000, nodeLeaseMs: lease, clock: Date.now });
  try {
    loop.start();
    // Past the first lease under this leader, the node heartbeats; then the thread is held longer than a lease.
    await new Promise((ok) => setTimeout(ok, lease + 100));
    await store.heartbeat('n1', [], [], Date.now());
    const heldUntil = Date.now() + lease + 200;
    while (Date.now() < heldUntil) {
      /* a long synchronous hold, as a big transaction on SQLite is */
    }
    assert.ok(loop.stalls.heldWithin(lease) >= lease * 0.9, `held ${loop.stalls.heldWithin(lease)} ms`);
    await loop.tick();
    assert.equal((await store.getNode('n1'))?.state, 'ready', 'silent only while the server could not listen');
    // Silent for a lease with the thread free: lost.
    await new Promise((ok) => setTimeout(ok, 2 * lease + 100));
    assert.ok(loop.stalls.heldWithin(lease) < lease / 2);
    await loop.tick();
    assert.equal((await store.getNode('n1'))?.state, 'lost');
  } finally {
    await loop.stop();
    await store.close();
  }
});

test('a failing node expiry is reported and the cycle runs all the same', async () => {
  const store = await openStore('memory:');
  await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, 0);
  await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:1', cpuMilli: 8000, memoryMib: 16384, gpus: [{ index: 0, model: 'H100', memoryMib: 81920, uuid: 'u0' }], simulated: true }, Date.now());
  await store.heartbeat('n1', [], [], Date.now());
  const spec = parseJobSpec({ name: 'runs', tasks: [{ gpus: 1, command: 'true' }] });
  assert.ok(spec.ok);
  const job = (await store.submit('default', spec.spec, null, Date.now())).jobs[0]?.id as string;
  // A fault in expiry (PostgreSQL refused a fractional deadline for a BIGINT, aborting every tick).
  store.expireNodes = async () => {
    throw new Error('expiry failed');
  };
  const errors: string[] = [];
  const planner = new CoreSchedulerAdapter('fifo', 'bestfit', {}, undefined, 42);
  const loop = new SchedulingLoop(store, planner, { serverId: 's', tickMs: 60_000, leaseTtlMs: 120_000, nodeLeaseMs: 0, clock: Date.now, onError: (e) => errors.push((e as Error).message) });
  try {
    await loop.tick();
    assert.deepEqual(errors, ['expiry failed']);
    assert.equal((await store.getJob(job))?.state, 'admitted', 'scheduled although expiry failed');
  } finally {
    await loop.stop();
    await store.close();
  }
});
