/**
 * What a preemption costs, and whether a running job may be preempted at all. One small pure
 * module used by every preemptive policy (tide's victim choice and its decision to preempt,
 * gavel's and las's rounds), so the simulator and the live server price a restart alike.
 *
 * A preemption costs the job its restart (loading the checkpoint: `restartSeconds`) plus the
 * work done since its last checkpoint, both in seconds of its running time. A job may be
 * preempted only when it is preemptible, has run at least `minRunSeconds` in its current
 * attempt, and has been preempted fewer than its budget of times (`JobSpec.maxPreemptions`,
 * else the scheduler's `maxPreemptions`): a job at its budget keeps its GPUs until it ends.
 *
 * Scheduler options (JobSchedulerContext.options; the live server passes its cluster config's
 * `scheduling:` section): `restartSeconds` (default 0; a job's own `restartCostSeconds`
 * overrides it), `minRunSeconds` (default 0), `maxPreemptions` (default unlimited).
 */
import type { JobProgress, JobSpec } from './model.ts';

export interface PreemptionSettings {
  /** Restart cost of a job that declares none (seconds). */
  readonly restartSeconds: number;
  /** Seconds a job runs in its attempt before it may be preempted. */
  readonly minRunSeconds: number;
  /** Preemptions a job that declares no budget may take (Infinity: unlimited). */
  readonly maxPreemptions: number;
}

export const NO_PREEMPTION_LIMITS: PreemptionSettings = { restartSeconds: 0, minRunSeconds: 0, maxPreemptions: Infinity };

/** The settings from scheduler options, `defaults` for keys not given; throws naming a bad key. */
export function preemptionSettings(options: Readonly<Record<string, number | string | boolean>> | undefined, defaults: PreemptionSettings = NO_PREEMPTION_LIMITS): PreemptionSettings {
  const read = (key: keyof PreemptionSettings): number => {
    const raw = options?.[key];
    if (raw === undefined) return defaults[key];
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    if (!(n >= 0)) throw new Error(`scheduler option ${key}: must be a number ≥ 0, got ${String(raw)}`);
    return n;
  };
  return { restartSeconds: read('restartSeconds'), minRunSeconds: read('minRunSeconds'), maxPreemptions: read('maxPreemptions') };
}

/** What the cost model reads of a run (RunningJob has these). */
export interface RunTimes {
  /** When the attempt began. */
  readonly startTime: number;
  /** When its progress was last saved (startTime if never in this attempt). */
  readonly lastCheckpointTime: number;
}

/** The job's restart cost in seconds. */
export function restartSecondsOf(spec: Pick<JobSpec, 'restartCostSeconds'>, settings: PreemptionSettings): number {
  return spec.restartCostSeconds ?? settings.restartSeconds;
}

/**
 * Seconds of work the run would lose if stopped at `now`: the time since its last checkpoint.
 * With a checkpoint interval the job saves every `interval` seconds of work, counted from when
 * work begins (after the restart cost on a restart); without one its progress is saved
 * continuously (nothing lost) unless `lastCheckpointTime` says otherwise. An infinite interval
 * means it never saves on its own (only `lastCheckpointTime` counts).
 */
export function unsavedSeconds(spec: Pick<JobSpec, 'checkpointIntervalSeconds' | 'restartCostSeconds'>, progress: Pick<JobProgress, 'preemptions'>, run: RunTimes, now: number, settings: PreemptionSettings = NO_PREEMPTION_LIMITS): number {
  const interval = spec.checkpointIntervalSeconds;
  if (interval === undefined || !(interval > 0)) return 0;
  const workStart = run.startTime + (progress.preemptions > 0 ? restartSecondsOf(spec, settings) : 0);
  let saved = Math.max(run.lastCheckpointTime, run.startTime);
  if (Number.isFinite(interval) && now > workStart) saved = Math.max(saved, workStart + Math.floor((now - workStart) / interval) * interval);
  return Math.max(0, now - Math.max(saved, workStart));
}

/** Seconds of the job's running time a preemption at `now` costs: its restart plus its unsaved work. */
export function preemptionCostSeconds(spec: Pick<JobSpec, 'checkpointIntervalSeconds' | 'restartCostSeconds'>, progress: Pick<JobProgress, 'preemptions'>, run: RunTimes, now: number, settings: PreemptionSettings): number {
  return restartSecondsOf(spec, settings) + unsavedSeconds(spec, progress, run, now, settings);
}

/** The job's preemption budget: its own, else the scheduler's. */
export function preemptionBudget(spec: Pick<JobSpec, 'maxPreemptions'>, settings: PreemptionSettings): number {
  return spec.maxPreemptions ?? settings.maxPreemptions;
}

/** Whether a running job may be preempted at `now` (preemptible, past its minimum run, within its budget). */
export function mayPreempt(spec: Pick<JobSpec, 'preemptible' | 'maxPreemptions'>, progress: Pick<JobProgress, 'preemptions'>, run: Pick<RunTimes, 'startTime'>, now: number, settings: PreemptionSettings): boolean {
  return spec.preemptible && now - run.startTime >= settings.minRunSeconds && progress.preemptions < preemptionBudget(spec, settings);
}

/**
 * Whether preempting pays: what the waiting side gains (seconds of work, on a common scale)
 * outweighs the price (the victims' cost in the same units), by a factor `margin` ≥ 1
 * (hysteresis, so near-equal jobs do not trade places back and forth).
 */
export function preemptionPays(gain: number, price: number, margin = 1): boolean {
  return gain > price * margin + 1e-9;
}
