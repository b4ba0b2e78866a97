/**
 * The placement core's ClusterState, kept in step with a scheduler's snapshots: running jobs'
 * bindings are allocated, jobs that stopped are released. It is updated by difference (by job
 * id and start time) so a cycle costs O(changes), not O(cluster), when the caller passes the
 * same `nodes` array each time; a different array rebuilds it. A snapshot whose `runningDelta`
 * follows the previous snapshot is applied without comparing the running lists at all.
 */
import { ClusterState, type PreparedTask } from '../cluster.ts';
import { taskId, type Placement } from '../model.ts';
import { RunningEnds } from './estimates.ts';
import { compareJobIds, declaredRunSeconds, indexById, type JobSpec, type TaskBinding, type TaskResources } from './model.ts';
import type { NodeState, RunningDelta, RunningJob, SchedulerSnapshot } from './scheduler.ts';

export function taskOf(job: JobSpec, group: string, index: number, res: TaskResources): PreparedTaskInput {
  return { id: taskId(`${job.id}/${group}/${index}`), ...res };
}

type PreparedTaskInput = Parameters<ClusterState['prepare']>[0];

export class ClusterView {
  private nodes: readonly NodeState[] | undefined;
  private state: ClusterState | undefined;
  /** The running list of the previous update, and what each of its jobs holds. */
  private prev: RunningJob[] = [];
  private readonly held = new Map<string, Placement[]>();
  /** Schedulable node indices, in node order (the placement tie-break order). */
  nodeOrder = new Int32Array(0);
  /** The node states nodeOrder was made from. */
  private nodeRefs: readonly NodeState[] = [];
  /** The running jobs' expected ends per model (for availability profiles), kept in step too. */
  readonly ends = new RunningEnds();
  /** The `seq` of the last snapshot applied. */
  private seq: number | undefined;
  /** What the last update changed: runs that began and ended (a job that moved is in both). */
  readonly started: RunningJob[] = [];
  readonly stopped: RunningJob[] = [];
  /** The last update started over (every running job is in `started`). */
  rebuilt = false;

  get clusterOrUndefined(): ClusterState | undefined {
    return this.state;
  }

  get cluster(): ClusterState {
    if (!this.state) throw new Error('ClusterView used before update()');
    return this.state;
  }

  /**
   * Brings the cluster state to the snapshot's running set. Walks the previous and the new
   * running lists (both sorted by job id) side by side: unchanged jobs (the same object) cost
   * one comparison each.
   */
  update(snapshot: SchedulerSnapshot): ClusterState {
    this.started.length = 0;
    this.stopped.length = 0;
    this.rebuilt = false;
    const delta = snapshot.runningDelta;
    const afterLast = delta !== undefined && this.seq !== undefined && delta.since === this.seq;
    this.seq = snapshot.seq;
    if (snapshot.nodes !== this.nodes || !this.state) this.rebuild(snapshot);
    const follows = afterLast && !this.rebuilt;
    // Node states are replaced, not changed: look again only at nodes whose object changed.
    const nodes = snapshot.nodes;
    const seen = this.nodeRefs;
    let changedNodes = seen.length !== nodes.length;
    for (let i = 0; i < nodes.length && !changedNodes; i++) if (nodes[i] !== seen[i]) changedNodes = true;
    let changedOrder = false;
    let count = 0;
    if (changedNodes) {
      this.nodeRefs = nodes.slice();
      const order = this.nodeOrder;
      for (let i = 0; i < nodes.length; i++) {
        if (!(nodes[i] as NodeState).schedulable) continue;
        if (order[count] !== i) changedOrder = true;
        count++;
      }
    } else count = this.nodeOrder.length;
    if (changedOrder || count !== this.nodeOrder.length) {
      const order: number[] = [];
      snapshot.nodes.forEach((n, i) => n.schedulable && order.push(i));
      this.nodeOrder = Int32Array.from(order);
    }
    if (follows && delta && this.applyDelta(snapshot, delta)) return this.state as ClusterState;
    const state = this.state as ClusterState;
    const prev = this.prev;
    const next = snapshot.running;
    // Releases first, then allocations: a job may start on GPUs another job left in this step.
    const starting: RunningJob[] = [];
    let i = 0;
    let j = 0;
    // The lists agree up to their first difference: from there on, prev is copied from next below.
    while (i < prev.length && j < next.length && prev[i] === next[j]) {
      i++;
      j++;
    }
    if (i === prev.length && j === next.length) return state;
    /** (index in prev, -1 remove / 0 replace / 1 insert before, job) triples, in prev order. */
    const edits: (number | RunningJob)[] = [];
    while (i < prev.length || j < next.length) {
      const a = prev[i];
      const b = next[j];
      if (a !== undefined && a === b) {
        i++;
        j++;
      } else if (a !== undefined && (b === undefined || compareJobIds(a.spec.id, b.spec.id) < 0)) {
        this.release(state, a);
        endsOf(this.ends, a, false);
        this.stopped.push(a);
        edits.push(i, -1, a);
        i++;
      } else if (b !== undefined && (a === undefined || compareJobIds(b.spec.id, a.spec.id) < 0)) {
        starting.push(b);
        endsOf(this.ends, b, true);
        this.started.push(b);
        edits.push(i, 1, b);
        j++;
      } else if (a !== undefined && b !== undefined) {
        if (a.startTime !== b.startTime || a.bindings !== b.bindings) {
          this.release(state, a);
          starting.push(b);
        }
        this.stopped.push(a);
        this.started.push(b);
        endsOf(this.ends, a, false);
        endsOf(this.ends, b, true);
        edits.push(i, 0, b);
        i++;
        j++;
      }
    }
    for (const b of starting) this.held.set(b.spec.id, allocateRunning(state, b));
    // Bring prev to next by its few edits, from the end (a fresh copy per cycle costs more).
    for (let e = edits.length - 3; e >= 0; e -= 3) {
      const at = edits[e] as number;
      const kind = edits[e + 1] as number;
      const job = edits[e + 2] as RunningJob;
      if (kind < 0) prev.splice(at, 1);
      else if (kind === 0) prev[at] = job;
      else prev.splice(at, 0, job);
    }
    return state;
  }

