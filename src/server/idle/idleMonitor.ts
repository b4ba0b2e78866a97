/**
 * The idle monitor: each scheduling cycle of the leader (loop.ts), it sets the snapshot's running
 * tasks against their GPUs' latest telemetry (idleDetector.ts), keeps the streaks in the store
 * (migration 008, so every server can answer GET /v1/idle and a new leader carries on), writes
 * `job:idle` when a job's GPU first reads idle for the configured time and `job:idle-ended` when
 * it works again, and reclaims the jobs whose policy allows it once every GPU they hold has
 * (Store.reclaimIdle: SIGTERM, SIGKILL after the grace period, the job ends `cancelled` with a
 * reason naming the idle time; never requeued, since the same command would hold the GPU idle
 * again).
 */
import type { IdleGpuKey, IdleGpuRecord, JobEventInput, Store, StoreSnapshot } from '../../store/store.ts';
import { openJobsById } from '../../store/openJobIndex.ts';
import { shortDuration } from '../timeLimits.ts';
import { idlePolicyOf, type IdleConfig } from './idleConfig.ts';
import { allocationKey, stepIdle, type Allocation, type GpuSample, type IdleSettings, type IdleStreak } from './idleDetector.ts';
import { gpuList, jobIdleView, shouldReclaim, thresholds, type HeldGpu, type JobIdleView } from './idleReport.ts';

export interface IdleMonitorOptions {
  /** Two samples of a GPU further apart than this do not make one streak (the server passes its node lease). */
  readonly maxGapMs: number;
  /** Told the GPU-seconds newly counted as idle past the threshold, per tenant (tide_idle_gpu_seconds_total). */
  readonly onIdleSeconds?: (tenant: string, seconds: number) => void;
}

export interface IdleOutcome {
  /** Jobs that crossed the threshold this cycle (`job:idle`). */
  readonly reported: readonly string[];
  /** Jobs reclaimed this cycle. */
  readonly reclaimed: readonly string[];
}

/** What the job's open state in the snapshot says it holds: per job, the GPUs of its active tasks. */
function heldGpus(snap: StoreSnapshot): Map<string, HeldGpu[]> {
  const held = new Map<string, HeldGpu[]>();
  for (const t of snap.activeTasks) {
    if (t.gpuMilli <= 0) continue;
    let list = held.get(t.jobId);
    if (!list) held.set(t.jobId, (list = []));
    // A task's gpuMilli is its total over its GPUs.
    for (const gpu of t.gpus) list.push({ task: t.index, node: t.node, gpu, gpuMilli: t.gpuMilli / t.gpus.length });
  }
  return held;
}

/** Each GPU's latest sample, from the nodes' last heartbeats (a lost node has none). */
function samples(snap: StoreSnapshot): (node: string, gpu: number) => GpuSample | undefined {
  const byNode = new Map<string, Map<number, GpuSample>>();
  for (const n of snap.nodes) {
    if (n.state === 'lost') continue;
    const memory = new Map(n.gpus.map((g) => [g.index, g.memoryMib]));
    const m = new Map<number, GpuSample>();
    for (const t of n.telemetry) {
      const memoryMib = memory.get(t.index);
      if (memoryMib !== undefined) m.set(t.index, { at: n.lastHeartbeat, utilization: t.utilization, memoryUsedMib: t.memoryUsedMib, memoryMib });
    }
    byNode.set(n.id, m);
  }
  return (node, gpu) => byNode.get(node)?.get(gpu);
}

export class IdleMonitor {
  private streaks = new Map<string, IdleStreak>();
  /** Each streak as last written to the store. */
  private written = new Map<string, IdleStreak>();
  /** The leadership the streaks were loaded for: a new term reloads them (another leader may have written since). */
  private loadedFor: number | null = null;
  /** When the streaks were last stepped (the cycle's clock). */
  private steppedAt = 0;
  /** Jobs this server asked to reclaim (their tasks are stopping): not asked again. */
  private readonly reclaiming = new Set<string>();

  constructor(
    private readonly store: Store,
    readonly config: IdleConfig,
    private readonly o: IdleMonitorOptions,
  ) {}

  get settings(): IdleSettings {
    return { afterMs: this.config.afterMinutes * 60_000, utilizationPercent: this.config.utilizationPercent, memoryPercent: this.config.memoryPercent, maxGapMs: this.o.maxGapMs };
  }

  /**
   * How often a cycle steps the streaks (ms): a tenth of the idle threshold, at most every 5 s.
   * A step walks every GPU held (10,000 at a cluster's size, 150-250 ms on the request thread),
   * while idleness is judged over minutes; the cycles in between skip it.
   */
  get stepEveryMs(): number {
    return Math.min(5_000, this.settings.afterMs / 10);
  }

