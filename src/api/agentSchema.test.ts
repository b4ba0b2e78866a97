/** The agent body schema: what real agents send passes unchanged; hostile bodies get every bad field named. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGpuSpec, simulatedGpus } from '../agent/gpus.ts';
import { MAX_NODE_GPUS, MAX_REPORTS, parseHeartbeat, parseRegistration } from './agentSchema.ts';

const paths = (r: { ok: boolean; errors?: { path: string }[] }): string[] => (r.ok ? [] : (r.errors ?? []).map((e) => e.path));

test('what the agent sends is accepted as is (simulated GPUs, reports with reason, message, startedAt)', async () => {
  const reg = { id: 'local', address: 'http://127.0.0.1:8471', cpuMilli: 64000, memoryMib: 524288, gpus: parseGpuSpec('4xA100,2xT4'), simulated: true };
  assert.deepEqual(parseRegistration(reg), { ok: true, value: reg });
  const telemetry = await simulatedGpus('8xH100').sample([1000, 500], 1_700_000_000_000);
  const reports = [
    { runId: '3.0.0', state: 'running', pid: 4242, exitCode: null, startedAt: 1_700_000_000_000 },
    { runId: '4.1.2', state: 'exited', pid: -1, exitCode: 127, reason: 'start-failed', message: 'spawn E2BIG' },
    { runId: '5.0.0', state: 'exited', pid: null, exitCode: null, reason: 'fenced' },
  ];
  assert.deepEqual(parseHeartbeat({ node: 'local', reports, telemetry }), { ok: true, value: { node: 'local', reports, telemetry } });
});

test('a hostile heartbeat: each bad field named, none passed on', () => {
  const r = parseHeartbeat({
    node: 'n1 ',
    reports: [null, { runId: 7, state: 'zombie', pid: 'x', exitCode: 1e300 }, { runId: '1.0.0', state: 'running' }, { runId: '1.0.0', state: 'exited', exitCode: -1, reason: 'nope', message: 5 }],
    telemetry: [{ index: 0, utilization: Number.NaN, memoryUsedMib: 'arguments', powerWatts: Number.POSITIVE_INFINITY }, { index: 0, utilization: 101, memoryUsedMib: -1, powerWatts: 1 }, 'x'],
  });
  // In the order of the body; a non-object item is named once, not with each field it lacks.
  assert.deepEqual(paths(r), [
    'node', 'reports[0]', 'reports[1].runId', 'reports[1].state', 'reports[1].pid', 'reports[1].exitCode',
    'reports[3].runId', 'reports[3].exitCode', 'reports[3].reason', 'reports[3].message',
    'telemetry[0].utilization', 'telemetry[0].memoryUsedMib', 'telemetry[0].powerWatts', 'telemetry[1].index', 'telemetry[1].utilization', 'telemetry[1].memoryUsedMib',
    'telemetry[2]',
  ]);
  assert.ok(!r.ok && r.errors.some((e) => e.path === 'reports[3].runId' && e.message === 'a second report for run 1.0.0 (first: reports[2])'));
  assert.deepEqual(paths(parseHeartbeat({ node: 'n1', reports: [], telemetry: Array.from({ length: 100_000 }, (_, i) => ({ index: i })) })), ['telemetry']);
  assert.deepEqual(paths(parseHeartbeat({ node: 'n1', reports: Array.from({ length: MAX_REPORTS + 1 }, () => ({})), telemetry: [] })), ['reports']);
  assert.deepEqual(paths(parseHeartbeat([])), ['(root)']);
  assert.deepEqual(paths(parseHeartbeat({})), ['node', 'reports', 'telemetry']);
});

test('a hostile registration: types, ranges, URLs and GPU lists are checked', () => {
  const r = parseRegistration({ id: '-x', address: 'javascript:alert(1)', cpuMilli: -1, memoryMib: 2 ** 60, gpus: [null, { index: 5, model: '', memoryMib: 'big', uuid: 'u\n' }], simulated: 'yes' });
  assert.deepEqual(paths(r), ['id', 'address', 'cpuMilli', 'memoryMib', 'gpus[0]', 'gpus[1].index', 'gpus[1].model', 'gpus[1].memoryMib', 'gpus[1].uuid', 'simulated']);
  const many = Array.from({ length: MAX_NODE_GPUS + 1 }, (_, index) => ({ index, model: 'H100', memoryMib: 1, uuid: '' }));
  assert.deepEqual(paths(parseRegistration({ id: 'a', address: 'http://a:1', cpuMilli: 0, memoryMib: 0, gpus: many })), ['gpus']);
});

test('task reports carry progress (non-negative safe integers); a bad progress field is named', () => {
  const reports = [
    { runId: '1.0.0', state: 'running', pid: 10, exitCode: null, progress: { step: 120, totalSteps: 1000, checkpointStep: 100 } },
    { runId: '2.0.0', state: 'running', pid: 11, exitCode: null, progress: { step: 0 } },
  ];
  assert.deepEqual(parseHeartbeat({ node: 'n1', reports, telemetry: [] }), { ok: true, value: { node: 'n1', reports, telemetry: [] } });
  const bad = parseHeartbeat({ node: 'n1', reports: [{ runId: 'a', state: 'running', progress: { step: -1, totalSteps: 1.5 } }, { runId: 'b', state: 'running', progress: 'half' }, { runId: 'c', state: 'running', progress: { totalSteps: 2 } }], telemetry: [] });
  assert.deepEqual(paths(bad), ['reports[0].progress.step', 'reports[0].progress.totalSteps', 'reports[1].progress', 'reports[2].progress.step']);
  assert.ok(!bad.ok && bad.errors[0]?.message === `must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
  // A newer agent's extra fields are ignored and not passed on.
  const extra = parseHeartbeat({ node: 'n1', reports: [{ runId: 'a', state: 'exited', exitCode: 0, gpuSeconds: 5 }], telemetry: [], version: 2 });
  assert.deepEqual(extra, { ok: true, value: { node: 'n1', reports: [{ runId: 'a', state: 'exited', pid: null, exitCode: 0 }], telemetry: [] } });
});
