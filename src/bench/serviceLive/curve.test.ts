import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { serversNeeded } from '../../core/tidal/queueing.ts';
import { UserError } from '../../util/errors.ts';
import { curveA, curveCsv, curveFromCsv, parseCurveCsv } from './curve.ts';
import { peakRateFor, TIDAL } from './serviceLive.ts';

const QPS = '../shared/traces/genai-2026/qps_5min.csv';

test('curve A: the trace stretched to 24 h in 5-minute buckets, hourly factors from the seed (same seed, same curve)', { skip: existsSync(QPS) ? false : `${QPS} is not here` }, () => {
  const text = readFileSync(QPS, 'utf8');
  const a = curveA(text, 0);
  assert.equal(a.values.length, 288);
  assert.deepEqual(curveA(text, 0).values, a.values);
  assert.notDeepEqual(curveA(text, 1).values, a.values);
  // Without the factors (σ 0) the stretched trace would peak at 1; with them the peak is within a few σ of 1.
  const peak = Math.max(...a.values);
  assert.ok(peak > 0.7 && peak < 1.4, `peak ${peak}`);
  // 12.4 of 22.8 h are below 10 % of the peak in the trace: stretched, about 13 h of 24.
  const low = a.values.filter((v) => v < 0.1 * peak).length / 12;
  assert.ok(low > 10 && low < 16, `${low} h below 10 % of the peak`);
  assert.equal(curveA(text, 0, 2).values.length, 576);
});

test('any t_seconds,value CSV is tiled in 5-minute buckets and normalised; bad rows are named', () => {
  const c = curveFromCsv('t_seconds,value\n0,2\n3600,4\n', 'x.csv');
  assert.equal(c.values.length, 288);
  assert.deepEqual([c.values[0], c.values[11], c.values[12], c.values[24]], [0.5, 0.5, 1, 0.5]);
  assert.match(curveCsv({ bucketSeconds: 300, values: [0.5, 1] }), /^t_seconds,value\n0,0\.50000\n300,1\.00000\n$/);
  assert.throws(() => parseCurveCsv('t,v\n0,1\n300,-1\n', 'bad.csv'), (e: unknown) => e instanceof UserError && /bad\.csv line 3/.test(e.message));
  assert.throws(() => parseCurveCsv('t,v\n', 'empty.csv'), /no rows/);
});

test('the live peak rate is the highest at which the reactive sizing fits the pool (about the benchmark\'s 4.3/s for 109 GPUs)', () => {
  for (const gpus of [4, 8, 16]) {
    const peak = peakRateFor(gpus);
    assert.ok(serversNeeded(1.5 * peak, TIDAL.serviceSeconds, TIDAL.sloWait, TIDAL.sloQuantile) <= gpus);
    assert.ok(serversNeeded(1.5 * peak * 1.02, TIDAL.serviceSeconds, TIDAL.sloWait, TIDAL.sloQuantile) > gpus);
  }
  assert.ok(Math.abs(peakRateFor(109) - 4.0) < 0.1, `${peakRateFor(109)}`);
});
