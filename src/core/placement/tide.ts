/**
 * Tide: Tide's default placement policy. It places each task where the cluster loses the
 * least of what the expected workload (the target workload: task shapes and popularities)
 * will still need, and ranks nodes in four tiers, compared lexicographically:
 *
 * 0. **Gap waste (fractional tasks only).** What is left idle at the end is mostly gaps on
 *    shared GPUs that no later task fills. For each free gap g on a GPU, waste(g) is the part
 *    of g that the expected single-GPU shapes cannot be expected to fill: the best fill by a
 *    sequence of shapes, where a shape fills only with a reliability that falls with its share
 *    of the fractional tasks (below 3 %: (share ÷ 3 %)²), so that rare sizes that happen to
 *    complete a gap (370 + 160 in a 530 gap) do not make it look safe; and only shapes whose
 *    CPU the node still has count (a gap on a node out of CPU is waste). A fractional task goes
 *    where the node's total waste grows least, in 10-milli bands: a 470 pairs with a 530 gap
 *    rather than opening a fresh GPU, a 320 takes the 350 gap next to a 650. Whole-GPU and
 *    CPU-only tasks skip this tier. The growth also enters tier 3's loss (×10), so that it
 *    still counts inside a band. GPU models are left to tier 1 (fillers count on any model).
 * 1. **Fragmentation band, with scarce models priced in.** FGD's measure (idle milli-GPU each
 *    expected shape could not use, weighted by popularity), as FGD's coarse integer band
 *    ⌊100·σ(−Δ/1000)⌋ — the coarse bands plus the fixed node order are what keep pods packed.
 *    FGD steers an any-model pod away from the T4s that T4-only shapes need only in proportion
 *    to those shapes' popularity (to them every non-T4 GPU is fragment already), not to how few
 *    T4s there are, so the nudge is often lost in the band. Tide adds to Δ the capacity lost
 *    for model-constrained shapes, each weighted by popularity × (cluster GPUs ÷ GPUs of its
 *    models − 1): zero in a cluster or workload without model constraints.
 * 2. **Keep the most capable nodes whole.** An empty node that no other node dominates (at
 *    least as much CPU, memory and GPUs, more of one — the G3 machines in the openb cluster) is
 *    opened only when it is strictly better by tier 1: rare big pods that only it can host
 *    (8 GPUs with 120 cores) are not in the 95 % target workload, yet they cost a whole node
 *    each when dropped.
 * 3. **Lost capacity, CPU included.** Within a band, the node where the expected shapes lose
 *    the least capacity: for each shape, how many more instances the node can host (GPU slots,
 *    capped by free whole GPUs and by free CPU ÷ the shape's CPU, so GPUs stranded by missing
 *    CPU count as lost), times its GPU milli, weighted by popularity × scarcity (cluster GPUs ÷
 *    GPUs of the nodes that could host the shape), plus half of the fragmentation growth under
 *    the same weights; in bands of 25 milli. This is where CPU, the second binding resource,
 *    enters: CPU-hungry pods go where CPU is in surplus, GPU slots next to an 810-milli pod get
 *    filled by tasks that fit them.
 *
 * Tier 0 moved the 10-seed means (openb, FGD protocol) from 4.33 to 3.94 on the default trace
 * and from 3.11 to 2.84 on multigpu40, and lowered all nine traces. Without the reliability
 * discount (every shape a sure filler, or only a 1 %-popularity cut) a workload rich in fractions
 * (gpushare60) goes from 8.7 to 14–15 %: 470s open fresh GPUs that 370 + 160 "would fill".
 *
 * A fractional task tries each distinct GPU (by free milli and model) and keeps the best; ties
 * go to the tightest GPU. Whole-GPU tasks take the lowest-index free GPUs.
 *
 * Speed: per node, per-shape counts (GPU slots, usable GPUs, stranded milli) are cached until
 * the node changes (`cluster.version`), so scoring a candidate is O(shapes) for the GPU it
 * changes; tier 0 adds one table lookup per GPU of the node (tables built once per workload);
 * and scores are cached per (task shape, node) until the node changes, like FGD's.
 */
import type { ClusterState, PreparedTask } from '../cluster.ts';
import type { PolicyFactory } from '../policy.ts';
import type { TargetWorkload } from '../workload.ts';

/** One GPU in milli-GPU (a local copy: module bindings read in hot loops cost a getter under tsx). */
const FULL = 1000;

