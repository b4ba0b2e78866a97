/**
 * `oracle` (simulator only): knows the future rate exactly (the observation's `oracle` view).
 * At each decision it keeps the replicas that the highest rate in the next 10 minutes needs
 * (the M/M/c rule), looking far enough ahead that a replica started now, on a GPU whose
 * borrower first checkpoints, is loaded in time even at the load time's 99.9th percentile;
 * everything else is lent. A bound to measure the others against, not a policy to deploy.
 * Options: `waitTail` (the M/M/c tail it sizes for, default 1 − sloQuantile as the benchmark
 * pins), `holdSeconds` (600), `loadQuantile` (0.999).
 */
import type { AutoscalerFactory, ReplicaDecision, ServiceObservation } from '../autoscaler.ts';
import { loadQuantile, replicaSizer } from '../sizing.ts';

export const oracle: AutoscalerFactory = (shape, options) => {
  const holdSeconds = options?.['holdSeconds'] ?? 600;
  const loadTail = loadQuantile(shape, options?.['loadQuantile'] ?? 0.999);
  // The benchmark pins the steady-state 1 % rule; `waitTail` sizes it for the per-window SLO instead.
  const size = replicaSizer(shape, options?.['waitTail'] ?? 1 - shape.sloQuantile);
  return {
    name: 'oracle',
    decide(o: ServiceObservation): ReplicaDecision {
      if (!o.oracle) throw new Error('oracle: the caller must hand it the future rate (observation.oracle); only the simulator can');
      const lead = shape.evictSeconds + o.intervalSeconds + loadTail;
      const rate = o.oracle.maxRate(o.now, o.now + lead + holdSeconds);
      const replicas = size(rate);
      const now = size(o.oracle.maxRate(o.now, o.now + o.intervalSeconds));
      return { replicas, keepGpus: replicas * shape.gpusPerReplica, urgent: now > o.ready + o.loading, reason: `oracle: peak ${rate.toFixed(2)}/s within ${Math.round(lead + holdSeconds)} s`, plannedRate: rate };
    },
  };
};
