import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serversNeeded } from '../../core/tidal/queueing.ts';
import { curveCsv } from './curve.ts';
import { peakRateFor, TIDAL } from './serviceLive.ts';
import { runTwin } from './twin.ts';

test('a curve becomes the CSV the load generator replays', () => {
  assert.equal(curveCsv({ bucketSeconds: 300, values: Float64Array.from([0.5, 1]) }), 't_seconds,value\n0,0.50000\n300,1.00000\n');
});

test("the live peak rate is the highest at which the reactive sizing fits the pool (about the benchmark's 4.3/s for 109 GPUs)", () => {
  for (const gpus of [4, 8, 16]) {
    const peak = peakRateFor(gpus);
    assert.ok(serversNeeded(1.5 * peak, TIDAL.serviceSeconds, TIDAL.sloWait, TIDAL.sloQuantile) <= gpus);
    assert.ok(serversNeeded(1.5 * peak * 1.02, TIDAL.serviceSeconds, TIDAL.sloWait, TIDAL.sloQuantile) > gpus);
  }
  assert.ok(Math.abs(peakRateFor(109) - 4.0) < 0.1, `${peakRateFor(109)}`);
});

test("the simulated twin runs the live run's ground: a flat curve at the peak keeps a reactive pool busy and lends little; static lends nothing", () => {
  const curve = { name: 'flat', bucketSeconds: 300, values: new Float64Array(288).fill(1) };
  const reactive = runTwin({ gpus: 8, lambdaPeak: peakRateFor(8), curve, days: 1, seed: 0, autoscaler: 'reactive' });
  const fixed = runTwin({ gpus: 8, lambdaPeak: peakRateFor(8), curve, days: 1, seed: 0, autoscaler: 'static' });
  assert.equal(fixed.lentGpuHours, 0);
  assert.equal(fixed.evictions.planned + fixed.evictions.immediate, 0);
  assert.ok(reactive.requests > 10_000 && Math.abs(reactive.requests - fixed.requests) < 0.05 * fixed.requests, `${reactive.requests} vs ${fixed.requests}`);
  assert.ok(fixed.inferenceBusyPct > 25 && fixed.inferenceBusyPct < 35, `busy ${fixed.inferenceBusyPct}`);
  assert.deepEqual(runTwin({ gpus: 8, lambdaPeak: peakRateFor(8), curve, days: 1, seed: 0, autoscaler: 'reactive' }), reactive, 'same seed, same run');
});
