/**
 * The scheduling loop wakes at a plan's wakeAt, not only at its tick: a deferrable job held for
 * the next (cheaper) hour starts when that hour begins although the tick is a minute. Real store,
 * adapter (fifo with the timeshift stage) and loop; the loop's clock is set half a second before
 * the hour.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../api/spec.ts';
import { DEFAULT_POWER_MODEL } from '../core/energy/powerModel.ts';
import { DEFAULT_PRICES, type EnergyPrices } from '../core/energy/pricing.ts';
import { openStore } from '../store/sqlStore.ts';
import { SchedulingLoop } from './loop.ts';
import { CoreSchedulerAdapter } from './scheduling/coreAdapter.ts';
import { liveEnergy } from './scheduling/energyStages.ts';

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
