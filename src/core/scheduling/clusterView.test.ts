import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import { ClusterView } from './clusterView.ts';
import { getJobScheduler } from './policies/index.ts';
import type { JobScheduler, RunningJob, SchedulerSnapshot } from './scheduler.ts';
import { Simulation } from '../../sim/simulator.ts';
import { syntheticCluster, syntheticJobs } from '../../sim/syntheticWorkload.ts';

const ids = (runs: readonly RunningJob[]): string[] => runs.map((r) => `${r.spec.id}@${r.startTime}`).sort();

/**
 * Runs tide on a small synthetic cluster with a node outage (preemptions, moves, restarts) and
 * hands every snapshot to `check` before the scheduler sees it.
 */
function simulateWith(check: (s: SchedulerSnapshot) => void): Simulation {
  const nodes = syntheticCluster(96);
  const tide = getJobScheduler('tide')?.({ rng: Rng.fromSeed(1) }) as JobScheduler;
  const scheduler: JobScheduler = {
    name: 'checked-tide',
    cycle(s) {
      check(s);
      return tide.cycle(s);
    },
  };
  const outages = [{ node: nodes[3]!.id, at: 20_000, repairedAt: 90_000 }];
  return new Simulation({ nodes, scheduler, outages, jobs: syntheticJobs({ jobs: 400, clusterGpus: 96, seed: 3 }) }).run();
}

test("the simulator's running deltas take each snapshot's running list to the next one", () => {
  let known = new Map<string, RunningJob>();
  let lastSeq: number | undefined;
  let applied = 0;
  const sim = simulateWith((s) => {
    const delta = s.runningDelta;
    assert.ok(delta && s.seq !== undefined);
    if (lastSeq !== undefined) {
      assert.equal(delta.since, lastSeq);
      for (const r of delta.stopped) {
        assert.equal(known.get(r.spec.id), r, `stops ${r.spec.id}, which the last snapshot did not list`);
        known.delete(r.spec.id);
      }
      for (const r of delta.started) {
        assert.ok(!known.has(r.spec.id), `starts ${r.spec.id} twice`);
        known.set(r.spec.id, r);
      }
      assert.deepEqual(ids([...known.values()]), ids(s.running), `t=${s.now}`);
      applied += delta.started.length + delta.stopped.length;
    }
    known = new Map(s.running.map((r) => [r.spec.id, r]));
    lastSeq = s.seq;
  });
  assert.ok(sim.finishedJobs.length > 350, `${sim.finishedJobs.length} of 400 jobs finished`);
  assert.ok(applied > 800, `the deltas carried ${applied} changes`);
});

test('a cluster view fed deltas holds what one that compares the lists holds, and reports the same changes', () => {
  const withDelta = new ClusterView();
  const comparing = new ClusterView();
  let cycles = 0;
  simulateWith((s) => {
    const a = withDelta.update(s);
    // The same snapshot without its numbering: this view compares the running lists.
    const { seq: _seq, runningDelta: _delta, ...plain } = s;
    const b = comparing.update(plain);
    assert.deepEqual(Array.from(a.gpuFree), Array.from(b.gpuFree), `GPUs at t=${s.now}`);
    assert.deepEqual(Array.from(a.cpuFree), Array.from(b.cpuFree), `CPUs at t=${s.now}`);
    assert.deepEqual(ids(withDelta.started), ids(comparing.started));
    assert.deepEqual(ids(withDelta.stopped), ids(comparing.stopped));
    cycles++;
  });
  assert.ok(cycles > 100);
});

test('a delta that does not add up to the running list is not applied: the view compares the lists', () => {
  const view = new ClusterView();
  const truth = new ClusterView();
  // The simulator changes its running list in place: remember what the last snapshot held.
  let last: { seq: number; count: number } | undefined;
  let checked = 0;
  simulateWith((s) => {
    // Claim nothing changed since the previous snapshot, whatever did.
    const lying: SchedulerSnapshot = last && s.running.length !== last.count ? { ...s, runningDelta: { since: last.seq, started: [], stopped: [] } } : s;
    const a = view.update(lying);
    const { seq: _seq, runningDelta: _delta, ...plain } = s;
    const b = truth.update(plain);
    assert.deepEqual(Array.from(a.gpuFree), Array.from(b.gpuFree), `t=${s.now}`);
    if (lying !== s) checked++;
    last = { seq: s.seq as number, count: s.running.length };
  });
  assert.ok(checked > 50, `${checked} lying snapshots`);
});
