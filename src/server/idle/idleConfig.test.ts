import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../../api/spec.ts';
import { UserError } from '../../util/errors.ts';
import { parseConfig } from '../config.ts';
import { DEFAULT_IDLE_CONFIG, idleConfigOf, idlePolicyOf } from './idleConfig.ts';
import { jobIdleView, shouldReclaim } from './idleReport.ts';

const spec = (over: Record<string, unknown>): JobSpec => {
  const r = parseJobSpec({ name: 'j', tasks: [{ gpus: 1, command: 'sleep 1' }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};

test('the idle section: defaults filled, fractions of a minute allowed, every bad field named', () => {
  assert.deepEqual(idleConfigOf(parseConfig('adminToken: admin-token-1\n', 'c.yaml').idle), DEFAULT_IDLE_CONFIG);
  const c = parseConfig('idle:\n  afterMinutes: 0.1\n  action: reclaim\n', 'c.yaml');
  assert.deepEqual(idleConfigOf(c.idle), { ...DEFAULT_IDLE_CONFIG, afterMinutes: 0.1, action: 'reclaim' });
  assert.throws(
    () => parseConfig('idle:\n  afterMinutes: 0\n  utilizationPercent: 101\n  memoryPercent: -1\n  action: kill\n  jobsMayOptOut: 1\n  every: 5\n', 'c.yaml'),
    (e: unknown) =>
      e instanceof UserError &&
      /^c\.yaml: idle\.every: unknown field; idle\.afterMinutes: must be a number of minutes above 0 .*; idle\.utilizationPercent: must be a percentage from 0 to 100; idle\.memoryPercent: must be a percentage from 0 to 100; idle\.action: must be report or reclaim; idle\.jobsMayOptOut: must be true or false$/.test(e.message),
  );
  assert.throws(() => parseConfig('idle: 30\n', 'c.yaml'), /idle: must be a map \(afterMinutes, utilizationPercent, memoryPercent, action, jobsMayOptOut\)/);
});

test("a job's idlePolicy: validated, kept when given, absent otherwise", () => {
  assert.equal(spec({ idlePolicy: 'reclaim' }).idlePolicy, 'reclaim');
  assert.equal('idlePolicy' in spec({}), false);
  const bad = parseJobSpec({ name: 'j', idlePolicy: 'ignore', tasks: [{ gpus: 1, command: 'x' }] });
  assert.deepEqual(bad.ok ? [] : bad.errors, [{ path: 'idlePolicy', message: 'must be report or reclaim' }]);
});

test('the effective policy: the job, else report for inference, else the cluster; opting out only where allowed', () => {
  const report = idleConfigOf({ action: 'report' });
  const reclaim = idleConfigOf({ action: 'reclaim' });
  const strict = idleConfigOf({ action: 'reclaim', jobsMayOptOut: false });
  const table: [Record<string, unknown>, string, string, string][] = [
    // job spec, under report, under reclaim, under reclaim without opt-out
    [{}, 'report', 'reclaim', 'reclaim'],
    [{ idlePolicy: 'report' }, 'report', 'report', 'reclaim'],
    [{ idlePolicy: 'reclaim' }, 'reclaim', 'reclaim', 'reclaim'],
    [{ kind: 'inference' }, 'report', 'report', 'report'],
    [{ kind: 'inference', idlePolicy: 'report' }, 'report', 'report', 'report'],
    [{ kind: 'inference', idlePolicy: 'reclaim' }, 'reclaim', 'reclaim', 'reclaim'],
    [{ kind: 'training' }, 'report', 'reclaim', 'reclaim'],
  ];
  for (const [over, a, b, c] of table) assert.deepEqual([idlePolicyOf(spec(over), report), idlePolicyOf(spec(over), reclaim), idlePolicyOf(spec(over), strict)], [a, b, c], JSON.stringify(over));
});

test('a job is reclaimed only when every GPU it holds is idle past the threshold', () => {
  const c = idleConfigOf({ afterMinutes: 1, action: 'reclaim' });
  const job = { id: '7', name: 'j', tenant: 'a', queue: 'default', kind: 'batch' as const, state: 'running' as const, attempt: 2, spec: spec({}) };
  const held = [0, 1].map((gpu) => ({ task: 0, node: 'n1', gpu, gpuMilli: 1000 }));
  const streak = (gpu: number, since: number, crossedAt: number | null, attempt = 2) => ({ jobId: '7', task: 0, attempt, gpu, node: 'n1', tenant: 'a', gpuMilli: 1000, since, lastAt: since + 70_000, crossedAt });
  const both = jobIdleView(job, held, [streak(0, 0, 60_000), streak(1, 5000, 65_000)], c, true);
  assert.equal(both && shouldReclaim(both), true);
  assert.deepEqual([both?.idleGpus, both?.idleSince, both?.idleSeconds, both?.reclaimAt], [2, 0, 70, 65_000]);
  const one = jobIdleView(job, held, [streak(0, 0, 60_000), streak(1, 50_000, null)], c, true);
  assert.deepEqual([one?.idleGpus, one?.allIdle, one?.gpus.length, one?.reclaimAt, one && shouldReclaim(one)], [1, false, 1, 110_000, false]);
  assert.equal(jobIdleView(job, held, [streak(0, 0, 60_000)], c, true)?.reclaimAt, null, 'GPU 1 shows work: no reclaim in sight');
  assert.equal(jobIdleView(job, held, [streak(0, 0, 60_000, 1), streak(1, 0, 60_000, 1)], c, true), null, "an earlier attempt's streaks are not this one's");
  assert.equal(jobIdleView(job, held, [streak(0, 0, null)], c, true), null, 'not yet past the threshold');
  assert.equal(jobIdleView(job, held, [streak(0, 0, null)], c, false)?.gpus.length, 1, 'unless asked for all');
  const reported = jobIdleView({ ...job, spec: spec({ idlePolicy: 'report' }) }, held, [streak(0, 0, 60_000), streak(1, 5000, 65_000)], c, true);
  assert.equal(reported && shouldReclaim(reported), false, 'policy report: never reclaimed');
});
