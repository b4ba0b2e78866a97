/**
 * What every registered autoscaler promises, whatever it observes: an integer replica count
 * within [minReplicas, maxReplicas], keepGpus between replicas × gpusPerReplica and the pool,
 * and the same decisions for the same observations. Then each policy's own rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.ts';
import type { OracleView, ReplicaDecision, ServiceObservation, ServiceShape } from '../autoscaler.ts';
import { replicaSizer } from '../sizing.ts';
import { AUTOSCALER_NAMES, getAutoscaler, SIMULATOR_ONLY_AUTOSCALERS } from './index.ts';
import { chooseWindow } from './window.ts';

const shape: ServiceShape = { minReplicas: 2, maxReplicas: 40, gpusPerReplica: 1, concurrency: 1, serviceSeconds: 16.4, sloQuantile: 0.99, sloWaitSeconds: 5, sloWindowSeconds: 300, loadSeconds: { median: 22.7, p90: 42 }, evictSeconds: 30 };
const DAY = 86_400;
/** A daily rate curve (req/s) with a peak of 1.5 in the afternoon and a quiet night. */
const rateAt = (t: number): number => 0.02 + 1.5 * Math.max(0, Math.sin((2 * Math.PI * ((t % DAY) - 6 * 3600)) / DAY)) ** 2;
const oracleView: OracleView = {
  maxRate(from, to) {
    let peak = 0;
    for (let t = Math.floor(from / 300) * 300; t < to; t += 300) peak = Math.max(peak, rateAt(t + 150));
    return peak;
  },
};

/** A run of observations: arrivals at the curve's rate (with noise), random queue and replica states. */
function observations(seed: number, days: number): ServiceObservation[] {
  const rng = Rng.fromSeed(seed);
  const out: ServiceObservation[] = [];
  for (let t = 30; t <= days * DAY; t += 30) {
    const ready = rng.int(0, shape.maxReplicas);
    const loading = rng.int(0, shape.maxReplicas - ready);
    out.push({ now: t, arrivals: Math.round(rateAt(t) * 30 * (0.7 + 0.6 * rng.float())), intervalSeconds: 30, queueLength: rng.int(0, 20) === 0 ? rng.int(0, 200) : 0, ready, loading, stopping: rng.int(0, 3), lentGpus: shape.maxReplicas - ready - loading, sloMissed: rng.int(0, 50) === 0, oracle: oracleView });
  }
  return out;
}

function decide(name: string, obs: readonly ServiceObservation[], options?: Record<string, number>): ReplicaDecision[] {
  const a = (getAutoscaler(name) as NonNullable<ReturnType<typeof getAutoscaler>>)(shape, options);
  assert.equal(a.name, name);
  return obs.map((o) => a.decide(o));
}

const runs = observations(1, 3);

for (const name of AUTOSCALER_NAMES) {
  test(`${name}: replicas within bounds, keepGpus within [replicas, pool], deterministic`, () => {
    const options = name === 'window' ? { learnDays: 1 } : undefined;
    const first = decide(name, runs, options);
    for (const [i, d] of first.entries()) {
      assert.ok(Number.isInteger(d.replicas) && d.replicas >= shape.minReplicas && d.replicas <= shape.maxReplicas, `decision ${i}: replicas ${d.replicas}`);
      assert.ok(d.keepGpus >= d.replicas * shape.gpusPerReplica && d.keepGpus <= shape.maxReplicas * shape.gpusPerReplica, `decision ${i}: keepGpus ${d.keepGpus} for ${d.replicas} replicas`);
      assert.equal(typeof d.urgent, 'boolean');
      assert.ok(d.reason.length > 0);
    }
    assert.deepEqual(decide(name, runs, options), first, 'same observations, same decisions');
  });
}

test('only the oracle needs the future, and it says so when not handed it', () => {
  assert.deepEqual(SIMULATOR_ONLY_AUTOSCALERS, ['oracle']);
  const blind = runs.slice(0, 3).map(({ oracle: _oracle, ...o }) => o);
  assert.throws(() => decide('oracle', blind), /future rate/);
  for (const name of AUTOSCALER_NAMES.filter((n) => n !== 'oracle')) assert.equal(decide(name, blind).length, 3);
});

test('oracle keeps what the highest rate of the next 10 minutes (plus its lead) needs under the SLO', () => {
  const size = replicaSizer(shape);
  const decisions = decide('oracle', runs);
  decisions.forEach((d, i) => {
    const o = runs[i] as ServiceObservation;
    assert.ok(d.replicas >= size(oracleView.maxRate(o.now, o.now + 600)), `t=${o.now}`);
    assert.equal(d.keepGpus, d.replicas);
  });
  // Sized for the per-window SLO it keeps more.
  const strict = decide('oracle', runs, { waitTail: 2e-5 });
  assert.ok(strict.every((d, i) => d.replicas >= (decisions[i] as ReplicaDecision).replicas));
});

test('static keeps the pool and lends nothing', () => {
  for (const d of decide('static', runs.slice(0, 50))) assert.deepEqual([d.replicas, d.keepGpus, d.urgent], [40, 40, false]);
});

