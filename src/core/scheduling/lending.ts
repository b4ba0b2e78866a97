/**
 * Lending a service's idle GPUs to the cohort and taking them back: a stage of its own, run
 * before any job scheduler's cycle (`withLending`), as Volcano runs its reclaim action.
 *
 * A service's queue holds the service's GPU pool as nominal quota (Kueue's ClusterQueue). Its
 * autoscaler says how many of those GPUs the service keeps (`Reservation.keepGpus`: the replicas
 * it runs and those it expects to start); the rest is lent to borrowers of the cohort through
 * the existing cohort borrowing, by lowering the queue's lending limit to what is not kept
 * (`effectiveQueues`). When the kept GPUs rise above what the cohort can still lend, borrowers
 * are reclaimed (`reclaimVictims`): the runs that lose the least work first (the
 * checkpoint-aware rule of preemptionCost.ts), `planned` (stopped with their grace period, so
 * they checkpoint) unless a reservation that is short of GPUs is `urgent`, then `immediate`.
 *
 * Quota keys (`*` and GPU models) are counted as the quota ledger counts them: a task of k whole
 * GPUs or of a fraction of one GPU counts k or 1. Only cohorts holding a reserved queue are
 * touched, so without reservations the stage changes nothing.
 */
import type { GpuModel } from '../model.ts';
import { ascending, type JobId, type QueueConfig } from './model.ts';
import { preemptionCostSeconds, restartSecondsOf, type PreemptionSettings, NO_PREEMPTION_LIMITS } from './preemptionCost.ts';
import type { JobScheduler, PendingReason, Preemption, Reservation, RunningJob, SchedulePlan, SchedulerSnapshot } from './scheduler.ts';

const ANY = '*';

/** GPUs per quota key (`*` and each model) that each queue's runs hold, stopping runs left out. */
export function usageByQueue(running: readonly RunningJob[], skip?: ReadonlySet<string>): Map<string, Map<string, number>> {
  const usage = new Map<string, Map<string, number>>();
  for (const r of running) {
    if (r.stopping || r.gpus === 0 || skip?.has(r.spec.id)) continue;
    let u = usage.get(r.spec.queue);
    if (!u) usage.set(r.spec.queue, (u = new Map()));
    u.set(r.model, (u.get(r.model) ?? 0) + r.gpus);
    u.set(ANY, (u.get(ANY) ?? 0) + r.gpus);
  }
  return usage;
}

/** Keys a queue's quota names. */
const keysOf = (q: QueueConfig): string[] => Object.keys(q.nominalQuota).filter((k) => q.nominalQuota[k] !== undefined);

/**
 * The queues with each reserved queue's lending limit lowered to what its services do not keep:
 * per key, nominal − Σ keepGpus − what the queue's other runs (not the services' replicas) use,
 * never above the configured limit. Unreserved queues are the same objects.
 */
export function effectiveQueues(queues: readonly QueueConfig[], reservations: readonly Reservation[], running: readonly RunningJob[]): QueueConfig[] {
  const byQueue = new Map<string, Reservation[]>();
  for (const r of reservations) byQueue.set(r.queue, [...(byQueue.get(r.queue) ?? []), r]);
  if (byQueue.size === 0) return [...queues];
  const replicaIds = new Set(reservations.flatMap((r) => r.replicas as readonly string[]));
  const others = usageByQueue(running, replicaIds);
  return queues.map((q) => {
    const rs = byQueue.get(q.name);
    if (!rs) return q;
    const keep = rs.reduce((n, r) => n + Math.max(0, r.keepGpus), 0);
    const used = others.get(q.name);
    const lendingLimit: Record<string, number> = { ...(q.lendingLimit ?? {}) };
    for (const key of keysOf(q)) {
      const nominal = q.nominalQuota[key] ?? 0;
      const free = Math.max(0, nominal - keep - (used?.get(key) ?? 0));
      lendingLimit[key] = Math.min(q.lendingLimit?.[key] ?? nominal, free);
    }
    return { ...q, lendingLimit };
  });
}

interface CohortKey {
  readonly cohort: string;
  readonly key: string;
}

/** How far the cohort's borrowing exceeds what it can lend on one key (Σ borrowed − Σ lendable), with the given usage. */
export function overBorrowed(members: readonly QueueConfig[], key: string, usage: ReadonlyMap<string, ReadonlyMap<string, number>>): number {
  let borrowed = 0;
  let lendable = 0;
  for (const m of members) {
    const nominal = m.nominalQuota[key];
    if (nominal === undefined) continue;
    const used = usage.get(m.name)?.get(key) ?? 0;
    borrowed += Math.max(0, used - nominal);
    lendable += Math.min(m.lendingLimit?.[key] ?? nominal, Math.max(0, nominal - used));
  }
  return borrowed - lendable;
}

