/**
 * What the live core learns from the store beyond one snapshot, as the simulator gives it to
 * the core: finished jobs (runtime history), tenants' decayed usage (fair share) and the task
 * shapes of recent submissions (the target workload of fragmentation-aware placement).
 *
 * `refresh` is called before each cycle: new finished jobs are read every time (an indexed
 * range read), usage and shapes at most every `slowRefreshMs`. The core hears of each finished
 * job once, as the simulator tells it, so its history learns each exactly once.
 */
import type { TaskResources, TenantConfig } from '../../core/scheduling/model.ts';
import type { UsageRecord } from '../../core/scheduling/scheduler.ts';
import type { JobSpec } from '../../api/spec.ts';
import type { ActiveTask, FinishedCursor, FinishedRun, Store, UsageBucket } from '../../store/store.ts';

/** What the live inputs read from the store (a worker thread reaches it through the request thread). */
export type LiveSource = Pick<Store, 'finishedRuns' | 'usageByHour' | 'recentSpecs'>;

export interface LiveInputsConfig {
  /** Tenants and their fair-share weights (default 1). */
  readonly tenants?: readonly { readonly name: string; readonly weight?: number }[];
  /** Half-life of tenants' usage; default 24. */
  readonly usageHalfLifeHours?: number;
  /** Finished jobs read at start (what the history starts from); default 500. */
  readonly historyWarmup?: number;
  /** Recent submissions the target workload is made of; default 500. */
  readonly recentJobs?: number;
  /** Usage and shapes are read again after this long; default 30 s. */
  readonly slowRefreshMs?: number;
}

const HOUR_MS = 3_600_000;
/** Usage older than this many half-lives weighs under 0.1 %: not read. */
const HALF_LIVES_KEPT = 10;
/**
 * Finished runs read a page at a time after the first read: a cycle after 4,000 array tasks ended
 * read eight pages of 500 one after another (0.25-0.35 s of the cycle on PostgreSQL, each page a
 * round trip from the scheduler thread through the request thread to the database).
 */
const CATCH_UP_PAGE = 2000;
/** A group of more replicas counts as this many tasks in the target workload (a huge array does not drown the rest). */
const MAX_TASKS_PER_GROUP = 64;

export class LiveInputs {
  readonly tenants: readonly TenantConfig[];
  readonly halfLifeSeconds: number;
  private cursor: FinishedCursor | null = null;
  private unseen: FinishedRun[] = [];
  private buckets: readonly UsageBucket[] = [];
  private targets: readonly TaskResources[] = [];
  private targetsKey = '';
  private lastSlow = -Infinity;

  constructor(private readonly config: LiveInputsConfig = {}) {
    this.tenants = (config.tenants ?? []).map((t) => ({ name: t.name, weight: t.weight ?? 1 }));
    this.halfLifeSeconds = (config.usageHalfLifeHours ?? 24) * 3600;
  }

  /** Reads what changed in the store since the last call (usage and shapes only when due, or `force`). */
  async refresh(store: LiveSource, nowMs: number, force = false): Promise<void> {
    const limit = this.config.historyWarmup ?? 500;
    for (;;) {
      // The first read takes the latest `limit`; later ones page until caught up, CATCH_UP_PAGE at a time.
      const page = this.cursor === null ? limit : CATCH_UP_PAGE;
      const runs = await store.finishedRuns(this.cursor, page);
      const last = runs[runs.length - 1];
      if (!last) break;
      this.unseen.push(...runs);
      this.cursor = { finishedAt: last.finishedAt, id: last.id };
      if (runs.length < page || this.unseen.length >= Math.max(10 * limit, CATCH_UP_PAGE)) break;
    }
    if (!force && nowMs - this.lastSlow < (this.config.slowRefreshMs ?? 30_000)) return;
    this.lastSlow = nowMs;
    this.buckets = await store.usageByHour(nowMs - HALF_LIVES_KEPT * this.halfLifeSeconds * 1000);
    const tasks = targetTasksOf(await store.recentSpecs(this.config.recentJobs ?? 500));
    const key = JSON.stringify(tasks);
    if (key !== this.targetsKey) {
      this.targetsKey = key;
      this.targets = tasks;
    }
  }

  /** Finished jobs the core has not been told of yet; each is handed out once. */
  takeFinished(): FinishedRun[] {
    const out = this.unseen;
    this.unseen = [];
    return out;
  }

  /** The target tasks: the same array while recent submissions' shapes stay the same. */
  get targetTasks(): readonly TaskResources[] {
    return this.targets;
  }

  /** Tenants' decayed usage at `nowMs`: ended tasks from the store, running ones from the snapshot. */
  usage(active: readonly ActiveTask[], tenantOf: (jobId: string) => string | undefined, nowMs: number): UsageRecord[] {
    return decayedUsage(this.buckets, active, tenantOf, nowMs, this.halfLifeSeconds);
  }
}

/**
 * Decayed usage per tenant at `nowMs` (half-life in seconds): each ended hour's resource-seconds
 * decayed from the middle of the hour, plus each running task's ∫ 2^(−(now−t)/h) dt since it
 * started. The same decay as the simulator's (usage(t) = Σ held · e^(−k(now−t)) dt).
 */
export function decayedUsage(
  buckets: readonly UsageBucket[],
  active: readonly ActiveTask[],
  tenantOf: (jobId: string) => string | undefined,
  nowMs: number,
  halfLifeSeconds: number,
): UsageRecord[] {
  const k = Math.LN2 / halfLifeSeconds;
  const sums = new Map<string, [number, number, number]>();
  const add = (tenant: string, f: number, gpu: number, cpu: number, mem: number): void => {
    const s = sums.get(tenant) ?? [0, 0, 0];
    s[0] += gpu * f;
    s[1] += cpu * f;
    s[2] += mem * f;
    sums.set(tenant, s);
  };
  for (const b of buckets) {
    const age = Math.max(0, (nowMs - (b.hour + HOUR_MS / 2)) / 1000);
    add(b.tenant, Math.exp(-k * age), b.gpuSeconds, b.cpuSeconds, b.memoryMibSeconds);
  }
  for (const t of active) {
    if (t.startedAt === undefined || t.startedAt === null) continue;
    const tenant = tenantOf(t.jobId);
    if (tenant === undefined) continue;
    const ran = Math.max(0, (nowMs - t.startedAt) / 1000);
    add(tenant, (1 - Math.exp(-k * ran)) / k, t.gpuMilli / 1000, t.cpuMilli / 1000, t.memoryMib);
  }
  return [...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, [gpuSeconds, cpuSeconds, memoryMibSeconds]]) => ({ name, gpuSeconds, cpuSeconds, memoryMibSeconds }));
}

/** One entry per task of the specs (a group counts at most MAX_TASKS_PER_GROUP), in their order. */
export function targetTasksOf(specs: readonly JobSpec[]): TaskResources[] {
  const out: TaskResources[] = [];
  for (const spec of specs) {
    for (const g of spec.groups) {
      const task: TaskResources = { cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels };
      for (let i = 0; i < Math.min(g.replicas, MAX_TASKS_PER_GROUP); i++) out.push(task);
    }
  }
  return out;
}