  /** One cycle (leader only): `leaderSince` tells a new term of leadership. */
  async enforce(snap: StoreSnapshot, now: number, leaderSince: number): Promise<IdleOutcome> {
    if (this.loadedFor === leaderSince && now >= this.steppedAt && now - this.steppedAt < this.stepEveryMs) return { reported: [], reclaimed: [] };
    this.steppedAt = now;
    if (this.loadedFor !== leaderSince) {
      const rows = await this.store.listIdleGpus();
      this.streaks = new Map(rows.map((r) => [allocationKey(r), r]));
      this.written = new Map(this.streaks);
      this.loadedFor = leaderSince;
    }
    const jobs = openJobsById(snap.openJobs);
    const held = heldGpus(snap);
    const allocations: Allocation[] = [];
    for (const t of snap.activeTasks) {
      const job = jobs.get(t.jobId);
      if (!job || job.state !== 'running' || t.state !== 'running' || t.gpuMilli <= 0 || t.startedAt === null || t.startedAt === undefined) continue;
      for (const gpu of t.gpus) allocations.push({ jobId: job.id, tenant: job.tenant, task: t.index, attempt: job.attempt, node: t.node, gpu, gpuMilli: t.gpuMilli / t.gpus.length, startedAt: t.startedAt });
    }
    const before = this.streaks;
    const step = stepIdle(before, allocations, samples(snap), this.settings);
    this.streaks = step.streaks;
    for (const [tenant, seconds] of step.idleGpuSeconds) this.o.onIdleSeconds?.(tenant, seconds);

    const crossedBefore = crossedJobs(before.values());
    const crossedNow = crossedJobs(this.streaks.values());
    const byJob = new Map<string, IdleGpuRecord[]>();
    for (const s of this.streaks.values()) {
      if (s.crossedAt === null) continue;
      const list = byJob.get(s.jobId);
      if (list) list.push(s);
      else byJob.set(s.jobId, [s]);
    }
    const view = (id: string): JobIdleView | null => {
      const job = jobs.get(id);
      return job ? jobIdleView(job, held.get(id) ?? [], byJob.get(id) ?? [], this.config, true) : null;
    };
    const events: JobEventInput[] = [];
    const reported: string[] = [];
    for (const id of new Set(step.crossed.map((s) => s.jobId))) {
      const v = crossedBefore.has(id) ? null : view(id);
      if (!v) continue;
      reported.push(id);
      events.push({ type: 'job:idle', jobId: id, message: `${idleGpuCount(v)} idle for ${shortDuration(Math.min(...v.gpus.map((g) => g.idleSeconds)))} (${gpuList(v.gpus)}; ${thresholds(this.config)}): idle policy ${v.policy}${v.policy === 'reclaim' && !v.allIdle ? ', reclaimed once all its GPUs are idle' : ''}` });
    }
    for (const [id, idleMs] of crossedBefore) {
      const job = jobs.get(id);
      if (crossedNow.has(id) || !job || job.state !== 'running' || !held.has(id)) continue;
      // A streak begun afresh means a gap in its telemetry broke the old one (a gap is not idleness).
      const paused = step.changed.some((s) => s.jobId === id);
      events.push({ type: 'job:idle-ended', jobId: id, message: paused ? `its GPUs' telemetry paused after ${shortDuration(idleMs / 1000)} idle: idle time counts again from the next sample` : `its GPUs show work again after ${shortDuration(idleMs / 1000)} idle` });
    }
    await this.persist(step.ended, events, now);

    const reclaimed: string[] = [];
    for (const id of crossedNow.keys()) {
      const job = jobs.get(id);
      if (!job || job.state !== 'running' || this.reclaiming.has(id) || idlePolicyOf(job.spec, this.config) !== 'reclaim') continue;
      const v = view(id);
      if (!v || !shouldReclaim(v)) continue;
      this.reclaiming.add(id);
      const reason = `idle: ${v.heldGpus === 1 ? 'its GPU' : `all ${gpus(v.heldGpus)}`} idle for ${shortDuration(Math.min(...v.gpus.map((g) => g.idleSeconds)))} (${gpuList(v.gpus)}; ${thresholds(this.config)}), reclaimed by idle policy reclaim`;
      if (await this.store.reclaimIdle(id, reason, now)) reclaimed.push(id);
    }
    for (const id of this.reclaiming) if (!jobs.has(id)) this.reclaiming.delete(id);
    return { reported, reclaimed };
  }

  /** Writes what changed: new, crossed or moved streaks (a moved one at most every half gap), ended ones removed. */
  private async persist(ended: readonly IdleStreak[], events: readonly JobEventInput[], now: number): Promise<void> {
    const every = this.o.maxGapMs / 2;
    const upsert: IdleGpuRecord[] = [];
    for (const [key, s] of this.streaks) {
      const w = this.written.get(key);
      if (w === s) continue;
      if (!w || w.since !== s.since || w.crossedAt !== s.crossedAt || s.lastAt - w.lastAt >= every) upsert.push(s);
    }
    const remove: IdleGpuKey[] = [];
    for (const s of ended) {
      const key = allocationKey(s);
      if (!this.streaks.has(key) && this.written.has(key)) remove.push(s);
    }
    if (upsert.length === 0 && remove.length === 0 && events.length === 0) return;
    await this.store.saveIdleGpus(upsert, remove, events, now);
    for (const s of upsert) this.written.set(allocationKey(s), s);
    for (const s of remove) this.written.delete(allocationKey(s));
  }
}

/** The jobs with a streak past the threshold, with the longest such streak (ms). */
function crossedJobs(streaks: Iterable<IdleStreak>): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of streaks) if (s.crossedAt !== null) out.set(s.jobId, Math.max(out.get(s.jobId) ?? 0, s.lastAt - s.since));
  return out;
}

const gpus = (n: number): string => `${n} GPU${n === 1 ? '' : 's'}`;

/** "1 GPU", "2 GPUs" (all it holds) or "2 of 4 GPUs". */
function idleGpuCount(v: JobIdleView): string {
  return v.idleGpus === v.heldGpus ? gpus(v.heldGpus) : `${v.idleGpus} of ${gpus(v.heldGpus)}`;
}
