/**
 * Tide (draft).
 */
import { ALL_MODELS, type ClusterState, type PreparedTask } from '../cluster.ts';
import { GPU_MILLI } from '../model.ts';
import type { PolicyFactory } from '../policy.ts';
import { nodeFragmentation, type TargetWorkload } from '../workload.ts';

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
  /** Weight of FGD's fragmentation (with the same shape weights) in the node value. */
  readonly frag: number;
  /** Weight of the capacity measure. */
  readonly cap: number;
  /** Popularity of synthetic whole-node shapes (0: none). */
  readonly reserve: number;
  /** Scarcity counts all GPUs of nodes that fit the shape (true) or only the allowed ones. */
  readonly eligibleByNode: boolean;
  /** Reserve only node configurations that no other node dominates. */
  readonly reserveMaximal: boolean;
  /** Score penalty (in 1/4096 bands) for opening a maximal node. */
  readonly keepMaximal: number;
  /** If > 0: FGD-style bands ⌊100·σ(−loss/sigmoid)⌋ instead of linear ones. */
  readonly sigmoid: number;
  /** FGD's own score (original workload) first, Tide's loss as the tie-breaker. */
  readonly lex: boolean;
  /** If > 0: FGD-style bands on Tide's own (scarcity-weighted) fragmentation first, with this scale. */
  readonly lexOwn: number;
  /** Count only the capacity lost beyond the task's own GPU milli. */
  readonly subtractOwn: boolean;
  /** With lex: weight of the capacity lost on scarce GPU models, added to FGD's Δ. */
  readonly kappa: number;
}

/** No other node has at least as much CPU, memory and GPUs, with more of one. */
function isMaximal(cluster: ClusterState, n: number): boolean {
  const a = cluster.nodes[n];
  if (!a) return false;
  for (const b of cluster.nodes) {
    if (b.cpuMilli >= a.cpuMilli && b.memoryMib >= a.memoryMib && b.gpus.length >= a.gpus.length &&
      (b.cpuMilli > a.cpuMilli || b.memoryMib > a.memoryMib || b.gpus.length > a.gpus.length)) return false;
  }
  return true;
}

export const TIDE_DEFAULTS: TideOptions = { band: 25, scarcity: 1, byGpu: false, cpuCap: true, tie: 'none', open: 0, frag: 0.5, cap: 1, reserve: 0, eligibleByNode: false, reserveMaximal: false, keepMaximal: 34359738368, sigmoid: 0, lex: true, lexOwn: 0, subtractOwn: false, kappa: 1 };

interface Shape {
  readonly cpu: number;
  readonly count: number;
  readonly milli: number;
  readonly mask: number;
  readonly weight: number;
  /** Raw popularity × (model scarcity − 1): the extra value of this shape's capacity on scarce models. */
  readonly scarce: number;
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
      if (o.reserveMaximal && !isMaximal(cluster, n)) continue;
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
    let modelEligible = 0;
    for (let g = 0; g < gpusTotal; g++) if ((m.mask & (1 << (cluster.gpuModel[g] as number))) !== 0) modelEligible++;
    const scarce = modelEligible > 0 ? m.pop * (gpusTotal / modelEligible - 1) : 0;
    shapes.push({ cpu: m.cpu, count: m.count, milli: m.milli, mask: m.mask, weight: base * scarcity, scarce });
  }
  const sum = shapes.reduce((s, m) => s + m.weight, 0);
  return shapes.map((m) => ({ ...m, weight: m.weight / sum }));
}

/** Node value parts: out[0] = weighted FGD fragmentation, out[1] = weighted GPU milli the shapes could still use. */
function nodeValue(shapes: readonly Shape[], cpuFree: number, free: ArrayLike<number>, bits: ArrayLike<number>, count: number, o: TideOptions, out: Float64Array): void {
  const cpuCap = o.cpuCap;
  let frag = 0;
  let idle = 0;
  for (let g = 0; g < count; g++) idle += free[g] as number;
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
  let total = 0;
  let scarce = 0;
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
    total += m.weight * slots * m.count * m.milli;
    scarce += m.scarce * slots * m.count * m.milli;
  }
  out[0] = frag;
  out[1] = total;
  out[2] = scarce;
}

