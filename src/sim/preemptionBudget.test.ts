import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/rng.ts';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import { getJobScheduler } from '../core/scheduling/policies/index.ts';
import { highsSolver } from '../lp/highsSolver.ts';
import { arraySource, simulate } from './simulator.ts';

/** Three equal jobs on one GPU: a max-min fair share rotates them round after round. */
async function rotate(policy: string, options: Record<string, number>): Promise<number[]> {
  const factory = getJobScheduler(policy);
  assert.ok(factory);
  const jobs = ['a', 'b', 'c'].map((id) => gangJob({ id, gpus: 1, throughput: { V100: 1 }, totalSteps: 4 * 3600 }));
  const sim = simulate({ nodes: gpuNodes('V100', 1, 1), scheduler: factory({ rng: Rng.fromSeed(1), lp: await highsSolver(), options }), jobs: arraySource(jobs) });
  assert.equal(sim.finishedJobs.length, 3);
  return sim.finishedJobs.map((f) => f.progress.preemptions);
}

for (const policy of ['gavel', 'las']) {
  test(`${policy}: rounds preempt freely, but a job at its budget keeps its GPU until it ends`, async () => {
    const free = await rotate(policy, {});
    assert.ok(Math.max(...free) > 3, `rounds rotate the jobs (${free.join(', ')})`);
    const budget = await rotate(policy, { maxPreemptions: 2 });
    assert.ok(Math.max(...budget) <= 2, `at most 2 preemptions each (${budget.join(', ')})`);
  });
}

test('gavel: a job younger than the minimum run is not rotated out', async () => {
  const counts = await rotate('gavel', { minRunSeconds: 5 * 3600 });
  assert.deepEqual(counts, [0, 0, 0]);
});
