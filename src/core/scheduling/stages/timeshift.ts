/**
 * `timeshift`: hold deferrable work for cheaper or lower-carbon hours. A pending job marked
 * `deferrable` is kept from the scheduler while a later hour, early enough that its declared run
 * still ends `slackSeconds` before its `deadline`, is cheaper than now by at least `minSaving`;
 * it is released when that hour begins. The price of an hour is the tariff plus, when
 * `carbonYuanPerKg` is set, its carbon at that price. Jobs without a deadline wait at most
 * `maxDeferSeconds` after submission; a job with a deadline but no declared run time is never
 * held (its end cannot be bounded). Held jobs wait as `deferred-to-cheaper-hours`.
 */
import { localHourAt, nextLocalHour, type EnergyPrices } from '../../energy/pricing.ts';
import type { PendingJob, PendingReason, SchedulerSnapshot } from '../scheduler.ts';
import type { BeforeResult, SchedulingStage } from './stage.ts';
import { PendingTable } from '../pendingTable.ts';
import { byJobId } from '../model.ts';

export interface TimeshiftOptions {
  readonly prices: EnergyPrices;
  /** Yuan per kg of CO₂e added to an hour's tariff when hours are compared (default 0: the tariff alone). */
  readonly carbonYuanPerKg?: number;
  /** Hold a job only for an hour cheaper than now by at least this share (default 0.1). */
  readonly minSaving?: number;
  /** Kept between the declared end and the deadline (default 3600 s). */
  readonly slackSeconds?: number;
  /** How long after submission a deferrable job without a deadline may wait (default 12 h). */
  readonly maxDeferSeconds?: number;
}

export const TIMESHIFT_DEFAULTS = { minSaving: 0.1, slackSeconds: 3600, maxDeferSeconds: 12 * 3600 } as const;

const HOUR = 3600;

/** The latest time the job may start and still meet its deadline (undefined: it may not be held). */
export function latestStart(job: PendingJob, slackSeconds: number, maxDeferSeconds: number): number | undefined {
  const s = job.spec;
  if (!s.deferrable) return undefined;
  if (s.deadline === undefined) return s.submitTime + maxDeferSeconds;
  if (s.timeLimitSeconds === undefined) return undefined;
  const remaining = Math.max(0, s.timeLimitSeconds - job.progress.runSeconds) + (s.restartCostSeconds ?? 0);
  return s.deadline - remaining - slackSeconds;
}

/** Whether two lists hold the same job objects in the same order. */
function sameJobs(a: readonly PendingJob[], b: readonly PendingJob[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The start of the cheapest hour in (now, latest] that beats now by `minSaving`, with both prices; undefined when none. */
export function cheaperHour(price: (t: number) => number, prices: EnergyPrices, now: number, latest: number, minSaving: number): { at: number; price: number; now: number } | undefined {
  const current = price(now);
  let best: { at: number; price: number } | undefined;
  for (let t = nextLocalHour(prices, now); t <= latest && t < now + 7 * 24 * HOUR; t = nextLocalHour(prices, t)) {
    const p = price(t);
    if (best === undefined || p < best.price - 1e-12) best = { at: t, price: p };
  }
  return best !== undefined && best.price < current * (1 - minSaving) ? { ...best, now: current } : undefined;
}

/** HH:MM of the local day (the minutes matter for a deadline's latest start, which is rarely on the hour). */
const clock = (t: number, p: EnergyPrices): string => {
  const local = t + p.utcOffsetHours * HOUR;
  const minute = Math.floor((((local % HOUR) + HOUR) % HOUR) / 60);
  return `${String(localHourAt(p, t)).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
};

export function timeshiftStage(opts: TimeshiftOptions): SchedulingStage {
  const p = opts.prices;
  const perKg = opts.carbonYuanPerKg ?? 0;
  const minSaving = opts.minSaving ?? TIMESHIFT_DEFAULTS.minSaving;
  const slack = opts.slackSeconds ?? TIMESHIFT_DEFAULTS.slackSeconds;
  const maxDefer = opts.maxDeferSeconds ?? TIMESHIFT_DEFAULTS.maxDeferSeconds;
  const price = (t: number): number => {
    const h = localHourAt(p, t);
    return (p.tariffYuanPerKwh[h] ?? 0) + (perKg * (p.carbonGramsPerKwh[h] ?? 0)) / 1000;
  };
  /** Per pending job object: the decision of the hour it was made in (decisions change only at hour boundaries). */
  const decided = new WeakMap<PendingJob, { hour: number; release: number | undefined; reason?: PendingReason }>();
  /**
   * The pending jobs as of the last cycle (the table compares references: a list of 100,000
   * mostly unchanged jobs costs a walk, not a read of every job's spec), the deferrable ones
   * among them, and the list with the held jobs taken out (the core's incremental path is given
   * the same list again while the same jobs are held).
   */
  const table = new PendingTable<PendingJob>((job) => job);
  const deferrable = new Set<PendingJob>();
  let ordered: PendingJob[] | null = null;
  let last: { held: readonly PendingJob[]; kept: readonly PendingJob[] | null } = { held: [], kept: null };
  return {
    name: 'timeshift',
    before(snapshot: SchedulerSnapshot): BeforeResult {
      const now = snapshot.now;
      const hour = Math.floor(now / HOUR);
      let held: PendingReason[] | undefined;
      let heldJobs: PendingJob[] | undefined;
      let wakeAt: number | undefined;
      // Always compared: the simulator changes its list in place.
      const { added, removed } = table.update(snapshot.pending);
      for (const job of removed) if (deferrable.delete(job)) ordered = null;
      for (const job of added) {
        if (!job.spec.deferrable) continue;
        deferrable.add(job);
        ordered = null;
      }
      if (added.length || removed.length) last = { held: [], kept: null };
      // In the pending list's order (by job id), as the held reasons were listed before.
      ordered ??= [...deferrable].sort(byJobId);
      for (const job of ordered) {
        let d = decided.get(job);
        if (!d || d.hour !== hour || (d.release !== undefined && d.release <= now)) {
          const latest = latestStart(job, slack, maxDefer);
          const cheaper = latest === undefined || latest <= now ? undefined : cheaperHour(price, p, now, latest, minSaving);
          d = cheaper
            ? {
                hour,
                release: cheaper.at,
                reason: {
                  job: job.spec.id,
                  code: 'deferred-to-cheaper-hours',
                  message: `deferred to ${clock(cheaper.at, p)} (${cheaper.price.toFixed(3)} vs ${cheaper.now.toFixed(3)} yuan/kWh now); it must start by ${clock(latest as number, p)} to meet its deadline`,
                  estimatedStart: cheaper.at,
                },
              }
            : { hour, release: undefined };
          decided.set(job, d);
        }
        if (d.release === undefined || !d.reason) continue;
        (held ??= []).push(d.reason);
        (heldJobs ??= []).push(job);
        wakeAt = wakeAt === undefined ? d.release : Math.min(wakeAt, d.release);
      }
      if (!held || !heldJobs) return { snapshot };
      if (!last.kept || !sameJobs(last.held, heldJobs)) {
        const out = new Set(heldJobs);
        last = { ...last, held: heldJobs, kept: snapshot.pending.filter((j) => !out.has(j)) };
      }
      return { snapshot: { ...snapshot, pending: last.kept as readonly PendingJob[] }, held, ...(wakeAt === undefined ? {} : { wakeAt }) };
    },
  };
}
