import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBatch, parsePolicyOptions } from './benchTidal.ts';

test('--set: key=value for every policy, policy.key=value for one', () => {
  assert.deepEqual(parsePolicyOptions('--set', ['margin=0.25', 'tide.quantile=0.99', 'oracle.waitTail=2e-5'], ['reactive', 'tide', 'oracle']), {
    reactive: { margin: 0.25 },
    tide: { margin: 0.25, quantile: 0.99 },
    oracle: { margin: 0.25, waitTail: 2e-5 },
  });
  assert.throws(() => parsePolicyOptions('--set', ['tide.quantile=lots'], ['tide']), /--set: 'tide.quantile=lots': the value must be a number/);
  assert.throws(() => parsePolicyOptions('--set', ['magic.x=1'], ['tide']), /unknown policy 'magic'/);
  assert.throws(() => parsePolicyOptions('--set', ['=1'], ['tide']), /not key=value/);
});

test('--batch: TASKSxSECONDS@HOURS, released when scoring starts, due within the run', () => {
  assert.deepEqual(parseBatch('--batch', '1000000x10@48', 7 * 86_400, 14 * 86_400), { tasks: 1_000_000, taskSeconds: 10, releaseAt: 604_800, deadlineAt: 604_800 + 48 * 3600 });
  assert.throws(() => parseBatch('--batch', 'many', 0, 86_400), /TASKSxSECONDS@HOURS/);
  assert.throws(() => parseBatch('--batch', '10x10@48', 0, 86_400), /deadline .* within the run/);
  assert.throws(() => parseBatch('--batch', '0x10@1', 0, 86_400), /tasks/);
});
