/**
 * `tide idle`: the jobs whose GPUs have read idle (utilization and memory near zero) for the
 * cluster's idle time, from GET /v1/idle (a tenant sees its own; an admin all, or --tenant).
 * One row per job: its nodes and GPUs, how long they have been idle, since when, and what
 * happens to it (docs/idle.md). `-o json` prints the API's answer.
 */
import type { Command } from 'commander';
import type { JobIdleView } from '../server/idle/idleReport.ts';
import type { IdleConfig } from '../server/idle/idleConfig.ts';
import { ApiClient, resolveConnection } from './client.ts';
import { connectionOptions, json, outputOf, print, type Common } from './common.ts';
import { duration, plainTable } from './format.ts';

interface IdleAnswer {
  readonly jobs: readonly JobIdleView[];
  readonly settings: IdleConfig;
}

/** Local date and time to the second: "2026-12-03 14:05:09". */
function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** What happens to the job: report, or when it is reclaimed. */
export function actionText(v: Pick<JobIdleView, 'policy' | 'allIdle' | 'reclaimAt'>): string {
  if (v.policy === 'report') return 'report';
  if (v.allIdle) return 'reclaim (now)';
  return v.reclaimAt === null ? 'reclaim once all GPUs idle' : `reclaim at ${clock(v.reclaimAt).slice(11)}`;
}

/** "node-a:0,1 node-b:3". */
function gpusText(v: JobIdleView): string {
  const byNode = new Map<string, number[]>();
  for (const g of v.gpus) byNode.set(g.node, [...new Set([...(byNode.get(g.node) ?? []), g.gpu])]);
  return [...byNode].map(([n, gs]) => `${n}:${gs.sort((a, b) => a - b).join(',')}`).join(' ');
}

export function idleTable(jobs: readonly JobIdleView[]): string {
  return plainTable(
    ['JOBID', 'NAME', 'USER', 'NODE:GPUS', 'IDLE/HELD', 'IDLE FOR', 'SINCE', 'ACTION'],
    jobs.map((v) => [v.job, v.name.length > 24 ? `${v.name.slice(0, 23)}…` : v.name, v.tenant, gpusText(v), `${v.idleGpus}/${v.heldGpus}`, duration(v.idleSeconds * 1000), clock(v.idleSince), actionText(v)]),
  );
}

export function registerIdle(program: Command): void {
  connectionOptions(program.command('idle'))
    .description('Jobs holding GPUs that stayed idle (utilization and memory near zero) for the cluster\'s idle time, and what happens to them')
    .option('--all', 'also GPUs idle for less than the idle time')
    .option('--tenant <name>', "admin: one tenant's jobs")
    .action(async (o: Common & { all?: boolean; tenant?: string }) => {
      const out = outputOf(o);
      const q = new URLSearchParams({ ...(o.all ? { all: 'true' } : {}), ...(o.tenant !== undefined ? { tenant: o.tenant } : {}) }).toString();
      const r = await new ApiClient(resolveConnection(o)).request<IdleAnswer>('GET', `/v1/idle${q ? `?${q}` : ''}`);
      if (out === 'json') return json(r.body);
      const s = r.body.settings;
      process.stderr.write(`idle: utilization ≤ ${s.utilizationPercent} % and memory ≤ ${s.memoryPercent} % for ${duration(s.afterMinutes * 60_000)}; cluster action ${s.action}\n`);
      if (r.body.jobs.length === 0) return print(o.all ? 'No GPU reads idle.' : 'No job has an idle GPU.');
      print(idleTable(r.body.jobs));
    });
}
