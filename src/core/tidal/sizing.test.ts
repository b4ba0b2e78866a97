import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceShape } from './autoscaler.ts';
import { replicasFor } from './policies/reactive.ts';
import { waitTailProbability } from './queueing.ts';
import { loadQuantile, loadSigma, normalQuantile, replicaSizer } from './sizing.ts';

const shape: ServiceShape = { minReplicas: 2, maxReplicas: 109, gpusPerReplica: 1, concurrency: 1, serviceSeconds: 16.4, sloQuantile: 0.99, sloWaitSeconds: 5, sloWindowSeconds: 300, loadSeconds: { median: 22.7, p90: 42 }, evictSeconds: 30 };

test('the table sizer answers what replicasFor computes, from no load to past the pool', () => {
  const size = replicaSizer(shape);
  for (let i = 0; i <= 400; i++) {
    const lambda = (i / 400) * 8; // up to 8 req/s, beyond what 109 replicas take
    assert.equal(size(lambda), replicasFor(shape, lambda), `λ = ${lambda}`);
  }
  assert.equal(size(0), 2, 'never below minReplicas');
  assert.equal(size(1e6), 109, 'never above maxReplicas');
});

test('a stricter wait tail asks for more replicas, each meeting it', () => {
  const loose = replicaSizer(shape);
  const strict = replicaSizer(shape, 2e-5);
  for (const lambda of [0.05, 0.5, 2, 4.32]) {
    const c = strict(lambda);
    assert.ok(c > loose(lambda), `λ ${lambda}: ${c} vs ${loose(lambda)}`);
    assert.ok(waitTailProbability(lambda, 1 / 16.4, c, 5) <= 2e-5);
    assert.ok(c === 2 || waitTailProbability(lambda, 1 / 16.4, c - 1, 5) > 2e-5);
  }
  assert.throws(() => replicaSizer(shape, 0), /waitTail/);
});

test('the load time: σ from the median and p90, quantiles back', () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.001) + 3.090232) < 1e-5);
  assert.ok(Math.abs(loadSigma(shape) - 0.48) < 0.005, 'the doc says σ = 0.48');
  assert.ok(Math.abs(loadQuantile(shape, 0.9) - 42) < 1e-6);
  assert.ok(Math.abs(loadQuantile(shape, 0.5) - 22.7) < 1e-9);
  assert.ok(loadQuantile(shape, 0.99) > 60 && loadQuantile(shape, 0.99) < 80);
});