test('tide: the whole pool while it learns, then lends the night and keeps the afternoon', () => {
  // Observations where the service runs what tide asked (nothing else moves).
  const a = (getAutoscaler('tide') as NonNullable<ReturnType<typeof getAutoscaler>>)(shape);
  let replicas = shape.maxReplicas;
  const at = new Map<number, ReplicaDecision>();
  const rng = Rng.fromSeed(3);
  for (let t = 30; t <= 4 * DAY; t += 30) {
    const d = a.decide({ now: t, arrivals: Math.round(rateAt(t) * 30 * (0.9 + 0.2 * rng.float())), intervalSeconds: 30, queueLength: 0, ready: replicas, loading: 0, stopping: 0, lentGpus: shape.maxReplicas - replicas });
    replicas = d.replicas;
    at.set(t, d);
  }
  assert.equal(at.get(12 * 3600)?.replicas, 40, 'day 1: learning');
  const night = at.get(3 * DAY + 3 * 3600) as ReplicaDecision;
  const afternoon = at.get(3 * DAY + 12 * 3600) as ReplicaDecision;
  const size = replicaSizer(shape, 2e-5);
  assert.ok(night.replicas < 12, `night: ${night.replicas}`);
  assert.ok(afternoon.replicas >= size(rateAt(3 * DAY + 12 * 3600)), `afternoon: ${afternoon.replicas}`);
  // Ahead of the morning rise it has already grown (no urgent reclaim needed).
  const beforeRise = at.get(3 * DAY + 8 * 3600) as ReplicaDecision;
  assert.ok(beforeRise.replicas >= size(rateAt(3 * DAY + 8 * 3600 + 600)), `before the rise: ${beforeRise.replicas}`);
});

test('tide: demand that outruns the forecast is reclaimed at once (urgent)', () => {
  const a = (getAutoscaler('tide') as NonNullable<ReturnType<typeof getAutoscaler>>)(shape);
  let d: ReplicaDecision | undefined;
  for (let t = 30; t <= 2 * DAY + 3 * 3600; t += 30) d = a.decide({ now: t, arrivals: Math.round(rateAt(t) * 30), intervalSeconds: 30, queueLength: 0, ready: d?.replicas ?? 40, loading: 0, stopping: 0, lentGpus: 40 - (d?.replicas ?? 40) });
  const quiet = d as ReplicaDecision;
  assert.ok(quiet.replicas < 10 && !quiet.urgent);
  // A night-time surge to the afternoon peak.
  const surge = a.decide({ now: 2 * DAY + 3 * 3600 + 30, arrivals: 45, intervalSeconds: 30, queueLength: 30, ready: quiet.replicas, loading: 0, stopping: 0, lentGpus: 40 - quiet.replicas });
  assert.equal(surge.urgent, true);
  assert.ok(surge.replicas > quiet.replicas + 10, `${surge.replicas}`);
  assert.match(surge.reason, /outran/);
});

test('window: the quiet hours and the GPUs lent maximise lent × hours where every hour still meets its peak', () => {
  // Needs per hour: quiet 0–6 (needs 5), busy otherwise (needs 38), pool 40.
  const needs = Array.from({ length: 24 }, (_, h) => (h < 6 ? 5 : 38));
  assert.deepEqual(chooseWindow(needs, 40), { startHour: 0, hours: 6, lentReplicas: 35 });
  // When the busy hours leave room, lending that room all day beats a deep night window.
  assert.deepEqual(chooseWindow(Array.from({ length: 24 }, (_, h) => (h < 6 ? 5 : 30)), 40), { startHour: 0, hours: 24, lentReplicas: 10 });
  // A window wrapping midnight: quiet 22–04.
  const wrap = Array.from({ length: 24 }, (_, h) => (h >= 22 || h < 4 ? 4 : 38));
  assert.deepEqual(chooseWindow(wrap, 40), { startHour: 22, hours: 6, lentReplicas: 36 });
  // Nothing to lend when every hour needs the pool.
  assert.equal(chooseWindow(Array(24).fill(40), 40), null);
  // A flat need: lend the rest all day.
  assert.deepEqual(chooseWindow(Array(24).fill(10), 40), { startHour: 0, hours: 24, lentReplicas: 30 });
});

test('window: learns over its learning days, then lends the same quiet hours every day, never reacting', () => {
  const a = (getAutoscaler('window') as NonNullable<ReturnType<typeof getAutoscaler>>)(shape, { learnDays: 2 });
  const byHour = new Map<number, number>();
  for (let t = 30; t <= 4 * DAY; t += 30) {
    const d = a.decide({ now: t, arrivals: Math.round(rateAt(t) * 30), intervalSeconds: 30, queueLength: 0, ready: 40, loading: 0, stopping: 0, lentGpus: 0 });
    if (t < 2 * DAY) assert.equal(d.replicas, 40);
    else if (t % 3600 === 1800) byHour.set(Math.floor(t / 3600), d.replicas);
    assert.equal(d.urgent, false);
  }
  for (let h = 48; h < 72; h++) assert.equal(byHour.get(h), byHour.get(h + 24), `hour ${h % 24} differs from day to day`);
  assert.ok(Math.min(...byHour.values()) < 40, 'it lends at some hour');
});

test('a clock that does not start at 0 (epoch seconds on a live server): learning counts from the first observation', () => {
  const epoch = 1_765_000_000;
  for (const name of ['tide', 'window']) {
    const a = (getAutoscaler(name) as NonNullable<ReturnType<typeof getAutoscaler>>)(shape, { learnDays: 1 });
    for (let t = 30; t < DAY - 60; t += 3600) {
      const d = a.decide({ now: epoch + t, arrivals: 1, intervalSeconds: 30, queueLength: 0, ready: 40, loading: 0, stopping: 0, lentGpus: 0 });
      assert.equal(d.replicas, 40, `${name} at +${t} s`);
    }
  }
});
