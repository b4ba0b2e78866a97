/**
 * The open jobs (pending, admitted, running, preempted) kept in memory between scheduling
 * cycles and brought up to date from the jobs changed since the last read, instead of reading
 * (and converting) every open job each cycle: with 100,000 pending jobs that read was most of a
 * cycle, and on SQLite it held the only connection meanwhile.
 *
 * Changes are found by the jobs' `version` column (migration 006): a watermark is read first,
 * then every job with a version at or above the previous watermark. On SQLite the version is a
 * counter (one writer) and the watermark MAX(version) + 1; on PostgreSQL it is the writing
 * transaction's id and the watermark the snapshot's xmin, below which every transaction has
 * ended, so a write committed late by another server is still read. A job read twice is
 * harmless (the newer row replaces the older), and a row read again at the version it had keeps
 * its job object: on PostgreSQL any transaction open at a read holds the watermark back, so on a
 * busy server the same rows come back cycle after cycle, and new objects for them were changes
 * to the scheduler (1,778 jobs a cycle sent to its thread in a steady state at 100,000 pending).
 */
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import type { JobSpec } from '../api/spec.ts';
import type { Job } from '../api/types.ts';
import { JOB_COLS_LITE, OPEN_JOBS_IN, readVersionWatermark } from './queries.ts';
import { jobFromRow, type JobRow } from './rows.ts';
import { ChangeLog, hasRun, registerOpenJobs } from './openJobIndex.ts';
import type { SqlDb } from './sqlDb.ts';
import { InTurn } from '../util/inTurn.ts';

const OPEN = new Set(['pending', 'admitted', 'running', 'preempted']);
/** The job columns without the spec (specs never change: kept with the job, read once). */
const LITE = JOB_COLS_LITE;

/** Rows a catch-up page reads (catchUp): about 40 ms of SQLite's connection and the thread. */
const CATCH_UP_PAGE = 2000;

export const OPEN_JOBS_Q = {
  all: `SELECT ${LITE}, version FROM jobs WHERE state IN ${OPEN_JOBS_IN} ORDER BY id`,
  // No ORDER BY: with one, SQLite walked every job in id order instead of the version index (a
  // scan of 100,000 rows each cycle to find none changed); the few rows are sorted here.
  changed: `SELECT ${LITE}, version FROM jobs WHERE version >= $1`,
  /** The jobs changed at versions in [$1, $2): a gap between version ranges the mirror took in (tookReasons). */
  changedIn: `SELECT ${LITE}, version FROM jobs WHERE version >= $1 AND version < $2`,
  /**
   * SQLite: a page of the jobs changed at versions in [$1, $2), after (version $1, id $3), in
   * the version index's order (its entries end with the row id): catchUp's pages.
   */
  changedPage: `SELECT ${LITE}, version FROM jobs WHERE version >= $1 AND version < $2 AND (version > $1 OR id > $3) ORDER BY version, id LIMIT ${CATCH_UP_PAGE}`,
  specs: (n: number): string => `SELECT id, spec FROM jobs WHERE id IN (${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ')})`,
} as const;

/** A pending reason written over an open job the mirror held at version `seen` (tookReasons). */
export interface ReasonTaken {
  readonly id: string;
  readonly seen: number;
  readonly version: number;
  readonly reason: string;
  readonly estimatedStart: number | null;
}

/** A job inserted by this server, and the version its row was written at. */
export interface InsertedJob {
  readonly job: Job;
  readonly version: number;
}

/** Versions [from, to). */
export interface VersionRange {
  readonly from: number;
  readonly to: number;
}

/** Specs of closed jobs kept (OpenJobsMirror.specOf): more than a cycle's worth of finished array tasks. */
const CLOSED_KEPT = 20_000;
/** Taken version ranges kept at most. */
const MAX_TAKEN = 1024;
/** Taken ranges a read skips at most (each gap between two is a statement). */
const MAX_GAPS = 16;

type Versioned = JobRow & { version: number | string };
/** What a read changed: jobs new or changed, and ids no longer open. */
interface Change {
  readonly upserts: Job[];
  readonly removed: string[];
}

