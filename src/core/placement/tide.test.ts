import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterState } from '../cluster.ts';
import { nodeId, taskId, type NodeSpec, type TaskRequest } from '../model.ts';
import { PlacementSession, type PolicyFactory } from '../policy.ts';
import { Rng } from '../rng.ts';
import type { TaskShape } from '../workload.ts';
import { fgd } from './fgd.ts';
import { getPlacementPolicy, DEFAULT_PLACEMENT_POLICY } from './index.ts';
import { gapWasteTables, isMaximalNode, makeTide, tide, TIDE_DEFAULTS, type TideOptions } from './tide.ts';

// ---- helpers ---------------------------------------------------------------------------

interface NodeRow {
  readonly name: string;
  readonly model: string;
  readonly gpus: number;
  readonly cpu: number;
  readonly mem?: number;
}

/** [cpu milli, GPU count, milli per GPU, allowed models ('' = any), popularity] */
type ShapeRow = readonly [number, number, number, string, number];

/** Something already running: node name, its GPUs (local indices), milli on each, CPU. */
type Running = readonly [string, readonly number[], number, number];

/** [cpu milli, GPU count, milli per GPU, allowed models] */
type TaskRow = readonly [number, number, number, string];

const mkNodes = (rows: readonly NodeRow[]): NodeSpec[] =>
  rows.map((r) => ({ id: nodeId(r.name), cpuMilli: r.cpu, memoryMib: r.mem ?? 1 << 20, gpus: Array.from({ length: r.gpus }, () => r.model) }));

let seq = 0;
const mkTask = ([cpu, count, milli, models]: TaskRow): TaskRequest => ({
  id: taskId(`t${seq++}`),
  cpuMilli: cpu,
  memoryMib: 1024,
  gpuCount: count,
  gpuMilli: count === 0 ? 0 : milli,
  allowedModels: models === '' ? [] : models.split('|'),
});

function setup(policy: PolicyFactory, nodes: readonly NodeRow[], shapes: readonly ShapeRow[], running: readonly Running[] = []) {
  const cluster = new ClusterState(mkNodes(nodes));
  const total = shapes.reduce((s, r) => s + r[4], 0);
  const workload: TaskShape[] = shapes.map(([cpu, count, milli, models, pop]) => ({
    cpuMilli: cpu,
    gpuCount: count,
    gpuMilli: count === 0 ? 0 : milli,
    modelMask: cluster.modelMaskOf(models === '' ? [] : models.split('|')),
    popularity: pop / total,
  }));
  for (const [name, gpus, milli, cpu] of running) {
    const node = nodes.findIndex((n) => n.name === name);
    const t = cluster.prepare(mkTask([cpu, gpus.length, milli, '']));
    const error = cluster.allocate({ node, gpus, gpuMilli: gpus.length === 0 ? 0 : milli, cpuMilli: cpu, memoryMib: 1024 }, t);
    assert.equal(error, null, `setup: ${error}`);
  }
  const p = policy({ cluster, rng: Rng.fromSeed(1), workload });
  // Identity node order: ties go to the node listed first.
  const session = new PlacementSession(cluster, p, Int32Array.from(nodes.map((_, i) => i)));
  return { cluster, session };
}

/** Places the tasks in order; returns "node:devices" per task ("-" when dropped). */
function placeAll(policy: PolicyFactory, nodes: readonly NodeRow[], shapes: readonly ShapeRow[], running: readonly Running[], tasks: readonly TaskRow[]): string[] {
  const { session } = setup(policy, nodes, shapes, running);
  return tasks.map((row) => {
    const r = session.place(mkTask(row));
    return r.ok ? `${nodes[r.placement.node]?.name}:${r.placement.gpus.join(',')}` : '-';
  });
}

// The openb node types these scenarios borrow.
const G2 = (name: string): NodeRow => ({ name, model: 'G2', gpus: 8, cpu: 96_000 });
const G3 = (name: string): NodeRow => ({ name, model: 'G3', gpus: 8, cpu: 128_000, mem: 2 << 20 });
const T4 = (name: string): NodeRow => ({ name, model: 'T4', gpus: 2, cpu: 104_000 });

/** A workload like the default openb trace's head. */
const COMMON: readonly ShapeRow[] = [
  [3152, 1, 810, '', 10],
  [11300, 1, 1000, '', 9],
  [11400, 1, 1000, '', 6],
  [11908, 1, 470, '', 4],
  [12500, 0, 0, '', 4],
  [4000, 1, 320, '', 2],
  [18708, 1, 1000, '', 2],
  [4000, 1, 160, '', 1],
];

// ---- scenarios -------------------------------------------------------------------------

interface Scenario {
  readonly name: string;
  readonly nodes: readonly NodeRow[];
  readonly shapes: readonly ShapeRow[];
  readonly running?: readonly Running[];
  readonly tasks: readonly TaskRow[];
  /** Expected "node:devices" per task under tide. */
  readonly expect: readonly string[];
  /** What FGD does in the same scenario (documents where the ideas differ, and where they agree). */
  readonly fgd?: readonly string[];
  /** Tide without the idea the scenario shows (options to override) and what it does then. */
  readonly without?: readonly [Partial<TideOptions>, readonly string[]];
}

