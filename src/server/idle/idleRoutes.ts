/**
 * `GET /v1/idle`: the jobs whose GPUs read idle, from the streaks the leader's idle monitor keeps
 * in the store (so any server answers). A tenant sees its own jobs only (naming another tenant is
 * a 403); an admin sees all, or `?tenant=NAME`. `?all=true` adds GPUs idle for less than the
 * configured time. Also `jobIdle`, the same view of one job for GET /v1/jobs/:id.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { answers, RESPONSES } from '../../api/apiSchemas.ts';
import type { Job, Task } from '../../api/types.ts';
import type { IdleGpuRecord, Store } from '../../store/store.ts';
import { openJobsById } from '../../store/openJobIndex.ts';
import { authenticate, requireRole } from '../auth.ts';
import { QueryReader } from '../query.ts';
import type { IdleConfig } from './idleConfig.ts';
import { jobIdleView, type HeldGpu, type JobIdleView } from './idleReport.ts';

const ACTIVE = new Set<Task['state']>(['assigned', 'running', 'stopping']);
/* A task's gpuMilli (Task and ActiveTask alike) is its total over its GPUs: each GPU holds gpuMilli / gpus.length. */

/** The job's idle view (GPUs idle past the threshold, or with `all` any idle GPU), or null. */
export async function jobIdle(store: Store, job: Job, tasks: readonly Task[], c: IdleConfig, all = false): Promise<JobIdleView | null> {
  if (job.state !== 'running' && job.state !== 'admitted') return null;
  const held: HeldGpu[] = tasks.filter((t) => ACTIVE.has(t.state) && t.node !== null && t.gpuMilli > 0).flatMap((t) => t.gpus.map((gpu) => ({ task: t.index, node: t.node ?? '', gpu, gpuMilli: t.gpuMilli / t.gpus.length })));
  if (held.length === 0) return null;
  return jobIdleView(job, held, await store.listIdleGpus({ jobId: job.id }), c, !all);
}

export function registerIdleRoutes(app: FastifyInstance, o: { store: Store; clock: () => number; config: IdleConfig }): void {
  const { store, clock, config } = o;
  app.get('/v1/idle', {
    schema: {
      description: `Jobs holding GPUs that read idle (utilization ≤ idle.utilizationPercent and memory in use ≤ idle.memoryPercent of the GPU's) for at least idle.afterMinutes, longest idle first; see docs/idle.md. all=true: also GPUs idle for less. A tenant sees its own jobs; admins all, or tenant=NAME.`,
      tags: ['cluster'],
      querystring: { type: 'object', properties: { all: { type: 'string', enum: ['true', 'false'] }, tenant: { type: 'string' } } },
      response: answers(200, RESPONSES.idle),
    },
  }, async (req) => {
    const p = await authenticate(store, req.headers.authorization, clock());
    requireRole(p, 'tenant', 'admin');
    const q = new QueryReader(req.query);
    const all = q.oneOf('all', ['true', 'false'] as const) === 'true';
    const named = q.string('tenant');
    q.done();
    let tenant: string | undefined;
    if (p.role === 'tenant') {
      if (named !== undefined && named !== p.tenant) throw new ApiError('forbidden', 'tenant: a tenant token reads its own tenant only');
      tenant = p.tenant ?? '';
    } else if (named !== undefined) {
      if (!(await store.listTenants()).includes(named)) throw new ApiError('not_found', `no tenant ${named}`);
      tenant = named;
    }
    const rows = await store.listIdleGpus(tenant !== undefined ? { tenant } : {});
    const jobs: JobIdleView[] = [];
    if (rows.length > 0) {
      const snap = await store.snapshot();
      const open = openJobsById(snap.openJobs);
      const held = new Map<string, HeldGpu[]>();
      for (const t of snap.activeTasks) {
        if (t.gpuMilli <= 0) continue;
        const list = held.get(t.jobId) ?? [];
        for (const gpu of t.gpus) list.push({ task: t.index, node: t.node, gpu, gpuMilli: t.gpuMilli / t.gpus.length });
        held.set(t.jobId, list);
      }
      const byJob = new Map<string, IdleGpuRecord[]>();
      for (const r of rows) byJob.set(r.jobId, [...(byJob.get(r.jobId) ?? []), r]);
      for (const [id, list] of byJob) {
        const job = open.get(id);
        // The row's tenant filtered the rows; the job's own tenant decides what is shown.
        if (!job || (tenant !== undefined && job.tenant !== tenant)) continue;
        const v = jobIdleView(job, held.get(id) ?? [], list, config, !all);
        if (v) jobs.push(v);
      }
    }
    jobs.sort((a, b) => b.idleSeconds - a.idleSeconds || Number(a.job) - Number(b.job));
    return { jobs, settings: config };
  });
}
