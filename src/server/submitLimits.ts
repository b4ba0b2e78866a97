/**
 * A limit on each tenant's open jobs (Slurm's MaxSubmitJobs): a submission that would take the
 * tenant past it is refused whole with a 429 that names the tenant, its limit and its count, and
 * nothing the tenant or anyone else submitted before is touched. Without it one tenant's script
 * could add 10,000 jobs a request without end, and every server's open-jobs mirror (which holds
 * every open job in memory) and every cycle would grow until everyone's work stopped.
 *
 * The count is the store's (`countOpenJobs`), read at most once a second per tenant, plus the
 * jobs this server has accepted since that read. Jobs that end in the meantime are counted until
 * the next read, and another server's submissions from the next read on: the limit errs by at
 * most a second (and a read) of them, and never lets this server's own submissions past it. A
 * tenant far below its limit (under 90 % of it) is not held for the next read, which goes on
 * beside its submissions: on PostgreSQL the count of 100,000 open jobs took 80-130 ms under
 * load, and every submission of the tenant waited for it once a second. A submission
 * refused after it was admitted (a lost race for its client key, a failed statement) is counted
 * until the next read too: the limit errs on the safe side.
 */
import { ApiError } from '../api/errors.ts';
import type { Store } from '../store/store.ts';

/** A tenant's open-job limit when neither its own `maxSubmitJobs` nor `limits.maxSubmitJobs` is set. */
export const DEFAULT_MAX_SUBMIT_JOBS = 250_000;
/** How long a tenant's count from the store is used (ms). */
const COUNT_TTL_MS = 1000;
/** From this share of its limit on, a tenant's submissions wait for a stale count to be read again. */
const NEAR_LIMIT = 0.9;

interface Count {
  /** The store's count, when it was read (Date.now), and this server's accepted jobs since. */
  base: number;
  at: number;
  accepted: number;
  /** A read under way: submissions meanwhile wait for it rather than read again. */
  reading: Promise<void> | null;
}

export class SubmitLimits {
  private readonly counts = new Map<string, Count>();

  constructor(
    private readonly store: Pick<Store, 'countOpenJobs'>,
    /** The tenant's limit (config.ts maxSubmitJobsOf). */
    private readonly limitOf: (tenant: string) => number,
  ) {}

  /**
   * Reads the tenant's count if it is older than a second, waiting for the read where the tenant
   * was never counted or is near its limit; call before `admit`.
   */
  async refresh(tenant: string): Promise<void> {
    let c = this.counts.get(tenant);
    if (c === undefined) {
      c = { base: 0, at: -Infinity, accepted: 0, reading: null };
      this.counts.set(tenant, c);
    }
    const t = Date.now();
    if (t - c.at < COUNT_TTL_MS && t >= c.at) return;
    const entry = c;
    entry.reading ??= (async () => {
      // Accepted during the read may be in the count already: counted twice until the next read (the safe side).
      const acceptedBefore = entry.accepted;
      try {
        entry.base = await this.store.countOpenJobs(tenant);
        entry.accepted -= acceptedBefore;
        entry.at = Date.now();
      } finally {
        entry.reading = null;
      }
    })();
    const near = entry.base + entry.accepted >= NEAR_LIMIT * this.limitOf(tenant);
    if (entry.at === -Infinity || near) await entry.reading;
    else entry.reading.catch(() => {}); // a failed read is tried again by the next submission
  }

  /**
   * Takes `jobs` more of the tenant's open jobs, or throws a 429 (`too_many_jobs`) when that
   * would pass its limit. Synchronous: called inside the submission's transaction, for a new
   * submission only (a retry of an accepted one gets its jobs back at any count).
   */
  admit(tenant: string, jobs: number): void {
    const limit = this.limitOf(tenant);
    const c = this.counts.get(tenant);
    const open = c === undefined ? 0 : c.base + c.accepted;
    if (open + jobs > limit) {
      throw new ApiError(
        'too_many_jobs',
        `tenant ${tenant} has ${open} open jobs and a limit of ${limit} (maxSubmitJobs): this submission of ${jobs} would pass it; submit again once some have ended`,
        [{ path: jobs > 1 ? 'array' : 'tenant', message: `${open} open + ${jobs} > ${limit}` }],
      );
    }
    if (c !== undefined) c.accepted += jobs;
  }
}
