/**
 * What a scheduler keeps about pending jobs from one cycle to the next, so that a cycle costs
 * O(changes) plus a few tight walks instead of rebuilding per-job state for a long queue.
 *
 * The snapshot lists pending jobs sorted by job id (compareJobIds) and may pass a job that has not changed as
 * the same object (scheduler.ts): one walk of pointer comparisons finds what arrived and what
 * left, and a job's record lives as long as its PendingJob object.
 */
import { compareJobIds } from './model.ts';
import type { PendingJob } from './scheduler.ts';

export interface PendingChanges<R> {
  readonly added: readonly R[];
  readonly removed: readonly R[];
}

export class PendingTable<R> {
  /** The pending list of the previous update (a copy: the caller may reuse its array). */
  private jobs: PendingJob[] = [];
  private recs: R[] = [];

  constructor(private readonly make: (p: PendingJob) => R) {}

  /** Records aligned with the last update's pending list. */
  get records(): readonly R[] {
    return this.recs;
  }

  /** Brings the records to `pending` (sorted by job id, compareJobIds); returns what arrived and what left. */
  update(pending: readonly PendingJob[]): PendingChanges<R> {
    const old = this.jobs;
    const n = pending.length;
    let i = 0;
    let j = 0;
    while (i < old.length && j < n && old[i] === pending[j]) {
      i++;
      j++;
    }
    if (i === old.length && j === n) return { added: [], removed: [] };
    const added: R[] = [];
    const removed: R[] = [];
    // Changes as (position in the old list, records removed there, jobs inserted there).
    const at: number[] = [];
    const cut: number[] = [];
    const put: PendingJob[][] = [];
    while (i < old.length || j < n) {
      const a = old[i];
      const b = pending[j];
      if (a !== undefined && a === b) {
        i++;
        j++;
      } else if (b === undefined || (a !== undefined && compareJobIds(a.spec.id, b.spec.id) <= 0)) {
        // Left (or, with the same id, replaced by a new object: its record goes and a new one comes).
        removed.push(this.recs[i] as R);
        const c = changeAt(at, cut, put, i);
        cut[c] = (cut[c] as number) + 1;
        i++;
        // Later changes at the next position belong to a new entry.
        at[c] = i;
      } else {
        (put[changeAt(at, cut, put, i)] as PendingJob[]).push(b);
        j++;
      }
    }
    // Apply from the end so earlier positions stay valid; `at` holds the position after the cut.
    if (at.length > 32) {
      // Rebuilt in one pass into arrays of their final size: the unchanged runs between changes copied as they are.
      let size = old.length;
      for (let c = 0; c < at.length; c++) size += (put[c] as PendingJob[]).length - (cut[c] as number);
      const jobs = new Array<PendingJob>(size);
      const recs = new Array<R>(size);
      let w = 0;
      let k = 0;
      for (let c = 0; c < at.length; c++) {
        const pos = (at[c] as number) - (cut[c] as number);
        for (; k < pos; k++, w++) {
          jobs[w] = old[k] as PendingJob;
          recs[w] = this.recs[k] as R;
        }
        for (const p of put[c] as PendingJob[]) {
          const r = this.make(p);
          jobs[w] = p;
          recs[w++] = r;
          added.push(r);
        }
        k += cut[c] as number;
      }
      for (; k < old.length; k++, w++) {
        jobs[w] = old[k] as PendingJob;
        recs[w] = this.recs[k] as R;
      }
      this.jobs = jobs;
      this.recs = recs;
    } else {
      const made: R[][] = put.map((ps) => ps.map((p) => this.make(p)));
      for (let c = at.length - 1; c >= 0; c--) {
        const pos = (at[c] as number) - (cut[c] as number);
        const ps = put[c] as PendingJob[];
        const rs = made[c] as R[];
        old.splice(pos, cut[c] as number, ...ps);
        this.recs.splice(pos, cut[c] as number, ...rs);
      }
      for (const rs of made) added.push(...rs);
    }
    return { added, removed };
  }
}

/** The entry of the change at old-list position `pos` (a new one unless the last change is there). */
function changeAt(at: number[], cut: number[], put: PendingJob[][], pos: number): number {
  if (at.length === 0 || at[at.length - 1] !== pos) {
    at.push(pos);
    cut.push(0);
    put.push([]);
  }
  return at.length - 1;
}

/**
 * Items kept sorted by a comparator that is a total order and whose keys do not change while
 * an item is listed: a cycle inserts its arrivals and removes what left instead of sorting.
 */
export class SortedList<T> {
  private list: T[] = [];

  constructor(private readonly cmp: (a: T, b: T) => number) {}

  get items(): readonly T[] {
    return this.list;
  }

  /** The list's order. */
  get compare(): (a: T, b: T) => number {
    return this.cmp;
  }

  /** Removes and returns the leading items that satisfy `test`. */
  takeWhile(test: (x: T) => boolean): T[] {
    let n = 0;
    while (n < this.list.length && test(this.list[n] as T)) n++;
    return n === 0 ? [] : this.list.splice(0, n);
  }

  /** Replaces the items with `sorted`, already in the comparator's order (after keys changed). */
  reset(sorted: T[]): void {
    this.list = sorted;
  }

  apply(added: readonly T[], removed: readonly T[]): void {
    if (added.length + removed.length > 64) {
      const gone = new Set(removed);
      const kept = gone.size === 0 ? this.list : this.list.filter((x) => !gone.has(x));
      this.list = mergeSorted(kept, [...added].sort(this.cmp), this.cmp);
      return;
    }
    for (const x of removed) {
      const i = this.lowerBound(x);
      if (this.list[i] !== x) throw new Error('SortedList: removed item not listed');
      this.list.splice(i, 1);
    }
    for (const x of added) this.list.splice(this.lowerBound(x), 0, x);
  }

  /** First position whose item is not before x. */
  private lowerBound(x: T): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cmp(this.list[mid] as T, x) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Merges two sorted arrays (stable: a's items first on ties). Each item of `b` finds its place in
 * `a` by a galloping search from the last one's, and the run of `a` before it is copied without
 * a comparison each: a cycle merges some thousands of arrivals into lists of 100,000 pending
 * jobs, and a comparison per listed job cost the scheduler thread ~100 ms a cycle in the
 * full-size benchmark; this is about log2(gap) comparisons per arrival instead.
 */
export function mergeSorted<T>(a: readonly T[], b: readonly T[], cmp: (x: T, y: T) => number): T[] {
  if (b.length === 0) return a.slice();
  if (a.length === 0) return b.slice();
  const out = new Array<T>(a.length + b.length);
  let i = 0;
  let k = 0;
  for (let j = 0; j < b.length; j++) {
    const y = b[j] as T;
    // The first position from i whose item goes after y (a's items equal to y stay before it).
    let lo = i;
    let hi = i;
    let step = 1;
    while (hi < a.length && cmp(y, a[hi] as T) >= 0) {
      lo = hi + 1;
      hi += step;
      step *= 2;
    }
    if (hi > a.length) hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(y, a[mid] as T) < 0) hi = mid;
      else lo = mid + 1;
    }
    while (i < lo) out[k++] = a[i++] as T;
    out[k++] = y;
  }
  while (i < a.length) out[k++] = a[i++] as T;
  return out;
}
