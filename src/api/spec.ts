/**
 * The job spec users submit (YAML or JSON) and its validation. Validation never stops at the
 * first problem: it returns every offending field by path (`tasks[0].memory`), so one 400 or one
 * CLI line tells the user everything to fix.
 */
import { parseCpu, parseMemory } from './quantity.ts';

export const JOB_KINDS = ['training', 'inference', 'batch'] as const;
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
}

export type SpecResult = { ok: true; spec: JobSpec; clientKey: string | null } | { ok: false; errors: FieldError[] };

const NAME = /^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,62})$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOP_FIELDS = new Set(['name', 'queue', 'priority', 'kind', 'preemptible', 'checkpoint', 'array', 'tasks', 'gracePeriodSeconds', 'clientKey', 'timeLimit', 'jobType', 'gpuSpeeds', 'maxPreemptions']);
const GROUP_FIELDS = new Set(['name', 'replicas', 'minReplicas', 'gpus', 'gpuModels', 'cpu', 'memory', 'command', 'env']);
/** The longest time limit accepted: 365 days. */
export const MAX_TIME_LIMIT_SECONDS = 365 * 86400;
export const MAX_TASKS_PER_JOB = 1024;
export const MAX_ARRAY = 10_000;
/**
 * What the kernel can exec, with room to spare: Linux refuses one argv or environment string
 * over 128 KiB (MAX_ARG_STRLEN) and argv + envp over about 2 MiB (ARG_MAX, a quarter of the
 * stack limit) with E2BIG. A task's command strings and env values are at most 64 KiB each (in
 * UTF-8 bytes), its env at most 256 names, and all of them together at most 512 KiB, which
 * leaves the rest for what the agent adds (TIDE_* variables and its own environment).
 */
export const MAX_ARG_BYTES = 64 * 1024;
export const MAX_ENV_VARS = 256;
export const MAX_EXEC_BYTES = 512 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates an untrusted value as a job spec, filling defaults. */
export function parseJobSpec(input: unknown): SpecResult {
  const errors: FieldError[] = [];
  const err = (path: string, message: string): void => {
    errors.push({ path, message });
  };
  if (!isObject(input)) return { ok: false, errors: [{ path: '(root)', message: 'must be an object with at least name and tasks' }] };
  for (const k of Object.keys(input)) if (!TOP_FIELDS.has(k)) err(k, 'unknown field');

  const name = input['name'];
  if (typeof name !== 'string' || !NAME.test(name)) err('name', 'required: 1-63 letters, digits, "-", "_" or ".", starting with a letter or digit');
  const queue = input['queue'] ?? 'default';
  if (typeof queue !== 'string' || !NAME.test(queue)) err('queue', 'must be a queue name');
  const priority = input['priority'] ?? 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || Math.abs(priority) > 1_000_000) err('priority', 'must be an integer between -1000000 and 1000000');
  const kind = input['kind'] ?? 'batch';
  if (typeof kind !== 'string' || !(JOB_KINDS as readonly string[]).includes(kind)) err('kind', `must be one of ${JOB_KINDS.join(', ')}`);
  const preemptible = input['preemptible'] ?? kind !== 'inference';
  if (typeof preemptible !== 'boolean') err('preemptible', 'must be true or false');
  const checkpoint = input['checkpoint'] ?? false;
  if (typeof checkpoint !== 'boolean') err('checkpoint', 'must be true or false');
  const array = input['array'] ?? 1;
  if (typeof array !== 'number' || !Number.isInteger(array) || array < 1 || array > MAX_ARRAY) err('array', `must be an integer from 1 to ${MAX_ARRAY}`);
  else if (array > 1 && kind !== 'batch') err('array', 'only batch jobs can be arrays');
  const grace = input['gracePeriodSeconds'] ?? 10;
  if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0 || grace > 3600) err('gracePeriodSeconds', 'must be a number of seconds from 0 to 3600');
  const timeLimit = input['timeLimit'] === undefined ? undefined : parseDuration(input['timeLimit']);
  if (typeof timeLimit === 'string') err('timeLimit', timeLimit);
  const jobType = input['jobType'];
  if (jobType !== undefined && (typeof jobType !== 'string' || !NAME.test(jobType))) err('jobType', 'must be a name: 1-63 letters, digits, "-", "_" or "."');
  const speedsIn = input['gpuSpeeds'];
  const gpuSpeeds: Record<string, number> = {};
  if (speedsIn !== undefined) {
    if (!isObject(speedsIn)) err('gpuSpeeds', 'must be a map of GPU model: relative speed');
    else
      for (const [m, v] of Object.entries(speedsIn)) {
        if (m === '__proto__' || !NAME.test(m)) err(`gpuSpeeds.${m}`, 'not a GPU model name');
        else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1000) err(`gpuSpeeds.${m}`, 'must be a number from 0 to 1000 (0: cannot run there)');
        else gpuSpeeds[m] = v;
      }
  }
  const maxPreemptions = input['maxPreemptions'];
  if (maxPreemptions !== undefined && (typeof maxPreemptions !== 'number' || !Number.isInteger(maxPreemptions) || maxPreemptions < 0 || maxPreemptions > 1_000_000)) err('maxPreemptions', 'must be an integer from 0 to 1000000');
  const clientKey = input['clientKey'] ?? null;
  if (clientKey !== null && (typeof clientKey !== 'string' || clientKey.length === 0 || clientKey.length > 200)) err('clientKey', 'must be a string of 1-200 characters');

  const groups: TaskGroupSpec[] = [];
  const tasks = input['tasks'];
  if (!Array.isArray(tasks) || tasks.length === 0) err('tasks', 'required: a non-empty list of task groups');
  else {
    let total = 0;
    const seen = new Set<string>();
    tasks.forEach((g: unknown, i) => {
      const group = parseGroup(g, `tasks[${i}]`, err);
      if (group) {
        if (seen.has(group.name)) err(`tasks[${i}].name`, `duplicate group name "${group.name}"`);
        seen.add(group.name);
        total += group.replicas;
        groups.push(group);
      }
    });
    if (total > MAX_TASKS_PER_JOB) err('tasks', `at most ${MAX_TASKS_PER_JOB} tasks per job, got ${total}`);
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    clientKey: clientKey as string | null,
    spec: {
      name: name as string,
      queue: queue as string,
      priority: priority as number,
      kind: kind as JobKind,
      preemptible: preemptible as boolean,
      checkpoint: checkpoint as boolean,
      array: array as number,
      groups,
      gracePeriodSeconds: grace as number,
      ...(typeof timeLimit === 'number' ? { timeLimitSeconds: timeLimit } : {}),
      ...(jobType !== undefined ? { jobType: jobType as string } : {}),
      ...(speedsIn !== undefined ? { gpuSpeeds } : {}),
      ...(maxPreemptions !== undefined ? { maxPreemptions: maxPreemptions as number } : {}),
    },
  };
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

