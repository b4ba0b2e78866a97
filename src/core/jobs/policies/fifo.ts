/**
 * `fifo`: priority, then submission order, per queue (Kueue's StrictFIFO): the first job of a
 * queue that cannot start holds back the jobs behind it. Gangs start whole or not at all,
 * quotas are enforced, nothing is preempted. Heterogeneity-agnostic like Gavel's FIFO: a job
 * takes the first model, in the cluster's model order, where its gang fits, whatever its speed
 * there. (Gavel's FIFO code draws a random index but then uses the last free type in
 * alphabetical order, v100 before p100 before k80; its published numbers come from that.)
 * Options: `models: 'random'` draws among the models where it fits; `models: 'fastest'`
 * takes the fastest (Gavel's FIFO-perf).
 */
import { jobGpus, type JobSpec } from '../model.ts';
import { byPriorityThenFifo, declaredRunSeconds, ledgerFor, Placer, profileFor } from '../placer.ts';
import type { GangResult } from '../gang.ts';
import type { JobBind, JobScheduler, JobSchedulerContext, PendingJob, PendingReason, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';

/** How many waiting jobs get an estimated start time per cycle (the rest: none). */
export const ESTIMATE_LIMIT = 100;

export function fifo(ctx: JobSchedulerContext): JobScheduler {
  const placer = new Placer(ctx.rng, ctx.placement);
  const mode = ctx.options?.['models'] ?? 'ordered';
  const fastest = mode === 'fastest';
  return {
    name: fastest ? 'fifo-perf' : 'fifo',
    cycle(s: SchedulerSnapshot): SchedulePlan {
      placer.begin(s);
      const ledger = ledgerFor(s);
      const binds: JobBind[] = [];
      const pending: PendingReason[] = [];
      const blockedBy = new Map<string, string>();
      const waiting: PendingJob[] = [];
      for (const p of [...s.pending].sort((a, b) => byPriorityThenFifo(a.spec, b.spec))) {
        const job = p.spec;
        const head = blockedBy.get(job.queue);
        if (head !== undefined) {
          pending.push({ job: job.id, code: 'lower-priority', message: `behind job ${head} in queue '${job.queue}'` });
          waiting.push(p);
          continue;
        }
        const models = placer.modelsFor(job);
        if (models.length === 0) {
          pending.push({ job: job.id, code: 'no-fitting-gpu-model', message: 'no GPU model in the cluster can run it' });
          continue;
        }
        const gpus = jobGpus(job);
        const quotaErrors = models.map((m) => ledger.check(job.queue, m, gpus));
        const allowed = models.filter((_, i) => quotaErrors[i] === null);
        if (allowed.length === 0) {
          pending.push({ job: job.id, code: 'over-quota', message: quotaErrors[0] ?? 'over quota' });
          continue;
        }
        const ordered = fastest
          ? [...allowed].sort((a, b) => (job.throughput[b] ?? 0) - (job.throughput[a] ?? 0) || (a < b ? -1 : 1))
          : mode === 'random'
            ? ctx.rng.shuffle([...allowed])
            : allowed;
        let failure: GangResult | undefined;
        for (const model of ordered) {
          const r = placer.place(job, model);
          if (r.ok) {
            binds.push({ job: job.id, model, bindings: r.bindings });
            ledger.add(job.queue, model, gpus);
            failure = undefined;
            break;
          }
          failure ??= r;
        }
        if (failure && !failure.ok) {
          pending.push({ job: job.id, code: failure.code, message: failure.message });
          blockedBy.set(job.queue, job.id);
          waiting.push(p);
        }
      }
      return { binds, preemptions: [], pending: withEstimates(s, placer, waiting, pending) };
    },
  };
}

/** Adds estimated start times, in priority order, for the first ESTIMATE_LIMIT waiting jobs. */
export function withEstimates(s: SchedulerSnapshot, placer: Placer, waiting: readonly PendingJob[], reasons: readonly PendingReason[]): PendingReason[] {
  if (waiting.length === 0) return [...reasons];
  const profile = profileFor(s, placer);
  const estimate = new Map<string, number>();
  const order: string[] = [];
  for (const p of waiting.slice(0, ESTIMATE_LIMIT)) {
    const job: JobSpec = p.spec;
    const gpus = jobGpus(job);
    const run = declaredRunSeconds(job);
    let best = Infinity;
    let bestModel: string | undefined;
    for (const m of placer.modelsFor(job)) {
      const t = profile.earliest(m, gpus, run);
      if (t < best) {
        best = t;
        bestModel = m;
      }
    }
    if (bestModel === undefined || !Number.isFinite(best)) continue;
    profile.reserve(bestModel, gpus, best, run);
    estimate.set(job.id, best);
    order.push(job.id);
  }
  // Schedulers list the reasons in the order of their waiting list (one reason per job): one
  // walk finds the few to change. Otherwise, look every reason up.
  const out = reasons.slice();
  let i = 0;
  let found = 0;
  for (const id of order) {
    while (i < out.length && (out[i] as PendingReason).job !== id) i++;
    if (i === out.length) break;
    out[i] = { ...(out[i] as PendingReason), estimatedStart: estimate.get(id) as number };
    i++;
    found++;
  }
  if (found === order.length) return out;
  return reasons.map((r) => {
    const t = estimate.get(r.job);
    return t === undefined ? r : { ...r, estimatedStart: t };
  });
}