export class OpenJobsMirror {
  /** The open jobs by id (the index openJobIndex.ts hands out), and those that run or ran: kept as rows change. */
  private readonly jobs = new Map<string, Job>();
  private readonly started = new Map<string, Job>();
  /** The version of the row each open job was made from. */
  private readonly versions = new Map<string, number>();
  private watermark: number | null = null;
  /** Ids in the map are in ascending order (false after a late-committed lower id arrives). */
  private ordered = true;
  private maxId = 0;
  private list: Job[] = [];
  private dirty = true;
  /** Every read and write of the mirror after those begun before it: an older delta applied after a newer one would bring back old rows. */
  private readonly turns = new InTurn();
  /** Version ranges [from, to) whose every row the mirror holds as written (tookReasons): not read again. */
  private taken: { from: number; to: number; rows: number }[] = [];
  /** Jobs this server inserted since the last read (tookInserts), each transaction's together. */
  private inserted: (readonly InsertedJob[])[] = [];
  /**
   * The specs of the last CLOSED_KEPT jobs seen to close, oldest first: the finished runs a cycle
   * reads for the scheduler's history are those, and their specs need not be read again.
   */
  private readonly closed = new Map<string, JobSpec>();
  /**
   * Specs of jobs this server inserted other than by submission (an array's elements a bind took
   * off its waiting rest), so that the next read takes them in without reading their specs: a
   * burst's binds made thousands of them. Kept until that read.
   */
  private readonly toldSpecs = new Map<string, JobSpec>();
  /** What each refresh changed, for readers of an older list (openJobIndex.ts openJobChanges). */
  private readonly log = new ChangeLog();

  /** The open jobs, oldest first, as of now; reads only what changed since the last call. */
  refresh(db: SqlDb): Promise<readonly Job[]> {
    return this.turns.run(() => this.read(db));
  }

  /** Takes the specs of jobs this server inserted other than by submission (toldSpecs). */
  tellSpecs(specs: ReadonlyMap<string, JobSpec>): void {
    // Bounded: a spec told of a job another server's mirror took first is never asked for here.
    if (this.toldSpecs.size > 100_000) this.toldSpecs.clear();
    for (const [id, spec] of specs) this.toldSpecs.set(id, spec);
  }

  /** The spec of job `id`, if the mirror holds it open or saw it close lately (specs never change). */
  specOf(id: string): JobSpec | undefined {
    return this.jobs.get(id)?.spec ?? this.closed.get(id);
  }

  /** The version of the row this mirror holds job `id` from (undefined: it holds no such job). */
  versionOf(id: string): number | undefined {
    return this.versions.get(id);
  }

  /**
   * Pending reasons this server wrote (store/queries.ts setPlanReasons) over jobs held at
   * version `seen`, now at `version`: the job objects take them in place and keep their
   * identity, and `range` (the versions the write gave, every row of them in `written`) is not
   * read again. A plan that gave 100,000 waiting jobs reasons had every one of them read, made
   * anew and sent to the scheduler thread as a change in the next cycle (seconds of the request
   * thread on SQLite). The reasons matter only to the scheduler's own check of what a job shows
   * (server/scheduling/changedReasons.ts). A job changed since `seen` is left as it is: a refresh
   * reads it.
   */
  tookReasons(written: readonly ReasonTaken[], range: VersionRange | null): Promise<void> {
    return this.turns.run(() => {
      for (const w of written) {
        const job = this.jobs.get(w.id);
        if (!job || this.versions.get(w.id) !== w.seen) continue;
        const shown = job as { reason: string | null; estimatedStart: number | null };
        shown.reason = w.reason;
        shown.estimatedStart = w.estimatedStart;
        this.versions.set(w.id, w.version);
      }
      if (range && this.watermark !== null && range.to > this.watermark) this.take(range, written.length);
    });
  }

  /**
   * Jobs this server inserted and committed (SQLite: store/sqlStore.ts submitBatch), with the
   * versions their rows were written at: taken in as a refresh would make them, and `range`
   * (every row in it one of them) not read again. A burst of 100,000 array elements was read
   * back, row by row and spec by spec, by the next snapshots: 2-5 s of the request thread, in
   * the cycle that took them in. They join the list at the next read, before the rows it reads
   * (a cancel since is one of those): making the list of 100,000 open jobs anew for each
   * submission's transaction had halved submissions/s. Not in turn with reads (a submission
   * does not wait for a snapshot's read): a read begun before reads these rows itself, and the
   * next passes over them as held.
   */
  tookInserts(made: readonly InsertedJob[], range: VersionRange | null): void {
    if (this.watermark === null) return; // the first read takes every open job
    this.inserted.push(made);
    if (range && range.to > this.watermark) this.take(range, made.length);
  }

