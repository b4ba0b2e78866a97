/**
 * The contract between a service's autoscaler and whoever runs it (the tidal simulator and the
 * live server). Pure: the caller passes the clock and the observations; a policy keeps its own
 * history (what it has observed), and sees only the past — except the oracle, which is handed
 * the future by the simulator and named as such.
 *
 * Every decision interval (30 s in the tidal benchmark) the caller calls `decide` with what it
 * observed since the last call, and gets back how many replicas the service should have and how
 * many of its GPUs must not be lent. GPUs of the service's pool beyond `keepGpus` may be lent to
 * preemptible borrowers; when `keepGpus` rises above what is not lent, borrowers are evicted
 * (planned: checkpoint first) so that replicas can start in time; `urgent` says the rise is
 * needed now (reclaim immediately, losing the borrowers' work since their last checkpoint).
 */

/** What one replica of a service is and what its owner promises (seconds, requests). */
export interface ServiceShape {
  /** Replicas always running (≥ 1). */
  readonly minReplicas: number;
  /** Replicas never exceeded (the service's GPU pool, in replicas). */
  readonly maxReplicas: number;
  /** GPUs one replica holds (fractions allowed, e.g. 0.5). */
  readonly gpusPerReplica: number;
  /** Requests one replica serves at once. */
  readonly concurrency: number;
  /** Mean time one request occupies a replica slot (s). */
  readonly serviceSeconds: number;
  /** The SLO: this quantile of queueing wait (arrival to start of service) … */
  readonly sloQuantile: number;
  /** … stays at or below this many seconds, in every window. */
  readonly sloWaitSeconds: number;
  /** Length of an SLO window (s), 300 in the tidal benchmark. */
  readonly sloWindowSeconds: number;
  /** Model load time of a new replica: median and 90th percentile (s). */
  readonly loadSeconds: { readonly median: number; readonly p90: number };
  /** What a planned eviction of a borrower takes before its GPU is free (its checkpoint, s). */
  readonly evictSeconds: number;
}

/** What the caller saw since the last decision. */
export interface ServiceObservation {
  /** Now (s, the caller's clock). */
  readonly now: number;
  /** Requests that arrived since the last decision, and over how many seconds. */
  readonly arrivals: number;
  readonly intervalSeconds: number;
  /** Requests waiting now (not yet served). */
  readonly queueLength: number;
  /** Replicas serving, loading their model, and stopping. */
  readonly ready: number;
  readonly loading: number;
  readonly stopping: number;
  /** GPUs of the pool lent to borrowers now. */
  readonly lentGpus: number;
  /** Whether the last window's SLO was missed (a policy may widen its margin). */
  readonly sloMissed?: boolean;
  /**
   * The true arrival rate, future included: handed only to the `oracle` by the simulator (a
   * live caller never sets it, and every other policy ignores it).
   */
  readonly oracle?: OracleView;
}

/** The simulator's exact rate curve, for the oracle alone. */
export interface OracleView {
  /** The highest arrival rate (requests/s) in [from, to) (s, the caller's clock). */
  maxRate(from: number, to: number): number;
}

export interface ReplicaDecision {
  /** Replicas wanted now (ready + loading), within [minReplicas, maxReplicas]. */
  readonly replicas: number;
  /** GPUs of the pool that must not be lent (≥ replicas × gpusPerReplica). */
  readonly keepGpus: number;
  /** The rise in keepGpus is needed now: reclaim immediately rather than by planned eviction. */
  readonly urgent: boolean;
  /** Why, in a few words (shown in events and the dashboard). */
  readonly reason: string;
  /** The arrival rate (requests/s) the decision provisions for, when the policy has one (charts, shortfall records). */
  readonly plannedRate?: number;
}

export interface Autoscaler {
  readonly name: string;
  decide(o: ServiceObservation): ReplicaDecision;
}

/** Makes an autoscaler for one service; `seed` for any randomness it uses. */
export type AutoscalerFactory = (shape: ServiceShape, options?: Readonly<Record<string, number>>) => Autoscaler;
