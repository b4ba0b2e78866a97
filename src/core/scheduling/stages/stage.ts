/**
 * Stages: steps that run around a job scheduler's cycle, each a small module of its own that any
 * policy can run with or without (Volcano's actions around one session). A stage may narrow what
 * the scheduler sees before it plans (hold jobs back, with a reason for each) and amend the plan
 * after (withhold a bind, set a power cap, power nodes down). `withStages(inner, stages)` is a
 * JobScheduler again, so the simulator and the server call it like any other.
 *
 * Stages keep the plan's contract: every pending job they hold or whose bind they withhold gets
 * exactly one reason; a withheld bind is removed whole (a gang stays all or nothing).
 */
import { ascending } from '../model.ts';
import type { JobBind, JobScheduler, PendingReason, SchedulePlan, SchedulerSnapshot } from '../scheduler.ts';

/** A bind with the power limit its GPUs run at, as a fraction of TDP (absent: none, full power). */
export interface PowerCappedBind extends JobBind {
  readonly powerCap?: number;
}

/**
 * A node's power changes (node index in the snapshot): `off` suspends it (nothing runs there);
 * `on` resumes it, usable from `readyAt` (the wake-up delay; it draws power from now).
 */
export interface NodePowerChange {
  readonly node: number;
  readonly state: 'off' | 'on';
  readonly readyAt: number;
}

/** A plan with the energy stages' additions (both optional: a plain plan is one of these). */
export interface EnergyPlan extends SchedulePlan {
  readonly binds: readonly PowerCappedBind[];
  readonly nodePower?: readonly NodePowerChange[];
}

export interface BeforeResult {
  /** What the scheduler sees: the caller's snapshot, or one with held jobs left out of `pending`. */
  readonly snapshot: SchedulerSnapshot;
  /** One reason per job held back (each absent from `snapshot.pending`). */
  readonly held?: readonly PendingReason[];
  /** Call again at this time (e.g. when a held job's cheaper hour begins). */
  readonly wakeAt?: number;
}

export interface SchedulingStage {
  readonly name: string;
  /** Before the scheduler plans. */
  before?(snapshot: SchedulerSnapshot): BeforeResult;
  /** After: the plan amended. `snapshot` is the caller's (every pending job in it). */
  after?(snapshot: SchedulerSnapshot, plan: EnergyPlan): EnergyPlan;
}

const earliest = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/**
 * The scheduler with stages around it: every `before` in order (each sees what the previous one
 * left), the scheduler, then every `after` in order. Held jobs' reasons join the plan's, sorted
 * by job id as the scheduler's are.
 */
export function withStages(inner: JobScheduler, stages: readonly SchedulingStage[]): JobScheduler {
  if (stages.length === 0) return inner;
  const name = `${inner.name}+${stages.map((s) => s.name).join('+')}`;
  return {
    name,
    // A stage holds or amends a folded entry as one job: a withheld bind of one of its jobs adds a reason for the entry.
    ...(inner.folds ? { folds: true } : {}),
    cycle(snapshot: SchedulerSnapshot): EnergyPlan {
      let seen = snapshot;
      let held: PendingReason[] | undefined;
      let wakeAt: number | undefined;
      for (const s of stages) {
        if (!s.before) continue;
        const r = s.before(seen);
        seen = r.snapshot;
        if (r.held && r.held.length > 0) (held ??= []).push(...r.held);
        wakeAt = earliest(wakeAt, r.wakeAt);
      }
      let plan: EnergyPlan = inner.cycle(seen);
      if (held) plan = { ...plan, pending: [...plan.pending, ...held].sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0)) };
      for (const s of stages) if (s.after) plan = s.after(snapshot, plan);
      const wake = earliest(plan.wakeAt, wakeAt);
      return wake === plan.wakeAt ? plan : { ...plan, wakeAt: wake as number };
    },
  };
}

/** The first `wakeAt` strictly after `now` among several (undefined when none). */
export function nextWake(now: number, ...times: readonly (number | undefined)[]): number | undefined {
  let best: number | undefined;
  for (const t of times) if (t !== undefined && t > now && (best === undefined || ascending(t, best) < 0)) best = t;
  return best;
}
