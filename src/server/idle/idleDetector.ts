/**
 * Idle-allocation detection, pure: per GPU a running task holds, how long its telemetry has read
 * idle (duty cycle and memory in use both at or below the thresholds), from the samples agents
 * heartbeat. No clock, store or I/O: the caller passes the allocations and each GPU's latest
 * sample, and keeps the streaks between steps (server/idle/idleMonitor.ts).
 *
 * Rules (docs/idle.md):
 * - A streak starts at the first idle sample and grows with each later one; a sample that shows
 *   work ends it. Its idle time is `lastAt - since`: only samples count, never the wall clock, so
 *   a node that stops reporting does not look idle for longer.
 * - A gap is not idleness: two idle samples further apart than `maxGapMs` start a new streak.
 * - Samples from before the task started belong to the GPU's previous holder and are ignored.
 * - A fractional GPU shared by several tasks has one telemetry reading: when the whole GPU reads
 *   idle, each task on it is idle; when it shows work, none is (Tide cannot tell whose work it is).
 */
import type { IdleGpuRecord } from '../../store/store.ts';

export interface IdleSettings {
  /** Idle time after which a GPU counts as idle allocation (is reported, may be reclaimed), ms. */
  readonly afterMs: number;
  /** Idle: utilization (0-100) at or below this … */
  readonly utilizationPercent: number;
  /** … and memory in use at or below this percentage of the GPU's memory. */
  readonly memoryPercent: number;
  /** Two idle samples further apart than this do not make one streak. */
  readonly maxGapMs: number;
}

/** The latest telemetry of one GPU, with the time the server received it. */
export interface GpuSample {
  readonly at: number;
  readonly utilization: number;
  readonly memoryUsedMib: number;
  /** The GPU's memory (its total), MiB. */
  readonly memoryMib: number;
}

/** One GPU held by one running task. */
export interface Allocation {
  readonly jobId: string;
  readonly tenant: string;
  readonly task: number;
  readonly attempt: number;
  readonly node: string;
  readonly gpu: number;
  /** The task's share of the GPU in milli (1000: all of it). */
  readonly gpuMilli: number;
  /** When the task started (ms): earlier samples are another holder's. */
  readonly startedAt: number;
}

/** A streak of idle samples on one allocation; the store keeps it as an IdleGpuRecord. */
export type IdleStreak = IdleGpuRecord;

export interface IdleStep {
  /** The streaks after this step, by allocationKey. */
  readonly streaks: Map<string, IdleStreak>;
  /** Streaks begun or grown this step. */
  readonly changed: readonly IdleStreak[];
  /** Streaks over: the GPU showed work, a gap broke it, or the task no longer holds the GPU. */
  readonly ended: readonly IdleStreak[];
  /** Streaks that reached `afterMs` this step. */
  readonly crossed: readonly IdleStreak[];
  /** GPU-seconds (weighted by each task's share) newly counted as idle past `afterMs`, per tenant. */
  readonly idleGpuSeconds: ReadonlyMap<string, number>;
}

export const allocationKey = (a: { readonly jobId: string; readonly task: number; readonly attempt: number; readonly gpu: number }): string => `${a.jobId}.${a.task}.${a.attempt}/${a.gpu}`;

/** Whether one sample reads idle under the settings' thresholds. */
export function readsIdle(s: GpuSample, o: Pick<IdleSettings, 'utilizationPercent' | 'memoryPercent'>): boolean {
  return s.utilization <= o.utilizationPercent && s.memoryUsedMib <= (s.memoryMib * o.memoryPercent) / 100;
}

/**
 * One step: every allocation against its GPU's latest sample (`sampleOf` answers undefined for a
 * GPU without telemetry). An allocation without a new sample keeps its streak as it was.
 */
export function stepIdle(prev: ReadonlyMap<string, IdleStreak>, allocations: readonly Allocation[], sampleOf: (node: string, gpu: number) => GpuSample | undefined, o: IdleSettings): IdleStep {
  const streaks = new Map<string, IdleStreak>();
  const changed: IdleStreak[] = [];
  const ended: IdleStreak[] = [];
  const crossed: IdleStreak[] = [];
  const idleGpuSeconds = new Map<string, number>();
  const count = (tenant: string, ms: number, milli: number): void => {
    if (ms > 0) idleGpuSeconds.set(tenant, (idleGpuSeconds.get(tenant) ?? 0) + (ms / 1000) * (milli / 1000));
  };
  const held = new Set<string>();
  for (const a of allocations) {
    const key = allocationKey(a);
    held.add(key);
    const p = prev.get(key);
    const s = sampleOf(a.node, a.gpu);
    if (!s || s.at < a.startedAt || (p && s.at <= p.lastAt)) {
      if (p) streaks.set(key, p);
      continue;
    }
    if (!readsIdle(s, o)) {
      if (p) ended.push(p);
      continue;
    }
    const continues = p !== undefined && s.at - p.lastAt <= o.maxGapMs;
    if (p && !continues) ended.push(p);
    const since = continues ? p.since : s.at;
    const wasCrossed = continues ? p.crossedAt : null;
    const crosses = wasCrossed === null && s.at - since >= o.afterMs;
    const next: IdleStreak = { jobId: a.jobId, task: a.task, attempt: a.attempt, gpu: a.gpu, node: a.node, tenant: a.tenant, gpuMilli: a.gpuMilli, since, lastAt: s.at, crossedAt: crosses ? s.at : wasCrossed };
    if (crosses) {
      crossed.push(next);
      count(a.tenant, s.at - since, a.gpuMilli);
    } else if (wasCrossed !== null && continues) {
      count(a.tenant, s.at - p.lastAt, a.gpuMilli);
    }
    streaks.set(key, next);
    changed.push(next);
  }
  for (const [key, p] of prev) if (!held.has(key)) ended.push(p);
  return { streaks, changed, ended, crossed, idleGpuSeconds };
}
