/**
 * The borrowers on lent GPUs, and what their GPU-time was worth: an unlimited backlog of
 * preemptible one-GPU training jobs, and optionally one deadline batch (an array of many small
 * tasks) that takes lent GPUs first.
 *
 * Training: every start on a GPU (new or resumed) costs `restartSeconds` with no progress; a
 * checkpoint is saved every `checkpointSeconds` of training (taken in the background: it costs
 * no GPU-time; only the eviction checkpoint below does). A planned eviction takes
 * `evictSeconds` to checkpoint (GPU-time that counts as lent but not useful), then frees the
 * GPU; an immediate reclaim frees it at once and loses the work since the last checkpoint.
 *
 * Batch: tasks of `taskSeconds` each, no checkpoints (a task is small); released at
 * `releaseAt`, it fills lent GPUs first: a GPU lent while tasks remain runs them back to back,
 * and a training job yields its GPU to the batch at its next checkpoint (losing nothing) while
 * tasks remain unstarted. An eviction loses the task's partial work (the task goes back to the
 * array), except that a planned eviction lets a task finish if it can within the checkpoint
 * time. When no task is left to start, the GPU goes back to training (a restart).
 */

export interface BorrowerModel {
  readonly restartSeconds: number;
  readonly checkpointSeconds: number;
  readonly evictSeconds: number;
}

export interface BatchSpec {
  readonly tasks: number;
  readonly taskSeconds: number;
  /** Release and deadline, seconds from the run's start. */
  readonly releaseAt: number;
  readonly deadlineAt: number;
}

/** GPU-seconds of borrowers' time by what it bought, clipped to the scored period. */
export interface BorrowerLedger {
  /** Training work kept (net of lost work). */
  trainingUseful: number;
  /** Restarts (no progress). */
  restart: number;
  /** Work done since the last checkpoint and lost to an immediate reclaim (or a batch task cut short). */
  lost: number;
  /** Eviction checkpoints (and the notice time after a batch task finished within it). */
  checkpoint: number;
  /** Batch tasks completed. */
  batchUseful: number;
  /** Work in flight when the run ends (a batch task's progress, not yet kept or lost). */
  inFlight: number;
  evictionsPlanned: number;
  evictionsImmediate: number;
}

export function emptyLedger(): BorrowerLedger {
  return { trainingUseful: 0, restart: 0, lost: 0, checkpoint: 0, batchUseful: 0, inFlight: 0, evictionsPlanned: 0, evictionsImmediate: 0 };
}

/** The state of a deadline batch during a run. */
export interface BatchState {
  readonly spec: BatchSpec;
  /** Tasks not started yet (released or not). */
  unstarted: number;
  done: number;
  /** When the last task completed (s), once all have. */
  finishedAt: number | null;
  lostSeconds: number;
}

export function newBatch(spec: BatchSpec): BatchState {
  return { spec, unstarted: spec.tasks, done: 0, finishedAt: null, lostSeconds: 0 };
}

/**
 * Per lent GPU, the borrower on it (struct of arrays, indexed by GPU). `kind` 0: none, 1:
 * training, 2: batch. Training: `since` (this stint's start) and `workStart` (since + restart).
 * Batch: `workStart` is the current task's start.
 */
export class Borrowers {
  readonly kind: Uint8Array;
  readonly since: Float64Array;
  readonly workStart: Float64Array;
  readonly ledger: BorrowerLedger = emptyLedger();

  constructor(
    gpus: number,
    readonly model: BorrowerModel,
    /** The scored period [from, to): only what falls in it is counted. */
    private readonly scoreFrom: number,
    private readonly scoreTo: number,
    readonly batch: BatchState | null,
  ) {
    this.kind = new Uint8Array(gpus);
    this.since = new Float64Array(gpus);
    this.workStart = new Float64Array(gpus);
  }

  /** The length of [from, to) inside the scored period. */
  private scored(from: number, to: number): number {
    return Math.max(0, Math.min(to, this.scoreTo) - Math.max(from, this.scoreFrom));
  }

  private counts(t: number): boolean {
    return t >= this.scoreFrom && t < this.scoreTo;
  }

  private batchWants(t: number): boolean {
    return this.batch !== null && this.batch.unstarted > 0 && t >= this.batch.spec.releaseAt;
  }

  /** A borrower takes GPU `g` at time t: a batch task if one is waiting, else a training job. */
  start(g: number, t: number): void {
    if (this.batchWants(t)) {
      (this.batch as BatchState).unstarted--;
      this.kind[g] = 2;
      this.since[g] = t;
      this.workStart[g] = t;
    } else {
      this.kind[g] = 1;
      this.since[g] = t;
      this.workStart[g] = t + this.model.restartSeconds;
    }
  }

