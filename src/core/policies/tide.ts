/**
 * Tide (draft).
 */
import { ALL_MODELS, type ClusterState, type PreparedTask } from '../cluster.ts';
import { GPU_MILLI } from '../model.ts';
import type { PolicyFactory } from '../policy.ts';
import type { TargetWorkload } from '../workload.ts';

export interface TideOptions {
  /** Width of one score band in weighted milli-GPU of lost capacity. */
  readonly band: number;
  /** Exponent of the scarcity boost (cluster GPUs ÷ GPUs the shape may use). */
  readonly scarcity: number;
  /** Weight shapes by GPU demand (true) or by pod count (false). */
  readonly byGpu: boolean;
  /** Cap capacity by free CPU. */
  readonly cpuCap: boolean;
  /** Tie-breaker inside a band. */
  readonly tie: 'none' | 'used' | 'tight';
  /** Extra loss for starting an empty node (per GPU of the node). */
  readonly open: number;
  readonly openMinCpu?: number;
  /** Weight of FGD's fragmentation (with the same shape weights) in the node value. */
  readonly frag: number;
  /** Weight of the capacity measure. */
  readonly cap: number;
  /** Popularity of synthetic whole-node shapes (0: none). */
  readonly reserve: number;
  /** Scarcity counts all GPUs of nodes that fit the shape (true) or only the allowed ones. */
  readonly eligibleByNode: boolean;
}

export const TIDE_DEFAULTS: TideOptions = { band: 25, scarcity: 1, byGpu: false, cpuCap: true, tie: 'none', open: 0, frag: 0.5, cap: 1, reserve: 0, eligibleByNode: false };

interface Shape {
  readonly cpu: number;
  readonly count: number;
  readonly milli: number;
  readonly mask: number;
  readonly weight: number;
}

