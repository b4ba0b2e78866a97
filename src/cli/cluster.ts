/**
 * The cluster commands, kubectl verbs with Slurm columns: submit, jobs, job, logs, cancel,
 * preempt, nodes, queues, events, tenant. Human tables by default, `-o json` for scripts.
 * Exit codes: 0 ok, 2 bad input, 3 not found, 4 auth, 5 conflict, 6 server unavailable,
 * 7 unreachable, 1 internal; `submit --wait` exits 0 only if the job succeeded.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { Job, JobEvent, NodeInfo, QueueInfo, Task } from '../api/types.ts';
import { UserError } from '../util/errors.ts';
import { ApiClient, resolveConnection, type ClientOptions } from './client.ts';
import { duration, jobsTable, nodesTable, placementOf, plainTable, queuesTable } from './format.ts';

type Output = 'table' | 'json';
interface Common extends ClientOptions {
  output?: string;
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL(s), comma-separated (default: TIDE_SERVER or .tide/client.json)')
    .option('--token <token>', 'API token (default: TIDE_TOKEN or .tide/client.json)')
    .option('--data-dir <dir>', 'where `tide up` wrote client.json', '.tide')
    .option('-o, --output <format>', 'table or json', 'table');
}

function outputOf(o: Common): Output {
  if (o.output !== 'table' && o.output !== 'json') throw new UserError(`-o: must be table or json, got '${o.output}'`);
  return o.output;
}

const client = (o: Common): ApiClient => new ApiClient(resolveConnection(o));
const print = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));
const jobPath = (id: string): string => {
  if (!/^\d{1,15}$/.test(id)) throw new UserError(`job id must be a number, got '${id}'`);
  return `/v1/jobs/${id}`;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads a spec file; YAML or JSON by content. The server validates it. */