export interface TideOptions {
  /** Width of a tier-3 band in weighted milli-GPU. */
  readonly band: number;
  /** Share of (scarcity-weighted) fragmentation growth in tier 3, beside the lost capacity. */
  readonly fragWeight: number;
  /** Weight of the capacity lost for model-constrained shapes in tier 1 (0: plain FGD band). */
  readonly kappa: number;
  /** Open maximal nodes last within a tier-1 band. */
  readonly keepMaximal: boolean;
  /** Width of a tier-0 (gap waste) band in milli-GPU; 0 turns tier 0 off. */
  readonly gapBand: number;
  /** A filler with at least this share of the fractional tasks fills a gap for sure; rarer ones less. */
  readonly gapShare: number;
  /** Reliability of a rarer filler: (share ÷ gapShare) to this power. */
  readonly gapExp: number;
  /** Weight of the gap-waste growth in the tier-3 loss (the residual inside a tier-0 band). */
  readonly gapWeight: number;
}

export const TIDE_DEFAULTS: TideOptions = {
  band: 25,
  fragWeight: 0.5,
  kappa: 1,
  keepMaximal: true,
  gapBand: 10,
  gapShare: 0.03,
  gapExp: 2,
  gapWeight: 10,
};

/** The expected shapes, as parallel arrays. */
interface Shapes {
  readonly size: number;
  readonly cpu: Float64Array;
  /** GPUs per task (0 for CPU-only shapes). */
  readonly count: Int32Array;
  /** Milli per GPU. */
  readonly milli: Int32Array;
  readonly mask: Uint32Array;
  /** Popularity, as FGD weighs it. */
  readonly pop: Float64Array;
  /** Tier-3 weight: popularity × scarcity, normalised over GPU shapes. */
  readonly weight: Float64Array;
  /** Tier-1 weight of lost capacity: popularity × (model scarcity − 1). */
  readonly scarce: Float64Array;
  /** Sum of the popularity of CPU-only shapes (whose fragment is all idle GPU). */
  readonly cpuOnlyPop: number;
}

function buildShapes(cluster: ClusterState, workload: TargetWorkload): Shapes {
  const gpus = cluster.gpuFree.length;
  const list = workload.filter((m) => m.gpuCount > 0);
  const size = list.length;
  const s = {
    size,
    cpu: new Float64Array(size),
    count: new Int32Array(size),
    milli: new Int32Array(size),
    mask: new Uint32Array(size),
    pop: new Float64Array(size),
    weight: new Float64Array(size),
    scarce: new Float64Array(size),
    cpuOnlyPop: workload.reduce((sum, m) => sum + (m.gpuCount === 0 ? m.popularity : 0), 0),
  };
  let weightSum = 0;
  list.forEach((m, i) => {
    s.cpu[i] = m.cpuMilli;
    s.count[i] = m.gpuCount;
    s.milli[i] = m.gpuMilli;
    s.mask[i] = m.modelMask;
    s.pop[i] = m.popularity;
    let modelGpus = 0;
    for (let g = 0; g < gpus; g++) if ((m.modelMask & (1 << (cluster.gpuModel[g] as number))) !== 0) modelGpus++;
    // GPUs of the allowed models on nodes that could host the shape when empty.
    let hostGpus = 0;
    for (let n = 0; n < cluster.nodeCount; n++) {
      if ((cluster.nodes[n]?.cpuMilli ?? 0) < m.cpuMilli) continue;
      let ok = 0;
      for (let g = cluster.gpuStart[n] as number; g < (cluster.gpuStart[n + 1] as number); g++) {
        if ((m.modelMask & (1 << (cluster.gpuModel[g] as number))) !== 0) ok++;
      }
      if (ok >= m.gpuCount) hostGpus += ok;
    }
    if (hostGpus > 0) s.weight[i] = (m.popularity * gpus) / hostGpus;
    if (modelGpus > 0) s.scarce[i] = m.popularity * (gpus / modelGpus - 1);
    weightSum += s.weight[i] as number;
  });
  if (weightSum > 0) for (let i = 0; i < size; i++) s.weight[i] = (s.weight[i] as number) / weightSum;
  return s;
}

/** FGD's fragment of a node for shape m: its idle milli if m cannot run there, else what m cannot use. */
function fragmentOf(sh: Shapes, m: number, cpu: number, idle: number, usable: number, stranded: number): number {
  return cpu < (sh.cpu[m] as number) ? idle : usable >= (sh.count[m] as number) ? stranded : idle;
}

