/**
 * A live run of a bench workload: a real `tide server` (SQLite in a temp dir) and three real
 * `tide agent` processes with simulated GPUs of different models, started as child processes
 * on 127.0.0.1; each job is submitted through the HTTP API with its tenant's token at its
 * (compressed) arrival time and runs examples/workload/trainer.mjs as real processes. When all
 * jobs have ended, each job's submit (createdAt), first start (its first `job:admitted` event:
 * the bind, as in the simulator) and end (finishedAt) are read back.
 *
 * The cluster config carries the tenants, queues, quotas and one cohort. Keys that a server may
 * not know yet (`gpuSpeeds`, `scheduling`, a queue's `cohort`) are tried first; a server that
 * refuses that config is restarted with the basic one (and the run says so, with the reason).
 * The scheduler, placement and their options are always passed as flags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_CPUS, NODE_MEMORY_GIB, schedulerOptions, TASK_CPUS, TASK_MEMORY_MIB, type JobTimes, type LiveCalibration, type SchedulerChoice } from './simTwin.ts';
import { totalSteps, type Workload, type WorkloadJob } from './workload.ts';
import { callJson } from '../../util/httpJson.ts';
import { exitAfterOutput } from '../../util/childExit.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TIDE = join(ROOT, 'bin', 'tide.js');
export const TRAINER = join(ROOT, 'examples', 'workload', 'trainer.mjs');
const ADMIN_TOKEN = 'bench-live-admin-token';
const AGENT_TOKEN = 'bench-live-agent-token';
const tenantToken = (tenant: string): string => `bench-live-${tenant}-token`;
/** States a job may leave; any other is an end (succeeded, failed, cancelled, timeout, …). */
const OPEN_STATES = new Set(['pending', 'admitted', 'running', 'preempted']);

export interface LiveRunOptions {
  /** Scheduling loop period of the server (ms). */
  readonly tickMs?: number;
  /** Agents' heartbeat period (ms). */
  readonly heartbeatMs?: number;
  /** Keep the temp dir (logs, database) instead of removing it. */
  readonly keep?: boolean;
  /** Called about once a second. */
  readonly onProgress?: (p: { submitted: number; ended: number; total: number; running: number; elapsed: number }) => void;
  /** Lines about what the run does (config fallback, where its files are). */
  readonly log?: (line: string) => void;
}

export interface LiveRunResult {
  readonly jobs: readonly JobTimes[];
  readonly makespan: number;
  /** Seconds the whole run took (start of submissions to the last end). */
  readonly wallSeconds: number;
  /** Whether the server took the full config (gpuSpeeds, scheduling, cohort) or the basic one. */
  readonly config: 'full' | 'basic';
  /** What the probes measured before the workload (the simulated twin uses it). */
  readonly calibration: LiveCalibration;
  /**
   * The probes' measure over the workload's jobs that ran once to the end (a diagnostic: it
   * shows how much slower the machine was during the run than when probed; the twin never reads it).
   */
  readonly observedOverheadSeconds: number | null;
  /** Whether some job ended `timeout`: the server enforces time limits. */
  readonly timeLimitsEnforced: boolean;
  /** The temp dir, when kept. */
  readonly dir: string | null;
}

/** How long the server and the agents may take to come up (a loaded machine starting tsx is slow). */
const STARTUP_MS = 180_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The servers and agents this process started and has not stopped yet. */
const started = new Set<Child>();
let signalsHooked = false;

/**
 * On Ctrl-C or SIGTERM, stops every server and agent the bench started (an agent stops its
 * tasks when it is stopped) before exiting, so an interrupted bench leaves nothing running.
 */