const scenarios: readonly Scenario[] = [
  {
    name: 'fills the 190-milli gap next to an 810 pod with a small pod',
    nodes: [G2('a'), G2('b')],
    shapes: COMMON,
    running: [['b', [3], 810, 3152]],
    tasks: [[4000, 1, 160, '']],
    expect: ['b:3'],
    fgd: ['b:3'],
  },
  {
    name: 'pairs a 470 with a 470 on the same GPU rather than opening a fresh one',
    nodes: [G2('a'), G2('b')],
    shapes: COMMON,
    running: [['b', [5], 470, 11908]],
    tasks: [[11908, 1, 470, '']],
    expect: ['b:5'],
    fgd: ['b:5'],
  },
  {
    name: 'keeps the scarce model free: an any-model pod avoids the T4 that T4-only pods need',
    nodes: [T4('t4'), G2('g2')],
    // FGD leans to the G2 only in proportion to the T4-only shape's popularity (rare here: not
    // enough to leave its band); Tide weighs the T4 capacity lost by how scarce T4s are.
    shapes: [...COMMON, [11300, 1, 1000, 'T4', 0.5]],
    tasks: [[11300, 1, 1000, '']],
    expect: ['g2:0'],
    fgd: ['t4:0'],
    without: [{ kappa: 0, fragWeight: 0, band: 1e9 }, ['t4:0']],
  },
  {
    name: 'keeps the most capable node whole (it alone can host an 8-GPU, 120-core pod)',
    nodes: [G3('g3'), G2('g2')],
    shapes: COMMON,
    tasks: [[11300, 1, 1000, ''], [120_000, 8, 1000, '']],
    expect: ['g2:0', 'g3:0,1,2,3,4,5,6,7'],
    fgd: ['g3:0', '-'],
    without: [{ keepMaximal: false }, ['g3:0', '-']],
  },
  {
    name: 'keeps a whole node for an 8-GPU pod: packs 1-GPU pods into the node already in use',
    nodes: [G2('a'), G2('b')],
    shapes: [...COMMON, [88_000, 8, 1000, '', 3]],
    running: [['b', [0, 1], 1000, 22_000]],
    tasks: [[11300, 1, 1000, ''], [88_000, 8, 1000, '']],
    expect: ['b:2', 'a:0,1,2,3,4,5,6,7'],
    fgd: ['b:2', 'a:0,1,2,3,4,5,6,7'],
  },
  {
    name: 'keeps the 680 gap for a 650: a 470 takes the 770 gap next to a 230 (300 left, fits a 230)',
    nodes: [G2('a'), G2('b')],
    shapes: [...COMMON, [11908, 1, 650, '', 3], [4000, 1, 230, '', 2]],
    running: [['b', [0], 320, 4000], ['b', [1], 320, 4000], ['b', [2], 230, 4000]],
    tasks: [[11908, 1, 470, '']],
    expect: ['b:2'],
    // FGD (and Tide without tier 0) takes the tightest fit, the 680 gap: 210 left, only a 160 fits.
    fgd: ['b:0'],
    without: [{ gapBand: 0, gapWeight: 0 }, ['b:0']],
  },
  {
    name: 'sends a CPU-only pod where CPU is in surplus, not where GPUs would lose their CPU',
    nodes: [G2('g2'), T4('t4'), G3('g3')],
    shapes: COMMON,
    running: [['g2', [0, 1, 2], 1000, 40_000], ['g3', [0], 1000, 11300]],
    tasks: [[32_000, 0, 0, '']],
    expect: ['t4:'],
    without: [{ band: 1e9 }, ['g2:']],
  },
];

for (const s of scenarios) {
  test(`tide ${s.name}`, () => {
    assert.deepEqual(placeAll(tide, s.nodes, s.shapes, s.running ?? [], s.tasks), s.expect);
  });
  if (s.without) {
    const [options, expected] = s.without;
    test(`without that idea tide does otherwise: ${s.name}`, () => {
      assert.notDeepEqual(expected, s.expect);
      assert.deepEqual(placeAll(makeTide({ ...TIDE_DEFAULTS, ...options }), s.nodes, s.shapes, s.running ?? [], s.tasks), expected);
    });
  }
  if (s.fgd) {
    const same = s.fgd.join() === s.expect.join();
    test(`fgd ${same ? 'agrees' : 'differs'}: ${s.name}`, () => {
      assert.deepEqual(placeAll(fgd, s.nodes, s.shapes, s.running ?? [], s.tasks), s.fgd);
    });
  }
}

test('tide is registered and is the default placement policy', () => {
  assert.equal(DEFAULT_PLACEMENT_POLICY, 'tide');
  assert.equal(getPlacementPolicy('tide'), tide);
});