  /** Work (s) that an immediate stop at t would lose: the checkpoint-aware victim order sorts on it. */
  workAtRisk(g: number, t: number): number {
    const start = this.workStart[g] as number;
    if (t <= start) return 0;
    return this.kind[g] === 2 ? t - start : (t - start) % this.model.checkpointSeconds;
  }

  /** Ends training on g at t: restart and kept work counted, plus `lost` lost. */
  private endTraining(g: number, t: number, lose: boolean): void {
    const since = this.since[g] as number;
    const work = this.workStart[g] as number;
    const L = this.ledger;
    L.restart += this.scored(since, Math.min(t, work));
    if (t > work) {
      const kept = lose ? work + Math.floor((t - work) / this.model.checkpointSeconds) * this.model.checkpointSeconds : t;
      L.trainingUseful += this.scored(work, kept);
      L.lost += this.scored(kept, t);
    }
  }

  /** Completes batch tasks on g up to time t (tasks end back to back); switches g to training when none is left. */
  private advanceBatch(g: number, t: number): void {
    const batch = this.batch as BatchState;
    const d = batch.spec.taskSeconds;
    let start = this.workStart[g] as number;
    while (start + d <= t) {
      const end = start + d;
      batch.done++;
      this.ledger.batchUseful += this.scored(start, end);
      if (batch.done === batch.spec.tasks) batch.finishedAt = end;
      if (batch.unstarted > 0) {
        batch.unstarted--;
        start = end;
      } else {
        // Nothing left to start: back to training from the end of the last task.
        this.kind[g] = 1;
        this.since[g] = end;
        this.workStart[g] = end + this.model.restartSeconds;
        return;
      }
    }
    this.workStart[g] = start;
  }

  /**
   * Brings g's borrower up to time t: batch tasks completed; a training job that passed a
   * checkpoint while batch tasks wait yields to the batch at that checkpoint (or now, if it is
   * still restarting).
   */
  advance(g: number, t: number, intervalStart: number): void {
    if (this.kind[g] === 2) return this.advanceBatch(g, t);
    if (this.kind[g] !== 1 || !this.batchWants(t)) return;
    const work = this.workStart[g] as number;
    let at: number | null = null;
    if (t < work) at = Math.max(intervalStart, this.since[g] as number, (this.batch as BatchState).spec.releaseAt);
    else {
      const lastCheckpoint = work + Math.floor((t - work) / this.model.checkpointSeconds) * this.model.checkpointSeconds;
      if (lastCheckpoint > work && lastCheckpoint >= intervalStart && lastCheckpoint >= (this.batch as BatchState).spec.releaseAt) at = lastCheckpoint;
    }
    if (at === null) return;
    this.endTraining(g, at, false);
    (this.batch as BatchState).unstarted--;
    this.kind[g] = 2;
    this.since[g] = at;
    this.workStart[g] = at;
    this.advanceBatch(g, t);
  }

  /** Immediate reclaim of g at t: the work since the last checkpoint (or the batch task's progress) is lost. */
  reclaim(g: number, t: number): void {
    const L = this.ledger;
    if (this.counts(t)) L.evictionsImmediate++;
    if (this.kind[g] === 2) {
      const batch = this.batch as BatchState;
      const lost = t - (this.workStart[g] as number);
      L.lost += this.scored(this.workStart[g] as number, t);
      batch.lostSeconds += lost;
      batch.unstarted++;
    } else this.endTraining(g, t, true);
    this.kind[g] = 0;
  }

  /** Planned eviction of g at t: a checkpoint of `evictSeconds`, then the GPU is free (at t + evictSeconds). */
  evict(g: number, t: number): void {
    const L = this.ledger;
    const free = t + this.model.evictSeconds;
    if (this.counts(t)) L.evictionsPlanned++;
    if (this.kind[g] === 2) {
      const batch = this.batch as BatchState;
      const end = (this.workStart[g] as number) + batch.spec.taskSeconds;
      if (end <= free) {
        // The task finishes within the notice.
        batch.done++;
        L.batchUseful += this.scored(this.workStart[g] as number, end);
        if (batch.done === batch.spec.tasks) batch.finishedAt = end;
        L.checkpoint += this.scored(end, free);
      } else {
        L.lost += this.scored(this.workStart[g] as number, t);
        batch.lostSeconds += t - (this.workStart[g] as number);
        batch.unstarted++;
        L.checkpoint += this.scored(t, free);
      }
    } else {
      this.endTraining(g, t, false);
      L.checkpoint += this.scored(t, free);
    }
    this.kind[g] = 0;
  }

  /** The run ends at t: running borrowers keep their work (they would go on). */
  close(g: number, t: number): void {
    if (this.kind[g] === 1) this.endTraining(g, t, false);
    else if (this.kind[g] === 2) this.ledger.inFlight += this.scored(this.workStart[g] as number, t);
    this.kind[g] = 0;
  }
}
