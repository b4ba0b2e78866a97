/**
 * The job list: filtered and paged by the server (newest first, 50 a page), so it stays fast
 * with any number of jobs; live job events update the rows shown and add new jobs at the top of
 * the first page.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { api, qs } from '../api.ts';
import { on, timing } from '../live.ts';
import { go } from '../route.ts';
import { ago } from '../format.ts';
import { describeCounts } from '../../../src/api/arrayWords.ts';
import { JOB_KINDS, JOB_STATES, type Job, type JobArray, type QueueInfo, type Session } from '../types.ts';

const PAGE = 50;

declare global {
  interface Window {
    /** Figures for bench/web.ts: the first render of the list and the last live update applied. */
    __tide?: { firstRenderMs?: number; jobsRenderedAt?: number; gridRenderedAt?: number; lastUpdateMs?: number; lastGridUpdateMs?: number; updates: number };
  }
}
window.__tide ??= { updates: 0 };

/** The job list's address with some of its parameters changed (null: left out). */
function linkTo(params: URLSearchParams, changes: Record<string, string | null>): string {
  const p = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) p.delete(k);
    else p.set(k, v);
  }
  return `#/jobs?${p.toString()}`;
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`state s-${state}`}>{state}</span>;
}

export function JobsView({ session, params }: { session: Session; params: URLSearchParams }) {
  const filters = { state: params.get('state') ?? '', queue: params.get('queue') ?? '', tenant: params.get('tenant') ?? '', kind: params.get('kind') ?? '', array: params.get('array') ?? '' };
  const before = params.get('before') ?? '';
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [queues, setQueues] = useState<string[]>([]);
  const [tenants, setTenants] = useState<string[]>([]);
  const [array, setArray] = useState<JobArray | null>(null);
  const pendingUpdate = useRef(0);
  const key = JSON.stringify([filters, before]);

  // The filters' choices are read once the list is shown (the list first: it is what one came for).
  const listed = jobs !== null;
  useEffect(() => {
    if (!listed) return;
    void api<{ queues: QueueInfo[] }>('/v1/queues').then((r) => setQueues(r.queues.map((q) => q.name)), () => {});
    if (session.role === 'admin') void api<{ tenants: string[] }>('/v1/tenants').then((r) => setTenants(r.tenants), () => {});
  }, [session.role, listed]);

  // Listing an array's elements: the array itself, counted by state, read again every few seconds.
  useEffect(() => {
    setArray(null);
    if (!filters.array || !listed) return;
    const read = (): void => void api<{ array: JobArray }>(`/v1/arrays/${encodeURIComponent(filters.array)}`).then((r) => setArray(r.array), () => {});
    read();
    const timer = setInterval(read, 3000);
    return () => clearInterval(timer);
  }, [filters.array, listed]);

  useEffect(() => {
    const ctl = new AbortController();
    const started = performance.now();
    const load = (): void => {
      api<{ jobs: Job[]; next: string | null }>(`/v1/jobs${qs({ ...filters, order: 'desc', limit: PAGE, before })}`, { signal: ctl.signal })
        .then((r) => {
          setJobs(r.jobs);
          setNext(r.next);
          setError(null);
          if (window.__tide && window.__tide.firstRenderMs === undefined) window.__tide.firstRenderMs = performance.now() - started;
        })
        .catch((e: Error) => {
          if (!ctl.signal.aborted) setError(e.message);
        });
    };
    load();
    const offJob = on('job', ({ job }) => {
      const matches = (!filters.state || filters.state.split(',').includes(job.state)) && (!filters.queue || job.queue === filters.queue) && (!filters.tenant || job.tenant === filters.tenant) && (!filters.kind || job.kind === filters.kind) && (!filters.array || job.arrayId === filters.array);
      pendingUpdate.current = timing.receivedAt;
      setJobs((rows) => {
        if (!rows) return rows;
        const at = rows.findIndex((j) => j.id === job.id);
        if (at >= 0) {
          const copy = rows.slice();
          copy[at] = job;
          return copy;
        }
        // A new job: at the top of the first page, when it passes the filters.
        if (!before && matches && (rows.length === 0 || Number(job.id) > Number(rows[0]?.id))) return [job, ...rows].slice(0, PAGE);
        return rows;
      });
    });
    const offRe = on('reconnected', load);
    return () => {
      ctl.abort();
      offJob();
      offRe();
    };
    // key stands for the filters (a new object each render)
  }, [key]);

  useLayoutEffect(() => {
    // When the first rows were put in the page (ms since navigation), for bench/web.ts.
    if (jobs && jobs.length && window.__tide && window.__tide.jobsRenderedAt === undefined) window.__tide.jobsRenderedAt = performance.now();
    if (pendingUpdate.current && window.__tide) {
      window.__tide.lastUpdateMs = performance.now() - pendingUpdate.current;
      window.__tide.updates++;
      pendingUpdate.current = 0;
    }
  }, [jobs]);

  const setFilter = (k: string, v: string): void => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    p.delete('before');
    go(`#/jobs?${p.toString()}`);
  };

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      {filters.array && (
        <p data-testid="array-summary">
          Array {filters.array}{array ? `: ${array.name}, ${array.size} jobs — ${describeCounts(array.counts)}` : ''} <a href={linkTo(params, { array: null, before: null })}>All jobs</a>
        </p>
      )}
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter jobs">
        <label>State
          <select value={filters.state} onChange={(e) => setFilter('state', e.target.value)}>
            <option value="">any</option>
            {JOB_STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>Queue
          <select value={filters.queue} onChange={(e) => setFilter('queue', e.target.value)}>
            <option value="">any</option>
            {queues.map((q) => <option key={q} value={q}>{q}</option>)}
          </select>
        </label>
        {session.role === 'admin' && (
          <label>Tenant
            <select value={filters.tenant} onChange={(e) => setFilter('tenant', e.target.value)}>
              <option value="">any</option>
              {tenants.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          </label>
        )}
        <label>Kind
          <select value={filters.kind} onChange={(e) => setFilter('kind', e.target.value)}>
            <option value="">any</option>
            {JOB_KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
        </label>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {jobs === null ? <p>Loading…</p> : jobs.length === 0 ? <p data-testid="no-jobs">No jobs{Object.values(filters).some(Boolean) ? ' match these filters' : ' yet'}.</p> : (
        <div className="table-wrap">
          <table className="jobs" data-testid="jobs-table">
            <thead>
              <tr><th scope="col">Id</th><th scope="col">Name</th>{session.role === 'admin' && <th scope="col">Tenant</th>}<th scope="col">Queue</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">GPUs</th><th scope="col" className="wide">Reason</th><th scope="col">Submitted</th></tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id} data-job={j.id}>
                  <td><a href={`#/jobs/${j.id}`}>{j.id}</a></td>
                  <td>{j.name}</td>
                  {session.role === 'admin' && <td>{j.tenant}</td>}
                  <td>{j.queue}</td>
                  <td>{j.kind}</td>
                  <td><StateBadge state={j.state} /></td>
                  <td>{j.gpus}</td>
                  <td className="wide">{j.reason ?? ''}</td>
                  <td>{ago(j.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Pages">
        {before && <a href={linkTo(params, { before: null })}>Newest</a>}
        {next && <a href={linkTo(params, { before: next })}>Older jobs</a>}
      </nav>
    </section>
  );
}
