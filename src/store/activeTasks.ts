/**
 * The active tasks (assigned, running, stopping: those that hold resources) kept in memory and
 * brought up to date from the tasks changed since the last read, as openJobs.ts does for jobs:
 * the scheduler's snapshot and the node list each read every active task before (10,000 rows
 * and as many JSON parses on a full 10,000-GPU cluster, each cycle and each GET /v1/nodes).
 *
 * Changes are found by the tasks' `version` column (migration 010), set by a trigger on every
 * update (a task is inserted pending, so inserts need none): on SQLite a counter and the
 * watermark MAX(version) + 1, on PostgreSQL the writing transaction's id and the watermark the
 * reading snapshot's xmin, so another server's late commit is still read. A task read twice is
 * harmless; an unchanged one keeps its object.
 */
import type { Task } from '../api/types.ts';
import { ACTIVE_IN, readVersionWatermark, TASK_COLS } from './queries.ts';
import type { TaskRow } from './rows.ts';
import type { SqlDb } from './sqlDb.ts';
import type { ActiveTask } from './store.ts';
import { InTurn } from '../util/inTurn.ts';

const ACTIVE = new Set(['assigned', 'running', 'stopping']);

export const ACTIVE_TASKS_Q = {
  all: `SELECT ${TASK_COLS} FROM tasks WHERE state IN ${ACTIVE_IN}`,
  changed: `SELECT ${TASK_COLS} FROM tasks WHERE version >= $1`,
} as const;

/** An active task row as the snapshot gives it. */
export function activeTaskOf(r: TaskRow): ActiveTask {
  return {
    jobId: String(r.job_id),
    index: Number(r.idx),
    node: r.node_id ?? '',
    gpus: JSON.parse(r.gpus) as number[],
    gpuMilli: Number(r.gpu_milli),
    cpuMilli: Number(r.cpu_milli),
    memoryMib: Number(r.memory_mib),
    state: r.state as Task['state'],
    startedAt: r.started_at === null ? null : Number(r.started_at),
  };
}

const sameTask = (a: ActiveTask, b: ActiveTask): boolean =>
  a.node === b.node &&
  a.state === b.state &&
  a.startedAt === b.startedAt &&
  a.gpuMilli === b.gpuMilli &&
  a.cpuMilli === b.cpuMilli &&
  a.memoryMib === b.memoryMib &&
  a.gpus.length === b.gpus.length &&
  a.gpus.every((g, i) => g === b.gpus[i]);

export class ActiveTasksMirror {
  /** By `jobId/index`, with the job id as a number for ordering. */
  private readonly tasks = new Map<string, { job: number; task: ActiveTask }>();
  private watermark: number | null = null;
  private list: ActiveTask[] = [];
  private dirty = true;
  /** One refresh at a time: an older delta applied after a newer one would bring back old rows. */
  private readonly turns = new InTurn();
  /** Rows read in all (a benchmark's count of what the mirror saves). */
  rowsRead = 0;

  /** The active tasks by job, then task index, as of now; reads only what changed since the last call. */
  refresh(db: SqlDb): Promise<readonly ActiveTask[]> {
    return this.turns.run(() => this.read(db));
  }

  /** Forget everything: the next refresh reads every active task. */
  reset(): void {
    this.tasks.clear();
    this.watermark = null;
    this.dirty = true;
  }

  private async read(db: SqlDb): Promise<readonly ActiveTask[]> {
    try {
      const next = await readVersionWatermark(db, 'tasks');
      const rows = this.watermark === null ? await db.all<TaskRow>(ACTIVE_TASKS_Q.all) : await db.all<TaskRow>(ACTIVE_TASKS_Q.changed, [this.watermark]);
      this.rowsRead += rows.length;
      for (const r of rows) {
        const key = `${r.job_id}/${r.idx}`;
        const had = this.tasks.get(key);
        if (!ACTIVE.has(r.state)) {
          if (had) {
            this.tasks.delete(key);
            this.dirty = true;
          }
          continue;
        }
        const task = activeTaskOf(r);
        if (had && sameTask(had.task, task)) continue;
        this.tasks.set(key, { job: Number(r.job_id), task });
        this.dirty = true;
      }
      this.watermark = next;
      if (this.dirty) {
        this.list = [...this.tasks.values()].sort((a, b) => a.job - b.job || a.task.index - b.task.index).map((e) => e.task);
        this.dirty = false;
      }
      return this.list;
    } catch (e) {
      this.reset();
      throw e;
    }
  }
}
