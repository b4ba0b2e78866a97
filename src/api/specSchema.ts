/**
 * The job spec's schema: the one definition that the server (api/spec.ts, through Ajv), the CLI
 * (`tide validate`, `tide submit`) and /openapi.json all use, so the published schema cannot
 * drift from what is accepted. What JSON Schema cannot say (UTF-8 byte sizes of what a task
 * execs, reserved env names, `minReplicas` ≤ `replicas`, fractions of a GPU, quantities like
 * "64Gi", durations, unique group names) is checked after it by parseJobSpec's named checks.
 * Each field's `x-message` is what a user reads when it is wrong (see schemaCheck.ts).
 */
import { Type, type TString } from 'typebox';

export const JOB_KINDS = ['training', 'inference', 'batch'] as const;

/** Names of jobs, queues, groups, job types and GPU models in gpuSpeeds. */
export const NAME_PATTERN = '^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$';
/** Env variable names; `__proto__` cannot be an own key of a plain object, so it is refused. */
export const ENV_NAME_PATTERN = '^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]*$';
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
/** GPU models one task may list, and entries of a job's gpuSpeeds. */
export const MAX_GPU_MODELS = 64;

const DURATION_MESSAGE = 'must be seconds (a number) or a duration like "90s", "30m", "2h30m", "1d" or "HH:MM:SS"';
/** A number: what `Number()` reads from a plain decimal string ("2", " 0.5 ", "1e1"). */
const DECIMAL = '^\\s*(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?\\s*$';
const DURATION = '^\\s*(?:(?:\\d+(?:\\.\\d+)?d)?(?:\\d+(?:\\.\\d+)?h)?(?:\\d+(?:\\.\\d+)?m)?(?:\\d+(?:\\.\\d+)?s)?|(?:\\d+-)?(?:\\d+:)?\\d+:\\d+|\\d+(?:\\.\\d+)?)\\s*$';
const NO_BLANK = '\\S';

const name = (message: string, extra: object = {}): TString => Type.String({ pattern: NAME_PATTERN, 'x-message': message, ...extra });

/** One group of identical tasks (the spec's `tasks[i]`). */
export const TaskGroupSchema = Type.Object(
  {
    name: Type.Optional(name('must be a group name', { default: 'main', description: '1-63 letters, digits, -, _ or .; unique in the job' })),
    replicas: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASKS_PER_JOB, default: 1, 'x-message': `must be an integer from 1 to ${MAX_TASKS_PER_JOB}` })),
    minReplicas: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASKS_PER_JOB, 'x-message': 'must be an integer from 1 to replicas', description: 'elastic gang: the group may start with this many replicas (at most replicas)' })),
    gpus: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 64 }), Type.String({ pattern: DECIMAL })], {
      default: 0,
      'x-message': 'must be a number of GPUs from 0 to 64, or a fraction like 0.5',
      description: 'GPUs per task: whole GPUs (up to 64), or a fraction below 1 in steps of 0.001 (e.g. 0.5); a numeric string is read as its number',
    })),
    gpuModels: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, 'x-message': 'must be a GPU model name (1-64 characters)' }), { maxItems: MAX_GPU_MODELS, 'x-message': 'must be a list of GPU model names', description: 'allowed GPU models; empty: any' })),
    cpu: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\s*[0-9]+(?:\\.[0-9]+)?m?\\s*$' })], {
      default: 1,
      'x-message': 'must be a number of cores or a quantity like "500m"',
      description: 'cores (2.5) or milli-cores ("500m")',
    })),
    memory: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\s*[0-9]+(?:\\.[0-9]+)?(?:[KMGTP]i|[kKMGTP])?\\s*$' })], {
      default: '1Gi',
      'x-message': 'must be a quantity like "64Gi", "512Mi" or "1G", or a number of bytes',
      description: 'bytes, or a quantity with a binary (Ki, Mi, Gi, Ti, Pi) or SI (k, M, G, T, P) suffix',
    })),
    command: Type.Union([Type.String({ pattern: NO_BLANK }), Type.Array(Type.String({ 'x-message': 'must be a string' }), { minItems: 1 })], {
      'x-message': 'required: a shell command string or a non-empty list of strings',
      description: `a shell command string (run with /bin/sh -c), or an argv list; each string at most ${MAX_ARG_BYTES} bytes (UTF-8), no NUL byte; command and env together at most ${MAX_EXEC_BYTES} bytes`,
    }),
    env: Type.Optional(Type.Unsafe<Record<string, string | number | boolean>>({
      type: 'object',
      propertyNames: { pattern: ENV_NAME_PATTERN, 'x-message': 'not a valid variable name' },
      additionalProperties: { type: ['string', 'number', 'boolean'], 'x-message': 'must be a string, number or boolean' },
      maxProperties: MAX_ENV_VARS,
      'x-message': { default: 'must be a map of NAME: value', maxProperties: `{n} variables, at most ${MAX_ENV_VARS}` },
      description: `environment variables (at most ${MAX_ENV_VARS}; values at most ${MAX_ARG_BYTES} bytes; numbers and booleans become strings); TIDE_* and CUDA_VISIBLE_DEVICES are reserved`,
    })),
  },
  { additionalProperties: false, 'x-message': 'must be an object with at least command' },
);