  private rebuild(snapshot: SchedulerSnapshot): void {
    this.nodes = snapshot.nodes;
    this.state = new ClusterState(snapshot.nodes.map((n) => n.spec));
    this.prev = [];
    this.held.clear();
    this.ends.clear();
    this.rebuilt = true;
  }

  /**
   * Applies the caller's list of runs that ended and began since the previous snapshot. False
   * (nothing changed) when the result would not have the snapshot's number of running jobs:
   * then the lists are compared as usual.
   */
  private applyDelta(snapshot: SchedulerSnapshot, delta: RunningDelta): boolean {
    const prev = this.prev;
    if (prev.length - delta.stopped.length + delta.started.length !== snapshot.running.length) return false;
    const state = this.state as ClusterState;
    for (const a of delta.stopped) {
      const i = indexById(prev, a.spec.id);
      if (prev[i] !== a) throw new Error(`runningDelta stops job ${a.spec.id}, which was not running in the previous snapshot`);
      prev.splice(i, 1);
      this.release(state, a);
      endsOf(this.ends, a, false);
      this.stopped.push(a);
    }
    for (const b of delta.started) {
      const i = indexById(prev, b.spec.id);
      if (prev[i]?.spec.id === b.spec.id) throw new Error(`runningDelta starts job ${b.spec.id}, which is already running`);
      prev.splice(i, 0, b);
      this.held.set(b.spec.id, allocateRunning(state, b));
      endsOf(this.ends, b, true);
      this.started.push(b);
    }
    return true;
  }

  private release(state: ClusterState, r: RunningJob): void {
    for (const p of this.held.get(r.spec.id) ?? []) state.release(p);
    this.held.delete(r.spec.id);
  }
}

function endsOf(ends: RunningEnds, r: RunningJob, add: boolean): void {
  const left = declaredRunSeconds(r.spec) - r.progress.runSeconds;
  if (add) ends.add(r, r.model, r.gpus, r.startTime, left);
  else ends.remove(r, r.model, r.gpus, r.startTime, left);
}

function allocateRunning(state: ClusterState, r: RunningJob): Placement[] {
  const done: Placement[] = [];
  for (const b of r.bindings) {
    const t = preparedFor(state, r.spec, b);
    const error = state.allocate(b.placement, t);
    if (error !== null) {
      for (const p of done) state.release(p);
      throw new Error(`running job ${r.spec.id}: task ${b.group}/${b.index} does not fit where it runs: ${error}`);
    }
    done.push(b.placement);
  }
  return done;
}

function preparedFor(state: ClusterState, job: JobSpec, b: TaskBinding): PreparedTask {
  const group = job.groups.find((g) => g.name === b.group);
  if (!group) throw new Error(`running job ${job.id}: no task group '${b.group}'`);
  return state.prepare(taskOf(job, b.group, b.index, { ...group.task, allowedModels: [] }));
}
