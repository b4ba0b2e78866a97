/**
 * The tidal simulator's invariants on short runs: GPU-time is conserved, borrowers' time adds
 * up to what was lent, lost work is bounded by the checkpoints, runs replay per seed, every
 * policy sees the same requests, and the deadline batch reports its outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getAutoscaler } from '../../core/tidal/policies/index.ts';
import type { BatchSpec } from './borrowers.ts';
import { buildCurve, type RateCurve } from './curves.ts';
import { TIDAL_BORROWERS, TIDAL_LAMBDA_PEAK, TIDAL_SHAPE } from './protocol.ts';
import { GPU_STATES, simulateTidal, type TidalRunResult } from './tidalSim.ts';

const DAY = 86_400;
const curves = new Map<number, RateCurve>();
const smooth = (seed: number): RateCurve => {
  if (!curves.has(seed)) curves.set(seed, buildCurve({ kind: 'synthetic', name: 'smooth' }, 2, seed));
  return curves.get(seed) as RateCurve;
};

function run(policy: string, seed = 0, extra: { batch?: BatchSpec; curve?: RateCurve; options?: Record<string, number> } = {}): TidalRunResult {
  const factory = getAutoscaler(policy);
  assert.ok(factory);
  return simulateTidal({
    shape: TIDAL_SHAPE,
    lambdaPeak: TIDAL_LAMBDA_PEAK,
    curve: extra.curve ?? smooth(seed),
    days: 2,
    warmupDays: 1,
    decisionSeconds: 30,
    borrowers: TIDAL_BORROWERS,
    ...(extra.batch ? { batch: extra.batch } : {}),
    seed,
    autoscaler: factory(TIDAL_SHAPE, { ...(policy === 'window' ? { learnDays: 1 } : {}), ...extra.options }),
    oracle: policy === 'oracle',
  });
}

const results = new Map<string, TidalRunResult>();
const cached = (policy: string): TidalRunResult => {
  if (!results.has(policy)) results.set(policy, run(policy));
  return results.get(policy) as TidalRunResult;
};

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

for (const policy of ['static', 'reactive', 'window', 'tide', 'oracle']) {
  test(`${policy}: GPU-time is conserved and borrowers' time adds up to what was lent`, () => {
    const r = cached(policy);
    const total = r.gpus * r.scoredSeconds;
    const s = r.stateSeconds;
    close(GPU_STATES.reduce((a, k) => a + s[k], 0), total, 'free + loading + ready + stopping + lent + evicting');
    assert.ok(r.busySeconds <= s.ready + s.stopping + 1e-6, 'busy within ready and stopping time');
    const L = r.ledger;
    close(L.restart + L.trainingUseful + L.lost + L.checkpoint + L.batchUseful + L.inFlight, s.lent + s.evicting, 'restart + training + lost + checkpoint (+ batch) = lent');
    // Immediate reclaims lose at most one checkpoint interval each; planned ones nothing.
    assert.ok(L.lost <= L.evictionsImmediate * TIDAL_BORROWERS.checkpointSeconds + 1e-6);
    // Planned evictions each cost their checkpoint (those started before scoring may count partly).
    assert.ok(L.checkpoint <= (L.evictionsPlanned + 1) * TIDAL_BORROWERS.evictSeconds * 1.0001 + 1e-6);
    assert.ok(r.windows === 288 && r.windowsMet <= r.windows);
    for (const v of [...r.replicaSeries, ...r.lentSeries]) assert.ok(v >= 0 && v <= r.gpus);
    for (const [i, v] of r.replicaSeries.entries()) assert.ok(v + (r.lentSeries[i] as number) <= r.gpus);
    assert.ok(r.reclaimLatencies.every((x) => x > 0));
  });
}

test('static: nothing is lent, the SLO is met, the GPUs are as busy as the offered load', () => {
  const r = cached('static');
  assert.equal(r.stateSeconds.lent + r.stateSeconds.evicting, 0);
  assert.equal(r.windowsMet, r.windows);
  // Offered load over the scored day: λ_peak × mean(curve) × service time.
  const curve = smooth(0);
  let sum = 0;
  for (let b = 288; b < 576; b++) sum += curve.values[b] as number;
  const offered = (TIDAL_LAMBDA_PEAK * (sum / 288) * TIDAL_SHAPE.serviceSeconds) / r.gpus;
  const busy = r.busySeconds / (r.gpus * r.scoredSeconds);
  assert.ok(Math.abs(busy - offered) < 0.02 * offered, `busy ${busy} vs offered ${offered}`);
});

test('lending policies lend, and reactive reclaims immediately (losing some work)', () => {
  for (const p of ['reactive', 'tide', 'oracle']) assert.ok(cached(p).stateSeconds.lent > 0.3 * cached(p).gpus * DAY, `${p} lends`);
  const reactive = cached('reactive').ledger;
  assert.ok(reactive.evictionsImmediate > 0 && reactive.lost > 0);
  assert.ok(cached('oracle').ledger.evictionsImmediate === 0 && cached('oracle').ledger.lost === 0, 'the oracle plans every eviction');
});

test('same seed, same run; another seed, another run; every policy sees the same requests', () => {
  const strip = ({ wallSeconds: _w, ...rest }: TidalRunResult): Omit<TidalRunResult, 'wallSeconds'> => rest;
  assert.deepEqual(strip(run('tide')), strip(cached('tide')));
  const other = run('tide', 1);
  assert.notEqual(other.requestsSimulated, cached('tide').requestsSimulated);
  const counts = ['static', 'reactive', 'window', 'tide', 'oracle'].map((p) => cached(p).requestsSimulated);
  assert.ok(counts.every((c) => c === counts[0]), `${counts}`);
});

test('a deadline batch fills the lent GPUs first and reports whether it met its deadline', () => {
  const due = { tasks: 20_000, taskSeconds: 10, releaseAt: DAY, deadlineAt: DAY + 12 * 3600 };
  const ok = run('tide', 0, { batch: due });
  assert.ok(ok.batch);
  assert.equal(ok.batch.done, due.tasks);
  assert.equal(ok.batch.metDeadline, true);
  assert.ok((ok.batch.finishedAtHours as number) < 36);
  const L = ok.ledger;
  close(L.batchUseful, due.tasks * due.taskSeconds, 'batch GPU-time = tasks × seconds');
  close(L.restart + L.trainingUseful + L.lost + L.checkpoint + L.batchUseful + L.inFlight, ok.stateSeconds.lent + ok.stateSeconds.evicting, 'lent time with a batch');
  // Far more work than a day of lending can do: not met, and said so.
  const tooBig = run('tide', 0, { batch: { tasks: 10_000_000, taskSeconds: 10, releaseAt: DAY, deadlineAt: DAY + 6 * 3600 } });
  assert.equal(tooBig.batch?.metDeadline, false);
  assert.equal(tooBig.batch?.finishedAtHours, null);
  // Static lends nothing: the batch never runs.
  assert.equal(run('static', 0, { batch: due }).batch?.done, 0);
});

test('a decision outside the contract is refused with the policy named', () => {
  const bad = { name: 'bad', decide: () => ({ replicas: 1, keepGpus: 1, urgent: false, reason: 'too few' }) };
  assert.throws(() => simulateTidal({ shape: TIDAL_SHAPE, lambdaPeak: TIDAL_LAMBDA_PEAK, curve: smooth(0), days: 2, warmupDays: 1, decisionSeconds: 30, borrowers: TIDAL_BORROWERS, seed: 0, autoscaler: bad }), /autoscaler 'bad'.*replicas must be/);
});
