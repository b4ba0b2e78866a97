import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScaleUpLatency } from './scaleUpLatency.ts';

test('the scale-up p99 is the nearest-rank quantile of the last replicas measured; bad samples are ignored', () => {
  const t = new ScaleUpLatency(100);
  assert.equal(t.quantile(), null);
  t.add(30);
  assert.equal(t.quantile(), 30);
  for (let i = 1; i <= 99; i++) t.add(i);
  // 100 samples: 1…99 and 30; p99 is the 99th smallest: 98.
  assert.equal(t.quantile(0.99), 98);
  assert.equal(t.quantile(0.5), 49); // 1…29, 30, 30, 31…: the 50th is 49
  t.add(-1);
  t.add(Number.NaN);
  assert.equal(t.count, 100);
  // The window slides: 100 slow starts push the fast ones out.
  for (let i = 0; i < 100; i++) t.add(500 + i);
  assert.equal(t.quantile(0.99), 598);
  assert.equal(t.quantile(0.01), 500);
  assert.equal(t.count, 200);
});
