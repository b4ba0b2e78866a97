/**
 * Sizing helpers shared by the autoscalers: replicas for a rate (the M/M/c rule of
 * `queueing.ts`, answered from a table so a policy can ask thousands of times per simulated
 * day), and quantiles of the model's log-normal load time.
 */
import type { ServiceShape } from './autoscaler.ts';
import { waitTailProbability } from './queueing.ts';

/** Replicas (within [minReplicas, maxReplicas]) that the arrival rate `lambda` (requests/s) needs under the shape's SLO. */
export type ReplicaSizer = (lambda: number) => number;

/**
 * The smallest c for which the M/M/c probability of waiting more than the SLO's wait is at most
 * `waitTail` (default 1 − sloQuantile: then it equals `replicasFor` of policies/reactive.ts).
 * For each server count c it keeps the highest rate c servers can take (found by bisection: the
 * wait tail grows with the rate), so a call is a binary search over at most
 * maxReplicas × concurrency entries.
 *
 * The default is the steady-state reading of the SLO. An SLO judged per 5-minute window is
 * stricter: the waits of one window are correlated (one busy spell makes them all late), so at a
 * constant rate the 1 % rule misses the window's p99 in about 10 % of windows; a tail of about
 * 2e-5 misses about 0.05 % (bench/tidalWindows.ts measures it).
 */
export function replicaSizer(shape: ServiceShape, waitTail = 1 - shape.sloQuantile): ReplicaSizer {
  if (!(waitTail > 0 && waitTail < 1)) throw new RangeError(`waitTail must be in (0, 1), got ${waitTail}`);
  const cap = Math.max(1, Math.floor(shape.maxReplicas * shape.concurrency));
  const mu = 1 / shape.serviceSeconds;
  const allowed = waitTail;
  // highest[c - 1]: the largest rate that c servers meet the target at.
  const highest = new Float64Array(cap);
  for (let c = 1; c <= cap; c++) {
    let lo = 0;
    let hi = c * mu;
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (waitTailProbability(mid, mu, c, shape.sloWaitSeconds) <= allowed) lo = mid;
      else hi = mid;
    }
    highest[c - 1] = lo;
  }
  const clamp = (servers: number): number => Math.min(shape.maxReplicas, Math.max(shape.minReplicas, Math.ceil(servers / shape.concurrency)));
  return (lambda: number): number => {
    if (!(lambda > 0)) return clamp(1);
    if (lambda > (highest[cap - 1] as number)) return clamp(cap);
    let lo = 0;
    let hi = cap - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((highest[mid] as number) >= lambda) hi = mid;
      else lo = mid + 1;
    }
    return clamp(lo + 1);
  };
}

/** The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
}

/** The log-normal's σ that puts the shape's load-time p90 where it says (median and p90 given). */
export function loadSigma(shape: ServiceShape): number {
  const { median, p90 } = shape.loadSeconds;
  return p90 > median && median > 0 ? Math.log(p90 / median) / normalQuantile(0.9) : 0;
}

/** The `p` quantile of the shape's model load time (s). */
export function loadQuantile(shape: ServiceShape, p: number): number {
  return shape.loadSeconds.median * Math.exp(normalQuantile(p) * loadSigma(shape));
}
