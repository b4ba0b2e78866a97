import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.ts';
import { gangJob, gpuNodes, schedulable } from '../build.ts';
import { getJobScheduler } from '../policies/index.ts';
import type { JobBind, SchedulerSnapshot } from '../scheduler.ts';
import { arraySource, simulate } from '../../../sim/simulator.ts';
import { consolidateStage } from './consolidate.ts';
import { withStages, type EnergyPlan, type NodePowerChange } from './stage.ts';

test('idle nodes are suspended after SuspendTime; work for a suspended node waits ResumeTimeout for it', () => {
  const nodes = gpuNodes('V100', 3, 1);
  const fifo = (getJobScheduler('fifo') as NonNullable<ReturnType<typeof getJobScheduler>>)({ rng: Rng.fromSeed(1) });
  const scheduler = withStages(fifo, [consolidateStage({ suspendSeconds: 600, resumeSeconds: 300 })]);
  const power: [number, string, number, number][] = [];
  const reasons: [number, string, string, number | undefined][] = [];
  const sim = simulate({
    nodes,
    scheduler,
    jobs: arraySource([gangJob({ id: 'a', gpus: 1, throughput: { V100: 1 }, totalSteps: 3600, submitTime: 0 }), gangJob({ id: 'b', gpus: 1, throughput: { V100: 1 }, totalSteps: 3600, submitTime: 7200 })]),
    onEvent: (e) => {
      if (e.type !== 'cycle') return;
      const plan = e.plan as EnergyPlan;
      for (const c of plan.nodePower ?? []) power.push([e.time, c.state, c.node, c.readyAt]);
      for (const r of plan.pending) reasons.push([e.time, r.job, r.code, r.estimatedStart]);
    },
  });
  const finish = Object.fromEntries(sim.finishedJobs.map((f) => [f.spec.id, [f.progress.firstStartTime, f.finishTime]]));
  assert.deepEqual(finish, { a: [0, 3600], b: [7500, 11100] });
  assert.deepEqual(power, [
    [600, 'off', 1, Infinity],
    [600, 'off', 2, Infinity],
    [4200, 'off', 0, Infinity],
    [7200, 'on', 0, 7500],
    [11700, 'off', 0, Infinity],
  ]);
  assert.deepEqual(reasons, [[7200, 'b', 'waiting-for-node-power-up', 7500]]);
});

const snap = (now: number, nodes: SchedulerSnapshot['nodes'] = schedulable(gpuNodes('V100', 2, 1))): SchedulerSnapshot => ({ now, nodes, running: [], pending: [], queues: [] });
const bindTo = (node: number, nodes: SchedulerSnapshot['nodes']): JobBind => ({ job: 'x' as JobBind['job'], model: 'V100', bindings: [{ group: 'worker', index: 0, nodeId: nodes[node]!.spec.id, placement: { node, gpus: [0], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } }] });

test('a task bound to a sleeping node moves to an empty powered node of the same shape instead of waking it', () => {
  const stage = consolidateStage({ suspendSeconds: 600, resumeSeconds: 300, spareNodes: 1 });
  const empty: EnergyPlan = { binds: [], preemptions: [], pending: [] };
  const s0 = snap(0);
  stage.after?.(s0, empty);
  const at600 = stage.after?.(snap(600, s0.nodes), empty) as EnergyPlan;
  // One spare stays powered: the first of the two (equally long idle) is suspended.
  assert.deepEqual(at600.nodePower, [{ node: 0, state: 'off', readyAt: Infinity } satisfies NodePowerChange]);
  const moved = stage.after?.(snap(700, s0.nodes), { ...empty, binds: [bindTo(0, s0.nodes)] }) as EnergyPlan;
  assert.equal(moved.binds.length, 1);
  assert.equal(moved.binds[0]?.bindings[0]?.placement.node, 1);
  assert.equal(moved.binds[0]?.bindings[0]?.nodeId, s0.nodes[1]?.spec.id);
  assert.equal(moved.nodePower, undefined, 'nothing woken');
});

test('a busy node is never suspended, and a withheld gang is withheld whole', () => {
  const nodes = schedulable(gpuNodes('V100', 3, 1));
  const stage = consolidateStage({ suspendSeconds: 100, resumeSeconds: 50 });
  const empty: EnergyPlan = { binds: [], preemptions: [], pending: [] };
  const job = gangJob({ id: 'g', gpus: 2, throughput: { V100: 1 }, totalSteps: 1e6 });
  const running: SchedulerSnapshot['running'] = [{ spec: job, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 }, bindings: [bindTo(2, nodes).bindings[0]!], model: 'V100', startTime: 0, lastCheckpointTime: 0, gpus: 1 }];
  stage.after?.({ ...snap(0, nodes), running }, empty);
  const at100 = stage.after?.({ ...snap(100, nodes), running }, empty) as EnergyPlan;
  assert.deepEqual(at100.nodePower?.map((c) => c.node), [0, 1]);
  // A two-node gang onto the two sleeping nodes: withheld whole, both woken.
  const gang: JobBind = { job: 'h' as JobBind['job'], model: 'V100', bindings: [0, 1].map((n, i) => ({ ...bindTo(n, nodes).bindings[0]!, index: i })) };
  const out = stage.after?.({ ...snap(120, nodes), running }, { ...empty, binds: [gang] }) as EnergyPlan;
  assert.equal(out.binds.length, 0);
  assert.deepEqual(out.nodePower, [{ node: 0, state: 'on', readyAt: 170 }, { node: 1, state: 'on', readyAt: 170 }]);
  assert.deepEqual(out.pending.map((r) => [r.job, r.code, r.estimatedStart]), [['h', 'waiting-for-node-power-up', 170]]);
  assert.equal(out.wakeAt, 170);
});

test('a job the scheduler moves to a sleeping node keeps running where it is while that node wakes', () => {
  const nodes = schedulable([...gpuNodes('V100', 1, 1), ...gpuNodes('K80', 1, 1)]);
  const stage = consolidateStage({ suspendSeconds: 100, resumeSeconds: 50 });
  const empty: EnergyPlan = { binds: [], preemptions: [], pending: [] };
  const job = gangJob({ id: 'm', gpus: 1, throughput: { V100: 4, K80: 1 }, totalSteps: 1e6 });
  const onK80: SchedulerSnapshot['running'] = [{ spec: job, progress: { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 }, bindings: [{ group: 'worker', index: 0, nodeId: nodes[1]!.spec.id, placement: { node: 1, gpus: [0], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 } }], model: 'K80', startTime: 0, lastCheckpointTime: 0, gpus: 1 }];
  stage.after?.({ ...snap(0, nodes), running: onK80 }, empty);
  const at100 = stage.after?.({ ...snap(100, nodes), running: onK80 }, empty) as EnergyPlan;
  assert.deepEqual(at100.nodePower, [{ node: 0, state: 'off', readyAt: Infinity }]);
  // The scheduler moves the job to the (sleeping) V100: the move is called off, the V100 woken.
  const move: EnergyPlan = { binds: [{ ...bindTo(0, nodes), job: job.id }], preemptions: [{ job: job.id, reason: 'faster model' }], pending: [] };
  const out = stage.after?.({ ...snap(200, nodes), running: onK80 }, move) as EnergyPlan;
  assert.deepEqual([out.binds.length, out.preemptions.length, out.pending.length], [0, 0, 0]);
  assert.deepEqual(out.nodePower, [{ node: 0, state: 'on', readyAt: 250 }]);
});
