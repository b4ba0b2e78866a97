import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Autoscaler, ReplicaDecision, ServiceObservation, ServiceShape } from './autoscaler.ts';
import { replayHistory, shiftClock, type RatePoint } from './history.ts';
import { tide } from './policies/tide.ts';

const DAY = 86_400;
const shape: ServiceShape = { minReplicas: 1, maxReplicas: 16, gpusPerReplica: 1, concurrency: 1, serviceSeconds: 16.4, sloQuantile: 0.99, sloWaitSeconds: 5, sloWindowSeconds: 300, loadSeconds: { median: 22.7, p90: 42 }, evictSeconds: 30 };

/** An autoscaler that records what it saw and asks for `replicas`. */
function recorder(replicas = 3): Autoscaler & { seen: ServiceObservation[] } {
  const seen: ServiceObservation[] = [];
  return { name: 'rec', seen, decide: (o) => (seen.push(o), { replicas, keepGpus: replicas, urgent: false, reason: 'rec' }) };
}

test('history replays as whole grid intervals of a step function: each point holds until the next, gaps and the start cut it', () => {
  const a = recorder();
  // 2/s from 100 to 160, 4/s from 160 to 220 (the last holds for the step before it), then a gap, 1/s from 5000 to 5090.
  const points: RatePoint[] = [{ t: 100, rate: 2 }, { t: 160, rate: 4 }, { t: 5000, rate: 1 }, { t: 5030, rate: 1 }, { t: 5060, rate: 1 }];
  const r = replayHistory(a, points, { intervalSeconds: 30, until: 5080, maxHoldSeconds: 600, initialReplicas: 1 });
  // 160 → 220 holds 60 s (the next point is 4840 s away: beyond maxHold, so it holds 600 s, to 760).
  const nows = a.seen.map((o) => o.now);
  assert.deepEqual(nows.slice(0, 3), [150, 180, 210]);
  assert.equal(a.seen[0]?.arrivals, 2 * 30, '[120, 150) at 2/s');
  assert.equal(a.seen[1]?.arrivals, 2 * 10 + 4 * 20, '[150, 180): 2/s until 160, then 4/s');
  assert.equal(nows.filter((t) => t > 760 && t < 5000).length, 0, 'nothing replayed in the gap');
  assert.equal(Math.max(...nows), 5070, 'the start (5080) cuts the last point');
  assert.ok(nows.includes(5070) && !nows.includes(5100));
  assert.equal(r.decisions, a.seen.length);
  assert.deepEqual([r.from, r.to], [150, 5070]);
  assert.equal(a.seen[0]?.ready, 1, 'the first observation reports the initial replicas');
  assert.equal(a.seen[1]?.ready, 3, 'then what the autoscaler asked for');
  assert.ok(a.seen.every((o) => o.queueLength === 0 && o.intervalSeconds === 30));
  assert.throws(() => replayHistory(recorder(), [{ t: 5, rate: 1 }, { t: 5, rate: 1 }], { intervalSeconds: 30, until: 100, initialReplicas: 1 }), /point 1/);
  assert.throws(() => replayHistory(recorder(), [{ t: 5, rate: -1 }], { intervalSeconds: 30, until: 100, initialReplicas: 1 }), /point 0/);
});

/** A day: quiet at 0.005/s, a plateau of 0.3/s from 10:00 to 14:00. */
const rateAt = (t: number): number => {
  const h = (((t % DAY) + DAY) % DAY) / 3600;
  return h >= 10 && h < 14 ? 0.3 : 0.005;
};
const historyOf = (from: number, to: number): RatePoint[] => {
  const out: RatePoint[] = [];
  for (let t = from; t < to; t += 60) out.push({ t, rate: rateAt(t) });
  return out;
};
/** Live decisions every 30 s from `start` on, with arrivals at the curve's rate, replicas as asked. */
function live(a: Autoscaler, start: number, hours: number, scaleUpSeconds?: number): { now: number; d: ReplicaDecision }[] {
  const out: { now: number; d: ReplicaDecision }[] = [];
  let ready = 3; // what the quiet hour needs: the first decision has nothing to catch up
  for (let now = start + 30; now <= start + hours * 3600; now += 30) {
    const d = a.decide({ now, arrivals: rateAt(now - 15) * 30, intervalSeconds: 30, queueLength: 0, ready, loading: 0, stopping: 0, lentGpus: 0, ...(scaleUpSeconds !== undefined ? { scaleUpSeconds } : {}) });
    ready = d.replicas;
    out.push({ now, d });
  }
  return out;
}