  /** Takes in the jobs handed over since the last read (before the first, which reads every row, drops them); one the mirror has read past (it holds the row, or saw it leave) is left as the mirror has it. */
  private takeInserted(change: Change): void {
    const watermark = this.watermark;
    if (watermark !== null) for (const made of this.inserted) for (const { job, version } of made) if (version >= watermark && !this.versions.has(job.id)) this.put(job, version, change);
    this.inserted = [];
  }

  /** The rows changed since the watermark, but for the version ranges taken in: one indexed read per gap between them. */
  private async readChanged(db: SqlDb): Promise<Versioned[]> {
    const parts: Versioned[][] = [];
    for (const [low, high] of this.gaps(Infinity)) parts.push(await (high === Infinity ? db.all<Versioned>(OPEN_JOBS_Q.changed, [low]) : db.all<Versioned>(OPEN_JOBS_Q.changedIn, [low, high])));
    return parts.length === 1 ? (parts[0] as Versioned[]) : parts.flat();
  }

  /** Adds a taken range of `rows` rows, joined to one it touches; past MAX_TAKEN ranges the oldest is read again. */
  private take(range: VersionRange, rows: number): void {
    const last = this.taken[this.taken.length - 1];
    if (last && last.to === range.from) {
      last.to = range.to;
      last.rows += rows;
    } else this.taken.push({ from: range.from, to: range.to, rows });
    if (this.taken.length > MAX_TAKEN) this.taken.shift();
  }

  /** Forget everything: the next refresh reads every open job (after a failed read, or for tests). */
  reset(): void {
    this.taken = [];
    this.inserted = [];
    this.jobs.clear();
    this.started.clear();
    this.versions.clear();
    this.watermark = null;
    this.ordered = true;
    this.maxId = 0;
    this.dirty = true;
  }

  /**
   * SQLite, outside a transaction: brings the mirror up to the jobs changed until now, in pages
   * of CATCH_UP_PAGE rows with the thread and the connection let go between them, so that the
   * snapshot's transaction after it reads only what changed meanwhile. In a burst of array
   * tasks 30,000-50,000 jobs change between cycles; read in the snapshot's transaction they held
   * SQLite's one connection and the request thread 1-2.6 s, and every heartbeat and read waited.
   */
  catchUp(db: SqlDb): Promise<void> {
    return this.turns.run(() => this.readInPages(db));
  }