function readSpec(file: string): string {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.stringify(parseYaml(text));
  } catch (e) {
    throw new UserError(`${file}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

export function registerClusterCommands(program: Command): void {
  connectionOptions(program.command('submit').argument('<file>', 'job spec, YAML or JSON (- for stdin)'))
    .description('Submit a job from a YAML/JSON spec')
    .option('--key <key>', 'idempotency key: resubmitting with the same key returns the same job')
    .option('--tenant <name>', 'with an admin token: submit for this tenant')
    .option('--wait', 'wait until the job finishes; exit 0 only if it succeeded')
    .action(async (file: string, o: Common & { key?: string; tenant?: string; wait?: boolean }) => {
      const out = outputOf(o);
      const api = client(o);
      const path = `/v1/jobs${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`;
      const r = await api.request<{ created: boolean; jobs: Job[] }>('POST', path, readSpec(file), 'application/json', o.key ? { 'idempotency-key': o.key } : {});
      if (out === 'json') json(r.body);
      else for (const j of r.body.jobs) print(`${r.body.created ? 'Submitted' : 'Already submitted'} job ${j.id} (${j.name}, ${j.gpus} GPUs, queue ${j.queue})`);
      if (o.wait) {
        const ids = r.body.jobs.map((j) => j.id);
        const done = new Set(['succeeded', 'failed', 'cancelled']);
        for (;;) {
          const states = await Promise.all(ids.map(async (id) => (await api.request<{ job: Job }>('GET', jobPath(id))).body.job));
          if (states.every((j) => done.has(j.state))) {
            if (out === 'table') for (const j of states) print(`job ${j.id}: ${j.state}${j.reason ? ` (${j.reason})` : ''}`);
            if (states.some((j) => j.state !== 'succeeded')) throw new UserError(`job(s) did not succeed: ${states.filter((j) => j.state !== 'succeeded').map((j) => `${j.id} ${j.state}`).join(', ')}`, 1);
            return;
          }
          await sleep(500);
        }
      }
    });

  connectionOptions(program.command('jobs'))
    .description('List jobs (squeue-like): JOBID NAME QUEUE USER ST TIME GPUS NODES/REASON')
    .option('-a, --all', 'include finished jobs')
    .option('--state <list>', 'only these states, comma-separated')
    .option('--queue <name>', 'only this queue')
    .action(async (o: Common & { all?: boolean; state?: string; queue?: string }) => {
      const out = outputOf(o);
      const states = o.state ?? (o.all ? undefined : 'pending,admitted,running,preempted');
      const qs = new URLSearchParams();
      if (states) qs.set('state', states);
      if (o.queue) qs.set('queue', o.queue);
      const r = await client(o).request<{ jobs: Job[] }>('GET', `/v1/jobs?${qs}`);
      if (out === 'json') return json(r.body.jobs);
      print(r.body.jobs.length ? jobsTable(r.body.jobs, Date.now()) : `No jobs${o.all ? '' : ' pending or running (use --all for finished ones)'}.`);
    });

  connectionOptions(program.command('job').argument('<id>'))
    .description('Show a job: state, placement, why it is pending, its tasks and events')
    .action(async (id: string, o: Common) => {
      const out = outputOf(o);
      const r = await client(o).request<{ job: Job; tasks: Task[]; events: JobEvent[] }>('GET', jobPath(id));
      if (out === 'json') return json(r.body);
      const { job, tasks, events } = r.body;
      const lines = [
        `Job ${job.id}: ${job.name}`,
        `  State:     ${job.state}${job.reason ? ` (${job.reason})` : ''}`,
        `  Tenant:    ${job.tenant}   Queue: ${job.queue}   Priority: ${job.priority}   Kind: ${job.kind}`,
        `  Resources: ${job.tasks} task(s), ${job.gpus} GPU(s)${job.spec.preemptible ? ', preemptible' : ''}${job.spec.checkpoint ? ', checkpointing' : ''}`,
        `  Attempt:   ${job.attempt}`,
        `  Submitted: ${new Date(job.createdAt).toISOString()}${job.startedAt ? `   Started: ${new Date(job.startedAt).toISOString()}` : ''}${job.finishedAt ? `   Finished: ${new Date(job.finishedAt).toISOString()}` : ''}`,
      ];
      if (job.estimatedStart) lines.push(`  Estimated start: ${new Date(job.estimatedStart).toISOString()}`);
      const placement = placementOf(tasks);
      if (placement) lines.push(`  Placement: ${placement}`);
      lines.push('', 'Tasks:', plainTable(['TASK', 'GROUP', 'STATE', 'NODE', 'GPUS', 'EXIT', 'TIME'], tasks.map((t) => [t.index, t.group, t.state, t.node ?? '-', t.gpus.join(',') || '-', t.exitCode ?? '-', t.startedAt ? duration((t.finishedAt ?? Date.now()) - t.startedAt) : '-'])));
      lines.push('', 'Events:', ...events.map((e) => `  ${new Date(e.at).toISOString()}  ${e.type.padEnd(16)} ${e.message}`));
      print(lines.join('\n'));
    });

  connectionOptions(program.command('logs').argument('<id>'))
    .description("Print a task's output (stdout; --stderr for stderr)")
    .option('--task <index>', 'task index in the gang', '0')
    .option('--stderr', 'show stderr instead of stdout')
    .option('-f, --follow', 'keep printing new output until the job finishes')
    .action(async (id: string, o: Common & { task: string; stderr?: boolean; follow?: boolean }) => {
      const api = client(o);
      const stream = o.stderr ? 'stderr' : 'stdout';
      let offset = 0;
      for (;;) {
        const res = await api.request<string>('GET', `${jobPath(id)}/logs?task=${encodeURIComponent(o.task)}&stream=${stream}&offset=${offset}`);
        const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
        if (text) process.stdout.write(text);
        offset = Number(res.headers.get('x-tide-next-offset') ?? offset);
        const state = res.headers.get('x-tide-job-state') ?? '';
        if (!o.follow || (['succeeded', 'failed', 'cancelled'].includes(state) && text === '')) return;
        if (text === '') await sleep(500);
      }
    });

  connectionOptions(program.command('cancel').argument('<ids...>'))
    .description('Cancel jobs (SIGTERM, then SIGKILL after the grace period)')
    .action(async (ids: string[], o: Common) => {
      const out = outputOf(o);
      const api = client(o);
      const results: Job[] = [];
      for (const id of ids) results.push((await api.request<{ job: Job }>('POST', `${jobPath(id)}/cancel`)).body.job);
      if (out === 'json') return json(results);
      for (const j of results) print(`Cancelled job ${j.id} (${j.name})`);
    });

  connectionOptions(program.command('preempt').argument('<id>'))
    .description('Admin: stop a running job and requeue it (it resumes from its checkpoint)')
    .action(async (id: string, o: Common) => {
      const r = await client(o).request<{ job: Job }>('POST', `${jobPath(id)}/preempt`);
      if (outputOf(o) === 'json') return json(r.body.job);
      print(`Preempted job ${r.body.job.id}: ${r.body.job.state}`);
    });

  connectionOptions(program.command('nodes'))
    .description('List nodes (sinfo-like): state, GPUs, allocation, utilisation, power')
    .action(async (o: Common) => {
      const r = await client(o).request<{ nodes: NodeInfo[] }>('GET', '/v1/nodes');
      if (outputOf(o) === 'json') return json(r.body.nodes);
      print(r.body.nodes.length ? nodesTable(r.body.nodes) : 'No nodes: start an agent (`tide agent --server URL --token AGENT_TOKEN`).');
    });

  for (const [verb, what] of [['drain', 'Admin: place nothing new on a node (running tasks finish)'], ['undrain', 'Admin: let a drained node take tasks again']] as const) {
    connectionOptions(program.command(verb).argument('<node>'))
      .description(what)
      .action(async (node: string, o: Common) => {
        const r = await client(o).request<{ node: NodeInfo }>('POST', `/v1/nodes/${encodeURIComponent(node)}/${verb}`);
        if (outputOf(o) === 'json') return json(r.body.node);
        print(`Node ${r.body.node.id}: ${r.body.node.state}`);
      });
  }

  connectionOptions(program.command('queues'))
    .description('List queues: quota, used, borrowed, pending and running jobs')
    .action(async (o: Common) => {
      const r = await client(o).request<{ queues: QueueInfo[] }>('GET', '/v1/queues');
      if (outputOf(o) === 'json') return json(r.body.queues);
      print(queuesTable(r.body.queues));
    });

  connectionOptions(program.command('events'))
    .description('The audit log: lifecycle events, oldest first')
    .option('--job <id>', 'only this job')
    .option('--limit <n>', 'at most this many', '200')
    .action(async (o: Common & { job?: string; limit: string }) => {
      const qs = new URLSearchParams({ limit: o.limit });
      if (o.job) qs.set('job', o.job);
      const r = await client(o).request<{ events: JobEvent[] }>('GET', `/v1/events?${qs}`);
      if (outputOf(o) === 'json') return json(r.body.events);
      print(plainTable(['TIME', 'EVENT', 'JOB', 'NODE', 'MESSAGE'], r.body.events.map((e) => [new Date(e.at).toISOString(), e.type, e.jobId ?? '-', e.nodeId ?? '-', e.message])));
    });

  const tenant = program.command('tenant').description('Admin: tenants and their tokens');
  connectionOptions(tenant.command('create').argument('<name>'))
    .description('Create a tenant (or add a token to one) and print its new API token')
    .action(async (name: string, o: Common) => {
      const r = await client(o).request<{ tenant: string; token: string }>('POST', '/v1/tenants', JSON.stringify({ name }));
      if (outputOf(o) === 'json') return json(r.body);
      print(`Tenant ${r.body.tenant}: token ${r.body.token}`);
    });
}