/** The cohorts (with their keys) that hold a reserved queue. */
function reservedCohorts(queues: readonly QueueConfig[], reservations: readonly Reservation[]): { members: Map<string, QueueConfig[]>; keys: CohortKey[] } {
  const members = new Map<string, QueueConfig[]>();
  for (const q of queues) {
    const c = q.cohort ?? `queue:${q.name}`;
    members.set(c, [...(members.get(c) ?? []), q]);
  }
  const reserved = new Set(reservations.map((r) => r.queue));
  const keys: CohortKey[] = [];
  for (const [cohort, list] of [...members].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (!list.some((q) => reserved.has(q.name))) continue;
    const names = new Set(list.flatMap(keysOf));
    for (const key of [...names].sort()) keys.push({ cohort, key });
  }
  return { members, keys };
}

/**
 * The borrowers to stop so that, once they have stopped, no cohort with a reserved queue
 * borrows more than it can lend (under `queues`, the effective ones). Candidates are running,
 * not stopping, preemptible runs of queues above their nominal quota on an over-borrowed key;
 * the one whose stop costs the least (restart plus work since its last checkpoint, × GPUs)
 * goes first, then the newest, then by id. `immediate` when a reservation of the cohort that is
 * short of GPUs (keeps more than its replicas hold) is urgent, else `planned`.
 */
export function reclaimVictims(queues: readonly QueueConfig[], reservations: readonly Reservation[], running: readonly RunningJob[], now: number, settings: PreemptionSettings = NO_PREEMPTION_LIMITS): Preemption[] {
  if (reservations.length === 0) return [];
  const { members, keys } = reservedCohorts(queues, reservations);
  const queueOf = new Map(queues.map((q) => [q.name, q]));
  const evicted = new Set<string>();
  const out: Preemption[] = [];
  const cost = new Map<RunningJob, number>();
  const costOf = (r: RunningJob): number => {
    let c = cost.get(r);
    if (c === undefined) cost.set(r, (c = stopCostSeconds(r, now, settings) * Math.max(1, r.gpus)));
    return c;
  };
  const held = new Map<string, number>();
  for (const r of running) if (!r.stopping) held.set(r.spec.id, r.gpus);
  for (const { cohort, key } of keys) {
    const list = members.get(cohort) ?? [];
    const names = new Set(list.map((q) => q.name));
    for (;;) {
      const usage = usageByQueue(running, evicted);
      const over = overBorrowed(list, key, usage);
      if (over <= 1e-9) break;
      const candidates = running.filter((r) => {
        if (r.stopping || evicted.has(r.spec.id) || !r.spec.preemptible || r.gpus === 0 || !names.has(r.spec.queue)) return false;
        if (key !== ANY && r.model !== key) return false;
        const q = queueOf.get(r.spec.queue);
        const nominal = q?.nominalQuota[key];
        return nominal !== undefined && (usage.get(r.spec.queue)?.get(key) ?? 0) > nominal;
      });
      candidates.sort((a, b) => ascending(costOf(a), costOf(b)) || ascending(b.startTime, a.startTime) || (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0));
      const victim = candidates[0];
      if (!victim) break;
      evicted.add(victim.spec.id);
      const short = reservations.filter((r) => names.has(r.queue) && r.keepGpus > replicaGpus(r, held));
      const urgent = short.some((r) => r.urgent);
      const why = (short.find((r) => r.urgent) ?? short[0] ?? reservations.find((r) => names.has(r.queue)))?.reason ?? '';
      const lender = (short[0] ?? reservations.find((r) => names.has(r.queue)))?.service ?? '';
      out.push({
        job: victim.spec.id,
        reason: `borrowed GPUs reclaimed for service ${lender}${why ? ` (${why})` : ''}: ${urgent ? 'stopped at once' : 'planned: checkpoint, then stop'}`,
        reclaim: urgent ? 'immediate' : 'planned',
        lender,
      });
    }
  }
  return out;
}

/**
 * Seconds of a run's work a stop at `now` costs: its restart plus its unsaved work, which for a
 * job that declares no checkpoint interval is the time since its last known checkpoint (its
 * start, if it never reported one).
 */
export function stopCostSeconds(r: RunningJob, now: number, settings: PreemptionSettings = NO_PREEMPTION_LIMITS): number {
  if (r.spec.checkpointIntervalSeconds !== undefined) return preemptionCostSeconds(r.spec, r.progress, r, now, settings);
  return restartSecondsOf(r.spec, settings) + Math.max(0, now - Math.max(r.lastCheckpointTime, r.startTime));
}

/** GPUs a reservation's replicas hold now. */
function replicaGpus(r: Reservation, held: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const id of r.replicas) n += held.get(id) ?? 0;
  return n;
}

/**
 * Which running jobs hold borrowed GPUs: in each queue above its nominal quota on a key, the
 * most recently started runs that make up the excess (ties: the higher id). Stopping runs are
 * left out. Queues without a quota (no queues: none) borrow nothing.
 */
