/** The cluster config's schema: today's fields and the new ones (weights, cohorts, per-model quotas, speeds, scheduling). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { checkClusterConfig } from './configSchema.ts';

const messages = (yaml: string): string[] => checkClusterConfig(parse(yaml)).map((e) => `${e.path}: ${e.message}`);

test('a full config with every field is accepted', () => {
  const full = `
adminToken: admin-token-123
agentToken: agent-token-123
gpuSpeeds: {H100: 1.0, A100: 0.6, L40S: 0.45}
tenants:
  - {name: team-a, tokens: [team-a-token], weight: 2}
  - {name: team-b, tokens: null}
  - name: team-c
queues:
  - name: team-a
    cohort: research
    nominalQuota: {H100: 8, A100: 4}
    borrowingLimit: 4
    lendingLimit: {'*': 2}
    tenants: [team-a]
  - {name: default, gpuQuota: 8, borrowingLimit: null}
  - {name: open}
scheduling: {restartSeconds: 60, minRunSeconds: 300, maxPreemptions: 5, usageHalfLifeHours: 24}
`;
  assert.deepEqual(messages(full), []);
  assert.deepEqual(messages('tenants: null\nqueues: []\n'), []);
});

test('every bad field is named, in the order of the file, with the messages config.ts uses', () => {
  const bad = `
adminToken: short
agentToken: same-token-1
colour: blue
tenants:
  - {name: Team_A, tokens: [same-token-1], weight: 0}
  - {name: ok, tokens: ok-token-1, extra: 1}
queues:
  - {name: q, cohort: "bad cohort", nominalQuota: {H100: -1, "bad model": 1}, gpuQuota: 4, lendingLimit: 1.5}
  - {name: q, borrowingLimit: {A100: 2}, tenants: [Nope]}
  - {gpuQuota: 1}
gpuSpeeds: {H100: -1}
scheduling: {restartSeconds: -1, maxPreemptions: 1.5, usageHalfLifeHours: 0, other: 1}
`;
  assert.deepEqual(messages(bad), [
    'colour: unknown field',
    'adminToken: must be a string of at least 8 characters',
    'tenants[0].name: required, lowercase letters, digits, - and _',
    'tenants[0].tokens[0]: the same token as agentToken',
    'tenants[0].weight: must be a number above 0, up to 1000000',
    'tenants[1].extra: unknown field',
    'tenants[1].tokens: must be a list',
    'queues[0].cohort: must be a name (letters, digits, -, _ and .)',
    'queues[0].nominalQuota: give nominalQuota or gpuQuota, not both',
    'queues[0].nominalQuota."bad model": not a GPU model name (or * for any model)',
    'queues[0].nominalQuota.H100: must be a non-negative integer up to 2^53',
    'queues[0].lendingLimit: must be a non-negative integer up to 2^53, or a map of GPU model to one',
    'queues[1].name: queue "q" is defined twice',
    'queues[1].tenants[0]: must be a tenant name (lowercase letters, digits, - and _)',
    'queues[2].name: required',
    'gpuSpeeds.H100: must be a number from 0 to 1000 (0: cannot run jobs)',
    'scheduling.other: unknown field',
    'scheduling.restartSeconds: must be a non-negative number of seconds',
    'scheduling.maxPreemptions: must be a non-negative integer',
    'scheduling.usageHalfLifeHours: must be a number of hours above 0',
  ]);
  assert.deepEqual(messages('queues:\n  - {name: q, gpuQuota: 4, nominalQuota: 8}\n'), ['queues[0].nominalQuota: give nominalQuota or gpuQuota, not both']);
  assert.deepEqual(messages('queues:\n  - {name: q, gpuQuota: {H100: 2}}\n'), ['queues[0].gpuQuota: must be a number (per-model quotas go in nominalQuota)']);
  assert.deepEqual(messages('- a\n'), ['(root): must be a map with adminToken, agentToken, tenants, queues, gpuSpeeds, scheduling, idle, power, energy, budgets, limits']);
});

test('the power section: figures over the defaults are accepted; bad ones are named by path', () => {
  const good = `
power:
  gpus:
    H100: {idleWithMemoryWatts: 110, loadFraction: 0.8}
    Ascend 910B: {tdpWatts: 310}
    MI300X:
      tdpWatts: 750
      idleWatts: 90
      capCurve: [{fraction: 0.6, throughput: 0.9, energy: 0.85}, {fraction: 1, throughput: 1, energy: 1}]
  node: {baseWatts: 1200, suspendedWatts: 8}
`;
  assert.deepEqual(messages(good), []);
  assert.deepEqual(messages('power: {gpus: null, node: null}\n'), []);
  assert.deepEqual(messages('power: {gpus: {H100: {idleWatts: -1, colour: red}}, node: {baseWatts: big}, extra: 1}\n'), [
    'power.extra: unknown field',
    'power.gpus.H100.idleWatts: must be a number of watts from 0 to 1000000',
    'power.gpus.H100.colour: unknown field',
    'power.node.baseWatts: must be a number of watts from 0 to 1000000',
  ]);
  // What the schema cannot say: idle at or above TDP, a curve that does not end at full power.
  assert.deepEqual(messages('power: {gpus: {H100: {idleWatts: 900}, X1: {capCurve: [{fraction: 0.5, throughput: 0.9, energy: 0.8}]}}}\n'), [
    'power.gpus.H100.idleWatts: must be from 0 to below tdpWatts (700)',
    'power.gpus.X1.capCurve: must end with a point at fraction 1',
  ]);
});
