/**
 * `reactive` (KAI/Kueue-style): every decision, the replicas that the current arrival rate,
 * raised by a margin, needs under the SLO (M/M/c); everything above is lendable; a rise is
 * reclaimed at once. It sees only the last interval, so a rise costs a reaction plus a model
 * load: the baseline the tidal benchmark measures the other policies against.
 */
import type { AutoscalerFactory, ReplicaDecision, ServiceObservation, ServiceShape } from '../autoscaler.ts';
import { serversNeeded } from '../queueing.ts';

/** Replicas the rate `lambda` (requests/s) needs under the shape's SLO, clamped to its bounds. */
export function replicasFor(shape: ServiceShape, lambda: number): number {
  const servers = serversNeeded(lambda, shape.serviceSeconds, shape.sloWaitSeconds, shape.sloQuantile, shape.maxReplicas * shape.concurrency);
  return Math.min(shape.maxReplicas, Math.max(shape.minReplicas, Math.ceil(servers / shape.concurrency)));
}

export const reactive: AutoscalerFactory = (shape, options) => {
  const margin = options?.['margin'] ?? 0.5;
  return {
    name: 'reactive',
    decide(o: ServiceObservation): ReplicaDecision {
      const rate = o.intervalSeconds > 0 ? o.arrivals / o.intervalSeconds : 0;
      // Requests already queued must be drained too: count them as arrivals over one interval.
      const backlog = o.intervalSeconds > 0 ? o.queueLength / o.intervalSeconds : 0;
      const replicas = replicasFor(shape, (rate + backlog) * (1 + margin));
      const current = o.ready + o.loading;
      return { replicas, keepGpus: replicas * shape.gpusPerReplica, urgent: replicas > current, reason: `rate ${rate.toFixed(2)}/s × ${(1 + margin).toFixed(2)}` };
    },
  };
};