/** How many more tasks of shape m the node could host: GPU slots, capped by free CPU. */
function instancesOf(sh: Shapes, m: number, cpu: number, usable: number, slots: number): number {
  const k = sh.count[m] as number;
  const mcpu = sh.cpu[m] as number;
  const c = k === 1 ? slots : (usable / k) | 0;
  return mcpu > 0 ? Math.min(c, Math.floor(cpu / mcpu)) : c;
}

/** No other node has at least as much CPU, memory and GPUs and more of one. */
export function isMaximalNode(cluster: ClusterState, n: number): boolean {
  const a = cluster.nodes[n];
  if (!a) return false;
  for (const b of cluster.nodes) {
    if (b.cpuMilli >= a.cpuMilli && b.memoryMib >= a.memoryMib && b.gpus.length >= a.gpus.length) {
      if (b.cpuMilli > a.cpuMilli || b.memoryMib > a.memoryMib || b.gpus.length > a.gpus.length) return false;
    }
  }
  return true;
}

interface ScoreCache {
  readonly score: Float64Array;
  readonly device: Int8Array;
  readonly version: Uint32Array;
}

/**
 * Gap-waste tables, one per CPU level. `table[L][g]` is the milli of a free gap of g on one GPU
 * that the fractional shapes with CPU ≤ `levels[L]` cannot be expected to fill: the best fill by
 * a sequence of those shapes (a whole-GPU shape fills a free GPU), where a shape with share q of
 * the fractional tasks fills with reliability r = min(1, q ÷ share)^exp and leaves the gap as it
 * is otherwise: waste(g) = min(g, min_f r_f·waste(g − f) + (1 − r_f)·g). A rare shape whose size
 * completes a gap does not make that gap safe: in a workload rich in 470s, 370 + 160 may pack a
 * 530 gap exactly, but there are too few of them for all the 530 gaps the 470s leave.
 */
export function gapWasteTables(
  workload: TargetWorkload,
  share: number,
  exp: number,
): { readonly levels: readonly number[]; readonly table: readonly Float64Array[] } {
  const single = workload.filter((m) => m.gpuCount === 1);
  const fracPop = single.reduce((sum, m) => sum + (m.gpuMilli < FULL ? m.popularity : 0), 0);
  const levels = [...new Set(single.map((m) => m.cpuMilli))].sort((x, y) => x - y);
  const table = levels.map((maxCpu) => {
    const byMilli = new Map<number, number>();
    for (const m of single) {
      if (m.cpuMilli <= maxCpu) byMilli.set(m.gpuMilli, (byMilli.get(m.gpuMilli) ?? 0) + m.popularity);
    }
    const fill = [...byMilli].map(([f, p]) => [f, f === FULL ? 1 : Math.min(1, p / fracPop / share) ** exp] as const);
    const w = new Float64Array(FULL + 1);
    for (let g = 0; g <= FULL; g++) {
      let best = g;
      for (const [f, r] of fill) if (f <= g) best = Math.min(best, r * (w[g - f] as number) + (1 - r) * g);
      w[g] = best;
    }
    return w;
  });
  return { levels, table };
}

/** Tier weights: integers below 2^53 throughout. */
const TIER0 = 2 ** 39;
const TIER0_MAX = 2 ** 13;
const TIER1 = 2 ** 32;
const MAXIMAL_PENALTY = 2 ** 31;
const TIER3_MAX = 2 ** 30;

