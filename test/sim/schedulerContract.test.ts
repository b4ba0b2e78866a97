// Every job scheduler in the registry runs the same small workloads through the simulator,
// which fails the run on over-allocation, partial gangs, quota breaches or a pending job
// without a reason. Here we check that every job finishes and that runs replay exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpuNodes } from '../../src/core/scheduling/build.ts';
import type { QueueConfig } from '../../src/core/scheduling/model.ts';
import { getJobScheduler, jobSchedulerNames } from '../../src/core/scheduling/policies/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { highsSolver } from '../../src/lp/highsSolver.ts';
import { gavelJobs, readThroughputs } from '../../src/sim/gavelWorkload.ts';
import { simulate, type JobSource } from '../../src/sim/simulator.ts';

const table = readThroughputs('../shared/traces/gavel/simulation_throughputs.json');
const nodes = [...gpuNodes('V100', 2, 4), ...gpuNodes('P100', 4, 1), ...gpuNodes('K80', 2, 4)];

function workload(seed: number, queues?: readonly string[]): JobSource {
  const inner = gavelJobs(table, { jobsPerHour: 30, multiGpu: true, seed, count: 40 });
  let i = 0;
  return {
    next() {
      const j = inner.next();
      if (!j || !queues) return j;
      const queue = queues[i++ % queues.length] as string;
      return { ...j, queue, tenant: queue, totalSteps: j.totalSteps / 20 };
    },
  };
}

async function run(name: string, seed: number, queues: QueueConfig[] = []) {
  const factory = getJobScheduler(name);
  assert.ok(factory);
  const scheduler = factory({ rng: Rng.fromSeed(seed), lp: await highsSolver() });
  return simulate({ nodes, queues, scheduler, jobs: workload(seed, queues.length > 0 ? queues.map((q) => q.name) : undefined) });
}

for (const name of jobSchedulerNames()) {
  test(`${name}: every job of a gang workload finishes, with the invariants checked at every cycle`, async () => {
    const sim = await run(name, 11);
    assert.equal(sim.finishedJobs.length, 40);
    assert.equal(sim.allocated, 0);
    for (const f of sim.finishedJobs) assert.ok(f.finishTime >= f.spec.submitTime + f.spec.totalSteps / Math.max(...Object.values(f.spec.throughput)) - 1e-6, `${f.spec.id} cannot beat its best speed`);
  });

  test(`${name}: the same seed replays the same run`, async () => {
    const a = (await run(name, 5)).finishedJobs.map((f) => `${f.spec.id}@${f.finishTime}`);
    const b = (await run(name, 5)).finishedJobs.map((f) => `${f.spec.id}@${f.finishTime}`);
    assert.deepEqual(a, b);
  });
}

for (const name of ['fifo', 'tide']) {
  test(`${name}: queues with quotas in a cohort all finish and stay within their limits`, async () => {
    const queues: QueueConfig[] = [
      { name: 'a', cohort: 'c', nominalQuota: { '*': 8 }, borrowingLimit: { '*': 4 } },
      { name: 'b', cohort: 'c', nominalQuota: { '*': 8 } },
      { name: 'x', nominalQuota: { '*': 8 } },
    ];
    const sim = await run(name, 3, queues);
    assert.equal(sim.finishedJobs.length, 40);
  });
}
