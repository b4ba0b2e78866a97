import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bucketMeans, buildCurve, parseCurveSpec, readStepFile } from './curves.ts';
import { SYNTHETIC_CURVES } from './synthetic.ts';

const TRACES = new URL('../../../../shared/traces/genai-2026/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tide-curves-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

test('a step file: each row holds until the next, bucket means, tiled, peak 1', () => {
  // 10 minutes at 2, 10 minutes at 4, repeating every 20 minutes.
  const f = readStepFile(file('steps.csv', 't_seconds,value\n0,2\n600,4\n'));
  assert.equal(f.period, 1200);
  assert.deepEqual([...bucketMeans(f, 6)], [2, 2, 4, 4, 2, 2]);
  const curve = buildCurve({ kind: 'file', path: join(dir, 'steps.csv') }, 1, 0);
  assert.equal(curve.values.length, 288);
  assert.deepEqual([...curve.values.slice(0, 4)], [0.5, 0.5, 1, 1]);
  // Finer than a bucket: averaged.
  const fine = readStepFile(file('fine.csv', 't_seconds,qps\n0,0\n150,1\n300,1\n'));
  assert.equal(bucketMeans(fine, 1)[0], 0.5);
});

test('bad curve files name the file, line and field', () => {
  assert.throws(() => readStepFile(file('neg.csv', 't_seconds,value\n0,1\n300,-2\n')), /neg\.csv:3: field 'value': '-2' is not a number ≥ 0/);
  assert.throws(() => readStepFile(file('order.csv', 't_seconds,value\n0,1\n300,1\n300,2\n')), /order\.csv:4: field 't_seconds': 300 does not come after 300/);
  assert.throws(() => readStepFile(file('zero.csv', 't_seconds,value\n0,0\n300,0\n')), /every value is 0/);
  assert.throws(() => readStepFile(file('novalue.csv', 't_seconds\n0\n')), /novalue\.csv:1: expected a value column/);
  assert.throws(() => readStepFile(join(dir, 'missing.csv')), /no such file/);
});

test('curve A: the GenAI day stretched onto 24 h, tiled, each hour × its own factor', () => {
  const a = buildCurve({ kind: 'A', tracesDir: TRACES }, 3, 0);
  assert.equal(a.values.length, 3 * 288);
  // Within an hour the factor is one: ratios to the next day's same bucket are constant per hour.
  const ratio = (b: number): number => (a.values[b] as number) / (a.values[b + 288] as number);
  for (let h = 0; h < 12; h++) {
    const start = h * 12;
    const bs = Array.from({ length: 12 }, (_, i) => start + i).filter((b) => (a.values[b + 288] as number) > 0.05);
    for (const b of bs) assert.ok(Math.abs(ratio(b) - ratio(bs[0] as number)) < 1e-9, `hour ${h}`);
  }
  const again = buildCurve({ kind: 'A', tracesDir: TRACES }, 3, 0);
  assert.deepEqual(again.values, a.values, 'same seed, same curve');
  assert.notDeepEqual(buildCurve({ kind: 'A', tracesDir: TRACES }, 3, 1).values, a.values);
  // The mean factor is 1: the long-run peak of the base curve is 1.
  const b14 = buildCurve({ kind: 'A', tracesDir: TRACES }, 14, 2);
  assert.ok(Math.max(...b14.values) > 0.9 && Math.max(...b14.values) < 1.6);
});

test('curve B: hourly requests over the file peak, a mean-1 texture per 5 minutes', () => {
  const b = buildCurve({ kind: 'B', tracesDir: TRACES }, 23, 0);
  assert.equal(b.values.length, 23 * 288);
  // Hour 21 × 24 of the file is its peak (436 requests): the texture's mean there is about 1.
  let texture = 0;
  let n = 0;
  for (let hour = 0; hour < 23 * 24; hour++) {
    const slice = b.values.slice(hour * 12, hour * 12 + 12);
    const hourMean = slice.reduce((x, y) => x + y, 0) / 12;
    if (hourMean <= 0.2) continue;
    for (const v of slice) {
      texture += v / hourMean;
      n++;
    }
  }
  assert.ok(n > 100 && Math.abs(texture / n - 1) < 1e-9, 'relative to its hour, the texture averages 1');
  assert.ok(Math.max(...b.values) > 1 && Math.max(...b.values) < 2.5);
});

test('synthetic curves: seeded, non-negative, their own shapes', () => {
  for (const name of SYNTHETIC_CURVES) {
    const c = buildCurve(parseCurveSpec(name, TRACES), 14, 4);
    assert.deepEqual(buildCurve(parseCurveSpec(name, TRACES), 14, 4).values, c.values);
    assert.ok(c.values.every((v) => v >= 0 && v < 1.6), name);
    assert.ok(Math.max(...c.values) > 0.8, name);
  }
  const weekly = buildCurve({ kind: 'synthetic', name: 'weekly' }, 14, 0).values;
  const dayMean = (d: number): number => weekly.slice(d * 288, d * 288 + 288).reduce((a, b) => a + b, 0) / 288;
  assert.ok(dayMean(5) < 0.5 * dayMean(4) && dayMean(6) < 0.5 * dayMean(7), 'weekends are quiet');
  assert.deepEqual(parseCurveSpec('A', '/x'), { kind: 'A', tracesDir: '/x' });
  assert.deepEqual(parseCurveSpec('some.csv', '/x'), { kind: 'file', path: 'some.csv' });
});
