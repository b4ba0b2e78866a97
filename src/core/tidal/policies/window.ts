/**
 * `window` (Volcano TDM-style): a fixed set of GPUs is lent during fixed quiet hours of the
 * day, both learned from the warm-up days and never revised. Until then it keeps the whole
 * pool and records, per hour of the day, the highest 5-minute rate it saw. Then it picks the
 * number of GPUs L and the contiguous run of hours (wrapping at midnight) that maximise
 * L × hours, where in every chosen hour the replicas left (pool − L) meet that hour's highest
 * rate raised by the margin. The GPUs come back before the window closes: the reclaim starts a
 * checkpoint, a decision and a load time's 99th percentile ahead, by planned eviction. It never
 * reacts to demand: the baseline for a fixed schedule.
 */
import type { AutoscalerFactory, ReplicaDecision, ServiceObservation } from '../autoscaler.ts';
import { BucketRates } from '../buckets.ts';
import { loadQuantile, replicaSizer } from '../sizing.ts';

const HOUR = 3600;
const DAY = 24 * HOUR;

/** A lending window: hours [startHour, startHour + hours) of the day (mod 24) lend `lent` GPUs' worth of replicas. */
export interface LendingWindow {
  readonly startHour: number;
  readonly hours: number;
  readonly lentReplicas: number;
}

/**
 * The window that maximises lentReplicas × hours, given the replicas each hour of the day
 * needs at most; null when no hour leaves a replica to lend. Ties go to more replicas lent,
 * then to the earlier start.
 */
export function chooseWindow(needPerHour: readonly number[], maxReplicas: number): LendingWindow | null {
  let best: LendingWindow | null = null;
  const n = needPerHour.length;
  for (let lent = 1; lent <= maxReplicas; lent++) {
    const ok = needPerHour.map((need) => need <= maxReplicas - lent);
    if (ok.every(Boolean)) {
      if (!best || lent * n > best.lentReplicas * best.hours || (lent * n === best.lentReplicas * best.hours && lent > best.lentReplicas)) best = { startHour: 0, hours: n, lentReplicas: lent };
      continue;
    }
    // The longest circular run of ok hours.
    for (let start = 0; start < n; start++) {
      if (!ok[start] || ok[(start + n - 1) % n]) continue; // runs start after a not-ok hour
      let len = 0;
      while (len < n && ok[(start + len) % n]) len++;
      const score = lent * len;
      const bestScore = best ? best.lentReplicas * best.hours : 0;
      if (score > bestScore || (score === bestScore && best !== null && lent > best.lentReplicas)) best = { startHour: start, hours: len, lentReplicas: lent };
    }
  }
  return best;
}

export const windowPolicy: AutoscalerFactory = (shape, options) => {
  const margin = options?.['margin'] ?? 0.5;
  const learnSeconds = (options?.['learnDays'] ?? 7) * DAY;
  const size = replicaSizer(shape);
  const loadTail = loadQuantile(shape, 0.99);
  const hourPeak = new Float64Array(24);
  const rates = new BucketRates(300);
  let learned = false;
  let firstNow: number | null = null;
  let window: LendingWindow | null = null;
  const all: ReplicaDecision = { replicas: shape.maxReplicas, keepGpus: shape.maxReplicas * shape.gpusPerReplica, urgent: false, reason: 'window: the whole pool' };
  return {
    name: 'window',
    decide(o: ServiceObservation): ReplicaDecision {
      if (!learned) {
        rates.add(o, (bucket, rate) => {
          const hour = Math.floor(((bucket * 300) % DAY) / HOUR);
          hourPeak[hour] = Math.max(hourPeak[hour] as number, rate);
        });
        firstNow ??= o.now - o.intervalSeconds;
        if (o.now - firstNow < learnSeconds) return { ...all, reason: 'window: learning the quiet hours' };
        learned = true;
        window = chooseWindow([...hourPeak].map((r) => size(r * (1 + margin))), shape.maxReplicas);
      }
      if (!window) return all;
      const lead = shape.evictSeconds + o.intervalSeconds + loadTail;
      const start = window.startHour * HOUR;
      const end = start + window.hours * HOUR - lead;
      const t = (((o.now - start) % DAY) + DAY) % DAY + start;
      if (window.hours >= 24 || (t >= start && t < end)) {
        const replicas = shape.maxReplicas - window.lentReplicas;
        return { replicas, keepGpus: replicas * shape.gpusPerReplica, urgent: false, reason: `window: ${window.lentReplicas} lent ${window.startHour}:00 to ${(window.startHour + window.hours) % 24}:00` };
      }
      return all;
    },
  };
};
