import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGpuSpec, parseSmiLine, simulatedGpus } from './gpus.ts';

test('simulated GPU specs: COUNTxMODEL lists', () => {
  const gpus = parseGpuSpec('2xA100,1xT4');
  assert.deepEqual(gpus.map((g) => [g.index, g.model, g.memoryMib]), [[0, 'A100', 81920], [1, 'A100', 81920], [2, 'T4', 15360]]);
  assert.deepEqual(parseGpuSpec('0'), []);
  assert.throws(() => parseGpuSpec('8 H100'), /--gpus: "8 H100" is not COUNTxMODEL/);
  assert.throws(() => parseGpuSpec('100xH100'), /at most 64/);
});

test('the nvidia-smi query line is read into model, memory, utilisation and power', () => {
  const row = parseSmiLine('3, GPU-5f1c, NVIDIA H100 80GB HBM3, 81559, 1024, 87, 512.34, 700.00');
  assert.deepEqual(row, { index: 3, uuid: 'GPU-5f1c', model: 'H100', memoryMib: 81559, memoryUsedMib: 1024, utilization: 87, powerWatts: 512.34, powerLimitWatts: 700 });
  assert.equal(parseSmiLine('garbage'), null);
  assert.equal(parseSmiLine('3, GPU-5f1c, Tesla V100-SXM2-32GB, 32768, [N/A], 0, [N/A], 300')?.model, 'V100');
  // A confused driver's readings stay in the ranges the server accepts (else every heartbeat of the node is refused).
  const odd = parseSmiLine('0, GPU-1, NVIDIA H100, 81559, -5, 150, 9e99, 700');
  assert.deepEqual([odd?.memoryUsedMib, odd?.utilization, odd?.powerWatts], [0, 100, 100_000]);
});

test('simulated telemetry follows the load the agent puts on each GPU', async () => {
  const src = simulatedGpus('2xH100');
  const [busy, idle] = await src.sample([1000, 0], 5_000);
  assert.ok((busy?.utilization ?? 0) >= 85);
  assert.equal(idle?.utilization, 0);
  assert.ok((busy?.powerWatts ?? 0) > (idle?.powerWatts ?? 0));
});