test('gap waste: the best fill by common shapes; rare shapes that complete a gap are discounted', () => {
  const shape = (gpuMilli: number, popularity: number, cpuMilli = 4000): TaskShape => ({ cpuMilli, gpuCount: 1, gpuMilli, modelMask: 1, popularity });
  const workload = [shape(1000, 50), shape(470, 20), shape(370, 0.5), shape(160, 0.5)];
  const top = (share: number): Float64Array => {
    const t = gapWasteTables(workload, share, 2).table;
    return t[t.length - 1] as Float64Array;
  };
  // 370 and 160 are 2.4 % of the fractional tasks each: below 3 %, so a 530 gap counts as a 470 + 60.
  assert.equal(top(0.03)[530], 60);
  // Were they common enough, 370 + 160 would fill it exactly.
  assert.equal(top(0.01)[530], 0);
  assert.equal(top(0.03)[1000], 0);
  assert.equal(top(0.03)[100], 100);
  // Fillers count only on a node with their CPU: one level per distinct CPU of single-GPU shapes.
  const levels = gapWasteTables([shape(1000, 1, 12_000), shape(470, 1, 4000), shape(160, 1, 12_000)], 0.03, 2);
  assert.deepEqual(levels.levels, [4000, 12_000]);
  assert.equal(levels.table[0]?.[160], 160); // with 4 cores free, nothing fills a 160 gap
  assert.equal(levels.table[1]?.[160], 0);
  assert.equal(levels.table[0]?.[1000], 1000 - 2 * 470);
});

test('a maximal node is one no other node dominates', () => {
  const cluster = new ClusterState(mkNodes([G3('g3'), G2('g2'), T4('t4'), { name: 'cpu', model: 'G2', gpus: 0, cpu: 256_000 }]));
  assert.deepEqual([0, 1, 2, 3].map((n) => isMaximalNode(cluster, n)), [true, false, false, true]);
});

// ---- invariants ------------------------------------------------------------------------

const MIXED: readonly NodeRow[] = [G2('a'), G3('b'), T4('c'), { name: 'd', model: 'P100', gpus: 2, cpu: 16_000, mem: 60_000 }, T4('e'), G2('f')];
const MIXED_SHAPES: readonly ShapeRow[] = [...COMMON, [11300, 1, 1000, 'T4', 3], [64_200, 8, 1000, '', 1], [16_200, 2, 1000, '', 1]];

function randomTask(rng: Rng): TaskRow {
  const rows: readonly TaskRow[] = [
    [3152, 1, 810, ''], [11300, 1, 1000, ''], [11908, 1, 470, ''], [12500, 0, 0, ''], [4000, 1, 320, ''],
    [4000, 1, 160, ''], [18708, 1, 1000, 'T4'], [64_200, 8, 1000, ''], [16_200, 2, 1000, ''], [8000, 1, 470, 'P100|T4'],
    [30_000, 4, 1000, 'G2|G3'], [2000, 1, 50, ''],
  ];
  return rows[rng.int(0, rows.length - 1)] as TaskRow;
}

test('tide never over-allocates and never drops a task that fits somewhere', () => {
  for (const seed of [1, 2, 3]) {
    const rng = Rng.fromSeed(seed);
    const { cluster, session } = setup(tide, MIXED, MIXED_SHAPES);
    for (let i = 0; i < 400; i++) {
      const task = mkTask(randomTask(rng));
      const prepared = cluster.prepare(task);
      let fitsSomewhere = false;
      for (let n = 0; n < cluster.nodeCount; n++) if (cluster.fits(n, prepared)) fitsSomewhere = true;
      const r = session.place(task);
      assert.equal(r.ok, fitsSomewhere, `seed ${seed} task ${i}: placed=${r.ok} but fits=${fitsSomewhere}`);
      for (let n = 0; n < cluster.nodeCount; n++) {
        assert.ok((cluster.cpuFree[n] as number) >= 0, `CPU over-allocated on node ${n}`);
        assert.ok((cluster.memFree[n] as number) >= 0, `memory over-allocated on node ${n}`);
      }
      for (let g = 0; g < cluster.gpuFree.length; g++) {
        const f = cluster.gpuFree[g] as number;
        assert.ok(f >= 0 && f <= 1000, `GPU ${g} has ${f} milli free`);
      }
      if (r.ok) {
        const { node, gpus } = r.placement;
        const models = MIXED[node]?.model ?? '';
        assert.ok(task.allowedModels.length === 0 || task.allowedModels.includes(models), `model ${models} not allowed`);
        assert.equal(gpus.length, task.gpuCount);
      }
    }
  }
});

test('tide is deterministic: the same seed and order give the same placements', () => {
  const run = (): string[] => {
    const rng = Rng.fromSeed(7);
    const tasks = Array.from({ length: 200 }, () => randomTask(rng));
    return placeAll(tide, MIXED, MIXED_SHAPES, [], tasks);
  };
  assert.deepEqual(run(), run());
});