test('tide with imported history plans from its first live hour: it keeps GPUs for the 10:00 rise ahead of it, planned; without history it keeps the whole pool', () => {
  const start = 3 * DAY + 8 * 3600; // the service starts at 08:00 on day 3
  const withHistory = tide(shape);
  const replayed = replayHistory(withHistory, historyOf(start - 2 * DAY, start), { intervalSeconds: 30, until: start, initialReplicas: 1 });
  assert.equal(replayed.decisions, 2 * 2880);
  const run = live(withHistory, start, 3);
  const rise = 3 * DAY + 10 * 3600;
  const before = run.filter((x) => x.now < rise);
  assert.ok(before.some((x) => x.now < rise - 1800 && x.d.keepGpus <= 6), 'it lends during the quiet morning');
  const raised = before.find((x) => x.d.keepGpus >= 12);
  assert.ok(raised, `it raised the kept GPUs before 10:00: ${before.slice(-30).map((x) => x.d.keepGpus).join(' ')}`);
  assert.ok(raised.now < rise - 300, `ahead of the rise by a lead, at ${((rise - raised.now) / 60).toFixed(0)} min before`);
  assert.equal(raised.d.urgent, false, 'planned, not urgent');
  assert.match(raised.d.reason, /^tide: forecast/);
  assert.deepEqual(run.filter((x) => x.d.urgent).map((x) => ((x.now % DAY) / 3600).toFixed(2)), [], 'the rise was foreseen: no immediate reclaim');

  const without = live(tide(shape), start, 3);
  assert.ok(without.every((x) => x.d.keepGpus === shape.maxReplicas && /learning/.test(x.d.reason)), 'no history: the first day learns with the whole pool');
});

test('a longer measured scale-up (decision → replica serving) makes tide keep GPUs for the rise earlier', () => {
  const start = 3 * DAY + 8 * 3600;
  const firstRaise = (scaleUpSeconds?: number): number => {
    const a = tide(shape);
    replayHistory(a, historyOf(start - 2 * DAY, start), { intervalSeconds: 30, until: start, initialReplicas: 1 });
    const run = live(a, start, 3, scaleUpSeconds);
    return (run.find((x) => x.now > start + 1800 && x.d.keepGpus >= 12) as { now: number }).now;
  };
  const plain = firstRaise();
  assert.equal(firstRaise(40), plain, 'a measured time below the load p99 changes nothing');
  const slow = firstRaise(900);
  assert.ok(slow <= plain - 600, `with a 15-minute scale-up it keeps ${(plain - slow) / 60} min earlier`);
  const a = tide(shape);
  replayHistory(a, historyOf(start - 2 * DAY, start), { intervalSeconds: 30, until: start, initialReplicas: 1 });
  const d = a.decide({ now: start + 30, arrivals: 0.15, intervalSeconds: 30, queueLength: 0, ready: 2, loading: 0, stopping: 0, lentGpus: 0, scaleUpSeconds: 900 });
  assert.match(d.reason, /lead of 960 s \(measured scale-up 900 s\)/);
});

test('shiftClock runs an autoscaler ahead of its caller, oracle view included', () => {
  const a = recorder();
  let asked: [number, number] = [0, 0];
  const shifted = shiftClock(a, 1000);
  shifted.decide({ now: 30, arrivals: 1, intervalSeconds: 30, queueLength: 0, ready: 1, loading: 0, stopping: 0, lentGpus: 0, oracle: { maxRate: (x, y) => ((asked = [x, y]), 0) } });
  assert.equal(a.seen[0]?.now, 1030);
  a.seen[0]?.oracle?.maxRate(1030, 1330);
  assert.deepEqual(asked, [30, 330]);
});
