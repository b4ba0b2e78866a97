/** parseConfig: regressions for what test/fuzz found (each failed before its fix). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../util/errors.ts';
import { parseConfig, schedulingOptions } from './config.ts';

const refused = (text: string, re: RegExp): void => {
  assert.throws(() => parseConfig(text, 'cluster.yaml'), (e: unknown) => e instanceof UserError && re.test(e.message));
};

test('a token given to two principals is refused, naming both places (it silently became the last one\'s)', () => {
  refused('tenants:\n  - name: a\n    tokens: [token-aaaaaaaa]\n  - name: b\n    tokens: [token-aaaaaaaa]\n', /^cluster\.yaml: tenants\[1\]\.tokens\[0\]: the same token as tenants\[0\]\.tokens\[0\]$/);
  refused('adminToken: token-aaaaaaaa\ntenants:\n  - name: a\n    tokens: [token-aaaaaaaa]\n', /tenants\[0\]\.tokens\[0\]: the same token as adminToken/);
  refused('adminToken: token-aaaaaaaa\nagentToken: token-aaaaaaaa\n', /agentToken: the same token as adminToken/);
  assert.equal(parseConfig('adminToken: token-aaaaaaaa\ntenants:\n  - name: a\n    tokens: [token-bbbbbbbb]\n', 'cluster.yaml').tenants[0]?.tokens[0], 'token-bbbbbbbb');
});

test('a quota past 2^53 is refused (it was accepted and stored inexactly)', () => {
  refused('queues:\n  - name: q\n    borrowingLimit: 9007199254740992\n', /queues\[0\]\.borrowingLimit: must be a non-negative integer/);
});

test('an unknown key that is empty, spaced or odd is quoted, so the error shows which one', () => {
  refused('adminToken: token-aaaaaaaa\n" ei$6b": 1\n', /^cluster\.yaml: " ei\$6b": unknown field$/);
  refused('"": 1\n', /^cluster\.yaml: "": unknown field$/);
  refused('queues:\n  - name: q\n    " x": 1\n', /^cluster\.yaml: queues\[0\]\." x": unknown field$/);
  refused('colour: blue\n', /^cluster\.yaml: colour: unknown field$/);
});

test('gpuSpeeds, tenant weights, the scheduling section and queues with cohorts and per-model quotas are read', () => {
  const c = parseConfig(
    [
      'gpuSpeeds: {H100: 1.0, A100: 0.6, L40S: 0.45}',
      'tenants:',
      '  - {name: team-a, tokens: [token-aaaaaaaa], weight: 2}',
      '  - {name: team-b}',
      'queues:',
      '  - name: team-a',
      '    cohort: research',
      '    nominalQuota: {H100: 8, A100: 4}',
      '    borrowingLimit: 4',
      '    lendingLimit: {H100: 2}',
      '    tenants: [team-a]',
      '  - {name: team-b, gpuQuota: 8}',
      '  - {name: team-c, nominalQuota: 6, borrowingLimit: {A100: 1}}',
      'scheduling: {restartSeconds: 60, minRunSeconds: 300, maxPreemptions: 5, usageHalfLifeHours: 12, arrivalsPerCycle: 2500}',
    ].join('\n'),
    'cluster.yaml',
  );
  assert.deepEqual(c.gpuSpeeds, { H100: 1, A100: 0.6, L40S: 0.45 });
  assert.deepEqual(c.tenants, [{ name: 'team-a', tokens: ['token-aaaaaaaa'], weight: 2 }, { name: 'team-b', tokens: [] }]);
  assert.deepEqual(c.queues, [
    { name: 'team-a', gpuQuota: 12, borrowingLimit: 4, cohort: 'research', nominalQuota: { H100: 8, A100: 4 }, lendingLimits: { H100: 2 }, tenants: ['team-a'] },
    { name: 'team-b', gpuQuota: 8, borrowingLimit: null },
    { name: 'team-c', gpuQuota: 6, borrowingLimit: null, borrowingLimits: { A100: 1 } },
  ]);
  assert.deepEqual(c.scheduling, { restartSeconds: 60, minRunSeconds: 300, maxPreemptions: 5, usageHalfLifeHours: 12, arrivalsPerCycle: 2500 });
  assert.deepEqual(schedulingOptions(c), { restartSeconds: 60, minRunSeconds: 300, maxPreemptions: 5 }, 'the half-life is the adapter\'s, not a scheduler option');
  assert.deepEqual(schedulingOptions(parseConfig('', 'cluster.yaml')), { restartSeconds: 60 }, 'a live restart is never free');
  assert.deepEqual(schedulingOptions(parseConfig('scheduling: {restartSeconds: 0}\n', 'cluster.yaml')), { restartSeconds: 0 }, 'unless the cluster says so');
});

test('each bad new field is refused, naming it', () => {
  refused('gpuSpeeds: {H100: -1}\n', /^cluster\.yaml: gpuSpeeds\.H100: must be a number from 0 to 1000/);
  refused('gpuSpeeds: {H100: fast}\n', /gpuSpeeds\.H100: must be a number/);
  refused('gpuSpeeds: [H100]\n', /gpuSpeeds: must be a map/);
  refused('tenants:\n  - {name: a, weight: 0}\n', /tenants\[0\]\.weight: must be a number above 0/);
  refused('tenants:\n  - {name: a, wieght: 2}\n', /tenants\[0\]\.wieght: unknown field/);
  refused('queues:\n  - {name: q, gpuQuota: 2, nominalQuota: 3}\n', /queues\[0\]\.nominalQuota: give nominalQuota or gpuQuota, not both/);
  refused('queues:\n  - {name: q, nominalQuota: {H100: 1.5}}\n', /queues\[0\]\.nominalQuota\.H100: must be a non-negative integer/);
  refused('queues:\n  - {name: q, lendingLimit: many}\n', /queues\[0\]\.lendingLimit: must be a non-negative integer up to 2\^53, or a map/);
  refused('queues:\n  - {name: q, borrowingLimit: {"a b": 1}}\n', /queues\[0\]\.borrowingLimit\."a b": not a GPU model name/);
  refused('queues:\n  - {name: q, cohort: "x y"}\n', /queues\[0\]\.cohort: must be a name/);
  refused('queues:\n  - {name: q, gpuQuota: {H100: 1}}\n', /queues\[0\]\.gpuQuota: must be a number \(per-model quotas go in nominalQuota\)/);
  refused('scheduling: {restartSeconds: -1}\n', /scheduling\.restartSeconds: must be a non-negative number of seconds/);
  refused('scheduling: {maxPreemptions: 1.5}\n', /scheduling\.maxPreemptions: must be a non-negative integer/);
  refused('scheduling: {usageHalfLifeHours: 0}\n', /scheduling\.usageHalfLifeHours: must be a number of hours above 0/);
  refused('scheduling: {arrivalsPerCycle: 0}\n', /scheduling\.arrivalsPerCycle: must be a positive integer/);
  refused('scheduling: {arrivalsPerCycle: 2.5}\n', /scheduling\.arrivalsPerCycle: must be a positive integer/);
  refused('scheduling: {quantum: 5}\n', /scheduling\.quantum: unknown field/);
  refused('scheduling: 5\n', /scheduling: must be a map/);
});

test('the power section is read and merged over the built-in power model', async () => {
  const { powerModel } = await import('./config.ts');
  const { gpuPower, nodeBaseWatts } = await import('../core/energy/powerModel.ts');
  const c = parseConfig('power:\n  gpus:\n    H100: {idleWithMemoryWatts: 110}\n  node: {baseWatts: 1200}\n', 'cluster.yaml');
  assert.deepEqual(c.power, { gpus: { H100: { idleWithMemoryWatts: 110 } }, node: { baseWatts: 1200 } });
  const m = powerModel(c);
  assert.equal(gpuPower(m, 'NVIDIA H100 80GB HBM3').idleWithMemoryWatts, 110);
  assert.equal(gpuPower(m, 'NVIDIA H100 80GB HBM3').tdpWatts, 700);
  assert.equal(nodeBaseWatts(m, { cpuMilli: 1000, memoryMib: 1024 }), 1200);
  assert.equal(powerModel(parseConfig('', 'cluster.yaml')).node.baseWatts, undefined);
  refused('power: {gpus: {H100: {idleWatts: 900}}}\n', /^cluster\.yaml: power\.gpus\.H100\.idleWatts: must be from 0 to below tdpWatts \(700\)/);
  refused('power: {node: {baseWatts: -5}}\n', /power\.node\.baseWatts: must be a number of watts/);
});