function buildShapes(cluster: ClusterState, workload: TargetWorkload, o: TideOptions): Shape[] {
  const gpusTotal = cluster.gpuFree.length;
  const raw: { cpu: number; count: number; milli: number; mask: number; pop: number }[] = [];
  for (const m of workload) {
    if (m.gpuCount === 0) continue;
    raw.push({ cpu: m.cpuMilli, count: m.gpuCount, milli: m.gpuMilli, mask: m.modelMask, pop: m.popularity });
  }
  if (o.reserve > 0) {
    // One synthetic "whole node" shape per distinct node configuration with several GPUs.
    const seen = new Set<string>();
    for (let n = 0; n < cluster.nodeCount; n++) {
      const count = cluster.gpuCount(n);
      if (count < 2 || cluster.nodeHomogeneous[n] !== 1) continue;
      const key = `${cluster.nodes[n]?.cpuMilli}/${count}/${cluster.nodeModelMask[n]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      raw.push({ cpu: cluster.nodes[n]?.cpuMilli ?? 0, count, milli: GPU_MILLI, mask: ALL_MODELS, pop: o.reserve });
    }
  }
  const shapes: Shape[] = [];
  for (const m of raw) {
    // GPUs of the nodes that could host the shape when empty.
    let eligible = 0;
    for (let n = 0; n < cluster.nodeCount; n++) {
      if ((cluster.nodes[n]?.cpuMilli ?? 0) < m.cpu) continue;
      let ok = 0;
      for (let g = cluster.gpuStart[n] as number; g < (cluster.gpuStart[n + 1] as number); g++) if ((m.mask & (1 << (cluster.gpuModel[g] as number))) !== 0) ok++;
      if (ok >= m.count) eligible += o.eligibleByNode ? cluster.gpuCount(n) : ok;
    }
    if (eligible === 0) continue;
    const scarcity = Math.pow(gpusTotal / eligible, o.scarcity);
    const base = o.byGpu ? m.pop * m.count * m.milli : m.pop;
    shapes.push({ cpu: m.cpu, count: m.count, milli: m.milli, mask: m.mask, weight: base * scarcity });
  }
  const sum = shapes.reduce((s, m) => s + m.weight, 0);
  return shapes.map((m) => ({ ...m, weight: m.weight / sum }));
}

/** Node value: weighted GPU milli that the shapes could still use, minus weighted FGD fragmentation. */
function capacity(shapes: readonly Shape[], cpuFree: number, free: ArrayLike<number>, bits: ArrayLike<number>, count: number, o: TideOptions): number {
  let total = 0;
  const cpuCap = o.cpuCap;
  if (o.frag > 0) {
    let idle = 0;
    for (let g = 0; g < count; g++) idle += free[g] as number;
    let frag = 0;
    if (idle > 0) {
      for (const m of shapes) {
        if (cpuFree < m.cpu) {
          frag += m.weight * idle;
          continue;
        }
        let usable = 0;
        let stranded = 0;
        for (let g = 0; g < count; g++) {
          const f = free[g] as number;
          if (f >= m.milli && (m.mask & (1 << (bits[g] as number))) !== 0) usable++;
          else stranded += f;
        }
        frag += m.weight * (usable >= m.count ? stranded : idle);
      }
    }
    total -= o.frag * frag;
    if (o.cap === 0) return total;
  }
  for (const m of shapes) {
    let slots = 0;
    if (m.milli < GPU_MILLI) {
      for (let g = 0; g < count; g++) {
        if ((m.mask & (1 << (bits[g] as number))) !== 0) slots += Math.floor((free[g] as number) / m.milli);
      }
    } else {
      let full = 0;
      for (let g = 0; g < count; g++) {
        if ((free[g] as number) === GPU_MILLI && (m.mask & (1 << (bits[g] as number))) !== 0) full++;
      }
      slots = Math.floor(full / m.count);
    }
    if (cpuCap && m.cpu > 0) slots = Math.min(slots, Math.floor(cpuFree / m.cpu));
    total += o.cap * m.weight * slots * m.count * m.milli;
  }
  return total;
}

export function makeTide(o: TideOptions = TIDE_DEFAULTS, name = 'tide'): PolicyFactory {
  return ({ cluster, workload }) => {
    const shapes = buildShapes(cluster, workload, o);
    const n = cluster.nodeCount;
    const capNow = new Float64Array(n);
    const capVersion = new Uint32Array(n);
    const scratch = new Int32Array(Math.max(1, cluster.maxGpusPerNode));
    const caches = new Map<string, { score: Float64Array; device: Int8Array; version: Uint32Array }>();
    let lastTask: PreparedTask | undefined;
    let last: { score: Float64Array; device: Int8Array; version: Uint32Array } | undefined;

    const nodeCap = (node: number): number => {
      if (capVersion[node] !== cluster.version[node]) {
        const s = cluster.gpuStart[node] as number;
        const e = cluster.gpuStart[node + 1] as number;
        capNow[node] = capacity(shapes, cluster.cpuFree[node] as number, cluster.gpuFree.subarray(s, e), cluster.gpuModel.subarray(s, e), e - s, o);
        capVersion[node] = cluster.version[node] as number;
      }
      return capNow[node] as number;
    };

    const evalNode = (node: number, t: PreparedTask): { score: number; device: number } => {
      const s = cluster.gpuStart[node] as number;
      const e = cluster.gpuStart[node + 1] as number;
      const count = e - s;
      const bits = cluster.gpuModel.subarray(s, e);
      const before = nodeCap(node);
      const cpuAfter = (cluster.cpuFree[node] as number) - t.cpuMilli;
      for (let g = 0; g < count; g++) scratch[g] = cluster.gpuFree[s + g] as number;
      const scoreOf = (after: number, idleAfter: number, freeOnGpu: number): number => {
        const loss = before - after + openCost;
        let score = -Math.floor(loss / o.band) * 4096;
        if (o.tie === 'used') score += 4095 - Math.floor(idleAfter / 2);
        else if (o.tie === 'tight') score += 4095 - Math.min(4095, freeOnGpu);
        return score;
      };
      const idle = cluster.idleGpuMilli[node] as number;
      const openCost = idle === count * GPU_MILLI && cluster.cpuFree[node] === cluster.nodes[node]?.cpuMilli ? o.open * count * ((cluster.nodes[node]?.cpuMilli ?? 0) >= (o.openMinCpu ?? 0) ? 1 : 0) : 0;
      if (t.kind === 'cpu') {
        return { score: scoreOf(capacity(shapes, cpuAfter, scratch, bits, count, o), idle, 0), device: -1 };
      }
      if (t.kind === 'whole') {
        for (const d of cluster.defaultDevices(node, t)) scratch[d] = 0;
        return { score: scoreOf(capacity(shapes, cpuAfter, scratch, bits, count, o), idle - t.gpuCount * GPU_MILLI, 0), device: -1 };
      }
      let best = -Infinity;
      let bestDevice = -1;
      let bestFree = Infinity;
      for (let g = 0; g < count; g++) {
        if (!cluster.gpuUsable(s + g, t)) continue;
        const f = scratch[g] as number;
        scratch[g] = f - t.gpuMilli;
        const sc = scoreOf(capacity(shapes, cpuAfter, scratch, bits, count, o), idle - t.gpuMilli, f - t.gpuMilli);
        scratch[g] = f;
        if (sc > best || (sc === best && f < bestFree)) {
          best = sc;
          bestDevice = g;
          bestFree = f;
        }
      }
      return { score: best, device: bestDevice };
    };

    return {
      name,
      score(node, t) {
        if (t !== lastTask) {
          lastTask = t;
          const key = `${t.cpuMilli}/${t.gpuCount}/${t.gpuMilli}/${t.modelMask}`;
          let c = caches.get(key);
          if (!c) {
            c = { score: new Float64Array(n), device: new Int8Array(n), version: new Uint32Array(n) };
            caches.set(key, c);
          }
          last = c;
        }
        const c = last as { score: Float64Array; device: Int8Array; version: Uint32Array };
        if (c.version[node] !== cluster.version[node]) {
          const r = evalNode(node, t);
          c.score[node] = r.score;
          c.device[node] = r.device;
          c.version[node] = cluster.version[node] as number;
        }
        return c.score[node] as number;
      },
      chooseDevices(node, t) {
        const d = last?.device[node] ?? -1;
        return t.kind === 'fraction' && d >= 0 ? [d] : cluster.defaultDevices(node, t);
      },
    };
  };
}

export const tide: PolicyFactory = makeTide();
