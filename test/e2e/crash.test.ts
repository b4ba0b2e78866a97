/** kill -9 the server while jobs are submitted and run: nothing accepted is lost or duplicated, no GPU is shared. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crashRounds } from './crashRounds.ts';

test('server SIGKILLed at random moments: every accepted job exists once, runs once, no GPU double-assigned', async () => {
  const report = await crashRounds({ rounds: 3, jobsPerRound: 24, seed: 7, gpus: '16xH100' });
  assert.deepEqual(report.problems, []);
  assert.equal(report.jobs, 72);
  assert.equal(report.tasksInLedger, 72);
  assert.ok(report.acceptedBeforeKill + report.retried >= 72);
});
