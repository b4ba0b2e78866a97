import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serversNeeded, waitTailProbability } from './queueing.ts';
import { replicasFor, reactive } from './policies/reactive.ts';
import type { ServiceShape } from './autoscaler.ts';

test('Erlang C: one server, the M/M/1 wait tail', () => {
  // M/M/1: P(wait > t) = ρ e^{-(μ-λ)t}.
  const p = waitTailProbability(0.5, 1, 1, 2);
  assert.ok(Math.abs(p - 0.5 * Math.exp(-1)) < 1e-12);
  assert.equal(waitTailProbability(2, 1, 1, 0), 1, 'an unstable queue always waits');
});

test('serversNeeded is the smallest c meeting the tail target', () => {
  const lambda = 4.32;
  const s = 16.4;
  const c = serversNeeded(lambda, s, 5, 0.99);
  assert.ok(waitTailProbability(lambda, 1 / s, c, 5) <= 0.01);
  assert.ok(waitTailProbability(lambda, 1 / s, c - 1, 5) > 0.01);
  // The tidal benchmark's peak: 109 replicas 65 % busy meet the SLO with room to spare.
  assert.ok(c < 109 && c > 0.65 * 109 * 0.9, `c = ${c}`);
});

test('reactive keeps what the rate needs with its margin, and never less than minReplicas', () => {
  const shape: ServiceShape = { minReplicas: 2, maxReplicas: 109, gpusPerReplica: 1, concurrency: 1, serviceSeconds: 16.4, sloQuantile: 0.99, sloWaitSeconds: 5, sloWindowSeconds: 300, loadSeconds: { median: 22.7, p90: 42 }, evictSeconds: 30 };
  const r = reactive(shape, { margin: 0.5 });
  const quiet = r.decide({ now: 30, arrivals: 0, intervalSeconds: 30, queueLength: 0, ready: 109, loading: 0, stopping: 0, lentGpus: 0 });
  assert.equal(quiet.replicas, 2);
  assert.equal(quiet.urgent, false);
  const busy = r.decide({ now: 60, arrivals: 60, intervalSeconds: 30, queueLength: 0, ready: 2, loading: 0, stopping: 0, lentGpus: 107 });
  assert.equal(busy.replicas, replicasFor(shape, 3));
  assert.equal(busy.urgent, true);
  assert.equal(busy.keepGpus, busy.replicas);
});