export function makeTide(o: TideOptions = TIDE_DEFAULTS, name = 'tide'): PolicyFactory {
  return ({ cluster, workload }) => {
    const sh = buildShapes(cluster, workload);
    const S = sh.size;
    const gap = gapWasteTables(workload, o.gapShare, o.gapExp);
    const noFill = Float64Array.from({ length: FULL + 1 }, (_, g) => g);
    /** The gap-waste table for a node with `cpu` free: fillers that need more CPU do not count. */
    const wasteFor = (cpu: number): Float64Array => {
      let L = -1;
      while (L + 1 < gap.levels.length && (gap.levels[L + 1] as number) <= cpu) L++;
      return L < 0 ? noFill : (gap.table[L] as Float64Array);
    };
    const nodes = cluster.nodeCount;
    const maximal = new Uint8Array(nodes);
    if (o.keepMaximal) {
      // Nodes of one configuration share the answer; check each configuration once.
      const byConfig = new Map<string, boolean>();
      for (let n = 0; n < nodes; n++) {
        const node = cluster.nodes[n];
        if (!node || node.gpus.length < 2) continue;
        const key = `${node.cpuMilli}/${node.memoryMib}/${node.gpus.length}`;
        let m = byConfig.get(key);
        if (m === undefined) {
          m = isMaximalNode(cluster, n);
          byConfig.set(key, m);
        }
        maximal[n] = m ? 1 : 0;
      }
    }

    // Per node and shape, valid while statVersion[n] === cluster.version[n]:
    // slots (fraction: Σ⌊free/milli⌋ over allowed GPUs), usable GPUs (free ≥ milli, allowed), stranded milli.
    const slots = new Int32Array(nodes * S);
    const usable = new Int32Array(nodes * S);
    const stranded = new Int32Array(nodes * S);
    const statVersion = new Uint32Array(nodes);
    // Node values now: FGD fragmentation, Tide's fragmentation, capacity, capacity on scarce models.
    const rawNow = new Float64Array(nodes);
    const fragNow = new Float64Array(nodes);
    const capNow = new Float64Array(nodes);
    const scarceNow = new Float64Array(nodes);

    const refresh = (n: number): void => {
      if (statVersion[n] === cluster.version[n]) return;
      const start = cluster.gpuStart[n] as number;
      const end = cluster.gpuStart[n + 1] as number;
      const cpu = cluster.cpuFree[n] as number;
      const idle = cluster.idleGpuMilli[n] as number;
      let raw = sh.cpuOnlyPop * idle;
      let frag = 0;
      let cap = 0;
      let scarce = 0;
      for (let m = 0; m < S; m++) {
        const milli = sh.milli[m] as number;
        const mask = sh.mask[m] as number;
        let sl = 0;
        let us = 0;
        let st = 0;
        for (let g = start; g < end; g++) {
          const f = cluster.gpuFree[g] as number;
          if ((mask & (1 << (cluster.gpuModel[g] as number))) !== 0 && f >= milli) {
            us++;
            sl += (f / milli) | 0;
          } else st += f;
        }
        const i = n * S + m;
        slots[i] = sl;
        usable[i] = us;
        stranded[i] = st;
        const k = sh.count[m] as number;
        const fm = fragmentOf(sh, m, cpu, idle, us, st);
        raw += (sh.pop[m] as number) * fm;
        frag += (sh.weight[m] as number) * fm;
        const hosted = instancesOf(sh, m, cpu, us, sl) * k * milli;
        cap += (sh.weight[m] as number) * hosted;
        scarce += (sh.scarce[m] as number) * hosted;
      }
      rawNow[n] = raw;
      fragNow[n] = frag;
      capNow[n] = cap;
      scarceNow[n] = scarce;
      statVersion[n] = cluster.version[n] as number;
    };

    /**
     * The score of node n after taking `cpuTake` CPU and, on each GPU in `changed` (global
     * indices, `changedCount` of them), `take` milli. Node stats must be fresh.
     */
    const changed = new Int32Array(Math.max(1, cluster.maxGpusPerNode));
    const scoreAfter = (n: number, cpuTake: number, take: number, changedCount: number): number => {
      const cpu = (cluster.cpuFree[n] as number) - cpuTake;
      const idle = (cluster.idleGpuMilli[n] as number) - take * changedCount;
      let raw = sh.cpuOnlyPop * idle;
      let frag = 0;
      let cap = 0;
      let scarce = 0;
      const base = n * S;
      for (let m = 0; m < S; m++) {
        const milli = sh.milli[m] as number;
        const mask = sh.mask[m] as number;
        let sl = slots[base + m] as number;
        let us = usable[base + m] as number;
        let st = stranded[base + m] as number;
        for (let j = 0; j < changedCount; j++) {
          const g = changed[j] as number;
          const f = cluster.gpuFree[g] as number;
          const after = f - take;
          if ((mask & (1 << (cluster.gpuModel[g] as number))) !== 0) {
            if (f >= milli) {
              us--;
              sl -= (f / milli) | 0;
            } else st -= f;
            if (after >= milli) {
              us++;
              sl += (after / milli) | 0;
            } else st += after;
          } else st -= take;
        }
        const k = sh.count[m] as number;
        const fm = fragmentOf(sh, m, cpu, idle, us, st);
        raw += (sh.pop[m] as number) * fm;
        frag += (sh.weight[m] as number) * fm;
        const hosted = instancesOf(sh, m, cpu, us, sl) * k * milli;
        cap += (sh.weight[m] as number) * hosted;
        scarce += (sh.scarce[m] as number) * hosted;
      }
      let growth = 0;
      if (o.gapBand > 0 && take > 0 && take < FULL) {
        // Tier 0 (fractional tasks): growth of the gap waste over the node's GPUs, at its CPU.
        const before = wasteFor(cluster.cpuFree[n] as number);
        const after = wasteFor(cpu);
        const g0 = changed[0] as number;
        for (let g = cluster.gpuStart[n] as number; g < (cluster.gpuStart[n + 1] as number); g++) {
          const f = cluster.gpuFree[g] as number;
          growth += (after[g === g0 ? f - take : f] as number) - (before[f] as number);
        }
      }
      const delta = raw - (rawNow[n] as number) + o.kappa * ((scarceNow[n] as number) - scarce);
      const tier1 = Math.trunc(100 / (1 + Math.exp(delta / 1000)));
      const loss = o.fragWeight * (frag - (fragNow[n] as number)) + ((capNow[n] as number) - cap) + o.gapWeight * growth;
      const tier3 = Math.max(-TIER3_MAX, Math.min(TIER3_MAX, -Math.floor(loss / o.band)));
      let score = tier1 * TIER1 + tier3;
      if (growth !== 0) score -= Math.max(-TIER0_MAX, Math.min(TIER0_MAX, Math.round(growth / o.gapBand))) * TIER0;
      if (maximal[n] === 1 && isEmpty(n)) score -= MAXIMAL_PENALTY;
      return score;
    };

    const isEmpty = (n: number): boolean => {
      const node = cluster.nodes[n];
      return (
        node !== undefined &&
        cluster.idleGpuMilli[n] === node.gpus.length * FULL &&
        cluster.cpuFree[n] === node.cpuMilli &&
        cluster.memFree[n] === node.memoryMib
      );
    };

    const evaluate = (n: number, t: PreparedTask, cache: ScoreCache): void => {
      refresh(n);
      const start = cluster.gpuStart[n] as number;
      const end = cluster.gpuStart[n + 1] as number;
      let best = -Infinity;
      let bestDevice = -1;
      if (t.kind === 'cpu') {
        best = scoreAfter(n, t.cpuMilli, 0, 0);
      } else if (t.kind === 'whole') {
        let c = 0;
        for (let g = start; g < end && c < t.gpuCount; g++) if (cluster.gpuUsable(g, t)) changed[c++] = g;
        best = scoreAfter(n, t.cpuMilli, FULL, c);
      } else {
        let bestFree = Infinity;
        for (let g = start; g < end; g++) {
          if (!cluster.gpuUsable(g, t)) continue;
          const f = cluster.gpuFree[g] as number;
          const model = cluster.gpuModel[g] as number;
          let seen = false;
          for (let h = start; h < g; h++) {
            if (cluster.gpuFree[h] === f && cluster.gpuModel[h] === model) {
              seen = true;
              break;
            }
          }
          if (seen) continue;
          changed[0] = g;
          const s = scoreAfter(n, t.cpuMilli, t.gpuMilli, 1);
          if (s > best || (s === best && f < bestFree)) {
            best = s;
            bestDevice = g - start;
            bestFree = f;
          }
        }
      }
      cache.score[n] = best;
      cache.device[n] = bestDevice;
      cache.version[n] = cluster.version[n] as number;
    };

    const caches = new Map<string, ScoreCache>();
    let lastTask: PreparedTask | undefined;
    let last: ScoreCache | undefined;
    const cacheFor = (t: PreparedTask): ScoreCache => {
      if (t !== lastTask || !last) {
        const key = `${t.cpuMilli}/${t.gpuCount}/${t.gpuMilli}/${t.modelMask}`;
        let c = caches.get(key);
        if (!c) {
          c = { score: new Float64Array(nodes), device: new Int8Array(nodes), version: new Uint32Array(nodes) };
          caches.set(key, c);
        }
        lastTask = t;
        last = c;
      }
      return last;
    };

    return {
      name,
      // Scores depend only on the node's own state and the task's shape (maximality is static).
      scoreKey: () => '',
      score(n, t) {
        const c = cacheFor(t);
        if (c.version[n] !== cluster.version[n]) evaluate(n, t, c);
        return c.score[n] as number;
      },
      chooseDevices(n, t) {
        if (t.kind !== 'fraction') return cluster.defaultDevices(n, t);
        const c = cacheFor(t);
        if (c.version[n] !== cluster.version[n]) evaluate(n, t, c);
        const d = c.device[n] as number;
        return d >= 0 ? [d] : cluster.defaultDevices(n, t);
      },
    };
  };
}

export const tide: PolicyFactory = makeTide();
