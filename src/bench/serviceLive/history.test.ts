import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportedHistory, splitCurve } from './history.ts';

const curve = { name: 'c', bucketSeconds: 300, values: Float64Array.from({ length: 2 * 288 }, (_, b) => (b % 288 < 144 ? 0.1 : 1)) };

test("a curve's preceding days as an export: per-minute Poisson counts at its rate, before the replay's start, the same for the same seed", () => {
  const { history, replay } = splitCurve(curve, 1);
  assert.deepEqual([history.values.length, replay.values.length], [288, 288]);
  assert.throws(() => splitCurve(curve, 2), /cannot take 2 day/);
  const points = exportedHistory(history, 2, 7);
  assert.equal(points.length, 1440);
  assert.deepEqual([points[0]?.t, points[points.length - 1]?.t], [-86_400, -60]);
  assert.ok(points.every((p) => Math.abs(Math.round(p.rate * 60) - p.rate * 60) < 1e-9 && p.rate >= 0), 'whole counts per minute');
  const mean = (from: number, to: number): number => points.slice(from, to).reduce((a, p) => a + p.rate, 0) / (to - from);
  assert.ok(Math.abs(mean(0, 720) - 0.2) < 0.02, `the quiet half: ${mean(0, 720)}`);
  assert.ok(Math.abs(mean(720, 1440) - 2) < 0.1, `the busy half: ${mean(720, 1440)}`);
  assert.deepEqual(exportedHistory(history, 2, 7), points);
  assert.notDeepEqual(exportedHistory(history, 2, 8), points);
});
