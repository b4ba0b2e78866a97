/**
 * What every job scheduler needs each cycle: the cluster state brought up to the snapshot, a
 * placement session over the schedulable nodes (through the named core placement policy),
 * the quota ledger with running jobs counted, and the profile for estimated start times.
 */
import type { ClusterState } from '../cluster.ts';
import type { GpuModel, NodeSpec, TaskId } from '../model.ts';
import { getPlacementPolicy } from '../placement/index.ts';
import { PlacementSession } from '../policy.ts';
import type { Rng } from '../rng.ts';
import { targetWorkload } from '../workload.ts';
import { ClusterView, taskOf } from './clusterView.ts';
import { AvailabilityProfile, type ProfileBase } from './estimates.ts';
import { nodeShapes, shortfall, type NodeShape } from './feasibility.ts';
import { freeGpus, placeGang, type GangResult } from './gang.ts';
import { ascending, CPU_MODEL, declaredRunSeconds, jobGpus, runnableModels, type JobSpec, type TaskBinding, type TaskResources } from './model.ts';
import { QuotaLedger } from './quota.ts';
import type { JobBind, RunningJob, SchedulerSnapshot } from './scheduler.ts';

export const DEFAULT_PLACEMENT = 'bestfit';

export { declaredRunSeconds };

/** Expected end of a running job from its declared limit and the time it has already run. */
export function expectedEnd(r: RunningJob, now: number): number {
  return now + Math.max(0, declaredRunSeconds(r.spec) - r.progress.runSeconds - (now - r.startTime));
}

