/**
 * The placement core's ClusterState, kept in step with a scheduler's snapshots: running jobs'
 * bindings are allocated, jobs that stopped are released. It is updated by difference (by job
 * id and start time) so a cycle costs O(changes), not O(cluster), when the caller passes the
 * same `nodes` array each time; a different array rebuilds it.
 */
import { ClusterState, type PreparedTask } from '../cluster.ts';
import { taskId, type Placement } from '../model.ts';
import type { JobSpec, TaskBinding, TaskResources } from './model.ts';
import type { NodeState, RunningJob, SchedulerSnapshot } from './scheduler.ts';

interface Held {
  readonly startTime: number;
  readonly placements: readonly Placement[];
}

export function taskOf(job: JobSpec, group: string, index: number, res: TaskResources): PreparedTaskInput {
  return { id: taskId(`${job.id}/${group}/${index}`), ...res };
}

type PreparedTaskInput = Parameters<ClusterState['prepare']>[0];

export class ClusterView {
  private nodes: readonly NodeState[] | undefined;
  private state: ClusterState | undefined;
  private held = new Map<string, Held>();
  /** Schedulable node indices, in node order (the placement tie-break order). */
  nodeOrder = new Int32Array(0);

  get cluster(): ClusterState {
    if (!this.state) throw new Error('ClusterView used before update()');
    return this.state;
  }

  /** Brings the cluster state to the snapshot's running set. */
  update(snapshot: SchedulerSnapshot): ClusterState {
    if (snapshot.nodes !== this.nodes || !this.state) {
      this.nodes = snapshot.nodes;
      this.state = new ClusterState(snapshot.nodes.map((n) => n.spec));
      this.held = new Map();
    }
    const order: number[] = [];
    snapshot.nodes.forEach((n, i) => n.schedulable && order.push(i));
    if (order.length !== this.nodeOrder.length || order.some((v, i) => this.nodeOrder[i] !== v)) this.nodeOrder = Int32Array.from(order);
    const state = this.state;
    const live = new Set<string>();
    for (const r of snapshot.running) live.add(r.spec.id);
    for (const [id, h] of this.held) {
      if (!live.has(id)) {
        for (const p of h.placements) state.release(p);
        this.held.delete(id);
      }
    }
    for (const r of snapshot.running) {
      const h = this.held.get(r.spec.id);
      if (h && h.startTime === r.startTime) continue;
      if (h) for (const p of h.placements) state.release(p);
      this.held.set(r.spec.id, { startTime: r.startTime, placements: allocateRunning(state, r) });
    }
    return state;
  }
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
