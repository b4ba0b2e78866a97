/**
 * Per-job idle reports, pure: a job's idle streaks (idleDetector.ts) set against what it holds now,
 * with its policy. The same view answers GET /v1/idle, GET /v1/jobs/:id and `tide idle`, and
 * decides a reclaim (idleMonitor.ts), so what users read is what the server acts on.
 *
 * A job is reported once any GPU it holds has read idle for the configured time; it is reclaimed
 * only when every GPU it holds has (and its policy is reclaim): a job that keeps one of its GPUs
 * busy is doing work, and Tide cannot take a GPU away from a running process, so partial
 * idleness is reported, never reclaimed.
 */
import type { Job } from '../../api/types.ts';
import type { IdleGpuRecord } from '../../store/store.ts';
import { idlePolicyOf, type IdleConfig, type IdlePolicy } from './idleConfig.ts';

/** One GPU one active task of the job holds now. */
export interface HeldGpu {
  readonly task: number;
  readonly node: string;
  readonly gpu: number;
  readonly gpuMilli: number;
}

export interface IdleGpuView {
  readonly node: string;
  readonly gpu: number;
  readonly task: number;
  readonly gpuMilli: number;
  readonly idleSince: number;
  readonly lastIdleAt: number;
  readonly idleSeconds: number;
  /** Idle for at least the configured time. */
  readonly pastThreshold: boolean;
}

export interface JobIdleView {
  readonly job: string;
  readonly name: string;
  readonly tenant: string;
  readonly queue: string;
  readonly kind: string;
  readonly state: string;
  readonly policy: IdlePolicy;
  /** The job's GPUs that read idle now, longest idle first. */
  readonly gpus: readonly IdleGpuView[];
  /** GPUs (a fraction counts in part) idle past the threshold. */
  readonly idleGpus: number;
  /** GPUs (a fraction counts in part) its active tasks hold. */
  readonly heldGpus: number;
  /** The earliest start of a listed streak. */
  readonly idleSince: number;
  /** The longest idle time of a listed GPU, seconds. */
  readonly idleSeconds: number;
  /** Every GPU it holds is idle past the threshold. */
  readonly allIdle: boolean;
  /** Policy reclaim: when it is (or was) due to be reclaimed if every GPU it holds stays idle; null otherwise. */
  readonly reclaimAt: number | null;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * The job's idle view, or null when none of the GPUs it holds reads idle (`pastOnly`: none has for
 * the configured time). Streaks of other attempts, or of GPUs it no longer holds, are left out.
 */
export function jobIdleView(job: Pick<Job, 'id' | 'name' | 'tenant' | 'queue' | 'kind' | 'state' | 'attempt' | 'spec'>, held: readonly HeldGpu[], streaks: readonly IdleGpuRecord[], c: IdleConfig, pastOnly: boolean): JobIdleView | null {
  const afterMs = c.afterMinutes * 60_000;
  const byKey = new Map(streaks.filter((s) => s.jobId === job.id && s.attempt === job.attempt).map((s) => [`${s.task}/${s.gpu}`, s]));
  const gpus: IdleGpuView[] = [];
  let idleMilli = 0;
  let heldMilli = 0;
  let allIdle = held.length > 0;
  let allStreaking = held.length > 0;
  let due = 0;
  for (const h of held) {
    heldMilli += h.gpuMilli;
    const s = byKey.get(`${h.task}/${h.gpu}`);
    if (!s || s.node !== h.node) {
      allIdle = allStreaking = false;
      continue;
    }
    const past = s.crossedAt !== null;
    if (past) idleMilli += h.gpuMilli;
    else allIdle = false;
    due = Math.max(due, s.crossedAt ?? s.since + afterMs);
    if (pastOnly && !past) continue;
    gpus.push({ node: s.node, gpu: s.gpu, task: s.task, gpuMilli: h.gpuMilli, idleSince: s.since, lastIdleAt: s.lastAt, idleSeconds: Math.max(0, s.lastAt - s.since) / 1000, pastThreshold: past });
  }
  if (gpus.length === 0) return null;
  gpus.sort((a, b) => a.idleSince - b.idleSince || a.task - b.task || a.gpu - b.gpu);
  const policy = idlePolicyOf(job.spec, c);
  return {
    job: job.id,
    name: job.name,
    tenant: job.tenant,
    queue: job.queue,
    kind: job.kind,
    state: job.state,
    policy,
    gpus,
    idleGpus: round3(idleMilli / 1000),
    heldGpus: round3(heldMilli / 1000),
    idleSince: Math.min(...gpus.map((g) => g.idleSince)),
    idleSeconds: Math.max(...gpus.map((g) => g.idleSeconds)),
    allIdle,
    reclaimAt: policy === 'reclaim' && allStreaking ? due : null,
  };
}

/** Whether the monitor reclaims the job now: policy reclaim, running, and every GPU it holds idle past the threshold. */
export function shouldReclaim(v: JobIdleView): boolean {
  return v.policy === 'reclaim' && v.state === 'running' && v.allIdle;
}

/** "node-a GPU 0, 1; node-b GPU 3". */
export function gpuList(gpus: readonly Pick<IdleGpuView, 'node' | 'gpu'>[]): string {
  const byNode = new Map<string, number[]>();
  for (const g of gpus) byNode.set(g.node, [...(byNode.get(g.node) ?? []), g.gpu]);
  return [...byNode].map(([n, gs]) => `${n} GPU ${[...new Set(gs)].sort((a, b) => a - b).join(', ')}`).join('; ');
}

/** The thresholds in words: "utilization ≤ 5 %, memory ≤ 5 %". */
export function thresholds(c: IdleConfig): string {
  return `utilization ≤ ${c.utilizationPercent} %, memory ≤ ${c.memoryPercent} %`;
}
