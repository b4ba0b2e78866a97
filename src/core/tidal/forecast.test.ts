import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BucketRates } from './buckets.ts';
import { ErrorQuantile } from './errorQuantile.ts';
import { SeasonalForecaster } from './forecast.ts';

const PER_DAY = 288;
const daily = (b: number): number => 0.1 + Math.max(0, Math.sin((2 * Math.PI * (b % PER_DAY)) / PER_DAY)) * 3;

test('a daily pattern seen once is forecast the next day, rises included', () => {
  const f = new SeasonalForecaster();
  for (let b = 0; b < PER_DAY; b++) {
    assert.equal(f.profile(b), undefined, 'no profile before the bucket of the day was seen');
    f.observe(b, daily(b));
  }
  for (let b = PER_DAY; b < 2 * PER_DAY; b++) {
    const p = f.predict(b);
    assert.ok(Math.abs(p - daily(b)) < 1e-9 + 0.02 * daily(b), `bucket ${b}: ${p} vs ${daily(b)}`);
    f.observe(b, daily(b));
  }
});

test('a busier day than the profile: the recent level scales the forecast', () => {
  const f = new SeasonalForecaster();
  for (let b = 0; b < 3 * PER_DAY; b++) f.observe(b, daily(b));
  const start = 3 * PER_DAY + 60;
  for (let b = 3 * PER_DAY; b < start; b++) f.observe(b, 2 * daily(b));
  const p = f.predict(start);
  assert.ok(p > 1.6 * daily(start) && p < 2.4 * daily(start), `forecast ${p} for a day running at twice ${daily(start)}`);
});

test('weekly seasonality: quiet weekends are learned and told apart from weekdays', () => {
  const f = new SeasonalForecaster();
  const weekly = (b: number): number => daily(b) * (Math.floor(b / PER_DAY) % 7 >= 5 ? 0.1 : 1);
  const weeks = 3;
  for (let b = 0; b < weeks * 7 * PER_DAY; b++) f.observe(b, weekly(b));
  // The next Saturday, at its busiest hour: the daily profile alone would say ~0.4 of a weekday.
  const saturday = weeks * 7 * PER_DAY + 5 * PER_DAY;
  for (let b = weeks * 7 * PER_DAY; b < saturday + 72; b++) f.observe(b, weekly(b));
  const noon = saturday + 72;
  assert.ok(Math.abs(f.predict(noon) - weekly(noon)) < 0.3 * daily(noon), `saturday ${f.predict(noon)} vs ${weekly(noon)}`);
});

test('observations come in order; a forecaster sees only the past', () => {
  const f = new SeasonalForecaster();
  f.observe(5, 1);
  assert.throws(() => f.observe(5, 1), /not after/);
  assert.throws(() => f.observe(6, -1), /rate/);
  // Forecasts for the future are the same whatever the future will be: nothing after bucket 5 was observed.
  assert.equal(f.predict(7), f.predict(7));
  assert.equal(f.predict(1000), 1, 'persistence before a profile');
});

test('ErrorQuantile: the quantile of what was added, old samples fading', () => {
  const e = new ErrorQuantile(1e9);
  assert.equal(e.quantile(0.99), 1, 'no samples: no margin');
  for (let i = 1; i <= 1000; i++) e.add(1 + i / 1000); // ratios 1.001 … 2
  assert.ok(Math.abs(e.quantile(0.9) - 1.9) < 0.02, `${e.quantile(0.9)}`);
  assert.ok(Math.abs(e.quantile(0.5) - 1.5) < 0.02);
  const fading = new ErrorQuantile(10);
  for (let i = 0; i < 200; i++) fading.add(3);
  for (let i = 0; i < 200; i++) fading.add(1.1);
  assert.ok(fading.quantile(0.99) < 1.2, 'the old large errors have faded');
  assert.throws(() => fading.add(0), /ratio/);
});

test('BucketRates splits intervals across bucket boundaries by time', () => {
  const r = new BucketRates(300);
  const out: [number, number][] = [];
  const emit = (b: number, rate: number): void => void out.push([b, rate]);
  for (let t = 30; t <= 300; t += 30) r.add({ now: t, arrivals: 30, intervalSeconds: 30 }, emit); // 1/s
  assert.deepEqual(out, [[0, 1]]);
  r.add({ now: 420, arrivals: 240, intervalSeconds: 120 }, emit); // 2/s over 300–420
  r.add({ now: 660, arrivals: 240, intervalSeconds: 240 }, emit); // 1/s over 420–660: bucket 1 ends at 600
  assert.equal(out.length, 2);
  assert.equal(out[1]?.[0], 1);
  assert.ok(Math.abs((out[1]?.[1] ?? 0) - (240 + 180) / 300) < 1e-9);
});