function parseGroup(g: unknown, at: string, err: (path: string, message: string) => void): TaskGroupSpec | null {
  if (!isObject(g)) {
    err(at, 'must be an object with at least command');
    return null;
  }
  const before = { count: 0 };
  const e = (path: string, message: string): void => {
    before.count++;
    err(`${at}.${path}`, message);
  };
  for (const k of Object.keys(g)) if (!GROUP_FIELDS.has(k)) e(k, 'unknown field');
  const name = g['name'] ?? 'main';
  if (typeof name !== 'string' || !NAME.test(name)) e('name', 'must be a group name');
  const replicas = g['replicas'] ?? 1;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > MAX_TASKS_PER_JOB) e('replicas', `must be an integer from 1 to ${MAX_TASKS_PER_JOB}`);
  const minReplicas = g['minReplicas'];
  if (minReplicas !== undefined && (typeof minReplicas !== 'number' || !Number.isInteger(minReplicas) || minReplicas < 1 || (typeof replicas === 'number' && minReplicas > replicas))) e('minReplicas', 'must be an integer from 1 to replicas');

  let gpuCount = 0;
  let gpuMilli = 0;
  const gpus = g['gpus'] ?? 0;
  const gpuNumber = typeof gpus === 'string' && gpus.trim() !== '' ? Number(gpus) : gpus;
  if (typeof gpuNumber !== 'number' || !Number.isFinite(gpuNumber) || gpuNumber < 0 || gpuNumber > 64) e('gpus', 'must be a number of GPUs from 0 to 64, or a fraction like 0.5');
  else if (gpuNumber > 0 && gpuNumber < 1) {
    gpuCount = 1;
    gpuMilli = Math.round(gpuNumber * 1000);
    if (gpuMilli === 0 || Math.abs(gpuMilli - gpuNumber * 1000) > 1e-6) e('gpus', 'a fraction must be a multiple of 0.001');
  } else if (!Number.isInteger(gpuNumber)) e('gpus', 'more than one GPU must be a whole number');
  else if (gpuNumber > 0) {
    gpuCount = gpuNumber;
    gpuMilli = 1000;
  }

  const models = g['gpuModels'] ?? [];
  if (!Array.isArray(models) || !models.every((m) => typeof m === 'string' && m.length > 0)) e('gpuModels', 'must be a list of GPU model names');
  const cpu = parseCpu(g['cpu'] ?? 1);
  if (!cpu.ok) e('cpu', cpu.message);
  const memory = parseMemory(g['memory'] ?? '1Gi');
  if (!memory.ok) e('memory', memory.message);

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
  if (typeof cmd === 'string' && cmd.trim() !== '') {
    command = ['/bin/sh', '-c', cmd];
    execString('command', cmd);
  } else if (Array.isArray(cmd) && cmd.length > 0 && cmd.every((c) => typeof c === 'string')) {
    command = cmd as string[];
    command.forEach((c, i) => execString(`command[${i}]`, c));
  } else e('command', 'required: a shell command string or a non-empty list of strings');

  const env: Record<string, string> = {};
  const envIn = g['env'] ?? {};
  if (!isObject(envIn)) e('env', 'must be a map of NAME: value');
  else {
    for (const [k, v] of Object.entries(envIn)) {
      // `__proto__` cannot be an own key of a plain object: it would be dropped (or worse), so refuse it.
      if (!ENV_NAME.test(k) || k === '__proto__') e(`env.${k}`, 'not a valid variable name');
      else if (k.startsWith('TIDE_') || k === 'CUDA_VISIBLE_DEVICES') e(`env.${k}`, 'reserved: set by Tide');
      else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') e(`env.${k}`, 'must be a string, number or boolean');
      else {
        env[k] = String(v);
        execString(`env.${k}`, env[k], `${k}=${env[k]}`);
      }
    }
    const names = Object.keys(envIn).length;
    if (names > MAX_ENV_VARS) e('env', `${names} variables, at most ${MAX_ENV_VARS}`);
  }
  if (execBytes > MAX_EXEC_BYTES) e('command', `command and env take ${execBytes} bytes together, at most ${MAX_EXEC_BYTES}`);
  if (before.count > 0 || !cpu.ok || !memory.ok) return null;
  return {
    name: name as string,
    replicas: replicas as number,
    gpuCount,
    gpuMilli,
    gpuModels: models as string[],
    cpuMilli: cpu.value,
    memoryMib: memory.value,
    command,
    env,
    ...(minReplicas !== undefined && minReplicas !== replicas ? { minReplicas: minReplicas as number } : {}),
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
