/**
 * `static`: the service keeps every replica of its pool, all the time; nothing is lent. The
 * SLO's upper bound and utilisation's lower bound: what inference provisioned for its peak does.
 */
import type { AutoscalerFactory, ReplicaDecision } from '../autoscaler.ts';

export const staticPolicy: AutoscalerFactory = (shape) => {
  const decision: ReplicaDecision = { replicas: shape.maxReplicas, keepGpus: shape.maxReplicas * shape.gpusPerReplica, urgent: false, reason: 'static: the whole pool' };
  return { name: 'static', decide: () => decision };
};
