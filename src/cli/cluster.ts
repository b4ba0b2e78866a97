/**
 * The cluster commands, kubectl verbs with Slurm columns: submit, jobs, job, array, logs, cancel,
 * preempt, nodes, drain, undrain, queues, queue put, events, tenant. Human tables by default,
 * `-o json` for scripts (errors too: see errorOutput.ts). Exit codes: 0 ok, 2 bad input,
 * 3 not found, 4 auth, 5 conflict, 6 server unavailable, 7 unreachable, 1 internal;
 * `submit --wait` exits 0 only if the job succeeded, 124 if it timed out (as coreutils' timeout). Notes about the output itself (a list
 * cut at --limit) go to stderr, so stdout stays the data. Admin commands find the admin token
 * themselves (client.ts).
 */
import type { Command } from 'commander';
import { TERMINAL_JOB_STATES, type Job, type JobArray, type JobEvent, type NodeInfo, type QueueInfo, type ServiceStatus, type Task, type TaskAttempt } from '../api/types.ts';
import { describeCounts, describeElements } from '../api/arrayWords.ts';
import { UserError } from '../util/errors.ts';
import { parsePositiveInt } from './args.ts';
import { ApiClient, header, resolveConnection } from './client.ts';
import { connectionOptions, json, outputOf, print, type Common } from './common.ts';
import { ApiFailure } from './errorOutput.ts';
import { readSpecFile, refuseInvalidSpec } from './specFile.ts';
import { attemptsTable, duration, eventLine, EVENTS_HEADER, jobRunMs, jobsTable, nodesTable, placementOf, plainTable, progressText, queuesTable, serviceLines } from './format.ts';

const client = (o: Common): ApiClient => new ApiClient(resolveConnection(o));

/** A client with the admin token; a 403 says how to pass that token. */
function adminClient(o: Common): ApiClient {
  const api = new ApiClient(resolveConnection(o, 'admin'));
  const request = api.request.bind(api);
  api.request = async (...args) => {
    try {
      return await request(...args);
    } catch (e) {
      if (e instanceof ApiFailure && e.code === 'forbidden') throw new ApiFailure(`${e.detail}: pass the admin token with --token or TIDE_ADMIN_TOKEN`, e.status, e.exitCode, e.code, e.fields);
      throw e;
    }
  };
  return api;
}

const note = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const jobPath = (id: string): string => {
  if (!/^\d{1,15}$/.test(id)) throw new UserError(`job id must be a number, got '${id}'`);
  return `/v1/jobs/${id}`;
};
const arrayPath = (id: string): string => {
  if (!/^\d{1,15}$/.test(id)) throw new UserError(`array id must be a number, got '${id}'`);
  return `/v1/arrays/${id}`;
};
/**
 * A job id, or an array element as Slurm writes it (`7_5`: element 5 of array 7) looked up to
 * its job's id.
 */
