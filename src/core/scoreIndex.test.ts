import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from './rng.ts';
import { ScoreTree } from './scoreIndex.ts';

test('top is the highest score, the earliest position on ties, and follows updates', () => {
  const tree = new ScoreTree(5);
  assert.equal(tree.top(), -1);
  tree.set(3, 7);
  tree.set(1, 7);
  tree.set(4, 2);
  assert.equal(tree.top(), 1);
  tree.set(1, -Infinity);
  assert.equal(tree.top(), 3);
  tree.set(0, 9);
  assert.deepEqual([tree.top(), tree.topScore()], [0, 9]);
});

test('agrees with a linear scan under random updates', () => {
  const rng = Rng.fromSeed(3);
  const n = 37;
  const tree = new ScoreTree(n);
  const scores = new Array<number>(n).fill(-Infinity);
  for (let step = 0; step < 2000; step++) {
    const p = rng.int(0, n - 1);
    const s = rng.int(0, 4) === 0 ? -Infinity : rng.int(0, 10);
    tree.set(p, s);
    scores[p] = s;
    const max = Math.max(...scores);
    assert.equal(tree.top(), max === -Infinity ? -1 : scores.indexOf(max));
  }
});
