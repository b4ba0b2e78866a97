import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { discoverNvidia, parseGpuSpec, parseSmiLine, simulatedGpus } from './gpus.ts';

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

test('the energy counter is read where nvidia-smi gives it ([N/A] where the GPU has none)', () => {
  assert.equal(parseSmiLine('0, GPU-1, NVIDIA H100, 81559, 0, 50, 300, 700, 123456789')?.energyMj, 123456789);
  assert.equal(parseSmiLine('0, GPU-1, NVIDIA H100, 81559, 0, 50, 300, 700, [N/A]')?.energyMj, undefined);
  assert.equal(parseSmiLine('0, GPU-1, NVIDIA H100, 81559, 0, 50, 300, 700')?.energyMj, undefined);
});

test('an nvidia-smi that refuses the energy field is asked without it; one that has it gives the counter', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-smi-'));
  try {
    const refusing = join(dir, 'old-smi');
    writeFileSync(refusing, '#!/bin/sh\ncase "$*" in *total_energy_consumption*) echo \'Field "total_energy_consumption" is not a valid field to query.\' >&2; exit 2;; esac\necho "0, GPU-0, NVIDIA A100-SXM4-80GB, 81920, 10, 40, 250.5, 400"\n');
    const counting = join(dir, 'new-smi');
    writeFileSync(counting, '#!/bin/sh\necho "0, GPU-0, NVIDIA H100 80GB HBM3, 81559, 10, 40, 250.5, 700, 98765"\n');
    chmodSync(refusing, 0o755);
    chmodSync(counting, 0o755);
    const old = await discoverNvidia(refusing);
    assert.equal(old?.gpus[0]?.model, 'A100');
    assert.deepEqual(await old?.sample([], 0), [{ index: 0, utilization: 40, memoryUsedMib: 10, powerWatts: 250.5 }]);
    const fresh = await discoverNvidia(counting);
    assert.equal((await fresh?.sample([], 0))?.[0]?.energyMj, 98765);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
