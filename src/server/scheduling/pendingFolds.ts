/**
 * Folds the pending jobs the core cannot tell apart into one entry each (PendingJob.count), for a
 * scheduler that folds: adjacent in id order, of one tenant, queue, priority and submission time,
 * with the same core spec but for the id and the same progress — an array's elements. A cycle
 * then costs the core one entry per waiting array, not one per element (Slurm keeps a pending
 * array as one record), and the plan is unfolded: an entry's binds go to the jobs they name, its
 * reason to each job it did not bind.
 *
 * Unchanged entries are the same objects from cycle to cycle (the core's incremental path), and so
 * are the reasons spread from an unchanged reason.
 */
import type { PendingJob, PendingReason, SchedulePlan, SchedulerSnapshot } from '../../core/scheduling/scheduler.ts';
import { jobId, type JobId } from '../../core/scheduling/model.ts';

interface Entry {
  readonly entry: PendingJob;
  /** The jobs it stands for, in id order (the first is the entry's id). */
  readonly members: readonly PendingJob[];
}

/**
 * A pending job as the adapter makes it, with room for what folding learnt of it: whether it is
 * the same to the core as `foldPrev`, the job before it in the last list it was folded in. A walk
 * of 100,000 pending jobs then reads one field of each (a look at their specs each cycle was
 * 0.1 s of an array burst's cycles).
 */
export interface FoldablePending extends PendingJob {
  foldPrev: PendingJob | null;
  foldSame: boolean;
  /** The reason last spread to it from its entry's. */
  lastReason: PendingReason | undefined;
}

/** Codes that say "out of GPUs": tide gives `lower-priority` when jobs ranked before took them in the same pass. */
const NO_ROOM: ReadonlySet<string> = new Set(['lower-priority', 'waiting-for-resources']);

/** Whether reasons `a` and `b` tell the same kind of wait: the same code, or two for running out of GPUs, and the same job waited for. */
function sameKind(a: PendingReason, b: PendingReason): boolean {
  return a.blockedBy === b.blockedBy && (a.code === b.code || (NO_ROOM.has(a.code) && NO_ROOM.has(b.code)));
}

/** Whether two values are the same, object fields and array items compared in depth; `skip` leaves a top-level key out (the id). */
function sameValue(x: unknown, y: unknown, skip?: string): boolean {
  if (x === y) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  if (Array.isArray(x)) {
    if (!Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameValue(x[i], y[i])) return false;
    return true;
  }
  if (Array.isArray(y)) return false;
  const a = x as Record<string, unknown>;
  const b = y as Record<string, unknown>;
  let keys = 0;
  for (const k in a) {
    keys++;
    if (k !== skip && (!(k in b) || !sameValue(a[k], b[k]))) return false;
  }
  for (const _ in b) keys--;
  return keys === 0;
}

/** Whether `b` is the same job as `a` to the core: its spec but for the id, and its progress. */
function sameToCore(a: PendingJob, b: PendingJob): boolean {
  const x = a.spec;
  const y = b.spec;
  // What tells most jobs apart, read first.
  if (x.submitTime !== y.submitTime || x.priority !== y.priority || x.tenant !== y.tenant || x.queue !== y.queue || x.jobType !== y.jobType) return false;
  return sameValue(x, y, 'id') && sameValue(a.progress, b.progress);
}

export class PendingFolds {
  private lastIn: readonly PendingJob[] | null = null;
  private lastOut: readonly PendingJob[] = [];
  /** This cycle's entries of more than one job, by their id. */
  private folded = new Map<string, Entry>();
  /** Per first job of a run: its entry, reused while it stands for the same jobs. */
  private entryOf = new WeakMap<PendingJob, Entry>();
  /** Per reason the core gave an entry: the reasons of its jobs left waiting, while it has the same jobs and binds as many. */
  private spread = new WeakMap<PendingReason, { members: readonly PendingJob[]; from: number; out: readonly PendingReason[] }>();

