import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHistory, MAX_HISTORY_POINTS } from './serviceHistory.ts';

const paths = (body: unknown, start: number | null = null): string[] => checkHistory(body, start).map((e) => e.path);

test('a history is 2 to MAX points of [t, rate]: times increase, rates are finite and ≥ 0, all before the start', () => {
  assert.deepEqual(checkHistory({ points: [[100, 0], [160, 2.5], [220, 1]] }, 1000), []);
  assert.deepEqual(paths({ points: [[100, 1], [90, 1], [150, -1], [200, 'x'], [250], [300, Infinity]] }), ['points[1][0]', 'points[2][1]', 'points[3][1]', 'points[4]', 'points[5][1]']);
  assert.match(checkHistory({ points: [[100, 1], [90, 1]] }, null)[0]?.message ?? '', /90 does not come after 100: times must increase/);
  assert.deepEqual(paths({ points: [[100, 1], [200, 1], [300, 1]] }, 250), ['points[2][0]']);
  assert.match(checkHistory({ points: [[100, 1], [300, 1]] }, 250)[0]?.message ?? '', /not before the service's start \(250\)/);
  assert.deepEqual(paths({ points: [[0, 1], [10, 1]] }), ['points[0][0]']);
  assert.deepEqual(paths({ points: [[1, 1]] }), ['points']);
  assert.deepEqual(paths({ points: 'a,b' }), ['points']);
  assert.deepEqual(paths({ points: [[1, 1], [2, 1]], extra: 1 }), ['extra']);
  assert.deepEqual(paths([1, 2]), ['(root)']);
  assert.deepEqual(paths({ points: [[1, 1], [40 * 86_400, 1]] }), ['points']);
});

test('too large: more than MAX points is refused before any row is read; many bad rows list 20 and count the rest', () => {
  const big = Array.from({ length: MAX_HISTORY_POINTS + 1 }, (_, i) => [i + 1, 1]);
  const e = checkHistory({ points: big }, null);
  assert.deepEqual(e, [{ path: 'points', message: `${MAX_HISTORY_POINTS + 1} points, at most ${MAX_HISTORY_POINTS}` }]);
  const bad = checkHistory({ points: Array.from({ length: 50 }, (_, i) => [i + 1, -1]) }, null);
  assert.equal(bad.length, 21);
  assert.deepEqual(bad[20], { path: 'points', message: 'and 30 more problem(s)' });
});
