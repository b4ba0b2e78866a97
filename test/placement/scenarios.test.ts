/**
 * Placement scenarios as data: a small cluster, what is already running, one task, and where
 * each policy must put it. Node order (the tie-break) is the listed order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterState } from '../../src/core/cluster.ts';
import { nodeId, taskId, type NodeSpec, type TaskRequest } from '../../src/core/model.ts';
import { PlacementSession } from '../../src/core/policy.ts';
import { placementPolicies } from '../../src/core/placement/index.ts';
import { Rng } from '../../src/core/rng.ts';
import type { TargetWorkload } from '../../src/core/workload.ts';

interface Scenario {
  readonly name: string;
  readonly policies: readonly string[];
  /** "cpuMilli/memoryMib/COUNTxMODEL", e.g. "64000/262144/8xV100". */
  readonly nodes: readonly string[];
  /** Already running: [node, devices, "cpu/gpuCount/gpuMilli"]. */
  readonly running?: readonly [number, readonly number[], string][];
  /** "cpu/gpuCount/gpuMilli[/MODEL|MODEL]". */
  readonly task: string;
  /** Target workload shapes for FGD-style policies: ["cpu/gpuCount/gpuMilli", popularity]. */
  readonly workload?: readonly [string, number][];
  readonly expect: { readonly node: number; readonly gpus: readonly number[] } | { readonly refused: RegExp };
}

const scenarios: Scenario[] = [
  {
    name: 'a whole-GPU task takes the lowest-index free GPUs',
    policies: ['bestfit', 'dotprod', 'packing', 'clustering', 'fgd'],
    nodes: ['32000/65536/4xV100'],
    running: [[0, [1], '1000/1/500']],
    task: '4000/2/1000',
    expect: { node: 0, gpus: [0, 2] },
  },
  {
    name: 'bestfit takes the node left fullest',
    policies: ['bestfit'],
    nodes: ['64000/65536/8xV100', '64000/65536/8xV100'],
    running: [[1, [0, 1, 2, 3], '32000/4/1000']],
    task: '4000/1/1000',
    expect: { node: 1, gpus: [4] },
  },
  {
    name: 'dotprod avoids the node whose free vector aligns with the request',
    policies: ['dotprod'],
    nodes: ['96000/65536/8xV100', '96000/65536/8xV100'],
    running: [[0, [0, 1, 2, 3, 4, 5, 6], '80000/7/1000']],
    task: '8000/1/1000',
    expect: { node: 0, gpus: [7] },
  },
  {
    name: 'packing prefers a GPU already shared over a fresh one on a used node',
    policies: ['packing'],
    nodes: ['64000/65536/2xT4', '64000/65536/2xT4'],
    running: [[0, [0], '1000/1/1000'], [1, [0], '1000/1/600']],
    task: '1000/1/300',
    expect: { node: 1, gpus: [0] },
  },
  {
    name: 'packing prefers a used node over an empty one, and small empty nodes first',
    policies: ['packing'],
    nodes: ['64000/65536/8xT4', '64000/65536/2xT4', '64000/65536/4xT4'],
    task: '1000/1/1000',
    expect: { node: 1, gpus: [0] },
  },
  {
    name: 'clustering keeps fractions with fractions',
    policies: ['clustering'],
    nodes: ['64000/65536/4xT4', '64000/65536/4xT4'],
    running: [[0, [0, 1], '1000/2/1000'], [1, [0], '1000/1/500']],
    task: '1000/1/250',
    expect: { node: 1, gpus: [0] },
  },
  {
    name: 'fgd fills the gap an 810 pod left instead of opening a fresh GPU',
    policies: ['fgd'],
    nodes: ['64000/65536/2xT4', '64000/65536/2xT4'],
    running: [[1, [1], '1000/1/810']],
    workload: [['1000/1/810', 0.7], ['1000/1/190', 0.3]],
    task: '1000/1/190',
    expect: { node: 1, gpus: [1] },
  },
  {
    name: 'fgd keeps whole GPUs whole when the workload needs them',
    policies: ['fgd'],
    nodes: ['64000/65536/1xT4', '64000/65536/2xT4'],
    running: [[1, [0], '1000/1/500']],
    workload: [['1000/1/1000', 0.5], ['1000/1/500', 0.5]],
    task: '1000/1/500',
    expect: { node: 1, gpus: [0] },
  },
  {
    name: 'GPU-model constraints override every score',
    policies: ['bestfit', 'dotprod', 'packing', 'clustering', 'fgd'],
    nodes: ['64000/65536/8xV100', '64000/65536/8xT4'],
    running: [[0, [0, 1, 2, 3, 4, 5, 6], '7000/7/1000']],
    task: '1000/1/1000/T4',
    expect: { node: 1, gpus: [0] },
  },
  {
    name: 'a task nothing can take is refused with the reasons per node',
    policies: ['bestfit', 'fgd', 'random'],
    nodes: ['8000/65536/8xV100', '64000/65536/2xT4'],
    task: '16000/4/1000',
    expect: { refused: /^0\/2 nodes can take it: 1 fewer than 4 free GPUs, 1 not enough CPU$/ },
  },
];

function parseNode(spec: string, i: number): NodeSpec {
  const [cpu, mem, gpus] = spec.split('/') as [string, string, string];
  const [count, model] = gpus.split('x') as [string, string];
  return { id: nodeId(`n${i}`), cpuMilli: Number(cpu), memoryMib: Number(mem), gpus: Array.from({ length: Number(count) }, () => model) };
}

function parseTask(spec: string, id: string): TaskRequest {
  const [cpu, count, milli, models] = spec.split('/') as [string, string, string, string | undefined];
  return { id: taskId(id), cpuMilli: Number(cpu), memoryMib: 1024, gpuCount: Number(count), gpuMilli: Number(milli), allowedModels: models ? models.split('|') : [] };
}

for (const s of scenarios) {
  for (const policy of s.policies) {
    test(`${policy}: ${s.name}`, () => {
      const cluster = new ClusterState(s.nodes.map(parseNode));
      const workload: TargetWorkload = (s.workload ?? []).map(([spec, popularity]) => {
        const t = parseTask(spec, 'shape');
        return { cpuMilli: t.cpuMilli, gpuCount: t.gpuCount, gpuMilli: t.gpuMilli, modelMask: cluster.modelMaskOf(t.allowedModels), popularity };
      });
      const factory = placementPolicies[policy];
      assert.ok(factory, policy);
      const order = Int32Array.from(s.nodes.map((_, i) => i));
      const session = new PlacementSession(cluster, factory({ cluster, rng: Rng.fromSeed(1), workload }), order);
      for (const [i, [node, gpus, spec]] of (s.running ?? []).entries()) {
        const t = parseTask(spec, `running-${i}`);
        assert.equal(session.adopt(t, { node, gpus, gpuMilli: t.gpuMilli, cpuMilli: t.cpuMilli, memoryMib: t.memoryMib }), null);
      }
      const result = session.place(parseTask(s.task, 'task'));
      if ('refused' in s.expect) {
        assert.equal(result.ok, false);
        if (!result.ok) assert.match(result.reason, s.expect.refused);
      } else {
        assert.ok(result.ok, result.ok ? '' : result.reason);
        assert.deepEqual({ node: result.placement.node, gpus: result.placement.gpus }, s.expect);
      }
    });
  }
}
