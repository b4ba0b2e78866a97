import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { agreement, kendallTau } from './compare.ts';
import { apiJobSpec, clusterConfig } from './liveRunner.ts';
import { coreJobSpec, runSimTwin, type JobTimes } from './simTwin.ts';
import { generateWorkload, totalSteps } from './workload.ts';

describe('bench live: Kendall τ-b', () => {
  test('same order 1, reversed −1, one swap of four 2/3', () => {
    assert.equal(kendallTau([1, 2, 3, 4], [10, 20, 30, 40]), 1);
    assert.equal(kendallTau([1, 2, 3, 4], [4, 3, 2, 1]), -1);
    assert.ok(Math.abs(kendallTau([1, 2, 3, 4], [1, 3, 2, 4]) - 2 / 3) < 1e-12);
  });
  test('ties count as neither concordant nor discordant (τ-b)', () => {
    // x has one tie (pairs: 5 untied in x, all 6 untied in y; 5 concordant).
    assert.ok(Math.abs(kendallTau([1, 1, 2, 3], [1, 2, 3, 4]) - 5 / Math.sqrt(5 * 6)) < 1e-12);
    assert.ok(Number.isNaN(kendallTau([1], [1])));
  });
});

describe('bench live: agreement', () => {
  const t = (index: number, submit: number, start: number, end: number): JobTimes => ({ index, name: `j${index}`, submit, start, end, state: 'succeeded', preemptions: 0, model: null });
  test('avg JCT of each run and their relative difference', () => {
    const live = [t(0, 0, 0, 10), t(1, 1, 2, 21)];
    const sim = [t(0, 0, 0, 12), t(1, 1, 1, 23)];
    const a = agreement(live, sim);
    assert.equal(a.avgJctLive, 15);
    assert.equal(a.avgJctSim, 17);
    assert.ok(Math.abs(a.jctError - 2 / 15) < 1e-12);
    assert.equal(a.startOrderTau, 1);
    assert.equal(a.meanAbsJobError, 2);
  });
});

describe('bench live: workload', () => {
  test('same seed, same jobs; another seed, other jobs', () => {
    assert.deepEqual(generateWorkload({ jobs: 50, seed: 7 }), generateWorkload({ jobs: 50, seed: 7 }));
    assert.notDeepEqual(generateWorkload({ jobs: 50, seed: 7 }).jobs, generateWorkload({ jobs: 50, seed: 8 }).jobs);
  });

  test('200 jobs hold every kind the benchmark promises', () => {
    const w = generateWorkload({ jobs: 200, seed: 1 });
    const jobs = w.jobs;
    assert.equal(jobs.length, 200);
    assert.deepEqual([...new Set(jobs.map((j) => j.tenant))].sort(), ['team-a', 'team-b']);
    assert.ok(jobs.some((j) => j.replicas === 2 && j.gpusPerTask === 4), 'gangs of 2×4 GPUs');
    assert.ok(jobs.some((j) => j.gpusPerTask === 0.5), 'half-GPU jobs');
    for (const g of [1, 2, 4, 8]) assert.ok(jobs.some((j) => j.replicas === 1 && j.gpusPerTask === g), `${g}-GPU jobs`);
    assert.ok(jobs.some((j) => j.preemptible) && jobs.some((j) => !j.preemptible));
    assert.ok(new Set(jobs.map((j) => j.priority)).size >= 3, 'several priorities');
    const tight = jobs.filter((j) => j.hitsLimit);
    assert.ok(tight.length > 0 && tight.length < 20, `a few jobs hit their limit (${tight.length})`);
    for (const j of tight) assert.ok(j.preemptible && j.timeLimitSeconds < j.workSeconds);
    for (const j of jobs.filter((x) => !x.hitsLimit)) assert.ok(j.timeLimitSeconds > j.workSeconds / 0.45, `${j.name}: a generous limit covers the slowest model`);
    for (let i = 1; i < jobs.length; i++) assert.ok((jobs[i] as (typeof jobs)[0]).arrival >= (jobs[i - 1] as (typeof jobs)[0]).arrival, 'arrivals in order');
  });

  test('every job is a valid API spec and its core twin asks for the same GPUs', () => {
    const w = generateWorkload({ jobs: 60, seed: 2 });
    for (const j of w.jobs) {
      const parsed = parseJobSpec(apiJobSpec(j, w));
      assert.ok(parsed.ok, `${j.name}: ${parsed.ok ? '' : JSON.stringify(parsed.errors)}`);
      const core = coreJobSpec(j, w);
      const group = parsed.spec.groups[0];
      const coreGroup = core.groups[0];
      assert.ok(group && coreGroup);
      assert.equal(coreGroup.replicas, group.replicas);
      assert.equal(coreGroup.task.gpuCount, group.gpuCount);
      assert.equal(coreGroup.task.gpuMilli, group.gpuMilli);
      assert.equal(coreGroup.task.cpuMilli, group.cpuMilli);
      assert.equal(coreGroup.task.memoryMib, group.memoryMib);
      assert.equal(parsed.spec.timeLimitSeconds, core.timeLimitSeconds);
      assert.equal(core.totalSteps, totalSteps(j, w.params));
      assert.equal(core.throughput['A100'], w.params.stepsPerSecond * 0.6);
    }
  });

  test('the cluster config names both tenants, their queues and quotas', () => {
    const w = generateWorkload({ jobs: 5, seed: 1 });
    const basic = JSON.parse(clusterConfig(w, false));
    assert.deepEqual(basic.queues.map((q: { name: string; gpuQuota: number }) => [q.name, q.gpuQuota]), [['team-a', 10], ['team-b', 10]]);
    assert.equal(basic.gpuSpeeds, undefined);
    assert.deepEqual(JSON.parse(clusterConfig(w, true)).gpuSpeeds, { H100: 1, A100: 0.6, L40S: 0.45 });
  });
});

describe('bench live: the simulated twin', () => {
  const w = generateWorkload({ jobs: 60, seed: 4, scale: 0.5 });
  test('the workload has jobs that hit their limit', () => assert.ok(w.jobs.some((j) => j.hitsLimit)));
  for (const [scheduler, placement] of [['fifo', 'bestfit'], ['tide', 'tide']] as const) {
    test(`${scheduler}: every job ends, deterministically`, () => {
      const a = runSimTwin(w, { scheduler, placement }, { enforceTimeLimits: false });
      assert.deepEqual(a, runSimTwin(w, { scheduler, placement }, { enforceTimeLimits: false }));
      for (const j of a.jobs) assert.equal(j.state, 'succeeded', j.name);
    });
    test(`${scheduler}: with time limits enforced, the tight jobs end at their limit`, () => {
      const r = runSimTwin(w, { scheduler, placement }, { enforceTimeLimits: true });
      for (const [i, j] of w.jobs.entries()) {
        const t = r.jobs[i] as JobTimes;
        assert.equal(t.state, j.hitsLimit ? 'timeout' : 'succeeded', j.name);
        if (j.hitsLimit) assert.ok(t.end !== null && t.start !== null && t.end - t.start >= j.timeLimitSeconds - 1e-6, `${j.name} ran up to its limit`);
      }
    });
  }
});