/** The job spec users submit (YAML or JSON). Defaults are filled by parseJobSpec. */
export const JobSpecSchema = Type.Object(
  {
    name: name('required: 1-63 letters, digits, "-", "_" or ".", starting with a letter or digit'),
    queue: Type.Optional(name('must be a queue name', { default: 'default' })),
    priority: Type.Optional(Type.Integer({ minimum: -1_000_000, maximum: 1_000_000, default: 0, 'x-message': 'must be an integer between -1000000 and 1000000', description: 'higher runs first and may preempt lower' })),
    kind: Type.Optional(Type.Enum([...JOB_KINDS], { default: 'batch', 'x-message': `must be one of ${JOB_KINDS.join(', ')}` })),
    preemptible: Type.Optional(Type.Boolean({ 'x-message': 'must be true or false', description: 'default: true except for inference' })),
    checkpoint: Type.Optional(Type.Boolean({ default: false, 'x-message': 'must be true or false', description: 'the job writes to TIDE_CHECKPOINT_DIR and resumes from it' })),
    array: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ARRAY, default: 1, 'x-message': `must be an integer from 1 to ${MAX_ARRAY}`, description: 'batch jobs only: independent copies with TIDE_ARRAY_INDEX' })),
    gracePeriodSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 3600, default: 10, 'x-message': 'must be a number of seconds from 0 to 3600', description: 'SIGTERM to SIGKILL' })),
    clientKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200, 'x-message': 'must be a string of 1-200 characters', description: 'idempotency key (or the Idempotency-Key header)' })),
    timeLimit: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIME_LIMIT_SECONDS }), Type.String({ pattern: DURATION })], {
      'x-message': `${DURATION_MESSAGE}, more than 0 and at most 365 days`,
      description: 'running time over all attempts: seconds, or "30m", "2h", "1d", "HH:MM:SS", "D-HH:MM:SS" (at most 365 days); at the limit the job ends `timeout`',
    })),
    jobType: Type.Optional(name('must be a name: 1-63 letters, digits, "-", "_" or "."', { description: 'label for similar jobs whose run times correct the declared limit; default: the name' })),
    gpuSpeeds: Type.Optional(Type.Unsafe<Record<string, number>>({
      type: 'object',
      propertyNames: { pattern: NAME_PATTERN, 'x-message': 'not a GPU model name' },
      additionalProperties: { type: 'number', minimum: 0, maximum: 1000, 'x-message': 'must be a number from 0 to 1000 (0: cannot run there)' },
      maxProperties: MAX_GPU_MODELS,
      'x-message': { default: 'must be a map of GPU model: relative speed', maxProperties: `{n} GPU models, at most ${MAX_GPU_MODELS}` },
      description: 'relative speed of this job per GPU model (0: cannot run there), over the cluster table',
    })),
    maxPreemptions: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, 'x-message': 'must be an integer from 0 to 1000000', description: 'the most times the scheduler may preempt this job; default: the cluster\'s' })),
    powerCapWatts: Type.Optional(Type.Number({ minimum: 1, maximum: 100_000, 'x-message': 'must be a number of watts from 1 to 100000', description: 'power limit per GPU while the job runs (nvidia-smi -pl; a dry run on simulated GPUs; docs/energy.md)' })),
    tasks: Type.Array(TaskGroupSchema, {
      minItems: 1,
      maxItems: MAX_TASKS_PER_JOB,
      'x-message': { default: 'required: a non-empty list of task groups', maxItems: `{n} task groups, at most ${MAX_TASKS_PER_JOB} tasks per job` },
      description: `task groups; all tasks of a job form one gang (at most ${MAX_TASKS_PER_JOB} tasks in all)`,
    }),
  },
  { additionalProperties: false, 'x-message': 'must be an object with at least name and tasks' },
);

/** Kept for importers of the old hand-written schema: the same object as JobSpecSchema. */
export const JOB_SPEC_SCHEMA = JobSpecSchema;