function stopChildrenOnSignal(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const stops = [...started].map((c) => c.stop());
      void Promise.race([Promise.all(stops), sleep(15_000)]).then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

class Child {
  output = '';
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    stopChildrenOnSignal();
    started.add(this);
    child.on('exit', () => started.delete(this));
    const keep = (d: Buffer): void => {
      this.output += d.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = exitAfterOutput(child);
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

function tide(name: string, args: readonly string[]): Child {
  return new Child(name, spawn(process.execPath, [TIDE, ...args], { cwd: ROOT, env: { ...process.env, TIDE_FROM_SOURCES: process.env['TIDE_FROM_SOURCES'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The fields of the API's Job and JobEvent this runner reads. */
interface ApiJob {
  readonly id: string;
  readonly state: string;
  readonly createdAt: number;
  readonly finishedAt: number | null;
}
interface ApiEvent {
  readonly type: string;
  readonly jobId: string | null;
  readonly at: number;
  readonly message: string | null;
}

class Api {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}
  async req<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
    const r = await callJson(this.base, method, path, { token: this.token, body, timeoutMs: 30_000 });
    return { status: r.status, json: r.json as T };
  }
  /** Every item of a paged list (`{<key>, next}`). */
  async all<T>(path: string, key: string): Promise<T[]> {
    const out: T[] = [];
    for (let next: string | null = null; ; ) {
      const sep = path.includes('?') ? '&' : '?';
      const r: { status: number; json: Record<string, unknown> } = await this.req('GET', `${path}${sep}limit=1000${next === null ? '' : `&after=${next}`}`);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      out.push(...(r.json[key] as T[]));
      next = (r.json['next'] as string | null | undefined) ?? null;
      if (next === null) return out;
    }
  }
}

/** The cluster config YAML (JSON is YAML); `full` adds the keys newer servers know. */
export function clusterConfig(w: Workload, full: boolean): string {
  const p = w.params;
  const doc: Record<string, unknown> = {
    adminToken: ADMIN_TOKEN,
    agentToken: AGENT_TOKEN,
    tenants: w.tenants.map((t) => ({ name: t, tokens: [tenantToken(t)] })),
    queues: w.tenants.map((t) => ({ name: t, gpuQuota: w.quotas[t], tenants: [t], ...(full ? { cohort: 'research' } : {}) })),
  };
  if (full) {
    doc['gpuSpeeds'] = w.speeds;
    doc['scheduling'] = { restartSeconds: p.restartSeconds, minRunSeconds: p.minRunSeconds, maxPreemptions: p.maxPreemptions, usageHalfLifeHours: p.usageHalfLifeSeconds / 3600 };
  }
  return JSON.stringify(doc, null, 2) + '\n';
}

/** The job as the API takes it: the trainer with the job's steps, on any model. */
export function apiJobSpec(j: WorkloadJob, w: Workload): Record<string, unknown> {
  const p = w.params;
  return {
    name: j.name,
    queue: j.queue,
    priority: j.priority,
    kind: 'training',
    preemptible: j.preemptible,
    checkpoint: true,
    gracePeriodSeconds: 5,
    timeLimit: j.timeLimitSeconds,
    jobType: j.jobType,
    gpuSpeeds: w.speeds,
    tasks: [
      {
        name: 'worker',
        replicas: j.replicas,
        gpus: j.gpusPerTask,
        cpu: TASK_CPUS,
        memory: `${TASK_MEMORY_MIB}Mi`,
        command: [process.execPath, TRAINER, '--steps', String(totalSteps(j, p)), '--rate', String(p.stepsPerSecond), '--checkpoint-every', String(p.checkpointSeconds), '--load-seconds', String(p.loadSeconds)],
        env: trainerEnv(w),
      },
    ],
  };
}

async function startServer(dir: string, w: Workload, choice: SchedulerChoice, tickMs: number, full: boolean): Promise<{ proc: Child; url: string } | { refused: string }> {
  const config = join(dir, full ? 'cluster-full.yaml' : 'cluster.yaml');
  writeFileSync(config, clusterConfig(w, full));
  const port = await freePort();
  const options = Object.entries(schedulerOptions(w)).flatMap(([k, v]) => ['--scheduler-option', `${k}=${v}`]);
  const dataDir = join(dir, full ? 'server' : 'server-basic');
  const proc = tide('server', ['server', '--port', String(port), '--data-dir', dataDir, '--config', config, '--scheduler', choice.scheduler, '--placement', choice.placement, ...options, '--tick-ms', String(tickMs), '--node-lease-ms', '30000']);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    if (!proc.alive) {
      await proc.exited;
      // A server that refuses the newer keys (unknown, or values it reads otherwise) names the file.
      if (full && proc.output.includes(config)) return { refused: proc.output.trim().split('\n').pop() ?? '' };
      throw new Error(`tide server exited: ${proc.output.trim()}`);
    }
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { proc, url };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`tide server did not answer on ${url} within ${STARTUP_MS / 1000} s: ${proc.output.trim()}`);
    }
    await sleep(200);
  }
}

/** Seconds of work of each probe job on an H100. */
const PROBE_WORK_SECONDS = 2;
/** Rounds of probes (one job per node each, at once); the median of all of them is taken. */
const PROBE_ROUNDS = 2;

/**
 * Before the workload: rounds of small jobs, one pinned to each node's model, to measure what
 * a run costs beyond its work (admitted → ended, less the work at the model's speed). The
 * median, so that one slow moment on a shared machine does not set it. (Probes that fill the
 * cluster at once measured the burst of 20 process starts, 4.4 s, where the run itself saw
 * 1.6 s; one per node measured 1.45 s.)
 */
async function calibrate(admin: Api, api: Api, w: Workload): Promise<LiveCalibration> {
  const p = w.params;
  const steps = Math.round(PROBE_WORK_SECONDS * p.stepsPerSecond);
  const extra: number[] = [];
  let last = 0;
  for (let round = 0; round < PROBE_ROUNDS; round++) {
    const ids: { id: string; model: string }[] = [];
    for (const n of w.nodes) {
      const spec = {
        name: `probe-${n.name}`,
        queue: w.tenants[0],
        preemptible: false,
        checkpoint: true,
        tasks: [{ name: 'worker', gpus: 1, gpuModels: [n.model], cpu: TASK_CPUS, memory: `${TASK_MEMORY_MIB}Mi`, command: [process.execPath, TRAINER, '--steps', String(steps), '--rate', String(p.stepsPerSecond)], env: trainerEnv(w) }],
      };
      const r = await api.req<{ jobs: { id: string }[] }>('POST', '/v1/jobs', spec);
      const id = r.json.jobs?.[0]?.id;
      if ((r.status !== 201 && r.status !== 200) || id === undefined) throw new Error(`submitting probe job for ${n.name}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
      ids.push({ id: String(id), model: n.model });
      last = Number(id);
    }
    const deadline = Date.now() + 120_000;
    for (;;) {
      await sleep(250);
      const mine = (await admin.all<ApiJob>('/v1/jobs', 'jobs')).filter((j) => ids.some((x) => x.id === String(j.id)));
      if (mine.length === ids.length && mine.every((j) => !OPEN_STATES.has(j.state))) {
        const bad = mine.find((j) => j.state !== 'succeeded');
        if (bad) throw new Error(`probe job ${bad.id} ended ${bad.state}`);
        const events = await admin.all<ApiEvent>('/v1/events', 'events');
        for (const x of ids) {
          const admitted = events.find((e) => e.type === 'job:admitted' && String(e.jobId) === x.id)?.at;
          const job = mine.find((j) => String(j.id) === x.id) as ApiJob;
          if (admitted === undefined || job.finishedAt === null) throw new Error(`probe job ${x.id} has no admission or end`);
          extra.push((job.finishedAt - admitted) / 1000 - steps / (p.stepsPerSecond * (w.speeds[x.model] ?? 1)));
        }
        break;
      }
      if (Date.now() > deadline) throw new Error('probe jobs did not finish within 120 s');
    }
  }
  extra.sort((a, b) => a - b);
  const mid = extra.length >> 1;
  const median = extra.length % 2 === 1 ? (extra[mid] as number) : ((extra[mid - 1] as number) + (extra[mid] as number)) / 2;
  return { startOverheadSeconds: Math.max(0, median), idOffset: Number.isSafeInteger(last) ? last : extra.length };
}

/** The trainer's environment: speeds per model, and each node's model for agents that do not set TIDE_GPU_MODEL. */
function trainerEnv(w: Workload): Record<string, string> {
  return {
    TRAINER_GPU_SPEEDS: Object.entries(w.speeds).map(([m, s]) => `${m}=${s}`).join(','),
    TRAINER_NODE_MODELS: w.nodes.map((n) => `${n.name}=${n.model}`).join(','),
  };
}

/** Runs the workload on a live cluster with this scheduler and placement. */
export async function runLive(w: Workload, choice: SchedulerChoice, o: LiveRunOptions = {}): Promise<LiveRunResult> {
  const dir = mkdtempSync(join(tmpdir(), `tide-bench-live-${choice.scheduler}-`));
  const log = o.log ?? ((): void => {});
  const children: Child[] = [];
  let ok = false;
  try {
    let started = await startServer(dir, w, choice, o.tickMs ?? 100, true);
    let config: 'full' | 'basic' = 'full';
    if ('refused' in started) {
      log(`this server refuses the full config (${started.refused.replace(/^.*?tide: /, '')}); using the basic config (no gpuSpeeds, scheduling or cohort)`);
      started = await startServer(dir, w, choice, o.tickMs ?? 100, false);
      config = 'basic';
      if ('refused' in started) throw new Error(`tide server refused the basic config: ${started.refused}`);
    }
    const server = started.proc;
    children.push(server);
    const admin = new Api(started.url, ADMIN_TOKEN);
    for (const n of w.nodes) {
      const agentDir = join(dir, `agent-${n.name}`);
      mkdirSync(agentDir, { recursive: true });
      children.push(
        tide(`agent ${n.name}`, [
          'agent', '--server', started.url, '--token', AGENT_TOKEN, '--name', n.name, '--gpus', `${n.gpus}x${n.model}`, '--simulate',
          '--data-dir', agentDir, '--checkpoint-root', join(dir, 'checkpoints'), '--heartbeat-ms', String(o.heartbeatMs ?? 250),
          '--cpus', String(NODE_CPUS), '--memory-gib', String(NODE_MEMORY_GIB),
        ]),
      );
    }
    const agentsUp = Date.now() + STARTUP_MS;
    for (;;) {
      const dead = children.find((c) => !c.alive);
      if (dead) throw new Error(`${dead.name} exited: ${dead.output.trim()}`);
      const r = await admin.req<{ nodes: { id: string; state: string }[] }>('GET', '/v1/nodes');
      const ready = r.status === 200 ? r.json.nodes.filter((n) => n.state === 'ready').length : 0;
      if (ready === w.nodes.length) break;
      if (Date.now() > agentsUp) throw new Error(`only ${ready} of ${w.nodes.length} agents registered within ${STARTUP_MS / 1000} s`);
      await sleep(200);
    }
    const apis = new Map(w.tenants.map((t) => [t, new Api(started.url, tenantToken(t))]));
    const calibration = await calibrate(admin, apis.get(w.tenants[0] as string) as Api, w);
    log(`${choice.scheduler}: a run holds its GPUs ${calibration.startOverheadSeconds.toFixed(2)} s beyond its work (median of ${PROBE_ROUNDS * w.nodes.length} probes: admitted → ended, less the work)`);
    const ids: (string | undefined)[] = [];
    const t0 = Date.now();
    let submitted = 0;
    let submitError: Error | null = null;
    // Submissions run on their own timeline; a slow answer delays later jobs, never reorders them.
    const submitting = (async () => {
      for (const j of w.jobs) {
        const wait = t0 + j.arrival * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        const api = apis.get(j.tenant) as Api;
        const r = await api.req<{ jobs: { id: string }[] }>('POST', '/v1/jobs', apiJobSpec(j, w));
        if (r.status !== 201 && r.status !== 200) throw new Error(`submitting ${j.name}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
        ids[j.index] = r.json.jobs[0]?.id;
        submitted++;
      }
    })().catch((e: Error) => {
      submitError = e;
    });
    const lastArrival = w.jobs.reduce((m, j) => Math.max(m, j.arrival), 0);
    const work = w.jobs.reduce((s, j) => s + j.workSeconds * j.replicas * Math.max(1, j.gpusPerTask), 0);
    const capacity = w.nodes.reduce((s, n) => s + n.gpus * (w.speeds[n.model] ?? 1), 0);
    // A bound on a run gone wrong, far above any healthy one.
    const deadline = t0 + (lastArrival + (4 * work) / capacity + 300) * 1000;
    let ended = 0;
    for (;;) {
      await sleep(1000);
      if (submitError) throw submitError;
      const dead = children.find((c) => !c.alive);
      if (dead) throw new Error(`${dead.name} exited during the run: ${dead.output.trim().split('\n').slice(-5).join(' | ')}`);
      const mine = new Set(ids.filter((id): id is string => id !== undefined).map(String));
      const jobs = (await admin.all<ApiJob>('/v1/jobs', 'jobs')).filter((j) => mine.has(String(j.id)));
      ended = jobs.filter((j) => !OPEN_STATES.has(j.state)).length;
      const running = jobs.filter((j) => j.state === 'running' || j.state === 'admitted').length;
      o.onProgress?.({ submitted, ended, total: w.jobs.length, running, elapsed: (Date.now() - t0) / 1000 });
      if (submitted === w.jobs.length && ended === w.jobs.length) break;
      if (Date.now() > deadline) throw new Error(`live run (${choice.scheduler}) did not finish in time: ${ended} of ${w.jobs.length} jobs ended, ${submitted} submitted`);
    }
    await submitting;
    const jobs = await admin.all<ApiJob>('/v1/jobs', 'jobs');
    const events = await admin.all<ApiEvent>('/v1/events', 'events');
    const byId = new Map(jobs.map((j) => [String(j.id), j]));
    const firstAdmit = new Map<string, number>();
    const requeues = new Map<string, number>();
    for (const e of events) {
      const id = e.jobId === null ? null : String(e.jobId);
      if (id === null) continue;
      if (e.type === 'job:admitted' && !firstAdmit.has(id)) firstAdmit.set(id, e.at);
      if (e.type === 'job:requeued') requeues.set(id, (requeues.get(id) ?? 0) + 1);
    }
    const nodeModel = new Map(w.nodes.map((n) => [n.name, n.model]));
    const models = new Map<string, string>();
    for (const e of events) {
      if (e.type !== 'job:admitted' || e.jobId === null) continue;
      const m = /→([^[\s]+)/.exec(String(e.message ?? ''));
      const model = m ? nodeModel.get(m[1] as string) : undefined;
      if (model) models.set(String(e.jobId), model);
    }
    const sec = (ms: number | null | undefined): number | null => (typeof ms === 'number' ? (ms - t0) / 1000 : null);
    const times = w.jobs.map((j): JobTimes => {
      const id = ids[j.index];
      const job = id === undefined ? undefined : byId.get(String(id));
      if (!job) throw new Error(`job ${j.name} (id ${id ?? '?'}) is not in the server's list`);
      return {
        index: j.index,
        name: j.name,
        submit: sec(job.createdAt) as number,
        start: sec(firstAdmit.get(String(id)) ?? null),
        end: sec(job.finishedAt),
        state: String(job.state),
        preemptions: requeues.get(String(id)) ?? 0,
        model: models.get(String(id)) ?? null,
      };
    });
    const makespan = Math.max(0, ...times.map((t) => t.end ?? 0));
    // The same measure as the probes', over the workload's own jobs that ran once to the end.
    const extra = times.flatMap((t) => {
      const j = w.jobs[t.index] as WorkloadJob;
      if (t.state !== 'succeeded' || t.preemptions > 0 || t.start === null || t.end === null || t.model === null) return [];
      return [t.end - t.start - j.workSeconds / (w.speeds[t.model] ?? 1)];
    });
    const observedOverheadSeconds = extra.length === 0 ? null : extra.reduce((a, b) => a + b, 0) / extra.length;
    ok = true;
    return { jobs: times, makespan, wallSeconds: (Date.now() - t0) / 1000, config, calibration, observedOverheadSeconds, timeLimitsEnforced: times.some((t) => t.state === 'timeout'), dir: o.keep ? dir : null };
  } finally {
    // Agents first (they stop their tasks), then the server.
    for (const c of [...children].reverse()) await c.stop();
    if (!o.keep && ok) rmSync(dir, { recursive: true, force: true });
    else log(`live run files kept in ${dir}`);
  }
}
