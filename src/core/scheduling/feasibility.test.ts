import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeId, type NodeSpec } from '../model.ts';
import { nodeShapes, shortfall } from './feasibility.ts';
import type { TaskGroupSpec } from './model.ts';

const h100 = (n: number, cpu = 64, memGi = 512): NodeSpec => ({ id: nodeId(`h${n}`), cpuMilli: cpu * 1000, memoryMib: memGi * 1024, gpus: Array.from({ length: n }, () => 'H100') });
const shapes = nodeShapes([h100(8), h100(8), { id: nodeId('a'), cpuMilli: 32_000, memoryMib: 128 * 1024, gpus: ['A100', 'A100', 'A100', 'A100'] }, { id: nodeId('c'), cpuMilli: 16_000, memoryMib: 64 * 1024, gpus: [] }]);
const group = (task: Partial<TaskGroupSpec['task']>, replicas = 1, name = 'worker'): TaskGroupSpec => ({
  name,
  replicas,
  task: { cpuMilli: 1000, memoryMib: 1024, gpuCount: 1, gpuMilli: 1000, allowedModels: [], ...task },
});
const both = ['A100', 'H100'];

test('nodes of one capacity count as one shape', () => {
  assert.equal(shapes.length, 3);
  assert.deepEqual(shapes.map((s) => s.count), [2, 1, 1]);
});

test('a job some empty node could hold passes: whole GPUs, a fraction, CPU only, a gang over nodes', () => {
  assert.equal(shortfall([group({ gpuCount: 8 })], both, shapes), null);
  assert.equal(shortfall([group({ gpuCount: 1, gpuMilli: 500 })], both, shapes), null);
  assert.equal(shortfall([group({ gpuCount: 0, gpuMilli: 0, cpuMilli: 60_000 })], both, shapes), null);
  assert.equal(shortfall([group({ gpuCount: 8 }, 2)], both, shapes), null);
  assert.equal(shortfall([group({ gpuCount: 4, allowedModels: ['A100'] })], ['A100'], shapes), null);
});

test('each resource no node has is named, with the largest node', () => {
  const cases: [TaskGroupSpec, string, string][] = [
    [group({ gpuCount: 9 }), 'gpus', '9 GPUs on one node, but the largest node has 8 (H100)'],
    [group({ cpuMilli: 10_000_000 }), 'cpu', '10000 cores, the largest node has 64'],
    [group({ cpuMilli: 500, memoryMib: 600 * 1024 }), 'memory', '600Gi of memory, the largest node has 512Gi'],
    [group({ allowedModels: ['B200'] }), 'gpuModels', 'no node has a B200 GPU (they have A100, H100)'],
    // Each alone fits some node, but no node has 4 A100s and 40 cores.
    [group({ gpuCount: 4, cpuMilli: 40_000, allowedModels: ['A100'] }), 'task', 'no node has 4 A100 GPUs, 40 cores and 1Gi of memory at once'],
    // Three tasks of 8 GPUs, two nodes of 8.
    [group({ gpuCount: 8 }, 3), 'replicas', '3 tasks must run at once, but the nodes can hold at most 2'],
  ];
  for (const [g, resource, message] of cases) {
    const models = g.task.allowedModels.length > 0 ? g.task.allowedModels.filter((m) => both.includes(m)) : both;
    assert.deepEqual(shortfall([g], models, shapes), { group: 0, resource, message }, message);
  }
  assert.equal(shortfall([group({ gpuCount: 5 })], ['A100'], shapes)?.message, '5 GPUs on one node, but the largest node has 4 (A100)');
});

test('a gang runs on one model: groups that fit only different models never fit together; the failing group is named', () => {
  const s = shortfall([group({ gpuCount: 8 }, 1, 'big'), group({ gpuCount: 1, cpuMilli: 40_000 }, 1, 'side')], ['A100'], shapes);
  assert.equal(s?.group, 0);
  assert.equal(s?.resource, 'gpus');
  const mixed = [group({ gpuCount: 8, allowedModels: ['H100'] }, 1, 'big'), group({ gpuCount: 4, allowedModels: ['A100'] }, 1, 'side')];
  assert.equal(shortfall(mixed, both, shapes)?.message, 'no one GPU model has room for all its task groups (a job runs on one model)');
  // As the server passes it: the models every group allows (none).
  assert.equal(shortfall(mixed, [], shapes)?.message, 'its task groups allow no GPU model in common (H100 here)');
  assert.equal(shortfall([group({ gpuCount: 0, gpuMilli: 0, cpuMilli: 100_000 }, 1, 'cpu')], [], shapes)?.message, '100 cores, the largest node has 64');
});

test('groups that each fit but together need more GPUs of one model than the nodes have never fit', () => {
  const g = (name: string) => group({ gpuCount: 8 }, 1, name);
  assert.equal(shortfall([g('a'), g('b')], both, shapes), null);
  assert.deepEqual(shortfall([g('a'), g('b'), g('c')], both, shapes), { group: -1, resource: 'tasks', message: 'its tasks need 24 GPUs of one model at once, but the nodes have 16 (H100)' });
});

test('a GPU job on a cluster without GPUs, and the word for the nodes', () => {
  const cpuOnly = nodeShapes([{ cpuMilli: 8000, memoryMib: 8192, gpus: [] }]);
  assert.equal(shortfall([group({})], [], cpuOnly, 'schedulable node')?.message, 'needs a GPU, but no schedulable node has one');
});
