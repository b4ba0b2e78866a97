/**
 * The job spec users submit (YAML or JSON) and its validation. Validation never stops at the
 * first problem: it returns every offending field by path (`tasks[0].memory`), so one 400 or one
 * CLI line tells the user everything to fix.
 */
import { parseCpu, parseMemory } from './quantity.ts';

import type { Static } from 'typebox';
import { checkSchema, inSchemaOrder } from './schemaCheck.ts';
import { JOB_KINDS, JobSpecSchema, MAX_ARG_BYTES, MAX_EXEC_BYTES, MAX_TASKS_PER_JOB, MAX_TIME_LIMIT_SECONDS, ServiceSchema, TaskGroupSchema } from './specSchema.ts';
import { AUTOSCALER_NAMES, getAutoscaler } from '../core/tidal/policies/index.ts';

export { JOB_KINDS, MAX_ARG_BYTES, MAX_ARRAY, MAX_ENV_VARS, MAX_EXEC_BYTES, MAX_TASKS_PER_JOB, MAX_TIME_LIMIT_SECONDS } from './specSchema.ts';
export type JobKind = (typeof JOB_KINDS)[number];

export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** One group of identical tasks; all tasks of a job form one gang (placed all or nothing). */
export interface TaskGroupSpec {
  readonly name: string;
  readonly replicas: number;
  /** Number of GPUs each task holds (1 for a fraction). */
  readonly gpuCount: number;
  /** Milli-GPU on each GPU: 1000 for whole GPUs, less for a fraction. */
  readonly gpuMilli: number;
  readonly gpuModels: readonly string[];
  readonly cpuMilli: number;
  readonly memoryMib: number;
  /** argv; a string command in the spec becomes ["/bin/sh", "-c", command]. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Elastic gangs: the group may start with this many replicas (absent: all of them). */
  readonly minReplicas?: number;
}

/**
 * A service (`kind: service`, docs/services.md): replicas of the job's one task group, each a job
 * of its own (`replicaOf`), run until the service is cancelled and scaled by `autoscaler`.
 */
export interface ServiceSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly concurrency: number;
  /** Mean service time of one request (s); null: learned from the replicas' metrics. */
  readonly serviceSeconds: number | null;
  readonly slo: { readonly quantile: number; readonly waitSeconds: number; readonly windowSeconds: number };
  readonly loadSeconds: { readonly median: number; readonly p90: number };
  /** What a planned eviction of a borrower takes before its GPU is free (s). */
  readonly evictSeconds: number;
  /** A scale-down waits until every decision of this window agrees (their highest is kept); 0: at once. */
  readonly scaleDownDelaySeconds: number;
  /** Paths on the replica's own port (TIDE_SERVICE_PORT: a fixed port could name another tenant's process on the node). */
  readonly readiness: { readonly path: string };
  /**
   * `tokens`: a counter of tokens produced, for usage reports (yuan per million tokens); specs
   * stored before it existed lack it (read it with serviceTokensMetric).
   */
  readonly metrics: { readonly path: string; readonly rate: string; readonly queue: string; readonly inFlight: string; readonly serviceTime: string; readonly tokens?: string };
  readonly autoscaler: string;
  readonly options: Readonly<Record<string, number>>;
}

/** p90 ÷ median of a log-normal load time with σ = 0.48 (the tidal benchmark's), for a load time given as its median alone. */
export const LOAD_P90_RATIO = 1.85;