export function borrowedRuns(queues: readonly QueueConfig[], running: readonly RunningJob[]): Set<JobId> {
  const out = new Set<JobId>();
  const byQueue = new Map<string, RunningJob[]>();
  for (const r of running) {
    if (r.stopping || r.gpus <= 0) continue;
    const list = byQueue.get(r.spec.queue);
    if (list) list.push(r);
    else byQueue.set(r.spec.queue, [r]);
  }
  for (const q of queues) {
    const runs = byQueue.get(q.name);
    if (!runs) continue;
    const newestFirst = [...runs].sort((a, b) => ascending(b.startTime, a.startTime) || (a.spec.id < b.spec.id ? 1 : a.spec.id > b.spec.id ? -1 : 0));
    for (const key of keysOf(q)) {
      const nominal = q.nominalQuota[key] ?? 0;
      const on = newestFirst.filter((r) => key === ANY || r.model === key);
      let excess = on.reduce((n, r) => n + r.gpus, 0) - nominal;
      for (const r of on) {
        if (excess <= 0) break;
        out.add(r.spec.id);
        excess -= r.gpus;
      }
    }
  }
  return out;
}

/** GPUs a queue lends to and borrows from its cohort now. */
export interface Loan {
  readonly lent: number;
  readonly borrowed: number;
}

/**
 * Per queue, GPUs borrowed (used above its nominal quota) and lent (what its cohort borrows,
 * attributed to the members with unused quota within their lending limits, in name order). On
 * the `*` key where a queue's quota has one, else summed over its model keys.
 */
export function cohortLoans(queues: readonly QueueConfig[], usage: ReadonlyMap<string, ReadonlyMap<GpuModel | string, number>>): Map<string, Loan> {
  const out = new Map<string, Loan>();
  const cohorts = new Map<string, QueueConfig[]>();
  for (const q of queues) {
    const c = q.cohort ?? `queue:${q.name}`;
    cohorts.set(c, [...(cohorts.get(c) ?? []), q]);
  }
  const lent = new Map<string, number>();
  const borrowed = new Map<string, number>();
  for (const list of cohorts.values()) {
    const keys = [...new Set(list.flatMap(keysOf))].sort();
    for (const key of keys) {
      let total = 0;
      for (const q of list) {
        const nominal = q.nominalQuota[key];
        if (nominal === undefined) continue;
        const b = Math.max(0, (usage.get(q.name)?.get(key) ?? 0) - nominal);
        total += b;
        if (counts(q, key)) borrowed.set(q.name, (borrowed.get(q.name) ?? 0) + b);
      }
      for (const q of [...list].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const nominal = q.nominalQuota[key];
        if (nominal === undefined || total <= 0) continue;
        const spare = Math.min(q.lendingLimit?.[key] ?? nominal, Math.max(0, nominal - (usage.get(q.name)?.get(key) ?? 0)));
        const share = Math.min(spare, total);
        total -= share;
        if (counts(q, key)) lent.set(q.name, (lent.get(q.name) ?? 0) + share);
      }
    }
  }
  for (const q of queues) out.set(q.name, { lent: lent.get(q.name) ?? 0, borrowed: borrowed.get(q.name) ?? 0 });
  return out;
}

/** Whether a key counts in a queue's totals: `*` where its quota has it, else every model key. */
const counts = (q: QueueConfig, key: string): boolean => (q.nominalQuota[ANY] !== undefined ? key === ANY : key !== ANY);

/**
 * A job scheduler with lending in front: each cycle, when the snapshot carries reservations,
 * the inner scheduler sees the effective lending limits, and the borrowers to reclaim are
 * preempted first (each with a pending reason, code `over-quota`). Without reservations the
 * inner scheduler runs as it is.
 */
export function withLending(inner: JobScheduler, settings: PreemptionSettings = NO_PREEMPTION_LIMITS): JobScheduler {
  let lastKey = '';
  let lastQueues: readonly QueueConfig[] = [];
  let lastIn: readonly QueueConfig[] | undefined;
  return {
    name: inner.name,
    ...(inner.folds ? { folds: true } : {}),
    cycle(s: SchedulerSnapshot): SchedulePlan {
      const rs = s.reservations;
      if (!rs || rs.length === 0 || s.queues.length === 0) return inner.cycle(s);
      const queues = effectiveQueues(s.queues, rs, s.running);
      // The same objects while nothing changed: a scheduler may cache by them.
      const key = JSON.stringify(queues.map((q) => q.lendingLimit ?? null));
      if (key !== lastKey || lastIn !== s.queues) {
        lastKey = key;
        lastIn = s.queues;
        lastQueues = queues;
      }
      const evictions = reclaimVictims(lastQueues, rs, s.running, s.now, settings);
      const plan = inner.cycle({ ...s, queues: lastQueues });
      if (evictions.length === 0) return plan;
      const evicted = new Set<string>(evictions.map((e) => e.job));
      const reasons: PendingReason[] = evictions.map((e) => ({ job: e.job, code: 'over-quota', message: e.reason }));
      return {
        ...plan,
        binds: plan.binds.filter((b) => !evicted.has(b.job)),
        preemptions: [...evictions, ...plan.preemptions.filter((p) => !evicted.has(p.job))],
        pending: [...plan.pending.filter((p) => !evicted.has(p.job)), ...reasons],
      };
    },
  };
}
