/**
 * Turns what was scraped off a service's replicas into the autoscaler's observation: arrivals
 * are the increase of each replica's request counter since its previous scrape (a replica seen
 * for the first time counts from 0, its process start; a counter that went down was restarted
 * and counts from 0 again), the queue is the sum of the replicas' queue gauges, and the service
 * time is learned from the increase of the service-time summary (_sum ÷ _count), smoothed.
 */
import type { ServiceObservation } from '../../core/tidal/autoscaler.ts';

/** One replica's scrape: its run (job id and attempt) and the metric sums read (undefined: the scrape failed). */
export interface ReplicaScrape {
  readonly run: string;
  readonly values?: ReadonlyMap<string, number>;
}

export interface MetricNames {
  readonly rate: string;
  readonly queue: string;
  readonly inFlight: string;
  readonly serviceTime: string;
}

/** What the tracker learned from one round of scrapes. */
export interface ScrapeRound {
  readonly arrivals: number;
  readonly queueLength: number;
  /** Requests in service per replica run (for the choice of which replica to stop). */
  readonly inFlight: ReadonlyMap<string, number>;
  /** Replicas whose scrape failed this round. */
  readonly failed: number;
}

/** Weight of a new service-time sample in the smoothed estimate. */
const SMOOTHING = 0.3;

export class ScrapeTracker {
  private last = new Map<string, { rate: number; sum: number; count: number }>();
  private learned: number | null = null;

  constructor(private readonly names: MetricNames) {}

  /** The learned mean service time (s, as the replicas measure it), or null before any request finished. */
  get serviceSeconds(): number | null {
    return this.learned;
  }

  /** Takes one round of scrapes (every ready replica's); replicas not in it are forgotten. */
  round(scrapes: readonly ReplicaScrape[]): ScrapeRound {
    const next = new Map<string, { rate: number; sum: number; count: number }>();
    let arrivals = 0;
    let queueLength = 0;
    let failed = 0;
    let sum = 0;
    let count = 0;
    const inFlight = new Map<string, number>();
    for (const s of scrapes) {
      const prev = this.last.get(s.run);
      if (!s.values) {
        failed++;
        if (prev) next.set(s.run, prev);
        continue;
      }
      const v = s.values;
      const rate = Math.max(0, v.get(this.names.rate) ?? prev?.rate ?? 0);
      const sSum = Math.max(0, v.get(`${this.names.serviceTime}_sum`) ?? 0);
      const sCount = Math.max(0, v.get(`${this.names.serviceTime}_count`) ?? 0);
      // A counter below its previous value was restarted: it counts from 0 again.
      arrivals += prev === undefined || rate < prev.rate ? rate : rate - prev.rate;
      const same = prev !== undefined && sCount >= prev.count;
      sum += Math.max(0, same ? sSum - prev.sum : sSum);
      count += same ? sCount - prev.count : sCount;
      queueLength += Math.max(0, v.get(this.names.queue) ?? 0);
      inFlight.set(s.run, Math.max(0, v.get(this.names.inFlight) ?? 0));
      next.set(s.run, { rate, sum: sSum, count: sCount });
    }
    if (count > 0 && sum > 0) {
      const sample = sum / count;
      this.learned = this.learned === null ? sample : (1 - SMOOTHING) * this.learned + SMOOTHING * sample;
    }
    this.last = next;
    return { arrivals, queueLength, inFlight, failed };
  }
}

/** The observation handed to the autoscaler (times already in the autoscaler's seconds). */
export function observation(now: number, intervalSeconds: number, round: ScrapeRound, ready: number, loading: number, stopping: number, lentGpus: number): ServiceObservation {
  return { now, arrivals: round.arrivals, intervalSeconds, queueLength: round.queueLength, ready, loading, stopping, lentGpus };
}
