import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuotaLedger } from './quota.ts';

test('a queue without a cohort stays within its nominal quota per model and in total', () => {
  const l = new QuotaLedger([{ name: 'a', nominalQuota: { V100: 4, '*': 6 } }]);
  assert.equal(l.check('a', 'V100', 4), null);
  assert.match(l.check('a', 'V100', 5) ?? '', /would use 5 V100 GPUs, nominal quota 4/);
  l.add('a', 'V100', 4);
  assert.equal(l.check('a', 'K80', 2), null);
  assert.match(l.check('a', 'K80', 3) ?? '', /would use 7 GPUs, nominal quota 6/);
  assert.match(l.check('b', 'K80', 1) ?? '', /does not exist/);
});

test('queues in a cohort borrow unused quota up to their borrowing and the lenders\' lending limits', () => {
  const l = new QuotaLedger([
    { name: 'a', cohort: 'c', nominalQuota: { V100: 4 }, borrowingLimit: { V100: 3 } },
    { name: 'b', cohort: 'c', nominalQuota: { V100: 4 }, lendingLimit: { V100: 2 } },
  ]);
  assert.equal(l.check('a', 'V100', 6), null, 'borrows 2 of b\'s lendable 2');
  assert.match(l.check('a', 'V100', 7) ?? '', /has 2 to lend/);
  l.add('b', 'V100', 3);
  assert.match(l.check('a', 'V100', 6) ?? '', /cohort 'c'/, 'b uses 3 of 4: only 1 left to lend');
  assert.equal(l.check('a', 'V100', 5), null);
  assert.equal(l.borrowed('a', 'V100'), 0);
  l.add('a', 'V100', 5);
  assert.equal(l.borrowed('a', 'V100'), 1);
  assert.match(l.check('b', 'V100', 1, true) ?? 'none', /none/, 'b may still use its own last GPU within nominal');
});

test('no queues configured means no quota', () => {
  const l = new QuotaLedger([]);
  assert.equal(l.enforced, false);
  assert.equal(l.check('anything', 'V100', 1000), null);
});