export interface JobSpec {
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly kind: JobKind;
  readonly preemptible: boolean;
  /** Whether the job writes checkpoints to TIDE_CHECKPOINT_DIR and resumes from them. */
  readonly checkpoint: boolean;
  /** Batch arrays: the number of independent copies (1 when not an array). */
  readonly array: number;
  readonly groups: readonly TaskGroupSpec[];
  /** Seconds between SIGTERM and SIGKILL when the job is stopped. */
  readonly gracePeriodSeconds: number;
  /**
   * The declared run-time limit (Slurm's `--time`, Kueue's `maximumExecutionTimeSeconds`): the
   * job's running time over all its attempts; at the limit it is stopped and ends `timeout`.
   */
  readonly timeLimitSeconds?: number;
  /** A label for similar jobs, whose run times correct the declared limit (absent: the job's name). */
  readonly jobType?: string;
  /** Relative speed of this job per GPU model, over the cluster's table (e.g. {H100: 1, A100: 0.5}). */
  readonly gpuSpeeds?: Readonly<Record<string, number>>;
  /** The most times the scheduler may preempt this job (absent: the cluster's default). */
  readonly maxPreemptions?: number;
  /**
   * What happens when all its GPUs stay idle (server/idle/, docs/idle.md): `report`, or `reclaim`
   * (stopped, ends `cancelled`). Absent: the cluster's `idle.action`, report for inference.
   */
  readonly idlePolicy?: 'report' | 'reclaim';
  /** Kind `service`: how its replicas run and scale. */
  readonly service?: ServiceSpec;
  /** Set by the server on a service's replica (never in a user's spec): the service's job id. */
  readonly replicaOf?: string;
  /** Energy: the slowdown accepted for a power cap (a fraction; absent: the cluster's default). */
  readonly maxSlowdown?: number;
  /** Energy: may wait for cheaper or lower-carbon hours, never past `deadlineSeconds`. */
  readonly deferrable?: boolean;
  /** Must be done this many seconds after submission (the core's `deadline` is submission + this). */
  readonly deadlineSeconds?: number;
  /** Power limit per GPU while the job runs (W), applied by the agent (docs/energy.md). */
  readonly powerCapWatts?: number;
}