/** Jobs by priority (higher first), then submit time, then id. */
export function byPriorityThenFifo(a: JobSpec, b: JobSpec): number {
  return b.priority - a.priority || ascending(a.submitTime, b.submitTime) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A pending reason for a job no schedulable node could run. */
export interface Unschedulable {
  readonly code: 'unschedulable';
  readonly message: string;
}

export class Placer {
  private readonly view = new ClusterView();
  private session: PlacementSession | undefined;
  private sessionCluster: ClusterState | undefined;
  private sessionOrder: Int32Array | undefined;
  private sessionTargets: readonly TaskResources[] | undefined;
  /** What this cycle changed in the cluster state, undone at the next begin(). */
  private readonly journal: { readonly take: boolean; readonly job: JobSpec; readonly binding: TaskBinding }[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly placementName = DEFAULT_PLACEMENT,
  ) {
    if (!getPlacementPolicy(placementName)) throw new Error(`unknown placement policy '${placementName}'`);
  }

  /** The snapshot of the current cycle. */
  private snapshot: SchedulerSnapshot | undefined;

  /** Starts a cycle: returns the state with running jobs allocated. */
  begin(snapshot: SchedulerSnapshot): ClusterState {
    this.revert();
    this.snapshot = undefined;
    const cluster = this.view.update(snapshot);
    this.snapshot = snapshot;
    if (cluster !== this.sessionCluster || this.view.nodeOrder !== this.sessionOrder || snapshot.targetTasks !== this.sessionTargets || !this.session) {
      const factory = getPlacementPolicy(this.placementName);
      if (!factory) throw new Error(`unknown placement policy '${this.placementName}'`);
      const targets = snapshot.targetTasks ?? [];
      const workload = targets.length ? targetWorkload(cluster, targets.map((t, i) => ({ ...t, id: `target/${i}` as TaskId }))) : [];
      this.session = new PlacementSession(cluster, factory({ cluster, rng: this.rng, workload }), this.view.nodeOrder);
      this.sessionCluster = cluster;
      this.sessionOrder = this.view.nodeOrder;
      this.sessionTargets = snapshot.targetTasks;
    }
    this.checkFit();
    return cluster;
  }

  get cluster(): ClusterState {
    return this.view.cluster;
  }

  /** The runs the last begin() found ended and begun; `rebuilt`: it started over, and every run is in `started`. */
  get runChanges(): { readonly started: readonly RunningJob[]; readonly stopped: readonly RunningJob[]; readonly rebuilt: boolean } {
    return this.view;
  }

  /** The running jobs' releases of a model at the current cycle's instant, if `snapshot` is that cycle's. */
  baseSourceFor(snapshot: SchedulerSnapshot): ((model: GpuModel) => ProfileBase | undefined) | undefined {
    const ends = this.view.ends;
    return snapshot === this.snapshot ? (model) => ends.base(model, snapshot.now) : undefined;
  }

  /** Models present in the cluster that the job can run on, in the cluster's model order. */
  modelsFor(job: JobSpec): GpuModel[] {
    return this.models(job).slice();
  }

  private modelsCache = new WeakMap<JobSpec, readonly GpuModel[]>();
  private modelsCluster: ClusterState | undefined;

  /** modelsFor, shared: not to be changed. */
  models(job: JobSpec): readonly GpuModel[] {
    const cluster = this.view.cluster;
    if (cluster !== this.modelsCluster) {
      this.modelsCache = new WeakMap();
      this.modelsCluster = cluster;
    }
    let models = this.modelsCache.get(job);
    if (!models) {
      if (jobGpus(job) === 0) models = [CPU_MODEL];
      else {
        const runnable = runnableModels(job);
        models = cluster.models.filter((m) => runnable.includes(m));
      }
      this.modelsCache.set(job, models);
    }
    return models;
  }

  /** Bumped (at begin()) when the schedulable nodes change: callers may cache unschedulable() under it. */
  fitVersion = 0;
  private fitCluster: ClusterState | undefined;
  private fitOrder: Int32Array | undefined;
  private fitCache = new WeakMap<JobSpec, Unschedulable | null>();
  /** The schedulable nodes by capacity, made when first needed. */
  private shapes: NodeShape[] | undefined;

  /**
   * Why no schedulable node could run the job even with nothing else on it (feasibility.ts), or
   * null when one could. Such a job holds back no queue and reserves nothing. Cached per job
   * until the schedulable nodes change.
   */
  unschedulable(job: JobSpec): Unschedulable | null {
    this.checkFit();
    let r = this.fitCache.get(job);
    if (r === undefined) {
      r = this.findUnschedulable(job, this.view.cluster, this.view.nodeOrder);
      this.fitCache.set(job, r);
    }
    return r;
  }

  /** Forgets what unschedulable() found when the schedulable nodes changed. */
  private checkFit(): void {
    const cluster = this.view.cluster;
    const order = this.view.nodeOrder;
    if (cluster === this.fitCluster && order === this.fitOrder) return;
    this.fitCluster = cluster;
    this.fitOrder = order;
    this.fitCache = new WeakMap();
    this.shapes = undefined;
    this.fitVersion++;
  }

  private findUnschedulable(job: JobSpec, cluster: ClusterState, order: Int32Array): Unschedulable | null {
    if (cluster.nodeCount === 0) return { code: 'unschedulable', message: 'no node registered yet' };
    if (order.length === 0) return { code: 'unschedulable', message: `no schedulable node (${cluster.nodeCount} drained or down)` };
    const shapes = (this.shapes ??= nodeShapes(Array.from(order, (n) => cluster.nodes[n] as NodeSpec)));
    const s = shortfall(job.groups, this.models(job), shapes, 'schedulable node');
    if (s === null) return null;
    const group = job.groups[s.group];
    return { code: 'unschedulable', message: job.groups.length > 1 && group ? `task group '${group.name}': ${s.message}` : s.message };
  }

  freeGpus(model: GpuModel): number {
    return freeGpus(this.view.cluster, this.view.nodeOrder, model);
  }

  /** Places the job's gang on `model` for the rest of this cycle (the plan's bind), elastic groups up to `maxGpus`. */
  place(job: JobSpec, model: GpuModel, maxGpus?: number): GangResult {
    if (!this.session) throw new Error('Placer.place before begin()');
    const r = placeGang(this.view.cluster, this.session, job, model, maxGpus);
    if (r.ok) for (const binding of r.bindings) this.journal.push({ take: true, job, binding });
    return r;
  }

  /** Gives back a bind made earlier in this cycle (e.g. a backfill that lost its slot). */
  undo(job: JobSpec, bind: JobBind): void {
    for (const binding of bind.bindings) {
      this.view.cluster.release(binding.placement);
      this.journal.push({ take: false, job, binding });
    }
  }

  /** Frees a running job's resources for the rest of this cycle (it is being preempted). */
  releaseRunning(r: RunningJob): void {
    for (const binding of r.bindings) {
      this.view.cluster.release(binding.placement);
      this.journal.push({ take: false, job: r.spec, binding });
    }
  }

  /** Undoes the previous cycle's tentative changes: the view then mirrors only the snapshots. */
  private revert(): void {
    const cluster = this.view.clusterOrUndefined;
    for (let i = this.journal.length - 1; cluster && i >= 0; i--) {
      const { take, job, binding } = this.journal[i] as (typeof this.journal)[number];
      if (take) cluster.release(binding.placement);
      else {
        const group = job.groups.find((g) => g.name === binding.group);
        if (!group) continue;
        const error = cluster.allocate(binding.placement, cluster.prepare(taskOf(job, binding.group, binding.index, { ...group.task, allowedModels: [] })));
        if (error !== null) throw new Error(`cannot restore job ${job.id}: ${error}`);
      }
    }
    this.journal.length = 0;
  }
}

/** The quota ledger with every running job counted. */
export function ledgerFor(snapshot: SchedulerSnapshot): QuotaLedger {
  const ledger = new QuotaLedger(snapshot.queues);
  if (ledger.enforced) for (const r of snapshot.running) ledger.add(r.spec.queue, r.model, r.gpus);
  return ledger;
}

/** The availability profile: free GPUs per model now, and running jobs' expected ends. */
export function profileFor(snapshot: SchedulerSnapshot, placer: Placer, excluded?: ReadonlySet<string>): AvailabilityProfile {
  const profile = new AvailabilityProfile(snapshot.now);
  for (const m of placer.cluster.models) profile.setFree(m, placer.freeGpus(m));
  // The placer keeps the running jobs' ends sorted between cycles: the same steps, without the sort.
  const source = excluded ? undefined : placer.baseSourceFor(snapshot);
  if (source) {
    profile.setBaseSource(source);
    return profile;
  }
  for (const r of snapshot.running) {
    if (excluded?.has(r.spec.id)) continue;
    profile.release(r.model, r.gpus, expectedEnd(r, snapshot.now));
  }
  return profile;
}
