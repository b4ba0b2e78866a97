/**
 * A service's rate history from before Tide ran it (a team moving a deployment onto Tide exports
 * it from Prometheus), replayed into its autoscaler as the observations the autoscaler would have
 * made had it run then. The autoscaler learns from them exactly as from live ones (its forecast
 * profiles, its tracked error, its learning period); it still sees only the past, because the
 * history ends before the service started.
 *
 * The history is a step function: each point's rate (requests/s, as Prometheus's `rate()` gives
 * it) holds from its time until the next point's, the last for the step before it, and none for
 * longer than `maxHoldSeconds` (a longer gap between points is missing data, not a steady rate).
 * Decisions are replayed every `intervalSeconds` on the clock's grid, for every interval the
 * history covers entirely; each sees the arrivals the rate gives over it (their expectation: the
 * export's own counts are already in its rates), an empty queue and the replicas it asked for
 * ready. Pure: no clock, no randomness.
 */
import type { Autoscaler, OracleView, ReplicaDecision, ServiceObservation } from './autoscaler.ts';

/** One point of a rate history: from `t` (s, the autoscaler's clock) the rate is `rate` requests/s. */
export interface RatePoint {
  readonly t: number;
  readonly rate: number;
}

export interface ReplayOptions {
  /** The decision interval replayed (s; 30, as the live controller and the simulator decide). */
  readonly intervalSeconds: number;
  /** No replayed observation reaches past this time (the service's start, on the same clock). */
  readonly until: number;
  /** The longest a point holds when the next one is further away (s; default 3600). */
  readonly maxHoldSeconds?: number;
  /** Replicas the first replayed observation reports ready (the service's minimum). */
  readonly initialReplicas: number;
}

export interface ReplayOutcome {
  /** Observations replayed. */
  readonly decisions: number;
  /** The first and last replayed instants (s), or null when the history covered no whole interval. */
  readonly from: number | null;
  readonly to: number | null;
}

interface Segment {
  readonly start: number;
  readonly end: number;
  readonly rate: number;
}

/** The history as runs of contiguous segments (a gap ends a run), clipped to `until`. */
function runs(points: readonly RatePoint[], until: number, maxHold: number): Segment[][] {
  const out: Segment[][] = [];
  let run: Segment[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i] as RatePoint;
    const next = points[i + 1];
    const prev = points[i - 1];
    const step = next !== undefined ? next.t - p.t : prev !== undefined ? p.t - prev.t : 0;
    const end = Math.min(until, next !== undefined && step <= maxHold ? next.t : p.t + Math.min(step, maxHold));
    if (!(end > p.t)) continue;
    const last = run[run.length - 1];
    if (last !== undefined && last.end !== p.t) {
      out.push(run);
      run = [];
    }
    run.push({ start: p.t, end, rate: p.rate });
  }
  if (run.length > 0) out.push(run);
  return out;
}

/**
 * Replays `points` (times increasing) into `autoscaler` as its past observations, and returns
 * how many it replayed. Throws a RangeError on points that are not increasing or not finite
 * rates ≥ 0 (callers check them first and name the bad row).
 */
export function replayHistory(autoscaler: Autoscaler, points: readonly RatePoint[], o: ReplayOptions): ReplayOutcome {
  const I = o.intervalSeconds;
  if (!(I > 0)) throw new RangeError(`intervalSeconds must be > 0, got ${I}`);
  for (let i = 0; i < points.length; i++) {
    const p = points[i] as RatePoint;
    if (!Number.isFinite(p.t) || !(p.rate >= 0) || !Number.isFinite(p.rate)) throw new RangeError(`point ${i}: not a finite time and rate ≥ 0`);
    if (i > 0 && !(p.t > (points[i - 1] as RatePoint).t)) throw new RangeError(`point ${i}: its time does not come after the one before`);
  }
  let ready = o.initialReplicas;
  let decisions = 0;
  let from: number | null = null;
  let to: number | null = null;
  for (const run of runs(points, o.until, o.maxHoldSeconds ?? 3600)) {
    const end = (run[run.length - 1] as Segment).end;
    let j = 0;
    // Every grid interval [τ − I, τ) the run covers entirely is one observation.
    for (let tau = (Math.ceil((run[0] as Segment).start / I) + 1) * I; tau <= end; tau += I) {
      let arrivals = 0;
      while ((run[j] as Segment).end <= tau - I) j++;
      for (let m = j; m < run.length && (run[m] as Segment).start < tau; m++) {
        const s = run[m] as Segment;
        arrivals += s.rate * (Math.min(tau, s.end) - Math.max(tau - I, s.start));
      }
      const d: ReplicaDecision = autoscaler.decide({ now: tau, arrivals, intervalSeconds: I, queueLength: 0, ready, loading: 0, stopping: 0, lentGpus: 0 });
      ready = d.replicas;
      decisions++;
      from ??= tau;
      to = tau;
    }
  }
  return { decisions, from, to };
}

/**
 * An autoscaler whose clock is `offset` seconds ahead of its caller's (the simulator's twin of a
 * live run with history: the history fills [0, offset), the simulated day follows it).
 */
export function shiftClock(autoscaler: Autoscaler, offset: number): Autoscaler {
  return {
    name: autoscaler.name,
    decide(o: ServiceObservation): ReplicaDecision {
      const oracle: OracleView | undefined = o.oracle;
      return autoscaler.decide({ ...o, now: o.now + offset, ...(oracle ? { oracle: { maxRate: (a: number, b: number) => oracle.maxRate(a - offset, b - offset) } } : {}) });
    },
  };
}
