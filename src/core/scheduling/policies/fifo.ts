/**
 * `fifo`: priority, then submission order, per queue (Kueue's StrictFIFO): the first job of a
 * queue that cannot start holds back the jobs behind it — unless no schedulable node could run
 * it even empty: that job waits as `unschedulable` and holds back nothing (Kueue's
 * BestEffortFIFO for it). Gangs start whole or not at all, quotas are enforced, nothing is
 * preempted. Heterogeneity-agnostic like Gavel's FIFO: a job
 * takes the first model, in the cluster's model order, where its gang fits, whatever its speed
 * there. (Gavel's FIFO code draws a random index but then uses the last free type in
 * alphabetical order, v100 before p100 before k80; its published numbers come from that.)
 * Options: `models: 'random'` draws among the models where it fits; `models: 'fastest'`
 * takes the fastest (Gavel's FIFO-perf).
 */
import { jobGpus, jobId, type JobSpec } from '../model.ts';
import { PendingTable, SortedList } from '../pendingTable.ts';
import { byPriorityThenFifo, declaredRunSeconds, ledgerFor, Placer, profileFor } from '../placer.ts';
import type { GangResult } from '../gang.ts';
import type { JobBind, JobScheduler, JobSchedulerContext, PendingJob, PendingReason, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';

/** How many waiting jobs get an estimated start time per cycle (the rest: none). */
export const ESTIMATE_LIMIT = 100;

/** What fifo keeps about a pending job between cycles. */
interface Waiting {
  readonly p: PendingJob;
  /** Index of its queue. */
  readonly q: number;
  /** Its slot: what the walk reads of every waiting job each cycle is kept by slot in small arrays. */
  readonly slot: number;
}

export function fifo(ctx: JobSchedulerContext): JobScheduler {
  const placer = new Placer(ctx.rng, ctx.placement);
  const mode = ctx.options?.['models'] ?? 'ordered';
  const fastest = mode === 'fastest';
  const queueIndex = new Map<string, number>();
  /** Pending jobs per queue index. */
  const perQueue: number[] = [];
  const bySlot: (Waiting | undefined)[] = [];
  const freeSlots: number[] = [];
  let slotQueue = new Int32Array(1024);
  /** Its last 'behind job …' reason, and the head it names. */
  const slotBehind: (PendingReason | undefined)[] = [];
  const slotBehindHead: (string | undefined)[] = [];
  const table = new PendingTable<number>((p) => {
    let q = queueIndex.get(p.spec.queue);
    if (q === undefined) {
      queueIndex.set(p.spec.queue, (q = queueIndex.size));
      perQueue.push(0);
    }
    const slot = freeSlots.pop() ?? bySlot.length;
    if (slot >= slotQueue.length) {
      const grown = new Int32Array(2 * slotQueue.length);
      grown.set(slotQueue);
      slotQueue = grown;
    }
    bySlot[slot] = { p, q, slot };
    slotQueue[slot] = q;
    slotBehind[slot] = undefined;
    slotBehindHead[slot] = undefined;
    return slot;
  });
  // Priority, then submission order: kept sorted from cycle to cycle.
  const order = new SortedList<number>((a, b) => byPriorityThenFifo((bySlot[a] as Waiting).p.spec, (bySlot[b] as Waiting).p.spec));
  /** The text of 'behind job …' for the last head of each queue. */
  const behindText: { head: string; text: string }[] = [];
  const behind = (slot: number, head: string): PendingReason => {
    const kept = slotBehind[slot];
    if (kept !== undefined && slotBehindHead[slot] === head) return kept;
    const w = bySlot[slot] as Waiting;
    let t = behindText[w.q];
    if (t?.head !== head) behindText[w.q] = t = { head, text: `behind job ${head} in queue '${w.p.spec.queue}'` };
    const r: PendingReason = { job: w.p.spec.id, code: 'lower-priority', message: t.text, blockedBy: jobId(head) };
    slotBehind[slot] = r;
    slotBehindHead[slot] = head;
    return r;
  };
  /** The models to try a job on, in this variant's order (`random`: a draw per job). */
  const orderOf = (job: JobSpec, models: readonly string[]): readonly string[] =>
    fastest ? [...models].sort((a, b) => (job.throughput[b] ?? 0) - (job.throughput[a] ?? 0) || (a < b ? -1 : 1)) : mode === 'random' ? ctx.rng.shuffle([...models]) : models;
  let binds: JobBind[] = [];
  let ledger: ReturnType<typeof ledgerFor>;
  /** Binds the job on the first of `models` where it fits; the first failure, or undefined when bound. */
  const placeOn = (models: readonly string[], job: JobSpec, gpus: number, member?: number): GangResult | undefined => {
    let failure: GangResult | undefined;
    for (const model of models) {
      const r = placer.place(job, model);
      if (r.ok) {
        binds.push(member === undefined ? { job: job.id, model, bindings: r.bindings } : { job: job.id, model, bindings: r.bindings, member });
        ledger.add(job.queue, model, gpus);
        return undefined;
      }
      failure ??= r;
    }
    return failure;
  };
  return {
    name: fastest ? 'fifo-perf' : 'fifo',
    folds: true,
    cycle(s: SchedulerSnapshot): SchedulePlan {
      placer.begin(s);
      ledger = ledgerFor(s);
      binds = [];
      const { added, removed } = table.update(s.pending);
      for (const slot of added) perQueue[slotQueue[slot] as number] = (perQueue[slotQueue[slot] as number] as number) + 1;
      for (const slot of removed) perQueue[slotQueue[slot] as number] = (perQueue[slotQueue[slot] as number] as number) - 1;
      order.apply(added, removed);
      for (const slot of removed) {
        bySlot[slot] = undefined;
        freeSlots.push(slot);
      }
      const pending: PendingReason[] = [];
      const blockedBy: (string | undefined)[] = [];
      // Only the first ESTIMATE_LIMIT waiting jobs get an estimate: the rest need not be listed.
      const waiting: PendingJob[] = [];
      // Queues with jobs still to look at and no job holding them back: when none is left, every
      // job further down waits behind its queue's head.
      const left = perQueue.slice();
      let open = 0;
      for (const n of left) if (n > 0) open++;
      const items = order.items;
      let i = 0;
      for (; i < items.length && open > 0; i++) {
        const slot = items[i] as number;
        const w = bySlot[slot] as Waiting;
        const p = w.p;
        const job = p.spec;
        const head = blockedBy[w.q];
        if (head !== undefined) {
          pending.push(behind(slot, head));
          if (waiting.length < ESTIMATE_LIMIT) waiting.push(p);
          continue;
        }
        left[w.q] = (left[w.q] as number) - 1;
        const models = placer.models(job);
        if (models.length === 0) {
          pending.push({ job: job.id, ...(placer.unschedulable(job) ?? { code: 'unschedulable', message: 'no GPU model in the cluster can run it' }) });
          if (left[w.q] === 0) open--;
          continue;
        }
        const gpus = jobGpus(job);
        const quotaErrors = models.map((m) => ledger.check(job.queue, m, gpus));
        const allowed = models.filter((_, k) => quotaErrors[k] === null);
        if (allowed.length === 0) {
          pending.push({ job: job.id, ...(placer.unschedulable(job) ?? { code: 'over-quota', message: quotaErrors[0] ?? 'over quota' }) });
          if (left[w.q] === 0) open--;
          continue;
        }
        // The first model, in order, where it fits; a folded entry's jobs one after another, each
        // as a job of its own would be (within quota, its own draw of the order), while they fit.
        const count = p.count ?? 1;
        let failure = placeOn(orderOf(job, allowed), job, gpus, count > 1 ? 0 : undefined);
        let overQuota: string | null = null;
        for (let placed = 1; placed < count && failure === undefined; placed++) {
          const now = models.filter((m) => ledger.check(job.queue, m, gpus) === null);
          if (now.length === 0) {
            overQuota = ledger.check(job.queue, models[0] as string, gpus);
            break;
          }
          failure = placeOn(orderOf(job, now), job, gpus, placed);
        }
        // A job no schedulable node could ever run holds back nothing.
        const never = failure && !failure.ok ? placer.unschedulable(job) : null;
        if (overQuota !== null) {
          pending.push({ job: job.id, code: 'over-quota', message: overQuota });
          if (left[w.q] === 0) open--;
        } else if (never) {
          pending.push({ job: job.id, ...never });
          if (left[w.q] === 0) open--;
        } else if (failure && !failure.ok) {
          pending.push({ job: job.id, code: failure.code, message: failure.message });
          blockedBy[w.q] = job.id;
          if (waiting.length < ESTIMATE_LIMIT) waiting.push(p);
          open--;
        } else if (left[w.q] === 0) open--;
      }
      for (; i < items.length; i++) {
        const slot = items[i] as number;
        pending.push(behind(slot, blockedBy[slotQueue[slot] as number] as string));
        if (waiting.length < ESTIMATE_LIMIT) waiting.push((bySlot[slot] as Waiting).p);
      }
      addEstimates(s, placer, waiting, pending);
      return { binds, preemptions: [], pending };
    },
  };
}

/** Adds estimated start times, in priority order, for the first ESTIMATE_LIMIT waiting jobs. */
export function withEstimates(s: SchedulerSnapshot, placer: Placer, waiting: readonly PendingJob[], reasons: readonly PendingReason[]): PendingReason[] {
  const out = reasons.slice();
  addEstimates(s, placer, waiting, out);
  return out;
}

/** withEstimates on the scheduler's own list of reasons: replaces those that get an estimate. */
export function addEstimates(s: SchedulerSnapshot, placer: Placer, waiting: readonly PendingJob[], out: PendingReason[]): void {
  if (waiting.length === 0) return;
  const profile = profileFor(s, placer);
  const estimate = new Map<string, number>();
  const order: string[] = [];
  for (const p of waiting.slice(0, ESTIMATE_LIMIT)) {
    const job: JobSpec = p.spec;
    const gpus = jobGpus(job);
    const run = declaredRunSeconds(job);
    let best = Infinity;
    let bestModel: string | undefined;
    for (const m of placer.models(job)) {
      const t = profile.earliest(m, gpus, run);
      if (t < best) {
        best = t;
        bestModel = m;
        // Nothing starts before now.
        if (best <= s.now) break;
      }
    }
    if (bestModel === undefined || !Number.isFinite(best)) continue;
    profile.reserve(bestModel, gpus, best, run);
    estimate.set(job.id, best);
    order.push(job.id);
  }
  // Schedulers list the reasons in the order of their waiting list (one reason per job): one
  // walk finds the few to change. Otherwise, look every reason up.
  let i = 0;
  let found = 0;
  for (const id of order) {
    while (i < out.length && (out[i] as PendingReason).job !== id) i++;
    if (i === out.length) break;
    out[i] = { ...(out[i] as PendingReason), estimatedStart: estimate.get(id) as number };
    i++;
    found++;
  }
  if (found === order.length) return;
  for (let k = 0; k < out.length; k++) {
    const r = out[k] as PendingReason;
    const t = estimate.get(r.job);
    if (t !== undefined) out[k] = { ...r, estimatedStart: t };
  }
}
