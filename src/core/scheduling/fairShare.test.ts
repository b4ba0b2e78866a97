import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpuNodes, schedulable } from './build.ts';
import { dominantShares } from './fairShare.ts';

// 4 GPUs, 256 cores, 1 TiB.
const nodes = schedulable(gpuNodes('H100', 1, 4));

test("a tenant's share is its most used resource, relative to the cluster", () => {
  const shares = dominantShares({
    nodes,
    tenantUsage: [
      { name: 'gpu-heavy', gpuSeconds: 400, cpuSeconds: 100, memoryMibSeconds: 0 },
      // Few GPU-seconds, but it kept half the CPUs busy for 100 s: CPU dominates.
      { name: 'cpu-heavy', gpuSeconds: 40, cpuSeconds: 128 * 100, memoryMibSeconds: 0 },
    ],
  });
  assert.equal(shares.get('gpu-heavy'), 100);
  assert.equal(shares.get('cpu-heavy'), 50);
});

test('weights divide the share, and GPU-only records still count', () => {
  const shares = dominantShares({ nodes, tenants: [{ name: 'a', weight: 2 }], tenantUsage: [{ name: 'a', gpuSeconds: 400 }, { name: 'b', gpuSeconds: 400 }] });
  assert.equal(shares.get('a'), 50);
  assert.equal(shares.get('b'), 100);
});