export function makeTide(o: TideOptions = TIDE_DEFAULTS, name = 'tide'): PolicyFactory {
  return ({ cluster, workload }) => {
    const shapes = buildShapes(cluster, workload, o);
    const maximal = new Uint8Array(cluster.nodeCount);
    if (o.keepMaximal) for (let i = 0; i < cluster.nodeCount; i++) maximal[i] = cluster.gpuCount(i) >= 2 && isMaximal(cluster, i) ? 1 : 0;
    const n = cluster.nodeCount;
    const fragNow = new Float64Array(n);
    const capNow = new Float64Array(n);
    const rawNow = new Float64Array(n);
    const capVersion = new Uint32Array(n);
    const out = new Float64Array(3);
    const scarceNow = new Float64Array(n);
    const scratch = new Int32Array(Math.max(1, cluster.maxGpusPerNode));
    const caches = new Map<string, { score: Float64Array; device: Int8Array; version: Uint32Array }>();
    let lastTask: PreparedTask | undefined;
    let last: { score: Float64Array; device: Int8Array; version: Uint32Array } | undefined;

    const refresh = (node: number): void => {
      if (capVersion[node] !== cluster.version[node]) {
        const s = cluster.gpuStart[node] as number;
        const e = cluster.gpuStart[node + 1] as number;
        nodeValue(shapes, cluster.cpuFree[node] as number, cluster.gpuFree.subarray(s, e), cluster.gpuModel.subarray(s, e), e - s, o, out);
        fragNow[node] = out[0] as number;
        capNow[node] = out[1] as number;
        scarceNow[node] = out[2] as number;
        if (o.lex) rawNow[node] = nodeFragmentation(workload, cluster.cpuFree[node] as number, cluster.gpuFree.subarray(s, e), cluster.gpuModel.subarray(s, e), e - s);
        capVersion[node] = cluster.version[node] as number;
      }
    };

    const evalNode = (node: number, t: PreparedTask): { score: number; device: number } => {
      const s = cluster.gpuStart[node] as number;
      const e = cluster.gpuStart[node + 1] as number;
      const count = e - s;
      const bits = cluster.gpuModel.subarray(s, e);
      refresh(node);
      const fragBefore = fragNow[node] as number;
      const capBefore = capNow[node] as number;
      const rawBefore = rawNow[node] as number;
      const cpuAfter = (cluster.cpuFree[node] as number) - t.cpuMilli;
      for (let g = 0; g < count; g++) scratch[g] = cluster.gpuFree[s + g] as number;
      const idle = cluster.idleGpuMilli[node] as number;
      const demand = t.gpuCount * (t.gpuCount === 0 ? 0 : t.gpuMilli);
      const isEmpty = idle === count * GPU_MILLI && cluster.cpuFree[node] === cluster.nodes[node]?.cpuMilli;
      const scoreAfter = (idleAfter: number, freeOnGpu: number): number => {
        nodeValue(shapes, cpuAfter, scratch, bits, count, o, out);
        const loss = o.frag * ((out[0] as number) - fragBefore) + o.cap * (capBefore - (out[1] as number) - (o.subtractOwn ? demand : 0)) + (isEmpty ? o.open * count : 0);
        let score = (o.sigmoid > 0 ? Math.trunc(100 / (1 + Math.exp(loss / o.sigmoid))) : -Math.floor(loss / o.band)) * 4096;
        if (o.tie === 'used') score += 4095 - Math.floor(idleAfter / 2);
        else if (o.tie === 'tight') score += 4095 - Math.min(4095, freeOnGpu);
        if (o.keepMaximal && isEmpty && maximal[node] === 1) score -= o.keepMaximal;
        if (o.lexOwn) score += Math.trunc(100 / (1 + Math.exp(((out[0] as number) - fragBefore) / o.lexOwn))) * 2 ** 36;
        if (o.lex) {
          const rawAfter = nodeFragmentation(workload, cpuAfter, scratch, bits, count);
          const scarceLoss = (scarceNow[node] as number) - (out[2] as number);
          score += Math.trunc(100 / (1 + Math.exp((rawAfter - rawBefore + o.kappa * scarceLoss) / 1000))) * 2 ** 36;
        }
        return score;
      };
      if (t.kind === 'cpu') return { score: scoreAfter(idle, 0), device: -1 };
      if (t.kind === 'whole') {
        for (const d of cluster.defaultDevices(node, t)) scratch[d] = 0;
        return { score: scoreAfter(idle - t.gpuCount * GPU_MILLI, 0), device: -1 };
      }
      let best = -Infinity;
      let bestDevice = -1;
      let bestFree = Infinity;
      for (let g = 0; g < count; g++) {
        if (!cluster.gpuUsable(s + g, t)) continue;
        const f = scratch[g] as number;
        scratch[g] = f - t.gpuMilli;
        const sc = scoreAfter(idle - t.gpuMilli, f - t.gpuMilli);
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
