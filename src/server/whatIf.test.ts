/**
 * What-if: the cluster and workload made from the live state read back through `tide sim`'s own
 * file readers, and a real run in the worker thread over HTTP (admin only, errors on fields).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Job, NodeInfo } from '../api/types.ts';
import { readClusterFile, readWorkloadFile } from '../sim/scenarioFiles.ts';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';
import { clusterOf, workloadOf } from './whatIf.ts';

const node: NodeInfo = { id: 'a', state: 'ready', address: '', cpuMilli: 64_000, memoryMib: 512_000, simulated: true, lastHeartbeat: 0, cpuUsedMilli: 0, memoryUsedMib: 0, gpuUsedMilli: [0, 0, 0, 0], telemetry: [], gpus: [0, 1, 2, 3].map((i) => ({ index: i, model: 'H100', memoryMib: 80_000, uuid: `u${i}` })) };
const job = (id: string, gpus: number, tasks: number, created: number, started: number | null, finished: number | null): Job => ({
  id, tenant: 't1', name: `j${id}`, queue: 'q1', priority: 0, kind: 'training', state: 'succeeded', reason: null, attempt: 0, gpus, tasks, createdAt: created, startedAt: started, finishedAt: finished,
  estimatedStart: null, clientKey: null, runSeconds: 0, progress: null,
  spec: { name: `j${id}`, queue: 'q1', priority: 0, kind: 'training', preemptible: true, checkpoint: true, array: 1, groups: [], gracePeriodSeconds: 10 },
});

test('the cluster and the past jobs become files tide sim reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-whatif-test-'));
  writeFileSync(join(dir, 'c.yaml'), clusterOf([node, { ...node, id: 'gone', state: 'lost' }], [{ name: 'q1', gpuQuota: 2, borrowingLimit: 1 }], ['q2']));
  const cluster = readClusterFile(join(dir, 'c.yaml'));
  assert.equal(cluster.nodes.length, 1, 'the lost node is left out');
  assert.deepEqual(cluster.queues.map((q) => [q.name, q.nominalQuota['*']]), [['q1', 2], ['q2', 4]]);
  writeFileSync(join(dir, 'w.yaml'), workloadOf([job('1', 4, 2, 10_000, 12_000, 72_000), job('2', 0.5, 1, 20_000, null, null), job('3', 0.5, 1, 30_000, 31_000, 32_000)], ['H100', 'A100']));
  const jobs = readWorkloadFile(join(dir, 'w.yaml'));
  assert.deepEqual(jobs.map((j) => j.id), ['job-1', 'job-3'], 'a job that never ran is left out');
  assert.deepEqual(jobs.map((j) => j.submitTime), [0, 20], 'submitted relative to the first');
  assert.throws(() => workloadOf([job('2', 1, 1, 0, null, null)], ['H100']), /no job ran/);
});

let server: RunningServer;
before(async () => {
  server = await memoryServer({ adminToken: 'wi-admin', agentToken: 'wi-agent', tickMs: 60_000, tenants: { t1: ['wi-t1'] } });
});
after(async () => server.close());

test('POST /v1/whatif runs two schedulers in a worker and answers their summaries and the chart', async () => {
  const call = (token: string, body: unknown) => httpCall(server.url, 'POST', '/v1/whatif', token, body);
  assert.equal((await call('wi-t1', { policies: ['fifo', 'tide'] })).status, 403, 'admin only');
  const bad = await call('wi-admin', { policies: ['fifo', 'nope'], to: -1 });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json.error.fields.map((f: any) => f.path), ['policies[1]', 'to']);
  // No node and no finished job here: the current cluster cannot be used, an uploaded one can.
  assert.equal((await call('wi-admin', { policies: ['fifo', 'tide'] })).status, 409);
  const policies = (await httpCall(server.url, 'GET', '/v1/whatif', 'wi-admin')).json.policies as string[];
  assert.ok(policies.includes('fifo') && policies.includes('tide'));
  const cluster = 'nodes:\n  - { name: h, count: 1, gpus: 4, model: H100 }\n';
  const workload = `jobs:\n${[0, 1, 2, 3, 4, 5].map((i) => `  - { id: j${i}, submit: ${i * 60}, gpus: ${1 + (i % 4)}, totalSteps: ${3600 * (1 + i)}, throughput: { H100: 1 } }`).join('\n')}\n`;
  const r = await call('wi-admin', { policies: ['fifo', 'tide'], cluster, workload });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json.report.policies).sort(), ['fifo', 'tide']);
  assert.equal(r.json.report.policies.fifo.jobs, 6);
  assert.ok(r.json.report.policies.fifo.avgJctHours > 0);
  assert.match(r.json.svg, /^<svg[\s\S]*GPUs allocated over time[\s\S]*<\/svg>\s*$/);
  const broken = await call('wi-admin', { policies: ['fifo', 'tide'], cluster, workload: 'jobs: [ { id: x } ]' });
  assert.equal(broken.status, 400);
  assert.match(broken.json.error.message, /simulation: .*throughput/);
});