export type SpecResult = { ok: true; spec: JobSpec; clientKey: string | null } | { ok: false; errors: FieldError[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates an untrusted value as a job spec, filling defaults: first the schema (specSchema.ts,
 * through Ajv), then the named checks JSON Schema cannot express. Every bad field is named once.
 */
export function parseJobSpec(input: unknown): SpecResult {
  if (!isObject(input)) return { ok: false, errors: [{ path: '(root)', message: 'must be an object with at least name and tasks' }] };
  const errors = checkSchema(JobSpecSchema, input);
  const named = namedChecks(input);
  if (errors.length > 0 || named.errors.length > 0) {
    const seen = new Set(errors.map((e) => e.path));
    const all = [...errors, ...named.errors.filter((e) => !seen.has(e.path))];
    return { ok: false, errors: inSchemaOrder(all, JobSpecSchema, input, named.sortAs) };
  }
  const v = input as Static<typeof JobSpecSchema>;
  const kind = (v.kind ?? 'batch') as JobKind;
  return {
    ok: true,
    clientKey: v.clientKey ?? null,
    spec: {
      name: v.name,
      queue: v.queue ?? 'default',
      priority: v.priority ?? 0,
      kind,
      preemptible: v.preemptible ?? (kind !== 'inference' && kind !== 'service'),
      checkpoint: v.checkpoint ?? false,
      array: v.array ?? 1,
      groups: named.groups,
      gracePeriodSeconds: v.gracePeriodSeconds ?? 10,
      ...(typeof named.timeLimit === 'number' ? { timeLimitSeconds: named.timeLimit } : {}),
      ...(v.jobType !== undefined ? { jobType: v.jobType } : {}),
      ...(v.gpuSpeeds !== undefined ? { gpuSpeeds: { ...v.gpuSpeeds } } : {}),
      ...(v.maxPreemptions !== undefined ? { maxPreemptions: v.maxPreemptions } : {}),
      ...(v.idlePolicy !== undefined ? { idlePolicy: v.idlePolicy } : {}),
      ...(v.service !== undefined ? { service: serviceSpec(v.service) } : {}),
      ...(v.maxSlowdown !== undefined ? { maxSlowdown: v.maxSlowdown } : {}),
      ...(v.deferrable !== undefined ? { deferrable: v.deferrable } : {}),
      ...(typeof named.deadline === 'number' ? { deadlineSeconds: named.deadline } : {}),
      ...(v.powerCapWatts !== undefined ? { powerCapWatts: v.powerCapWatts } : {}),
    },
  };
}

/** The service block with its defaults filled (validated already). */
function serviceSpec(v: Static<typeof ServiceSchema>): ServiceSpec {
  const load = v.loadSeconds ?? 30;
  return {
    minReplicas: v.minReplicas ?? 1,
    maxReplicas: v.maxReplicas,
    concurrency: v.concurrency ?? 1,
    serviceSeconds: v.serviceSeconds ?? null,
    slo: { quantile: v.slo?.quantile ?? 0.99, waitSeconds: v.slo?.waitSeconds ?? 5, windowSeconds: v.slo?.windowSeconds ?? 300 },
    loadSeconds: typeof load === 'number' ? { median: load, p90: load * LOAD_P90_RATIO } : { median: load.median, p90: load.p90 },
    evictSeconds: v.evictSeconds ?? 30,
    scaleDownDelaySeconds: v.scaleDownDelaySeconds ?? 0,
    readiness: { path: v.readiness?.path ?? '/healthz' },
    metrics: {
      path: v.metrics?.path ?? '/metrics',
      rate: v.metrics?.rate ?? 'tide_requests_total',
      queue: v.metrics?.queue ?? 'tide_queue_length',
      inFlight: v.metrics?.inFlight ?? 'tide_requests_in_flight',
      serviceTime: v.metrics?.serviceTime ?? 'tide_request_service_seconds',
      tokens: v.metrics?.tokens ?? DEFAULT_TOKENS_METRIC,
    },
    autoscaler: v.autoscaler ?? DEFAULT_AUTOSCALER,
    options: { ...(v.options ?? {}) },
  };
}

/** The tokens counter a service's replicas are read for when its spec names none. */
export const DEFAULT_TOKENS_METRIC = 'tide_tokens_total';
/** The name of a service's tokens counter (specs stored before it existed have none: the default). */
export const serviceTokensMetric = (s: ServiceSpec): string => s.metrics.tokens ?? DEFAULT_TOKENS_METRIC;

/**
 * The autoscaler of a service that names none: `tide` (docs/results.md "With history": live on
 * curve A it met 98.6 % of SLO windows against reactive's 72.2 %, reclaiming by plan). Without
 * history it keeps the whole pool for its first day, then plans from what it learned.
 */
export const DEFAULT_AUTOSCALER = 'tide';

/** A service's checks JSON Schema cannot make (each only where the schema accepted the field's type). */
function serviceChecks(input: Record<string, unknown>, err: (path: string, message: string) => void): void {
  const kind = input['kind'] ?? 'batch';
  const service = input['service'];
  if (kind !== 'service') {
    if (service !== undefined) err('service', 'only for kind service');
    return;
  }
  if (!isObject(service)) {
    if (service === undefined) err('service', 'required for kind service: {maxReplicas, …}');
    return;
  }
  const tasks = input['tasks'];
  if (Array.isArray(tasks)) {
    if (tasks.length > 1) err('tasks', 'a service has one task group: its replica');
    const g = tasks[0];
    if (isObject(g)) {
      if (g['replicas'] !== undefined && g['replicas'] !== 1) err('tasks[0].replicas', "a service's replicas are set by service.minReplicas and service.maxReplicas");
      if (g['minReplicas'] !== undefined) err('tasks[0].minReplicas', "a service's replicas are set by service.minReplicas and service.maxReplicas");
    }
  }
  if (input['timeLimit'] !== undefined) err('timeLimit', 'a service runs until it is cancelled: no time limit');
  if (input['preemptible'] === true) err('preemptible', 'a service is never preempted: its autoscaler starts and stops its replicas');
  const min = service['minReplicas'] ?? 1;
  const max = service['maxReplicas'];
  if (typeof min === 'number' && typeof max === 'number' && Number.isInteger(min) && Number.isInteger(max) && max < min) err('service.maxReplicas', `must be at least minReplicas (${min})`);
  const load = service['loadSeconds'];
  if (isObject(load) && typeof load['median'] === 'number' && typeof load['p90'] === 'number' && load['p90'] < load['median']) err('service.loadSeconds.p90', 'must be at least the median');
  const scaler = service['autoscaler'];
  if (typeof scaler === 'string' && getAutoscaler(scaler) === undefined) err('service.autoscaler', `unknown autoscaler "${scaler.slice(0, 64)}" (known: ${AUTOSCALER_NAMES.join(', ')})`);
}

/**
 * What the schema cannot say, checked on the raw input (each check only where the field has the
 * type the schema wants, so a field the schema refused is not named twice), and the groups
 * normalised (used only when there is no error at all).
 */
function namedChecks(input: Record<string, unknown>): { errors: FieldError[]; groups: TaskGroupSpec[]; timeLimit: number | string | undefined; deadline: number | string | undefined; sortAs: Map<FieldError, string> } {
  const errors: FieldError[] = [];
  const sortAs = new Map<FieldError, string>();
  const err = (path: string, message: string, after?: string): void => {
    const e = { path, message };
    errors.push(e);
    if (after !== undefined) sortAs.set(e, after);
  };
  const array = input['array'];
  if (typeof array === 'number' && array > 1 && (input['kind'] ?? 'batch') !== 'batch') err('array', 'only batch jobs can be arrays');
  serviceChecks(input, err);
  const tl = input['timeLimit'];
  const timeLimit = typeof tl === 'number' || typeof tl === 'string' ? parseDuration(tl) : undefined;
  if (typeof timeLimit === 'string') err('timeLimit', timeLimit);
  const dl = input['deadline'];
  const deadline = typeof dl === 'number' || typeof dl === 'string' ? parseDuration(dl) : undefined;
  if (typeof deadline === 'string') err('deadline', deadline);
  const groups: TaskGroupSpec[] = [];
  const tasks = input['tasks'];
  if (Array.isArray(tasks)) {
    let total = 0;
    const seen = new Set<string>();
    tasks.forEach((g: unknown, i) => {
      if (!isObject(g)) return;
      const group = checkGroup(g, `tasks[${i}]`, err);
      const name = g['name'] ?? 'main';
      if (typeof name === 'string') {
        if (seen.has(name)) err(`tasks[${i}].name`, `duplicate group name "${name}"`);
        seen.add(name);
      }
      const replicas = g['replicas'] ?? 1;
      if (typeof replicas === 'number') total += replicas;
      if (group) groups.push(group);
    });
    if (total > MAX_TASKS_PER_JOB) err('tasks', `at most ${MAX_TASKS_PER_JOB} tasks per job, got ${total}`);
  }
  return { errors, groups, timeLimit, deadline, sortAs };
}

/**
 * A duration in seconds: a number of seconds, or a string like "90s", "30m", "2h", "1h30m",
 * "1d", Slurm's "MM:SS", "HH:MM:SS" or "D-HH:MM:SS". Returns the message when it is not one.
 */
export function parseDuration(v: unknown): number | string {
  const bad = 'must be seconds (a number) or a duration like "90s", "30m", "2h30m", "1d" or "HH:MM:SS"';
  let seconds: number;
  if (typeof v === 'number') seconds = v;
  else if (typeof v !== 'string') return bad;
  else {
    const t = v.trim();
    const units = /^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(t);
    const clock = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(t);
    if (t !== '' && units) seconds = Number(units[1] ?? 0) * 86400 + Number(units[2] ?? 0) * 3600 + Number(units[3] ?? 0) * 60 + Number(units[4] ?? 0);
    else if (clock) seconds = Number(clock[1] ?? 0) * 86400 + Number(clock[2] ?? 0) * 3600 + Number(clock[3]) * 60 + Number(clock[4]);
    else if (t !== '' && Number.isFinite(Number(t))) seconds = Number(t);
    else return bad;
  }
  if (!Number.isFinite(seconds) || seconds <= 0) return 'must be more than 0 seconds';
  if (seconds > MAX_TIME_LIMIT_SECONDS) return `at most ${MAX_TIME_LIMIT_SECONDS} seconds (365 days)`;
  return seconds;
}

/** A group's named checks (GPU fractions, minReplicas, quantities, exec sizes, reserved env), and the group normalised. */
function checkGroup(g: Record<string, unknown>, at: string, err: (path: string, message: string, after?: string) => void): TaskGroupSpec | null {
  let bad = 0;
  const e = (path: string, message: string, after?: string): void => {
    bad++;
    err(`${at}.${path}`, message, after === undefined ? undefined : `${at}.${after}`);
  };
  const replicas = g['replicas'] ?? 1;
  const minReplicas = g['minReplicas'];
  if (typeof minReplicas === 'number' && typeof replicas === 'number' && minReplicas > replicas) e('minReplicas', 'must be an integer from 1 to replicas');

  let gpuCount = 0;
  let gpuMilli = 0;
  const gpus = g['gpus'] ?? 0;
  const gpuNumber = typeof gpus === 'string' ? Number(gpus) : gpus;
  if (typeof gpuNumber !== 'number' || !Number.isFinite(gpuNumber)) bad++; // the schema names it
  else if (gpuNumber < 0 || gpuNumber > 64) e('gpus', 'must be a number of GPUs from 0 to 64, or a fraction like 0.5');
  else if (gpuNumber > 0 && gpuNumber < 1) {
    gpuCount = 1;
    gpuMilli = Math.round(gpuNumber * 1000);
    if (gpuMilli === 0 || Math.abs(gpuMilli - gpuNumber * 1000) > 1e-6) e('gpus', 'a fraction must be a multiple of 0.001');
  } else if (!Number.isInteger(gpuNumber)) e('gpus', 'more than one GPU must be a whole number');
  else if (gpuNumber > 0) {
    gpuCount = gpuNumber;
    gpuMilli = 1000;
  }

  const cpuIn = g['cpu'] ?? 1;
  const cpu = typeof cpuIn === 'number' || typeof cpuIn === 'string' ? parseCpu(cpuIn) : null;
  if (cpu && !cpu.ok) e('cpu', cpu.message);
  const memoryIn = g['memory'] ?? '1Gi';
  const memory = typeof memoryIn === 'number' || typeof memoryIn === 'string' ? parseMemory(memoryIn) : null;
  if (memory && !memory.ok) e('memory', memory.message);

  let command: string[] = [];
  let execBytes = 0;
  /** Counts a string the kernel will copy on exec (with its NUL); names it when it is too long. */
  const execString = (path: string, text: string, counted = text): void => {
    const bytes = Buffer.byteLength(text);
    execBytes += Buffer.byteLength(counted) + 1;
    if (text.includes('\0')) e(path, 'must not contain a NUL byte');
    else if (bytes > MAX_ARG_BYTES) e(path, `${bytes} bytes, at most ${MAX_ARG_BYTES}`);
  };
  const cmd = g['command'];
  if (typeof cmd === 'string') {
    command = ['/bin/sh', '-c', cmd];
    execString('command', cmd);
  } else if (Array.isArray(cmd) && cmd.every((c) => typeof c === 'string')) {
    command = cmd as string[];
    command.forEach((c, i) => execString(`command[${i}]`, c));
  }

  const env: Record<string, string> = {};
  const envIn = g['env'] ?? {};
  if (isObject(envIn)) {
    for (const [k, v] of Object.entries(envIn)) {
      if (k === '__proto__') continue; // the schema names it; it cannot be an own key of `env`
      if (k.startsWith('TIDE_') || k === 'CUDA_VISIBLE_DEVICES') e(`env.${k}`, 'reserved: set by Tide');
      else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
        env[k] = String(v);
        execString(`env.${k}`, env[k], `${k}=${env[k]}`);
      }
    }
  }
  if (execBytes > MAX_EXEC_BYTES) e('command', `command and env take ${execBytes} bytes together, at most ${MAX_EXEC_BYTES}`, '~end');
  if (bad > 0 || !cpu?.ok || !memory?.ok) return null;
  const v = g as Static<typeof TaskGroupSchema>;
  return {
    name: v.name ?? 'main',
    replicas: v.replicas ?? 1,
    gpuCount,
    gpuMilli,
    gpuModels: v.gpuModels ?? [],
    cpuMilli: cpu.value,
    memoryMib: memory.value,
    command,
    env,
    ...(v.minReplicas !== undefined && v.minReplicas !== v.replicas ? { minReplicas: v.minReplicas } : {}),
  };
}

/** Total tasks of a job (over its groups). */
export function taskCount(spec: JobSpec): number {
  return spec.groups.reduce((n, g) => n + g.replicas, 0);
}

/** Total GPUs a job asks for, in milli-GPU. */
export function jobGpuMilli(spec: JobSpec): number {
  return spec.groups.reduce((n, g) => n + g.replicas * g.gpuCount * g.gpuMilli, 0);
}
