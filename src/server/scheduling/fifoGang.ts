/**
 * The simplest job scheduler: strict priority, then FIFO; each job is a gang placed all or
 * nothing through the core's PlacementSession (so device choice follows a named placement
 * policy); queue GPU quotas with a borrowing limit; and priority preemption of preemptible
 * jobs when a higher-priority gang cannot fit otherwise. Pure: no clock, no I/O.
 */
import { ClusterState } from '../../core/cluster.ts';
import { nodeId, taskId, type NodeSpec, type Placement, type TaskRequest } from '../../core/model.ts';
import { PlacementSession } from '../../core/policy.ts';
import { getPlacementPolicy } from '../../core/policies/index.ts';
import { Rng } from '../../core/rng.ts';
import type { JobSpec } from '../../api/spec.ts';
import type { JobScheduler, PlannedTask, SchedulePlan, SchedulingSnapshot, SnapshotJob } from './scheduler.ts';

export function taskRequests(jobId: string, spec: JobSpec): TaskRequest[] {
  const out: TaskRequest[] = [];
  let index = 0;
  for (const g of spec.groups) {
    for (let r = 0; r < g.replicas; r++) {
      out.push({ id: taskId(`${jobId}.${index++}`), cpuMilli: g.cpuMilli, memoryMib: g.memoryMib, gpuCount: g.gpuCount, gpuMilli: g.gpuMilli, allowedModels: g.gpuModels });
    }
  }
  return out;
}

interface Built {
  cluster: ClusterState;
  session: PlacementSession;
  nodeIndex: Map<string, number>;
}

function build(snapshot: SchedulingSnapshot, policyName: string, skipJobs: ReadonlySet<string>): Built {
  const nodes: NodeSpec[] = snapshot.nodes.map((n) => ({ id: nodeId(n.id), cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus }));
  const cluster = new ClusterState(nodes);
  const nodeIndex = new Map(snapshot.nodes.map((n, i) => [n.id, i]));
  for (const a of snapshot.allocations) {
    if (skipJobs.has(a.jobId)) continue;
    const n = nodeIndex.get(a.node);
    if (n === undefined) continue; // a node that is not ready holds nothing schedulable
    const per = a.gpus.length ? a.gpuMilli / a.gpus.length : 0;
    const p: Placement = { node: n, gpus: a.gpus, gpuMilli: per, cpuMilli: a.cpuMilli, memoryMib: a.memoryMib };
    const held = cluster.prepare({ id: taskId(`${a.jobId}.${a.index}`), cpuMilli: a.cpuMilli, memoryMib: a.memoryMib, gpuCount: a.gpus.length, gpuMilli: per, allowedModels: [] });
    // An allocation the cluster cannot take (inconsistent after a node changed) is still subtracted:
    // over-counting use is safe, double-assigning a GPU is not.
    if (cluster.allocate(p, held) !== null) cluster.release({ ...p, cpuMilli: -p.cpuMilli, memoryMib: -p.memoryMib, gpuMilli: -p.gpuMilli });
  }
  const factory = getPlacementPolicy(policyName) ?? getPlacementPolicy('bestfit');
  if (!factory) throw new Error('no placement policy');
  const policy = factory({ cluster, rng: Rng.fromSeed(42), workload: [] });
  const order = Int32Array.from(nodes.map((_, i) => i));
  return { cluster, session: new PlacementSession(cluster, policy, order), nodeIndex };
}

/** Places a gang; on failure releases what it took. Returns the placements or the reason. */
function placeGang(b: Built, snapshot: SchedulingSnapshot, job: SnapshotJob): { ok: true; tasks: PlannedTask[] } | { ok: false; reason: string } {
  const placed: { index: number; p: Placement }[] = [];
  const requests = taskRequests(job.id, job.spec);
  for (let i = 0; i < requests.length; i++) {
    const r = b.session.place(requests[i] as TaskRequest);
    if (!r.ok) {
      for (const q of placed) b.cluster.release(q.p);
      return { ok: false, reason: requests.length > 1 ? `task ${i} of ${requests.length}: ${r.reason}` : r.reason };
    }
    placed.push({ index: i, p: r.placement });
  }
  return {
    ok: true,
    tasks: placed.map(({ index, p }) => ({
      index,
      node: snapshot.nodes[p.node]?.id ?? '',
      gpus: p.gpus,
      gpuMilli: p.gpus.length * p.gpuMilli,
    })),
  };
}