async function jobIdOf(api: ApiClient, id: string): Promise<string> {
  const element = /^(\d{1,15})_(\d{1,5})$/.exec(id);
  if (!element) return id;
  return (await api.request<{ job: Job }>('GET', `${arrayPath(element[1] as string)}/elements/${element[2]}`)).body.job.id;
}
/** "Cancelled 3 jobs of array 7 (sweep): 4 cancelled", for an array's cancel's answer. */
const arrayCancelled = (r: { array: JobArray; cancelled: number }): string => `Cancelled ${r.cancelled} job${r.cancelled === 1 ? '' : 's'} of array ${r.array.id} (${r.array.name}): ${describeCounts(r.array.counts)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const DONE = new Set<string>(TERMINAL_JOB_STATES);
/** What `submit --wait` exits with when a job timed out (and none failed or was cancelled), as coreutils' timeout does. */
export const TIMEOUT_EXIT = 124;
/** The most a list page of the API holds. */
const PAGE = 1000;

/** Writes to stdout, waiting when the pipe is full (a 50 MB log is never one string). */
function write(chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (e) => (e ? reject(e) : resolve()));
  });
}

/**
 * Reads a spec file (YAML or JSON by content) and checks it with the server's schema, so an
 * invalid spec is refused here, naming every bad field, and never sent.
 */
async function readSpec(file: string): Promise<string> {
  const value = await readSpecFile(file);
  await refuseInvalidSpec(file, value);
  return JSON.stringify(value);
}

/**
 * The newest `limit` items of a list route (order=desc, pages of at most 1000, `before` the
 * cursor `next`), oldest first, and whether the list holds more; `limit` null: every item,
 * oldest first (order=asc, `after`), each page handed to `onPage` as it arrives.
 */
async function listNewest<T>(api: ApiClient, path: string, key: string, query: URLSearchParams, limit: number | null, onPage?: (items: T[]) => Promise<void>): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (;;) {
    const qs = new URLSearchParams(query);
    qs.set('order', limit === null ? 'asc' : 'desc');
    qs.set('limit', String(limit === null ? PAGE : Math.min(PAGE, limit - items.length)));
    if (cursor !== null) qs.set(limit === null ? 'after' : 'before', cursor);
    const body = (await api.request<Record<string, unknown>>('GET', `${path}?${qs}`)).body;
    const page = (body[key] ?? []) as T[];
    const next = body['next'] === undefined || body['next'] === null ? null : String(body['next']);
    if (onPage && limit === null) await onPage(page);
    else items.push(...page);
    if (next === null || page.length === 0) return { items: limit === null ? items : items.reverse(), more: false };
    if (limit !== null && items.length >= limit) return { items: items.reverse(), more: true };
    cursor = next;
  }
}

export function registerClusterCommands(program: Command): void {
  connectionOptions(program.command('submit').argument('<file>', 'job spec, YAML or JSON (- for stdin)'))
    .description('Submit a job from a YAML/JSON spec')
    .option('--key <key>', 'idempotency key: resubmitting with the same key returns the same job')
    .option('--tenant <name>', 'admin: submit for this tenant (uses the admin token)')
    .option('--wait', `wait until the job finishes; exit 0 only if it succeeded (${TIMEOUT_EXIT} if it timed out, 1 otherwise)`)
    .action(async (file: string, o: Common & { key?: string; tenant?: string; wait?: boolean }) => {
      const out = outputOf(o);
      const api = o.tenant ? adminClient(o) : client(o);
      const path = `/v1/jobs${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`;
      const r = await api.request<{ created: boolean; jobs: Job[]; array?: JobArray }>('POST', path, await readSpec(file), 'application/json', o.key ? { 'idempotency-key': o.key } : {});
      const { array } = r.body;
      if (out === 'json') json(r.body);
      else if (array) print(`${r.body.created ? 'Submitted' : 'Already submitted'} array ${array.id}: ${array.size} jobs (${array.name}-0 … ${array.name}-${array.size - 1}, queue ${array.queue}; the first is job ${array.firstJobId ?? '-'})`);
      else for (const j of r.body.jobs) print(`${r.body.created ? 'Submitted' : 'Already submitted'} job ${j.id} (${j.name}, ${j.gpus} GPUs, queue ${j.queue})`);
      if (o.wait && array) return waitForArray(api, array.id, out === 'table');
      if (o.wait) {
        const ids = r.body.jobs.map((j) => j.id);
        for (;;) {
          const states = await Promise.all(ids.map(async (id) => (await api.request<{ job: Job }>('GET', jobPath(id))).body.job));
          if (states.every((j) => DONE.has(j.state))) {
            if (out === 'table') for (const j of states) print(`job ${j.id}: ${j.state}${j.reason ? ` (${j.reason})` : ''}`);
            const bad = states.filter((j) => j.state !== 'succeeded');
            if (bad.length) throw new UserError(`job(s) did not succeed: ${bad.map((j) => `${j.id} ${j.state}`).join(', ')}`, bad.every((j) => j.state === 'timeout') ? TIMEOUT_EXIT : 1);
            return;
          }
          await sleep(500);
        }
      }
    });

  connectionOptions(program.command('jobs'))
    .description('List jobs (squeue-like): JOBID NAME QUEUE USER ST TIME GPUS NODES/REASON')
    .option('-a, --all', 'every job, finished ones too, every page (unless --limit is given)')
    .option('--limit <n>', 'show the newest n jobs (default 1000; with --all: no limit)')
    .option('--state <list>', 'only these states, comma-separated')
    .option('--queue <name>', 'only this queue')
    .option('--array <id>', "only this array's elements")
    .option('-r, --expand-arrays', "a row for each pending array element (by default an array's adjacent pending elements that wait for the same reason are one row, ID_[5-999], as in squeue)")
    .action(async (o: Common & { all?: boolean; limit?: string; state?: string; queue?: string; array?: string; expandArrays?: boolean }) => {
      const out = outputOf(o);
      const limit = o.limit !== undefined ? parsePositiveInt('--limit', o.limit) : o.all ? null : PAGE;
      const states = o.state ?? (o.all ? undefined : 'pending,admitted,running,preempted');
      const qs = new URLSearchParams();
      if (states) qs.set('state', states);
      if (o.queue) qs.set('queue', o.queue);
      if (o.array !== undefined) qs.set('array', parsePositiveInt('--array', o.array).toString());
      const { items: jobs, more } = await listNewest<Job>(client(o), '/v1/jobs', 'jobs', qs, limit);
      if (out === 'json') json(jobs);
      else print(jobs.length ? jobsTable(jobs, Date.now(), o.expandArrays === true) : `No jobs${o.all || o.state ? '' : ' pending or running (use --all for finished ones)'}.`);
      if (more) note(`showing the newest ${jobs.length} jobs of more: --limit N or --all for more`);
    });

  connectionOptions(program.command('job').argument('<id>', 'a job id, or ARRAY_INDEX for an array element (7_5)'))
    .description('Show a job: state, placement, why it is pending, its tasks and events')
    .action(async (id: string, o: Common) => {
      const out = outputOf(o);
      const api = client(o);
      const r = await api.request<{ job: Job; tasks: Task[]; events: JobEvent[]; attempts?: TaskAttempt[]; service?: ServiceStatus }>('GET', jobPath(await jobIdOf(api, id)));
      if (out === 'json') return json(r.body);
      const { job, tasks, events, attempts = [], service } = r.body;
      const now = Date.now();
      const limit = job.spec.timeLimitSeconds;
      const lines = [
        `Job ${job.id}: ${job.name}`,
        `  State:     ${job.state}${job.reason ? ` (${job.reason})` : ''}`,
        `  Tenant:    ${job.tenant}   Queue: ${job.queue}   Priority: ${job.priority}   Kind: ${job.kind}`,
        `  Resources: ${job.tasks} task(s), ${job.gpus} GPU(s)${job.spec.preemptible ? ', preemptible' : ''}${job.spec.checkpoint ? ', checkpointing' : ''}`,
        `  Attempt:   ${job.attempt}`,
        `  Submitted: ${new Date(job.createdAt).toISOString()}${job.startedAt ? `   Started: ${new Date(job.startedAt).toISOString()}` : ''}${job.finishedAt ? `   Finished: ${new Date(job.finishedAt).toISOString()}` : ''}`,
      ];
      lines.push(`  Run time:  ${duration(jobRunMs(job, now))} over ${job.attempt + (job.startedAt ? 1 : 0)} attempt(s)${limit !== undefined ? `   Time limit: ${duration(limit * 1000)}` : ''}`);
      if (job.progress) {
        const p = job.progress;
        const ckpt = p.checkpointAt !== null ? `, checkpoint ${duration(now - p.checkpointAt)} ago` : '';
        lines.push(`  Progress:  step ${progressText(p)}${ckpt} (reported ${duration(now - p.at)} ago)`);
      }
      if (job.estimatedStart) lines.push(`  Estimated start: ${new Date(job.estimatedStart).toISOString()}`);
      if (job.powerCapWatts !== undefined) lines.push(`  Power cap: ${job.powerCapWatts} W per GPU (${job.spec.powerCapWatts !== undefined ? 'its own powerCapWatts' : `chosen by the powercap stage within a slowdown of ${job.spec.maxSlowdown ?? "the cluster's default"}`}; nvidia-smi -pl on its GPUs)`);
      if (job.borrowed) lines.push('  Borrowed:  runs on GPUs its queue borrows from its cohort (reclaimed first when their owner needs them)');
      if (job.serviceId) lines.push(`  Replica of service ${job.serviceId}`);
      if (job.arrayId) lines.push(`  Array:     ${describeElements(job)} of array ${job.arrayId} (tide array ${job.arrayId})`);
      const placement = placementOf(tasks);
      if (placement) lines.push(`  Placement: ${placement}`);
      lines.push('', 'Tasks:', plainTable(['TASK', 'GROUP', 'STATE', 'NODE', 'GPUS', 'EXIT', 'TIME'], tasks.map((t) => [t.index, t.group, t.state, t.node ?? '-', t.gpus.join(',') || '-', t.exitCode ?? '-', t.startedAt ? duration((t.finishedAt ?? Date.now()) - t.startedAt) : '-'])));
      if (service) lines.push(...serviceLines(service, now));
      if (attempts.length) lines.push('', 'Attempts:', attemptsTable(attempts, now));
      lines.push('', 'Events:', ...events.map((e) => `  ${new Date(e.at).toISOString()}  ${e.type.padEnd(16)} ${e.message}`));
      print(lines.join('\n'));
    });

  connectionOptions(program.command('logs').argument('<id>', 'a job id, or ARRAY_INDEX for an array element (7_5)'))
    .description("Print a task's whole output (stdout; --stderr for stderr); -o json: one JSON line per chunk read")
    .option('--task <index>', 'task index in the gang', '0')
    .option('--stderr', 'show stderr instead of stdout')
    .option('-f, --follow', 'keep printing new output until the job finishes')
    .action(async (id: string, o: Common & { task: string; stderr?: boolean; follow?: boolean }) => {
      const api = client(o);
      await printLogs(api, await jobIdOf(api, id), o.task, o.stderr ? 'stderr' : 'stdout', o.follow === true, outputOf(o) === 'json');
    });

  connectionOptions(program.command('array').argument('<id>'))
    .description("Show a batch array: its size and its elements counted by state (the elements: tide jobs --array ID)")
    .action(async (id: string, o: Common) => {
      const { array } = (await client(o).request<{ array: JobArray }>('GET', arrayPath(id))).body;
      if (outputOf(o) === 'json') return json(array);
      print([`Array ${array.id}: ${array.name} (${array.size} jobs, ${array.name}-0 … ${array.name}-${array.size - 1})`, `  Tenant:    ${array.tenant}   Queue: ${array.queue}   First job: ${array.firstJobId ?? '-'}`, `  Submitted: ${new Date(array.createdAt).toISOString()}`, `  Elements:  ${describeCounts(array.counts)}`].join('\n'));
    });

  connectionOptions(program.command('cancel').argument('[ids...]', 'job ids; ARRAY_INDEX or ARRAY_[RANGES] for array elements (7_5, 7_[0-9,12])'))
    .description("Cancel jobs (SIGTERM, then SIGKILL after the grace period), array elements as Slurm names them, or with --array every unfinished element of an array")
    .option('--array <id>', "cancel this array's unfinished elements")
    .action(async (ids: string[], o: Common & { array?: string }) => {
      const out = outputOf(o);
      const api = client(o);
      if (o.array !== undefined) {
        if (ids.length) throw new UserError('give job ids or --array, not both');
        const r = (await api.request<{ array: JobArray; cancelled: number }>('POST', `${arrayPath(o.array)}/cancel`)).body;
        if (out === 'json') return json(r);
        return print(arrayCancelled(r));
      }
      if (ids.length === 0) throw new UserError('give the job ids to cancel, or --array ID');
      const results: Job[] = [];
      const arrays: { array: JobArray; cancelled: number }[] = [];
      for (const id of ids) {
        const elements = /^(\d{1,15})_(?:\[([\d,-]+)\]|(\d{1,5}))$/.exec(id);
        if (elements) arrays.push((await api.request<{ array: JobArray; cancelled: number }>('POST', `${arrayPath(elements[1] as string)}/cancel`, JSON.stringify({ elements: elements[2] ?? elements[3] }), 'application/json')).body);
        else results.push((await api.request<{ job: Job }>('POST', `${jobPath(id)}/cancel`)).body.job);
      }
      if (out === 'json') return json(arrays.length ? [...results, ...arrays] : results);
      for (const j of results) print(`Cancelled job ${j.id} (${j.name})`);
      for (const a of arrays) print(arrayCancelled(a));
    });

  connectionOptions(program.command('scale').argument('<id>', "the service's job id"))
    .description("Change a service's bounds: its autoscaler keeps its replicas between --min and --max; --history imports its request rate from before Tide ran it")
    .option('--min <n>', 'replicas always running')
    .option('--max <n>', 'replicas never exceeded')
    .option('--history <file>', 'CSV t_seconds,value: requests per second at Unix times before the service started (a Prometheus export), for its autoscaler to learn from')
    .action(async (id: string, o: Common & { min?: string; max?: string; history?: string }) => {
      const out = outputOf(o);
      if (o.min === undefined && o.max === undefined && o.history === undefined) throw new UserError('give --min, --max, --history or several');
      let r: { body: { job: Job; service: ServiceStatus } } | null = null;
      if (o.history !== undefined) {
        const { readHistoryFile, atLines } = await import('./historyFile.ts');
        const h = readHistoryFile(o.history);
        try {
          r = await client(o).request<{ job: Job; service: ServiceStatus }>('PUT', `${jobPath(id)}/history`, JSON.stringify({ points: h.points }));
        } catch (e) {
          if (e instanceof ApiFailure && e.fields?.length) throw new UserError(atLines(h.file, h.lines, e.fields).join('\n'), e.exitCode);
          throw e;
        }
      }
      if (o.min !== undefined || o.max !== undefined) {
        const body = { ...(o.min !== undefined ? { minReplicas: parsePositiveInt('--min', o.min) } : {}), ...(o.max !== undefined ? { maxReplicas: parsePositiveInt('--max', o.max) } : {}) };
        r = await client(o).request<{ job: Job; service: ServiceStatus }>('POST', `${jobPath(id)}/scale`, JSON.stringify(body));
      }
      if (!r) return;
      if (out === 'json') return json(r.body);
      const s = r.body.service;
      const h = s.history;
      print(`Service ${r.body.job.id} (${r.body.job.name}): between ${s.minReplicas} and ${s.maxReplicas} replicas, ${s.desiredReplicas} wanted now${h ? `; history: ${h.points} points over ${((h.toSeconds - h.fromSeconds) / 3600).toFixed(1)} h` : ''}`);
    });

  connectionOptions(program.command('preempt').argument('<id>'))
    .description('Admin: stop a running job and requeue it (it resumes from its checkpoint)')
    .action(async (id: string, o: Common) => {
      const out = outputOf(o);
      const r = await adminClient(o).request<{ job: Job }>('POST', `${jobPath(id)}/preempt`);
      if (out === 'json') return json(r.body.job);
      print(`Preempted job ${r.body.job.id}: ${r.body.job.state}`);
    });

  connectionOptions(program.command('nodes'))
    .description('List nodes (sinfo-like): state, GPUs, allocation, utilisation, power')
    .action(async (o: Common) => {
      const out = outputOf(o);
      const r = await client(o).request<{ nodes: NodeInfo[] }>('GET', '/v1/nodes');
      if (out === 'json') return json(r.body.nodes);
      print(r.body.nodes.length ? nodesTable(r.body.nodes) : 'No nodes: start an agent (`tide agent --server URL --token AGENT_TOKEN`).');
    });

  for (const [verb, what] of [['drain', 'Admin: place nothing new on a node (running tasks finish)'], ['undrain', 'Admin: let a drained node take tasks again']] as const) {
    connectionOptions(program.command(verb).argument('<node>'))
      .description(what)
      .action(async (node: string, o: Common) => {
        const out = outputOf(o);
        const r = await adminClient(o).request<{ node: NodeInfo }>('POST', `/v1/nodes/${encodeURIComponent(node)}/${verb}`);
        if (out === 'json') return json(r.body.node);
        print(`Node ${r.body.node.id}: ${r.body.node.state}`);
      });
  }

  connectionOptions(program.command('queues'))
    .description('List queues: quota, used, borrowed, pending and running jobs')
    .action(async (o: Common) => {
      const out = outputOf(o);
      const r = await client(o).request<{ queues: QueueInfo[] }>('GET', '/v1/queues');
      if (out === 'json') return json(r.body.queues);
      print(queuesTable(r.body.queues));
    });

  const queue = program.command('queue').description('Admin: queues and their quotas');
  connectionOptions(queue.command('put').argument('<name>'))
    .description('Create or update a queue: its GPU quota (in all, or per GPU model), how much it may borrow and lend, its cohort')
    .option('--quota <gpus>', "nominal GPU quota: a number, per model (H100=8,A100=4), or 'unlimited'", 'unlimited')
    .option('--borrowing-limit <gpus>', "GPUs it may borrow beyond its quota: a number, per model, or 'unlimited'", 'unlimited')
    .option('--lending-limit <gpus>', "the most of its quota others may borrow: a number, per model, or 'all'", 'all')
    .option('--cohort <name>', 'queues of one cohort lend each other unused quota (default: cluster)')
    .option('--tenants <list>', 'the tenants it is open to, comma-separated (default: by its name, see README)')
    .action(async (name: string, o: Common & { quota: string; borrowingLimit: string; lendingLimit: string; cohort?: string; tenants?: string }) => {
      const out = outputOf(o);
      const gpus = (flag: string, v: string, none: string): number | Record<string, number> | null => {
        if (v === none) return null;
        if (/^\d{1,9}$/.test(v)) return Number(v);
        const map: Record<string, number> = {};
        for (const part of v.split(',')) {
          const m = /^\s*([*A-Za-z0-9][-A-Za-z0-9_.]*)\s*=\s*(\d{1,9})\s*$/.exec(part);
          if (!m) throw new UserError(`${flag}: expected a number of GPUs, MODEL=GPUS,… or '${none}', got '${v}'`);
          map[m[1] as string] = Number(m[2]);
        }
        return map;
      };
      const quota = gpus('--quota', o.quota, 'unlimited');
      const body = {
        ...(typeof quota === 'object' && quota !== null ? { nominalQuota: quota } : { gpuQuota: quota }),
        borrowingLimit: gpus('--borrowing-limit', o.borrowingLimit, 'unlimited'),
        lendingLimit: gpus('--lending-limit', o.lendingLimit, 'all'),
        ...(o.cohort !== undefined ? { cohort: o.cohort } : {}),
        ...(o.tenants !== undefined ? { tenants: o.tenants.split(',').map((t) => t.trim()).filter((t) => t !== '') } : {}),
      };
      const r = await adminClient(o).request<{ queue: unknown }>('PUT', `/v1/queues/${encodeURIComponent(name)}`, JSON.stringify(body));
      if (out === 'json') return json(r.body.queue);
      const text = (v: number | Record<string, number> | null, none: string): string => (v === null ? none : typeof v === 'number' ? String(v) : Object.entries(v).map(([k, n]) => `${k}=${n}`).join(','));
      print(`Queue ${name}: quota ${text(quota, 'unlimited')}, borrowing limit ${text(body.borrowingLimit, 'unlimited')}, lending limit ${text(body.lendingLimit, 'all')}${o.cohort ? `, cohort ${o.cohort}` : ''}${body.tenants ? `, tenants ${body.tenants.join(', ') || '(none)'}` : ''}`);
    });

  connectionOptions(program.command('events'))
    .description('The audit log, like tail: the newest events, oldest first on screen')
    .option('--job <id>', 'only this job')
    .option('--limit <n>', 'show the newest n events', '50')
    .option('--all', 'every event, oldest first, page by page')
    .action(async (o: Common & { job?: string; limit: string; all?: boolean }) => {
      const out = outputOf(o);
      const qs = new URLSearchParams();
      if (o.job !== undefined) {
        if (!/^\d{1,15}$/.test(o.job)) throw new UserError(`--job: must be a job id (a number), got '${o.job}'`);
        qs.set('job', o.job);
      }
      const limit = o.all ? null : parsePositiveInt('--limit', o.limit);
      // --all streams each page as it arrives: JSON as one array, text as fixed-width lines.
      let written = 0;
      const onPage = async (events: JobEvent[]): Promise<void> => {
        let text = '';
        for (const e of events) text += out === 'json' ? `${written++ === 0 ? '[\n' : ',\n'}${JSON.stringify(e)}` : `${written++ === 0 ? `${EVENTS_HEADER}\n` : ''}${eventLine(e)}\n`;
        await write(text);
      };
      const { items, more } = await listNewest<JobEvent>(client(o), '/v1/events', 'events', qs, limit, onPage);
      if (limit === null) return write(out === 'json' ? (written ? '\n]\n' : '[]\n') : written ? '' : 'No events.\n');
      if (out === 'json') json(items);
      else print(items.length ? [EVENTS_HEADER, ...items.map(eventLine)].join('\n') : 'No events.');
      if (more) note(`showing the newest ${items.length} events of more: --limit N or --all`);
    });

  const tenant = program.command('tenant').description('Admin: tenants and their tokens');
  connectionOptions(tenant.command('create').argument('<name>'))
    .description('Create a tenant (or add a token to one) and print its new API token')
    .option('--expires-in-days <days>', 'the token expires after this many days (default: never)')
    .action(async (name: string, o: Common & { expiresInDays?: string }) => {
      const out = outputOf(o);
      const days = o.expiresInDays === undefined ? undefined : Number(o.expiresInDays);
      if (days !== undefined && (!/^\d+(\.\d+)?$/.test(o.expiresInDays ?? '') || !(days > 0))) throw new UserError(`--expires-in-days: must be a number of days above 0, got '${o.expiresInDays}'`);
      const r = await adminClient(o).request<{ tenant: string; token: string; expiresAt?: number | null }>('POST', '/v1/tenants', JSON.stringify({ name, ...(days !== undefined ? { expiresInDays: days } : {}) }));
      if (out === 'json') return json(r.body);
      print(`Tenant ${r.body.tenant}: token ${r.body.token}${r.body.expiresAt ? ` (expires ${new Date(r.body.expiresAt).toISOString()})` : ''}`);
    });
  connectionOptions(tenant.command('list'))
    .description('List tenants')
    .action(async (o: Common) => {
      const out = outputOf(o);
      const r = await adminClient(o).request<{ tenants: string[] }>('GET', '/v1/tenants');
      if (out === 'json') return json(r.body.tenants);
      print(r.body.tenants.length ? plainTable(['TENANT'], r.body.tenants.map((t) => [t])) : 'No tenants.');
    });
}

/**
 * A task's output from offset 0 to its end, chunk after chunk (the server sends at most 1 MiB
 * and says where to continue in x-tide-next-offset): without --follow until a read does not
 * advance, with it until the job has finished and a read does not advance. Bytes go to stdout
 * as they come. JSON: one line per chunk, {job, task, stream, offset, nextOffset, finished,
 * text}; a short log is one line, and the last line is where reading stopped.
 */
async function printLogs(api: ApiClient, id: string, task: string, stream: 'stdout' | 'stderr', follow: boolean, asJson: boolean): Promise<void> {
  const path = `${jobPath(id)}/logs`;
  const decoder = new TextDecoder();
  interface Chunk { job: string; task: number; stream: string; offset: number; nextOffset: number; finished: boolean; text: string }
  let held: Chunk | null = null; // JSON: the newest chunk, printed once the next read says whether it is the last
  let printed = 0;
  const emit = async (c: Chunk): Promise<void> => {
    printed++;
    await write(`${JSON.stringify(c)}\n`);
  };
  let offset = 0;
  let finished: boolean;
  for (;;) {
    const res = await api.bytes(`${path}?task=${encodeURIComponent(task)}&stream=${stream}&offset=${offset}`);
    const next = Number(header(res.headers, 'x-tide-next-offset'));
    finished = DONE.has(header(res.headers, 'x-tide-job-state') ?? '');
    const advanced = Number.isSafeInteger(next) && next > offset;
    if (res.bytes.length > 0) {
      if (!asJson) await write(res.bytes);
      else {
        if (held) await emit(held);
        held = { job: id, task: Number(task), stream, offset, nextOffset: advanced ? next : offset, finished, text: decoder.decode(res.bytes, { stream: true }) };
      }
    }
    if (advanced) {
      offset = next;
      continue;
    }
    if (!follow || finished) break;
    if (held) await emit(held);
    held = null;
    await sleep(500);
  }
  if (!asJson) return;
  if (held) await emit({ ...held, finished, text: held.text + decoder.decode() });
  else if (printed === 0 || follow) await emit({ job: id, task: Number(task), stream, offset, nextOffset: offset, finished, text: decoder.decode() });
}

/**
 * `submit --wait` for an array: its counts polled (one request, not one per element) until every
 * element finished; exits 0 only if all succeeded, TIMEOUT_EXIT if those that did not all timed out.
 */
async function waitForArray(api: ApiClient, id: string, table: boolean): Promise<void> {
  for (;;) {
    const { array } = (await api.request<{ array: JobArray }>('GET', arrayPath(id))).body;
    if (array.unfinished === 0) {
      if (table) print(`array ${array.id}: ${describeCounts(array.counts)}`);
      const bad = array.size - array.counts.succeeded;
      if (bad > 0) throw new UserError(`array ${array.id}: ${bad} of ${array.size} jobs did not succeed (${describeCounts(array.counts)})`, bad === array.counts.timeout ? TIMEOUT_EXIT : 1);
      return;
    }
    await sleep(500);
  }
}