  /** The snapshot with its pending jobs folded (the same snapshot when none fold). */
  fold(s: SchedulerSnapshot): SchedulerSnapshot {
    if (s.pending !== this.lastIn) {
      this.lastIn = s.pending;
      this.lastOut = this.foldList(s.pending);
    }
    return this.lastOut === s.pending ? s : { ...s, pending: this.lastOut };
  }

  /** The plan in terms of the jobs: each bind of an entry given to the job it names (JobBind.member), the entry's reason to each one not bound. */
  unfold<P extends SchedulePlan>(plan: P): P {
    if (this.folded.size === 0) return plan;
    /** Per entry, the members bound. */
    const bound = new Map<string, Set<number>>();
    let binds = plan.binds;
    if (binds.some((b) => this.folded.has(b.job))) {
      binds = binds.map((b) => {
        const e = this.folded.get(b.job);
        if (!e) return b;
        let taken = bound.get(b.job);
        if (!taken) bound.set(b.job, (taken = new Set()));
        const k = b.member ?? taken.size;
        const member = e.members[k];
        if (!member || taken.has(k)) throw new Error(`the scheduler bound job ${k} of entry ${b.job} (${e.members.length} jobs) twice or out of range`);
        taken.add(k);
        const { member: _, ...bind } = b;
        return { ...bind, job: member.spec.id };
      });
    }
    let pending = plan.pending;
    // The reasons and the entries' spread reasons, then copied into one list of its size (100,000 pushes a cycle were a second of a run).
    const parts: (PendingReason | readonly PendingReason[])[] = [];
    let size = 0;
    const given = new Set<JobId>();
    for (const r of pending) {
      const e = this.folded.get(r.job);
      if (!e) {
        parts.push(r);
        size++;
        continue;
      }
      // One reason per entry (a stage that withholds one of its binds adds another: its jobs are then counted as not bound).
      if (given.has(r.job)) continue;
      given.add(r.job);
      const spread = this.spreadOf(r, e.members, bound.get(r.job));
      parts.push(spread);
      size += spread.length;
    }
    if (given.size > 0) {
      const out = new Array<PendingReason>(size);
      let k = 0;
      for (const part of parts) {
        if (!Array.isArray(part)) out[k++] = part as PendingReason;
        else for (const x of part as readonly PendingReason[]) out[k++] = x;
      }
      pending = out;
    }
    return binds === plan.binds && pending === plan.pending ? plan : { ...plan, binds, pending };
  }

  /**
   * The reasons of an entry's jobs left waiting, from the core's reason for the entry. The first
   * takes it, with its estimated start (the entry's next job's), unless it shows one in the same
   * words already. The others keep the reason they show while it tells the same kind of wait, and
   * get no estimate: so tide treats the jobs one by one deep in a queue (a fill passes over them;
   * they keep their last reason), and an entry made anew each time its first jobs start does not
   * rewrite 10,000 rows for other words.
   */
  private spreadOf(r: PendingReason, members: readonly PendingJob[], taken: ReadonlySet<number> | undefined): readonly PendingReason[] {
    // The members bound are its first ones, but for a bind whose placement failed after its pass chose it.
    const from = taken?.size ?? 0;
    if (taken && !isFirst(taken)) return this.spreadTo(r, members.filter((_, k) => !taken.has(k)), 0);
    const kept = this.spread.get(r);
    if (kept && kept.members === members && kept.from === from) return kept.out;
    const out = this.spreadTo(r, members, from);
    this.spread.set(r, { members, from, out });
    return out;
  }

  private spreadTo(r: PendingReason, members: readonly PendingJob[], from: number): PendingReason[] {
    let rest = r;
    if (r.estimatedStart !== undefined) {
      const { estimatedStart: _, ...without } = r;
      rest = without;
    }
    const out: PendingReason[] = [];
    for (let i = from; i < members.length; i++) {
      const m = members[i] as PendingJob & Partial<FoldablePending>;
      const id = m.spec.id;
      const want = i === from ? r : rest;
      const last = m.lastReason;
      const keep = last !== undefined && last.job === id && (i === from ? last.message === r.message && last.estimatedStart === r.estimatedStart && sameKind(last, r) : last.estimatedStart === undefined && sameKind(last, want));
      const x = keep ? (last as PendingReason) : id === want.job ? want : { ...want, job: id };
      if (m.foldPrev !== undefined) m.lastReason = x;
      out.push(x);
    }
    return out;
  }