export class FifoGangScheduler implements JobScheduler {
  readonly name = 'fifo-gang';
  constructor(private readonly placementPolicy = 'bestfit') {}

  cycle(snapshot: SchedulingSnapshot): SchedulePlan {
    const binds: { jobId: string; attempt: number; tasks: PlannedTask[] }[] = [];
    const preemptions: { jobId: string; reason: string }[] = [];
    const pending: { jobId: string; reason: string; estimatedStart: number | null }[] = [];
    const built = build(snapshot, this.placementPolicy, new Set());

    const queueUse = new Map<string, number>();
    for (const a of snapshot.allocations) {
      const job = snapshot.jobs.find((j) => j.id === a.jobId);
      if (job) queueUse.set(job.queue, (queueUse.get(job.queue) ?? 0) + a.gpuMilli);
    }
    const quotas = new Map(snapshot.queues.map((q) => [q.name, q]));
    const draining = snapshot.jobs.some((j) => j.state === 'preempted');

    const queue = snapshot.jobs
      .filter((j) => j.state === 'pending')
      .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || Number(a.id) - Number(b.id));
    let preempting = draining;
    for (const job of queue) {
      const gpuMilli = job.spec.groups.reduce((n, g) => n + g.replicas * g.gpuCount * g.gpuMilli, 0);
      const q = quotas.get(job.queue);
      if (q && q.gpuQuota !== null) {
        const limit = (q.gpuQuota + (q.borrowingLimit ?? Infinity)) * 1000;
        if ((queueUse.get(job.queue) ?? 0) + gpuMilli > limit) {
          pending.push({ jobId: job.id, reason: `QuotaExceeded: queue ${job.queue} may use ${q.gpuQuota}${q.borrowingLimit === null ? '+' : `+${q.borrowingLimit}`} GPUs`, estimatedStart: null });
          continue;
        }
      }
      const r = placeGang(built, snapshot, job);
      if (r.ok) {
        binds.push({ jobId: job.id, attempt: job.attempt, tasks: r.tasks });
        queueUse.set(job.queue, (queueUse.get(job.queue) ?? 0) + gpuMilli);
        continue;
      }
      if (!preempting) {
        const victims = this.findVictims(snapshot, job);
        if (victims.length > 0) {
          preempting = true;
          for (const v of victims) preemptions.push({ jobId: v, reason: `preempted for job ${job.id} (priority ${job.priority})` });
          pending.push({ jobId: job.id, reason: `Preempting: waiting for ${victims.length} lower-priority job(s) to stop`, estimatedStart: null });
          continue;
        }
      }
      pending.push({ jobId: job.id, reason: `Resources: ${r.reason}`, estimatedStart: null });
    }
    return { binds, preemptions, pending };
  }

  /** The fewest lower-priority preemptible running jobs (lowest priority, newest first) whose stop lets `job` fit. */
  private findVictims(snapshot: SchedulingSnapshot, job: SnapshotJob): string[] {
    const candidates = snapshot.jobs
      .filter((j) => (j.state === 'running' || j.state === 'admitted') && j.preemptible && j.priority < job.priority)
      .sort((a, b) => a.priority - b.priority || (b.startedAt ?? b.createdAt) - (a.startedAt ?? a.createdAt) || Number(b.id) - Number(a.id));
    const chosen = new Set<string>();
    for (const c of candidates) {
      chosen.add(c.id);
      const trial = build(snapshot, this.placementPolicy, chosen);
      if (placeGang(trial, snapshot, job).ok) return [...chosen];
    }
    return [];
  }
}
