import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterState } from './cluster.ts';
import { nodeId, taskId, type TaskRequest } from './model.ts';

const nodes = [
  { id: nodeId('a'), cpuMilli: 16000, memoryMib: 65536, gpus: ['T4', 'T4'] },
  { id: nodeId('b'), cpuMilli: 32000, memoryMib: 65536, gpus: ['V100', 'A100', 'A100'] },
];
const task = (gpuCount: number, gpuMilli: number, allowedModels: string[] = [], cpuMilli = 1000): TaskRequest => ({
  id: taskId('t'), cpuMilli, memoryMib: 1024, gpuCount, gpuMilli, allowedModels,
});

test('allocate and release keep free capacity and aggregates exact', () => {
  const c = new ClusterState(nodes);
  const t = c.prepare(task(1, 300));
  assert.equal(c.allocate({ node: 0, gpus: [1], gpuMilli: 300, cpuMilli: 1000, memoryMib: 1024 }, t), null);
  assert.deepEqual([c.cpuFree[0], c.memFree[0], c.gpuFree[1], c.fullFreeGpus[0], c.maxGpuFree[0], c.idleGpuMilli[0]], [15000, 64512, 700, 1, 1000, 1700]);
  assert.equal(c.allocatedGpuMilli, 300);
  c.release({ node: 0, gpus: [1], gpuMilli: 300, cpuMilli: 1000, memoryMib: 1024 });
  assert.deepEqual([c.cpuFree[0], c.gpuFree[1], c.fullFreeGpus[0], c.allocatedGpuMilli], [16000, 1000, 2, 0]);
});

test('allocate refuses what does not fit and changes nothing', () => {
  const c = new ClusterState(nodes);
  const whole = c.prepare(task(1, 1000));
  assert.equal(c.allocate({ node: 0, gpus: [0], gpuMilli: 300, cpuMilli: 1000, memoryMib: 1024 }, c.prepare(task(1, 300))), null);
  assert.match(c.allocate({ node: 0, gpus: [0], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 }, whole) ?? '', /GPU 0 cannot take this task/);
  assert.match(c.allocate({ node: 0, gpus: [5], gpuMilli: 1000, cpuMilli: 1000, memoryMib: 1024 }, whole) ?? '', /no GPU 5/);
  assert.match(c.allocate({ node: 0, gpus: [1], gpuMilli: 1000, cpuMilli: 99000, memoryMib: 1024 }, whole) ?? '', /not enough CPU/);
  assert.deepEqual([c.cpuFree[0], c.gpuFree[0], c.gpuFree[1]], [15000, 700, 1000]);
});

test('fits honours models per device on a mixed node', () => {
  const c = new ClusterState(nodes);
  assert.equal(c.fits(1, c.prepare(task(2, 1000, ['A100']))), true);
  assert.equal(c.fits(1, c.prepare(task(3, 1000, ['A100']))), false);
  assert.equal(c.fits(1, c.prepare(task(1, 500, ['T4']))), false);
  assert.equal(c.unfitReason(1, c.prepare(task(1, 500, ['T4']))), 'gpu-model');
  assert.equal(c.fits(0, c.prepare(task(0, 0, [], 17000))), false);
  assert.deepEqual(c.defaultDevices(1, c.prepare(task(2, 1000, ['A100']))), [1, 2]);
});

test('the change log names changed nodes, and says when it no longer reaches back', () => {
  const c = new ClusterState(nodes);
  const cursor = c.changeCursor;
  const t = c.prepare(task(1, 100));
  c.allocate({ node: 1, gpus: [0], gpuMilli: 100, cpuMilli: 1000, memoryMib: 1024 }, t);
  assert.deepEqual(Array.from(c.changesSince(cursor) ?? []), [1]);
  for (let i = 0; i < 5000; i++) c.release({ node: 0, gpus: [], gpuMilli: 0, cpuMilli: 0, memoryMib: 0 });
  assert.equal(c.changesSince(cursor), null);
});
