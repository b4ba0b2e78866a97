/**
 * GPUs each queue lends to and borrows from its cohort now, from the store's snapshot, for
 * `tide queues`, /v1/queues, the metrics and the services' observations. The rule is the core's
 * (core/scheduling/lending.ts cohortLoans): quota units as the quota ledger counts them (a task
 * of k GPUs counts k, a fraction of a GPU counts 1), by GPU model and in all (`*`).
 */
import { cohortLoans, type Loan } from '../../core/scheduling/lending.ts';
import type { StoreSnapshot } from '../../store/store.ts';
import { openJobsById } from '../../store/openJobIndex.ts';
import { coreQueues } from '../scheduling/coreAdapter.ts';

/** Quota units each queue's active tasks hold, by GPU model and `*`. */
export function queueUsage(s: Pick<StoreSnapshot, 'nodes' | 'activeTasks' | 'openJobs'>): Map<string, Map<string, number>> {
  const jobs = openJobsById(s.openJobs);
  const models = new Map(s.nodes.map((n) => [n.id, n.gpus]));
  const usage = new Map<string, Map<string, number>>();
  for (const t of s.activeTasks) {
    const queue = jobs.get(t.jobId)?.queue;
    if (queue === undefined || t.gpus.length === 0 || t.state === 'stopping') continue;
    let u = usage.get(queue);
    if (!u) usage.set(queue, (u = new Map()));
    for (const g of t.gpus) {
      const model = models.get(t.node)?.find((x) => x.index === g)?.model ?? '?';
      u.set(model, (u.get(model) ?? 0) + 1);
      u.set('*', (u.get('*') ?? 0) + 1);
    }
  }
  return usage;
}

/** Lent and borrowed GPUs per queue (queues without a quota: none of either). */
export function queueLoans(s: Pick<StoreSnapshot, 'nodes' | 'activeTasks' | 'openJobs' | 'queues'>): Map<string, Loan> {
  return cohortLoans(coreQueues(s.queues), queueUsage(s));
}