  private async readInPages(db: SqlDb): Promise<void> {
    if (this.watermark === null) return; // the first read takes every open job at once
    try {
      const next = await readVersionWatermark(db, 'jobs');
      const change: Change = { upserts: [], removed: [] };
      this.takeInserted(change);
      for (const [low, high] of this.gaps(next)) {
        let version = low;
        let after = 0;
        for (;;) {
          const rows = await db.all<Versioned>(OPEN_JOBS_Q.changedPage, [version, high, after]);
          await this.absorb(db, rows, change);
          const last = rows[rows.length - 1];
          if (!last || rows.length < CATCH_UP_PAGE) break;
          version = Number(last.version);
          after = Number(last.id);
          await turnOfTheLoop();
        }
      }
      this.watermark = next;
      this.publish(false, change);
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  /** The version ranges [from, to) to read from the watermark up to `end`: all but the ranges taken in (tookReasons). */
  private gaps(end: number): [number, number][] {
    let from = this.watermark ?? 0;
    this.taken = this.taken.filter((r) => r.to > from).sort((a, b) => a.from - b.from);
    // Each gap is a statement: past MAX_GAPS, only the ranges of the most rows are skipped (the
    // others' rows are read again, harmlessly). Submissions one by one, each its own range on
    // PostgreSQL (a transaction id), made a read of hundreds of statements.
    const skipped = this.taken.length <= MAX_GAPS ? this.taken : [...this.taken].sort((a, b) => b.rows - a.rows).slice(0, MAX_GAPS).sort((a, b) => a.from - b.from);
    const out: [number, number][] = [];
    for (const r of skipped) {
      if (r.from > from) out.push([from, Math.min(r.from, end)]);
      from = Math.max(from, r.to);
    }
    if (from < end) out.push([from, end]);
    return out.filter(([a, b]) => a < b);
  }

  private async read(db: SqlDb): Promise<readonly Job[]> {
    try {
      const next = await readVersionWatermark(db, 'jobs');
      const full = this.watermark === null;
      const rows = full ? await db.all<Versioned>(OPEN_JOBS_Q.all) : await this.readChanged(db);
      if (full) this.taken = [];
      const change: Change = { upserts: [], removed: [] };
      // A full read (no watermark yet) drops them: it reads every row itself.
      this.takeInserted(change);
      await this.absorb(db, rows, change);
      this.watermark = next;
      return this.publish(full, change);
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  /** Takes rows into the mirror (a new job's spec is read with it), noting what changed. */
  private async absorb(db: SqlDb, unsorted: readonly Versioned[], change: Change): Promise<void> {
    const rows = [...unsorted].sort((a, b) => Number(a.id) - Number(b.id));
    const specs = new Map<number, JobSpec>();
    for (const r of rows) {
      const told = this.toldSpecs.get(String(r.id));
      if (!told) continue;
      specs.set(Number(r.id), told);
      this.toldSpecs.delete(String(r.id));
    }
    const missing = rows.filter((r) => OPEN.has(r.state) && !this.jobs.has(String(r.id)) && !specs.has(Number(r.id))).map((r) => Number(r.id));
    for (let i = 0; i < missing.length; i += 500) {
      const ids = missing.slice(i, i + 500);
      for (const r of await db.all<{ id: number; spec: string }>(OPEN_JOBS_Q.specs(ids.length), ids)) specs.set(Number(r.id), JSON.parse(r.spec) as JobSpec);
    }
    for (const r of rows) {
      const id = Number(r.id);
      const had = this.jobs.get(String(r.id));
      if (!OPEN.has(r.state)) {
        if (had) {
          this.keepClosed(had);
          this.jobs.delete(had.id);
          this.started.delete(had.id);
          this.versions.delete(had.id);
          change.removed.push(had.id);
          this.dirty = true;
        }
        continue;
      }
      const version = Number(r.version);
      if (had && this.versions.get(had.id) === version) continue; // read again, unchanged
      const spec = had?.spec ?? specs.get(id);
      if (!spec) continue; // deleted between the two reads
      this.put(jobFromRow(r, spec), version, change);
    }
  }

  private keepClosed(job: Job): void {
    this.closed.set(job.id, job.spec);
    if (this.closed.size > CLOSED_KEPT) this.closed.delete(this.closed.keys().next().value as string);
  }

  /** Holds `job` (open) as of its row's `version`, noting the change. */
  private put(job: Job, version: number, change: Change): void {
    const had = this.jobs.has(job.id);
    this.jobs.set(job.id, job);
    this.versions.set(job.id, version);
    change.upserts.push(job);
    if (hasRun(job)) this.started.set(job.id, job);
    else this.started.delete(job.id);
    this.dirty = true;
    if (!had) {
      const id = Number(job.id);
      if (id < this.maxId) this.ordered = false;
      this.maxId = Math.max(this.maxId, id);
    }
  }

  /** Makes the list and index readers see (only when something changed). */
  private publish(full: boolean, change: Change): readonly Job[] {
    if (!this.dirty) return this.list;
    this.list = [...this.jobs.values()];
    if (!this.ordered) {
      this.list.sort((a, b) => Number(a.id) - Number(b.id));
      this.jobs.clear();
      for (const j of this.list) this.jobs.set(j.id, j);
      this.ordered = true;
    }
    const started = [...this.started.values()].sort((a, b) => Number(a.id) - Number(b.id));
    const seq = full ? this.log.restart() : this.log.add(change);
    registerOpenJobs(this.list, this.jobs, started, { log: this.log, seq });
    this.dirty = false;
    return this.list;
  }
}
