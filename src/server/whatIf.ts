/**
 * What-if on the cluster's own history: `POST /v1/whatif` (admin) replays the jobs that ran in a
 * past window (or an uploaded workload file) on the cluster as it is now (or an uploaded cluster
 * file) through two job schedulers with the simulator, in a worker thread bounded in jobs
 * (MAX_JOBS) and time (the run is stopped after `timeoutMs`), one run at a time. `GET /v1/whatif`
 * lists the schedulers and the bounds.
 *
 * A past job becomes a simulated job with its GPUs, its tenant and queue, and as many steps as it
 * ran seconds at one step per second on every GPU model of the cluster (the live cluster records
 * no throughput per model), submitted at its submission time relative to the first job's.
 */
import { Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import { ApiError } from '../api/errors.ts';
import type { Job, NodeInfo } from '../api/types.ts';
import { jobSchedulerNames } from '../core/scheduling/policies/index.ts';
import type { QueueConfig, Store } from '../store/store.ts';
import { authenticate, requireRole } from './auth.ts';
import { refuse } from './query.ts';
import { sourceUrl } from '../util/workerSource.ts';
import type { WhatIfInput } from './whatIfWorker.ts';
import { answers, DASHBOARD_ANSWERS } from '../api/apiSchemas.ts';

export const MAX_JOBS = 5000;
const MAX_FILE = 512 * 1024;

/** The cluster file (scenarioFiles.ts format) for the nodes and queues as they are now. */
export function clusterOf(nodes: readonly NodeInfo[], queues: readonly QueueConfig[], jobQueues: readonly string[]): string {
  const live = nodes.filter((n) => n.state !== 'lost' && n.gpus.length > 0);
  if (live.length === 0) throw new ApiError('conflict', 'no node with GPUs is up: upload a cluster file instead');
  const total = live.reduce((a, n) => a + n.gpus.length, 0);
  const names = [...new Set([...queues.map((q) => q.name), ...jobQueues])];
  return stringify({
    nodes: live.map((n, i) => ({ name: `n${i}`, count: 1, gpus: n.gpus.length, model: n.gpus[0]?.model ?? 'cpu', cpuMilli: n.cpuMilli, memoryMib: n.memoryMib })),
    queues: names.map((name) => {
      const q = queues.find((x) => x.name === name);
      return { name, nominalQuota: { '*': q?.gpuQuota ?? total }, ...(q?.borrowingLimit !== null && q?.borrowingLimit !== undefined ? { borrowingLimit: { '*': q.borrowingLimit } } : {}) };
    }),
  }, { aliasDuplicateObjects: false });
}

/** The workload file for the jobs that ran (started and finished): submitted from the first one's submission on. */
export function workloadOf(jobs: readonly Job[], models: readonly string[]): string {
  const ran = jobs.filter((j) => j.startedAt !== null && j.finishedAt !== null && j.finishedAt > j.startedAt);
  if (ran.length === 0) throw new ApiError('conflict', 'no job ran to its end in that window: pick a longer one, or upload a workload file');
  const from = Math.min(...ran.map((j) => j.createdAt));
  const throughput = Object.fromEntries(models.map((m) => [m, 1]));
  return stringify({
    jobs: ran.map((j) => {
      const gpus = Math.ceil(j.gpus);
      const perTask = j.tasks > 1 && gpus % j.tasks === 0 ? gpus / j.tasks : undefined;
      return {
        id: `job-${j.id}`,
        submit: Math.max(0, Math.round((j.createdAt - from) / 1000)),
        gpus,
        ...(perTask !== undefined ? { gpusPerTask: perTask } : {}),
        tenant: j.tenant,
        queue: j.queue,
        totalSteps: Math.max(1, Math.round(((j.finishedAt as number) - (j.startedAt as number)) / 1000 + (j.runSeconds ?? 0))),
        throughput,
        preemptible: j.spec.preemptible,
      };
    }),
  }, { aliasDuplicateObjects: false });
}

export function runInWorker(input: WhatIfInput, timeoutMs: number): Promise<{ report: unknown; svg: string }> {
  return new Promise((resolve, reject) => {
    // util/workerBoot.mjs registers tsx in the thread, then imports the TypeScript worker.
    const worker = new Worker(sourceUrl('util/workerBoot.mjs'), { workerData: { entry: sourceUrl('server/whatIfWorker.ts').href, init: input }, resourceLimits: { maxOldGenerationSizeMb: 512 } });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new ApiError('unavailable', `the simulation took longer than ${Math.round(timeoutMs / 1000)} s: pick a shorter window or fewer jobs`));
    }, timeoutMs);
    worker.once('message', (m: { ok: boolean; report?: unknown; svg?: string; message?: string }) => {
      clearTimeout(timer);
      void worker.terminate();
      if (m.ok) resolve({ report: m.report, svg: m.svg ?? '' });
      else reject(new ApiError('invalid_request', `simulation: ${m.message ?? 'failed'}`));
    });
    worker.once('error', (e) => {
      clearTimeout(timer);
      reject(new ApiError('invalid_request', `simulation: ${e.message}`));
    });
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function registerWhatIfRoutes(app: FastifyInstance, o: { store: Store; clock: () => number; timeoutMs?: number }): void {
  const { store, clock } = o;
  let running = false;
  app.get('/v1/whatif', { schema: { description: 'Admin: the job schedulers a what-if run can compare, and its bounds', tags: ['whatif'], response: answers(200, DASHBOARD_ANSWERS.whatIfBounds) } }, async (req) => {
    requireRole(await authenticate(store, req.headers.authorization, clock()), 'admin');
    return { policies: jobSchedulerNames(), maxJobs: MAX_JOBS, maxFileBytes: MAX_FILE };
  });

  app.post('/v1/whatif', {
    schema: {
      description: `Admin: simulate two job schedulers side by side on the jobs that ran from..to (ms since epoch; default: the last 24 h) on the cluster as it is now, or on an uploaded workload (workload: file text, workloadFormat: yaml|csv) and cluster (cluster: file text), as \`tide sim\` does. At most ${MAX_JOBS} jobs; one run at a time. Answers {report, svg}: the simulator's summary per policy and the chart \`tide sim --svg\` writes.`,
      tags: ['whatif'],
      body: { type: 'object', properties: { policies: { type: 'array', items: { type: 'string' } }, from: { type: 'number' }, to: { type: 'number' }, workload: { type: 'string' }, workloadFormat: { type: 'string', enum: ['yaml', 'csv'] }, cluster: { type: 'string' }, seed: { type: 'integer' } }, required: ['policies'] },
      response: answers(200, DASHBOARD_ANSWERS.whatIf),
    },
  }, async (req) => {
    requireRole(await authenticate(store, req.headers.authorization, clock()), 'admin');
    const b = req.body;
    const problems: { path: string; message: string }[] = [];
    const known = jobSchedulerNames();
    if (!isObj(b)) refuse([{ path: '(root)', message: 'must be an object with policies' }]);
    const body = b as Record<string, unknown>;
    for (const k of Object.keys(body)) if (!['policies', 'from', 'to', 'workload', 'workloadFormat', 'cluster', 'seed'].includes(k)) problems.push({ path: k, message: 'unknown field (policies, from, to, workload, workloadFormat, cluster, seed)' });
    const policies = body['policies'];
    if (!Array.isArray(policies) || policies.length !== 2 || !policies.every((p) => typeof p === 'string')) problems.push({ path: 'policies', message: `must be two scheduler names (${known.join(', ')})` });
    else policies.forEach((p, i) => { if (!known.includes(p as string)) problems.push({ path: `policies[${i}]`, message: `unknown scheduler "${String(p).slice(0, 40)}" (${known.join(', ')})` }); });
    const now = clock();
    const num = (k: string, fallback: number): number => {
      const v = body[k];
      if (v === undefined) return fallback;
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
      problems.push({ path: k, message: 'must be a time in ms since the epoch' });
      return fallback;
    };
    const from = num('from', now - 86_400_000);
    const to = num('to', now);
    if (to <= from && !problems.some((p) => p.path === 'from' || p.path === 'to')) problems.push({ path: 'to', message: 'must be after from' });
    for (const k of ['workload', 'cluster']) {
      const v = body[k];
      if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > MAX_FILE)) problems.push({ path: k, message: `must be the file's text, 1 to ${MAX_FILE} characters` });
    }
    const format = body['workloadFormat'] ?? 'yaml';
    if (format !== 'yaml' && format !== 'csv') problems.push({ path: 'workloadFormat', message: 'must be yaml or csv' });
    const seed = body['seed'] ?? 1;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) problems.push({ path: 'seed', message: 'must be an integer' });
    refuse(problems);
    if (running) throw new ApiError('conflict', 'a what-if run is in progress: try again when it has finished');
    running = true;
    try {
      let workload = body['workload'] as string | undefined;
      let jobQueues: string[] = [];
      const nodes = await store.listNodes();
      if (workload === undefined) {
        const jobs: Job[] = [];
        for (let after: number | undefined; ;) {
          const page = await store.listJobs({ states: ['succeeded', 'failed', 'cancelled', 'timeout'], limit: 1000, ...(after !== undefined ? { afterId: after } : {}) });
          jobs.push(...page.filter((j) => j.createdAt >= from && j.createdAt < to));
          if (jobs.length > MAX_JOBS) throw new ApiError('invalid_request', `more than ${MAX_JOBS} jobs ran in that window: pick a shorter one`, [{ path: 'from', message: `more than ${MAX_JOBS} jobs` }]);
          if (page.length < 1000) break;
          after = Number(page[page.length - 1]?.id);
        }
        const models = [...new Set(nodes.flatMap((n) => n.gpus.map((g) => g.model)))];
        workload = workloadOf(jobs, models.length ? models : ['GPU']);
        jobQueues = [...new Set(jobs.map((j) => j.queue))];
      }
      const cluster = (body['cluster'] as string | undefined) ?? clusterOf(nodes, await store.listQueues(), jobQueues);
      return await runInWorker({ cluster, workload, workloadExt: format as 'yaml' | 'csv', policies: policies as string[], seed: seed as number, maxHours: 24 * 365 }, o.timeoutMs ?? 60_000);
    } finally {
      running = false;
    }
  });
}
