/**
 * Metrics of a simulated run, collected from the simulator's lifecycle events: job completion
 * time (average, p99), queueing delay per GPU count, makespan, GPU allocation over time,
 * goodput, Jain's fairness index, finish-time fairness and usage per tenant and queue.
 * Only jobs accepted by `measured` count (e.g. Gavel's window of jobs 4000–4999).
 */
import { jobGpus, minJobGpus, type JobSpec, type QueueConfig } from '../core/scheduling/model.ts';
import type { SimEvent } from './simulator.ts';

export interface JobRecord {
  readonly id: string;
  readonly gpus: number;
  readonly tenant: string;
  readonly queue: string;
  readonly submit: number;
  readonly firstStart: number;
  readonly finish: number;
  readonly runSeconds: number;
  /** Run time alone on its fastest model. */
  readonly isolatedSeconds: number;
  /** Average number of jobs in the system during its life. */
  readonly contention: number;
  /** Times it was preempted (stopped before its end, node failures included). */
  readonly preemptions: number;
}

/** Quantiles of preemptions per job over the measured jobs. */
export interface PreemptionsPerJob {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface QueueSummary {
  readonly jobs: number;
  /**
   * Share of the run during which the queue had a job waiting that would have fit within its
   * nominal quota (Kueue's guarantee): 0 means the queue was never held below what it is owed.
   */
  readonly belowGuaranteeShare: number;
  readonly avgWaitHours: number;
  readonly p99WaitHours: number;
  readonly avgJctHours: number;
}

export interface Summary {
  readonly jobs: number;
  readonly avgJctHours: number;
  readonly p99JctHours: number;
  /** Time not running between submission and finish. */
  readonly avgWaitHours: number;
  readonly p99WaitHours: number;
  readonly p99WaitHoursByGpus: Readonly<Record<string, number>>;
  /** p99 wait of jobs with 8 GPUs or more. */
  readonly p99WaitHours8Gpu: number;
  /** Submission to first start. */
  readonly p99FirstStartDelayHours: number;
  readonly makespanHours: number;
  /** Jain's index over jobs of isolated run time ÷ JCT (1: all slowed equally). */
  readonly jainIndex: number;
  /** Mean over jobs of JCT ÷ the JCT of an equal 1/n share of the cluster (Themis' ρ). */
  readonly finishTimeFairness: number;
  /** Share of jobs with ρ ≤ 1. */
  readonly fairFinishShare: number;
  /** GPU-time kept ÷ GPU-time used (the rest lost to preemption and restarts). */
  readonly goodput: number;
  /** p99 wait per queue: no queue should starve. */
  readonly p99WaitHoursByQueue: Readonly<Record<string, number>>;
  /** Per queue: finished jobs, their average and p99 wait and average JCT (hours). */
  readonly byQueue: Readonly<Record<string, QueueSummary>>;
  readonly gpuHoursByTenant: Readonly<Record<string, number>>;
  readonly gpuHoursByQueue: Readonly<Record<string, number>>;
  /** Measured jobs stopped at their time limit (not in the JCT figures). */
  readonly timedOut: number;
  /** Preemptions per measured job that finished (p50, p99, max). */
  readonly preemptionsPerJob: PreemptionsPerJob;
  /** How many measured finished jobs were preempted n times, by n (to pool runs: preemptionQuantiles). */
  readonly preemptionCounts: Readonly<Record<string, number>>;
}

/** p50, p99 and max of preemptions per job from counts of jobs by number of preemptions (nearest rank). */
export function preemptionQuantiles(counts: Readonly<Record<string, number>>): PreemptionsPerJob {
  const entries = Object.entries(counts).map(([n, c]) => [Number(n), c] as const).filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((a, [, c]) => a + c, 0);
  if (total === 0) return { p50: NaN, p99: NaN, max: NaN };
  const at = (q: number): number => {
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (const [n, c] of entries) {
      seen += c;
      if (seen >= rank) return n;
    }
    return (entries[entries.length - 1] as readonly [number, number])[0];
  };
  return { p50: at(0.5), p99: at(0.99), max: (entries[entries.length - 1] as readonly [number, number])[0] };
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

export function jainIndex(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return (sum * sum) / (xs.length * sq);
}

const H = 3600;

export class MetricsCollector {
  readonly records: JobRecord[] = [];
  /** Measured jobs that ended, finished or timed out. */
  get ended(): number {
    return this.records.length + this.timedOut;
  }
  /** Measured jobs stopped at their time limit. */
  timedOut = 0;
  /** (time, allocated GPUs) at every change. */
  readonly allocation: [number, number][] = [];
  private inSystem = 0;
  private integral = 0;
  private lastT = 0;
  private readonly integralAtSubmit = new Map<string, number>();
  private lostGpuSeconds = 0;
  /** GPU-seconds held by every run, finished or preempted. */
  private usedGpuSeconds = 0;
  /** Running jobs: when the run started and the GPUs it holds. */
  private readonly runStart = new Map<string, { time: number; gpus: number }>();
  private readonly preempted = new Set<string>();
  private readonly usedByTenant = new Map<string, number>();
  private readonly usedByQueue = new Map<string, number>();

  /** Per queue: GPUs held now, and seconds spent below its guarantee. */
  private readonly queueHeld = new Map<string, number>();
  private readonly belowSince = new Map<string, number>();
  private readonly belowSeconds = new Map<string, number>();
  private readonly jobQueue = new Map<string, { queue: string; gpus: number }>();
  private readonly nominal: Map<string, number>;
  private firstT = Infinity;

  constructor(
    private readonly totalGpus: number,
    private readonly measured: (job: JobSpec) => boolean = () => true,
    queues: readonly QueueConfig[] = [],
  ) {
    this.nominal = new Map(queues.map((q) => [q.name, q.nominalQuota['*'] ?? Object.values(q.nominalQuota).reduce((a, b) => a + b, 0)]));
  }

  /** After a cycle: which queues wait for a job that fits within their nominal quota. */
  private guarantee(t: number, waiting: readonly { readonly job: string }[]): void {
    if (this.nominal.size === 0) return;
    const smallest = new Map<string, number>();
    for (const r of waiting) {
      const j = this.jobQueue.get(r.job);
      if (j && j.gpus < (smallest.get(j.queue) ?? Infinity)) smallest.set(j.queue, j.gpus);
    }
    for (const [queue, nominal] of this.nominal) {
      const need = smallest.get(queue);
      const below = need !== undefined && (this.queueHeld.get(queue) ?? 0) + need <= nominal;
      const since = this.belowSince.get(queue);
      if (below && since === undefined) this.belowSince.set(queue, t);
      if (!below && since !== undefined) {
        this.belowSeconds.set(queue, (this.belowSeconds.get(queue) ?? 0) + t - since);
        this.belowSince.delete(queue);
      }
    }
  }

  private holds(job: JobSpec, gpus: number): void {
    this.queueHeld.set(job.queue, (this.queueHeld.get(job.queue) ?? 0) + gpus);
  }

  private advance(t: number): void {
    this.integral += this.inSystem * (t - this.lastT);
    this.lastT = t;
  }

  readonly onEvent = (e: SimEvent): void => {
    switch (e.type) {
      case 'job:submitted':
        this.advance(e.time);
        this.inSystem++;
        this.firstT = Math.min(this.firstT, e.time);
        if (this.nominal.size > 0) this.jobQueue.set(e.job.id, { queue: e.job.queue, gpus: minJobGpus(e.job) });
        this.integralAtSubmit.set(e.job.id, this.integral);
        break;
      case 'job:started':
        this.runStart.set(e.job.id, { time: e.time, gpus: e.gpus });
        this.holds(e.job, e.gpus);
        if (this.preempted.has(e.job.id)) this.lostGpuSeconds += (e.job.restartCostSeconds ?? 0) * e.gpus;
        break;
      case 'job:preempted':
        this.lostGpuSeconds += e.lostGpuSeconds;
        this.preempted.add(e.job.id);
        this.endRun(e.job, e.time);
        break;
      case 'job:timedout':
        this.advance(e.time);
        this.inSystem--;
        this.jobQueue.delete(e.job.id);
        this.endRun(e.job, e.time);
        this.preempted.delete(e.job.id);
        this.integralAtSubmit.delete(e.job.id);
        if (this.measured(e.job)) this.timedOut++;
        break;
      case 'job:finished': {
        this.advance(e.time);
        this.inSystem--;
        const job = e.job;
        this.jobQueue.delete(job.id);
        const gpus = jobGpus(job);
        this.endRun(job, e.time);
        this.usedByTenant.set(job.tenant, (this.usedByTenant.get(job.tenant) ?? 0) + e.progress.attainedGpuSeconds);
        this.usedByQueue.set(job.queue, (this.usedByQueue.get(job.queue) ?? 0) + e.progress.attainedGpuSeconds);
        this.preempted.delete(job.id);
        const start = this.integralAtSubmit.get(job.id) ?? this.integral;
        this.integralAtSubmit.delete(job.id);
        if (!this.measured(job)) break;
        const best = Math.max(...Object.values(job.throughput));
        const jct = e.time - job.submitTime;
        this.records.push({
          id: job.id,
          gpus,
          tenant: job.tenant,
          queue: job.queue,
          submit: job.submitTime,
          firstStart: e.progress.firstStartTime ?? e.time,
          finish: e.time,
          runSeconds: e.progress.runSeconds,
          isolatedSeconds: best > 0 ? job.totalSteps / best : 0,
          contention: jct > 0 ? (this.integral - start) / jct : 1,
          preemptions: e.progress.preemptions,
        });
        break;
      }
      case 'cycle':
        this.guarantee(e.time, e.plan.pending);
        if (this.allocation.length === 0 || this.allocation[this.allocation.length - 1]?.[1] !== e.allocatedGpus) this.allocation.push([e.time, e.allocatedGpus]);
        break;
      default:
        break;
    }
  };

  /** A run ends: its GPU time counts as used; its restart cost (if it was a restart) as lost. */
  private endRun(job: JobSpec, t: number): void {
    const run = this.runStart.get(job.id);
    if (run === undefined) return;
    this.runStart.delete(job.id);
    this.holds(job, -run.gpus);
    this.usedGpuSeconds += (t - run.time) * run.gpus;
  }

  summary(): Summary {
    const r = this.records;
    const jct = r.map((x) => (x.finish - x.submit) / H);
    const wait = r.map((x) => Math.max(0, x.finish - x.submit - x.runSeconds) / H);
    const byGpus = new Map<number, number[]>();
    r.forEach((x, i) => {
      const list = byGpus.get(x.gpus) ?? [];
      list.push(wait[i] as number);
      byGpus.set(x.gpus, list);
    });
    const p99WaitHoursByGpus: Record<string, number> = {};
    for (const g of [...byGpus.keys()].sort((a, b) => a - b)) p99WaitHoursByGpus[String(g)] = quantile(byGpus.get(g) as number[], 0.99);
    const byQueue = new Map<string, { wait: number[]; jct: number[] }>();
    r.forEach((x, i) => {
      const q = byQueue.get(x.queue) ?? { wait: [], jct: [] };
      q.wait.push(wait[i] as number);
      q.jct.push(jct[i] as number);
      byQueue.set(x.queue, q);
    });
    const p99WaitHoursByQueue: Record<string, number> = {};
    const queues: Record<string, QueueSummary> = {};
    for (const name of [...byQueue.keys()].sort()) {
      const q = byQueue.get(name) as { wait: number[]; jct: number[] };
      p99WaitHoursByQueue[name] = quantile(q.wait, 0.99);
      const below = (this.belowSeconds.get(name) ?? 0) + (this.belowSince.has(name) ? this.lastT - (this.belowSince.get(name) as number) : 0);
      const span = this.lastT - Math.min(this.firstT, this.lastT);
      queues[name] = { jobs: q.wait.length, belowGuaranteeShare: span > 0 ? below / span : 0, avgWaitHours: mean(q.wait), p99WaitHours: quantile(q.wait, 0.99), avgJctHours: mean(q.jct) };
    }
    const big = r.flatMap((x, i) => (x.gpus >= 8 ? [wait[i] as number] : []));
    const rho = r.map((x) => {
      const fairShare = x.isolatedSeconds * Math.max(1, (x.contention * x.gpus) / this.totalGpus);
      return fairShare > 0 ? (x.finish - x.submit) / fairShare : 1;
    });
    const hours = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [k, v / H]));
    const preemptionCounts: Record<string, number> = {};
    for (const x of r) preemptionCounts[String(x.preemptions)] = (preemptionCounts[String(x.preemptions)] ?? 0) + 1;
    return {
      jobs: r.length,
      avgJctHours: mean(jct),
      p99JctHours: quantile(jct, 0.99),
      avgWaitHours: mean(wait),
      p99WaitHours: quantile(wait, 0.99),
      p99WaitHoursByGpus,
      p99WaitHours8Gpu: quantile(big, 0.99),
      p99FirstStartDelayHours: quantile(r.map((x) => (x.firstStart - x.submit) / H), 0.99),
      makespanHours: r.length === 0 ? 0 : (Math.max(...r.map((x) => x.finish)) - Math.min(...r.map((x) => x.submit))) / H,
      jainIndex: jainIndex(r.map((x) => (x.finish > x.submit ? x.isolatedSeconds / (x.finish - x.submit) : 1))),
      finishTimeFairness: mean(rho),
      fairFinishShare: rho.length === 0 ? NaN : rho.filter((v) => v <= 1 + 1e-9).length / rho.length,
      goodput: this.usedGpuSeconds === 0 ? 1 : Math.max(0, 1 - this.lostGpuSeconds / this.usedGpuSeconds),
      p99WaitHoursByQueue,
      byQueue: queues,
      gpuHoursByTenant: hours(this.usedByTenant),
      gpuHoursByQueue: hours(this.usedByQueue),
      timedOut: this.timedOut,
      preemptionsPerJob: preemptionQuantiles(preemptionCounts),
      preemptionCounts,
    };
  }

  /** Allocated GPUs over time, averaged into at most `points` buckets (hours, GPUs). */
  allocationSeries(points = 200): [number, number][] {
    const a = this.allocation;
    if (a.length === 0) return [];
    const t0 = (a[0] as [number, number])[0];
    const t1 = this.lastT > t0 ? this.lastT : t0 + 1;
    const width = (t1 - t0) / points;
    const out: [number, number][] = [];
    let i = 0;
    for (let b = 0; b < points; b++) {
      const from = t0 + b * width;
      const to = from + width;
      let area = 0;
      while (i + 1 < a.length && (a[i + 1] as [number, number])[0] <= from) i++;
      for (let j = i; j < a.length && (a[j] as [number, number])[0] < to; j++) {
        const [ts, v] = a[j] as [number, number];
        const te = j + 1 < a.length ? Math.min((a[j + 1] as [number, number])[0], to) : to;
        area += v * (te - Math.max(ts, from));
      }
      out.push([(from + width / 2) / H, area / width]);
    }
    return out;
  }
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