  /** Whether `b`, right after `a` in id order, is the same job to the core (remembered on `b` when it can be); an entry of a count of its own (an array's waiting rest) folds with none. */
  private same(a: PendingJob, b: PendingJob): boolean {
    if ((a.count ?? 1) > 1 || (b.count ?? 1) > 1) return false;
    const f = b as Partial<FoldablePending>;
    if (f.foldPrev === a) return f.foldSame as boolean;
    const same = sameToCore(a, b);
    if (f.foldPrev !== undefined) {
      f.foldPrev = a;
      f.foldSame = same;
    }
    return same;
  }

  private foldList(list: readonly PendingJob[]): readonly PendingJob[] {
    this.folded = new Map();
    const out: PendingJob[] = [];
    let folds = false;
    for (let i = 0; i < list.length; ) {
      const first = list[i] as PendingJob;
      let j = i + 1;
      while (j < list.length && this.same(list[j - 1] as PendingJob, list[j] as PendingJob)) j++;
      if (j - i === 1) {
        out.push(first);
        i = j;
        continue;
      }
      folds = true;
      let e = this.entryOf.get(first);
      if (!e || !sameRun(e.members, list, i, j)) {
        e = { entry: { spec: first.spec, progress: first.progress, count: j - i }, members: list.slice(i, j) };
        this.entryOf.set(first, e);
      }
      this.folded.set(first.spec.id, e);
      out.push(e.entry);
      i = j;
    }
    return folds ? out : list;
  }
}

/** Whether the member numbers are 0, 1, … (the first ones, none missing). */
function isFirst(taken: ReadonlySet<number>): boolean {
  for (let k = 0; k < taken.size; k++) if (!taken.has(k)) return false;
  return true;
}

/** Whether `members` are list[from..to) (the same objects). */
function sameRun(members: readonly PendingJob[], list: readonly PendingJob[], from: number, to: number): boolean {
  if (members.length !== to - from) return false;
  for (let k = 0; k < members.length; k++) if (members[k] !== list[from + k]) return false;
  return true;
}

/**
 * For a scheduler that does not fold: each pending entry of a count above 1 (an array's waiting
 * rest, one job in the store) goes to the core as that many jobs, `ID@u` for its u-th element;
 * the plan's binds of those go back to the entry's job, and its first element's reason is the
 * job's.
 */
export class PendingUnits {
  private readonly unitsOf = new WeakMap<PendingJob, readonly PendingJob[]>();
  private expanded = false;

  expand(s: SchedulerSnapshot): SchedulerSnapshot {
    this.expanded = s.pending.some((p) => (p.count ?? 1) > 1);
    if (!this.expanded) return s;
    const pending: PendingJob[] = [];
    for (const p of s.pending) {
      if ((p.count ?? 1) <= 1) {
        pending.push(p);
        continue;
      }
      let units = this.unitsOf.get(p);
      if (!units) {
        const { count, ...one } = p;
        units = Array.from({ length: count ?? 1 }, (_, u): PendingJob => ({ ...one, spec: { ...one.spec, id: jobId(`${one.spec.id}@${u}`) } }));
        this.unitsOf.set(p, units);
      }
      pending.push(...units);
    }
    return { ...s, pending };
  }

  collapse<P extends SchedulePlan>(plan: P): P {
    if (!this.expanded) return plan;
    const jobOf = (id: JobId): JobId => {
      const at = id.indexOf('@');
      return at < 0 ? id : jobId(id.slice(0, at));
    };
    const given = new Set<string>();
    const pending: PendingReason[] = [];
    for (const r of plan.pending) {
      const job = jobOf(r.job);
      if (job === r.job) pending.push(r);
      else if (!given.has(job)) {
        given.add(job);
        pending.push({ ...r, job });
      }
    }
    return { ...plan, binds: plan.binds.map((b) => (jobOf(b.job) === b.job ? b : { ...b, job: jobOf(b.job) })), pending };
  }
}
