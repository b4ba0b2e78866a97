/**
 * The contract every placement policy passes, run against each policy in the registry:
 * never over-allocate CPU, memory or GPU milli; honour GPU-model constraints and whole-GPU
 * rules; place a task whenever some node can take it, and otherwise give a reason; the same
 * seed gives the same placements.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClusterState } from '../../src/core/cluster.ts';
import { GPU_MILLI, nodeId, taskId, type NodeSpec, type TaskRequest } from '../../src/core/model.ts';
import { PlacementSession, type PlaceResult } from '../../src/core/policy.ts';
import { placementPolicies } from '../../src/core/placement/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { targetWorkload } from '../../src/core/workload.ts';

const MODELS = ['A100', 'T4', 'V100'];

function randomCluster(rng: Rng): NodeSpec[] {
  return Array.from({ length: 24 }, (_, i) => {
    const gpuCount = [0, 1, 2, 4, 8][rng.int(0, 4)] as number;
    const model = MODELS[rng.int(0, 2)] as string;
    // Every fifth node mixes two models, to exercise per-device model checks.
    const gpus = Array.from({ length: gpuCount }, (_, g) => (i % 5 === 4 && g % 2 === 1 ? (MODELS[(rng.int(0, 2) + 1) % 3] as string) : model));
    return { id: nodeId(`node-${i}`), cpuMilli: 8000 * rng.int(2, 12), memoryMib: 16384 * rng.int(2, 16), gpus };
  });
}

function randomTasks(rng: Rng, count: number): TaskRequest[] {
  return Array.from({ length: count }, (_, i) => {
    const kind = rng.int(0, 9);
    const gpuCount = kind < 2 ? 0 : kind < 6 ? 1 : ([1, 2, 4, 8][rng.int(0, 3)] as number);
    const gpuMilli = gpuCount === 0 ? 0 : kind < 4 ? 50 * rng.int(1, 19) : GPU_MILLI;
    const allowedModels = rng.int(0, 3) === 0 ? [MODELS[rng.int(0, 2)] as string] : [];
    return { id: taskId(`task-${i}`), cpuMilli: 1000 * rng.int(1, 24), memoryMib: 1024 * rng.int(1, 64), gpuCount, gpuMilli, allowedModels };
  });
}

interface Run {
  readonly results: PlaceResult[];
  readonly nodes: NodeSpec[];
  readonly tasks: TaskRequest[];
}

function run(policy: string, seed: number): Run {
  const rng = Rng.fromSeed(seed);
  const nodes = randomCluster(rng);
  const tasks = randomTasks(rng, 160);
  const cluster = new ClusterState(nodes);
  const factory = placementPolicies[policy];
  assert.ok(factory);
  const session = new PlacementSession(cluster, factory({ cluster, rng, workload: targetWorkload(cluster, tasks) }), rng.permutation(nodes.length));
  const results = tasks.map((t) => {
    const result = session.place(t);
    if (!result.ok) {
      // Completeness: refusing is only allowed when no node can take the task.
      const prepared = cluster.prepare(t);
      for (let n = 0; n < cluster.nodeCount; n++) assert.equal(cluster.fits(n, prepared), false, `${policy}: ${t.id} refused but node ${n} fits`);
    }
    return result;
  });
  return { results, nodes, tasks };
}

for (const policy of Object.keys(placementPolicies)) {
  describe(`placement contract: ${policy}`, () => {
    for (const seed of [1, 2, 3]) {
      test(`seed ${seed}: capacity, models and whole-GPU rules hold, independently recounted`, () => {
        const { results, nodes, tasks } = run(policy, seed);
        const cpu = nodes.map((n) => n.cpuMilli);
        const mem = nodes.map((n) => n.memoryMib);
        const gpu = nodes.map((n) => n.gpus.map(() => GPU_MILLI));
        let placedCount = 0;
        results.forEach((r, i) => {
          const t = tasks[i] as TaskRequest;
          if (!r.ok) {
            assert.match(r.reason, /^0\/\d+ nodes can take it: .+/);
            return;
          }
          placedCount++;
          const p = r.placement;
          const node = nodes[p.node] as NodeSpec;
          cpu[p.node] = (cpu[p.node] as number) - t.cpuMilli;
          mem[p.node] = (mem[p.node] as number) - t.memoryMib;
          assert.ok((cpu[p.node] as number) >= 0, `${t.id}: CPU over-allocated on ${node.id}`);
          assert.ok((mem[p.node] as number) >= 0, `${t.id}: memory over-allocated on ${node.id}`);
          assert.equal(p.gpus.length, t.gpuCount, `${t.id}: wrong number of GPUs`);
          assert.equal(new Set(p.gpus).size, p.gpus.length, `${t.id}: a GPU taken twice`);
          const devices = gpu[p.node] as number[];
          for (const d of p.gpus) {
            const free = devices[d] as number;
            if (t.gpuMilli === GPU_MILLI) assert.equal(free, GPU_MILLI, `${t.id}: whole GPU ${d} on ${node.id} was not free`);
            assert.ok(free >= t.gpuMilli, `${t.id}: GPU ${d} on ${node.id} over-allocated`);
            devices[d] = free - t.gpuMilli;
            if (t.allowedModels.length > 0) assert.ok(t.allowedModels.includes(node.gpus[d] as string), `${t.id}: model ${node.gpus[d]} not allowed`);
          }
        });
        assert.ok(placedCount > 40, `only ${placedCount} placed: the scenario no longer exercises the policy`);
        assert.ok(placedCount < tasks.length, 'nothing refused: the scenario no longer exercises refusals');
      });
    }
    test('the same seed gives the same placements', () => {
      const a = run(policy, 7).results;
      const b = run(policy, 7).results;
      assert.deepEqual(a, b);
    });
  });
}

for (const policy of Object.keys(placementPolicies)) {
  test(`placement contract: ${policy} never uses a node left out of the session's node order`, () => {
    const nodes: NodeSpec[] = [0, 1, 2].map((i) => ({ id: nodeId(`n${i}`), cpuMilli: 16000, memoryMib: 65536, gpus: ['T4', 'T4'] }));
    const cluster = new ClusterState(nodes);
    const factory = placementPolicies[policy];
    assert.ok(factory);
    const rng = Rng.fromSeed(5);
    const session = new PlacementSession(cluster, factory({ cluster, rng, workload: [] }), Int32Array.from([2, 1]));
    const used = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const r = session.place({ id: taskId(`t${i}`), cpuMilli: 1000, memoryMib: 1024, gpuCount: 1, gpuMilli: 1000, allowedModels: [] });
      if (r.ok) used.add(r.placement.node);
      else assert.match(r.reason, /^0\/2 nodes can take it/);
    }
    assert.deepEqual([...used].sort(), [1, 2]);
  });
}
