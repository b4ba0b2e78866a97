/**
 * The job spec's schema: the one definition that the server (api/spec.ts, through Ajv), the CLI
 * (`tide validate`, `tide submit`) and /openapi.json all use, so the published schema cannot
 * drift from what is accepted. What JSON Schema cannot say (UTF-8 byte sizes of what a task
 * execs, reserved env names, `minReplicas` ≤ `replicas`, fractions of a GPU, quantities like
 * "64Gi", durations, unique group names) is checked after it by parseJobSpec's named checks.
 * Each field's `x-message` is what a user reads when it is wrong (see schemaCheck.ts).
 */
import { Type, type TString } from 'typebox';

export const JOB_KINDS = ['training', 'inference', 'batch', 'service'] as const;

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

/** A Prometheus metric name (the exposition format's rule). */
export const METRIC_NAME_PATTERN = '^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$';
/** An HTTP path the server may GET on a replica: absolute, plain characters, no "..", query or fragment. */
export const HTTP_PATH_PATTERN = '^/(?!.*\\.\\.)(?!/)[A-Za-z0-9._~/-]{0,200}$';
/** The most replicas one service may have (each replica is a job of one task). */
export const MAX_SERVICE_REPLICAS = 1024;

const seconds = (max: number, message: string, extra: object = {}) => Type.Number({ exclusiveMinimum: 0, maximum: max, 'x-message': message, ...extra });
const metricName = (fallback: string, what: string) => Type.Optional(Type.String({ pattern: METRIC_NAME_PATTERN, default: fallback, 'x-message': 'must be a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)', description: what }));

/**
 * A service (`kind: service`): replicas of the job's one task group, run until the service is
 * cancelled, scaled by an autoscaler on the SLO from metrics scraped off each replica.
 */
export const ServiceSchema = Type.Object(
  {
    minReplicas: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SERVICE_REPLICAS, default: 1, 'x-message': `must be an integer from 1 to ${MAX_SERVICE_REPLICAS}`, description: 'replicas always running' })),
    maxReplicas: Type.Integer({ minimum: 1, maximum: MAX_SERVICE_REPLICAS, 'x-message': { default: `must be an integer from minReplicas to ${MAX_SERVICE_REPLICAS}`, required: `required: an integer from minReplicas to ${MAX_SERVICE_REPLICAS}` }, description: "replicas never exceeded: the service's GPU pool" }),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1, 'x-message': 'must be an integer from 1 to 100000', description: 'requests one replica serves at once (Ray Serve max_ongoing_requests)' })),
    serviceSeconds: Type.Optional(seconds(86_400, 'must be a number of seconds above 0, at most 86400', { description: 'mean time one request occupies a slot; absent: learned from the replicas\' metrics' })),
    slo: Type.Optional(Type.Object(
      {
        quantile: Type.Optional(Type.Number({ minimum: 0.5, maximum: 0.99999, default: 0.99, 'x-message': 'must be a number from 0.5 to 0.99999' })),
        waitSeconds: Type.Optional(seconds(3600, 'must be a number of seconds above 0, at most 3600', { default: 5, description: 'queueing wait (arrival to start of service) the quantile stays under' })),
        windowSeconds: Type.Optional(seconds(86_400, 'must be a number of seconds above 0, at most 86400', { default: 300, description: 'each window of this length must meet it' })),
      },
      { additionalProperties: false, 'x-message': 'must be an object: {quantile?, waitSeconds?, windowSeconds?}' },
    )),
    loadSeconds: Type.Optional(Type.Union([
      seconds(86_400, 'must be seconds above 0 (the median), or {median, p90}'),
      Type.Object({ median: seconds(86_400, 'must be a number of seconds above 0'), p90: seconds(86_400, 'must be a number of seconds above 0') }, { additionalProperties: false }),
    ], { default: 30, 'x-message': 'must be seconds above 0 (the median), or {median, p90}', description: "a new replica's model load time: its median, or {median, p90} (a number alone: p90 = 1.85 × median)" })),
    evictSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 3600, default: 30, 'x-message': 'must be a number of seconds from 0 to 3600', description: 'what a planned eviction of a borrower takes (its checkpoint) before its GPU is free' })),
    scaleDownDelaySeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400, default: 0, 'x-message': 'must be a number of seconds from 0 to 86400', description: "a scale-down takes effect only once every decision of this window agrees (the highest of them is kept; HPA's scaleDown stabilizationWindowSeconds); 0: the autoscaler's decision at once" })),
    readiness: Type.Optional(Type.Object(
      { path: Type.Optional(Type.String({ pattern: HTTP_PATH_PATTERN, default: '/healthz', 'x-message': 'must be an absolute path of plain characters (/healthz), no "..", query or fragment' })) },
      { additionalProperties: false, 'x-message': 'must be an object: {path?}', description: 'a replica is ready once GET path answers 200 on its port ($TIDE_SERVICE_PORT)' },
    )),
    metrics: Type.Optional(Type.Object(
      {
        path: Type.Optional(Type.String({ pattern: HTTP_PATH_PATTERN, default: '/metrics', 'x-message': 'must be an absolute path of plain characters (/metrics), no "..", query or fragment' })),
        rate: metricName('tide_requests_total', 'a counter of requests that arrived (the arrival rate is its increase)'),
        queue: metricName('tide_queue_length', 'a gauge of requests waiting (not yet served)'),
        inFlight: metricName('tide_requests_in_flight', 'a gauge of requests being served (scale-down stops the replica with the fewest)'),
        serviceTime: metricName('tide_request_service_seconds', 'a summary (_sum and _count) of service times, from which serviceSeconds is learned; its _count (requests finished) is the requests served in usage reports'),
        tokens: metricName('tide_tokens_total', 'a counter of tokens produced, for usage reports (tokens, yuan per million tokens); a replica without it reports none'),
      },
      { additionalProperties: false, 'x-message': 'must be an object: {path?, rate?, queue?, inFlight?, serviceTime?, tokens?}', description: 'the Prometheus text endpoint scraped from each ready replica on its port ($TIDE_SERVICE_PORT), and the metrics read there' },
    )),
    autoscaler: Type.Optional(name('must be an autoscaler name', { default: 'reactive', description: 'the policy that sets replicas and the GPUs kept from lending' })),
    options: Type.Optional(Type.Unsafe<Record<string, number>>({
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_]{0,62}$', 'x-message': 'not an option name' },
      additionalProperties: { type: 'number', 'x-message': 'must be a number' },
      maxProperties: 64,
      'x-message': { default: 'must be a map of option: number', maxProperties: '{n} options, at most 64' },
      description: "the autoscaler's options (reactive: margin)",
    })),
  },
  { additionalProperties: false, 'x-message': 'must be an object with at least maxReplicas' },
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
    jobType: Type.Optional(name('must be a name: 1-63 letters, digits, "-", "_" or "."', { description: "label for similar jobs whose run times correct the declared limit; default: the name (an array's elements: the array's name)" })),
    gpuSpeeds: Type.Optional(Type.Unsafe<Record<string, number>>({
      type: 'object',
      propertyNames: { pattern: NAME_PATTERN, 'x-message': 'not a GPU model name' },
      additionalProperties: { type: 'number', minimum: 0, maximum: 1000, 'x-message': 'must be a number from 0 to 1000 (0: cannot run there)' },
      maxProperties: MAX_GPU_MODELS,
      'x-message': { default: 'must be a map of GPU model: relative speed', maxProperties: `{n} GPU models, at most ${MAX_GPU_MODELS}` },
      description: 'relative speed of this job per GPU model (0: cannot run there), over the cluster table',
    })),
    maxPreemptions: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, 'x-message': 'must be an integer from 0 to 1000000', description: 'the most times the scheduler may preempt this job; default: the cluster\'s' })),
    idlePolicy: Type.Optional(Type.Enum(['report', 'reclaim'], { 'x-message': 'must be report or reclaim', description: 'when all its GPUs stay idle (see docs/idle.md): report, or reclaim (stop it, ending cancelled); default: the cluster\'s idle.action, report for inference' })),
    service: Type.Optional(ServiceSchema),
    maxSlowdown: Type.Optional(Type.Number({ minimum: 0, maximum: 0.5, 'x-message': 'must be a number from 0 to 0.5', description: 'energy: the slowdown (a fraction, e.g. 0.05) accepted for a GPU power cap that saves energy; 0: never capped; default: the cluster\'s (0.03)' })),
    deferrable: Type.Optional(Type.Boolean({ 'x-message': 'must be true or false', description: 'energy: the job may wait for cheaper or lower-carbon hours, never past its deadline (which then needs a timeLimit)' })),
    deadline: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIME_LIMIT_SECONDS }), Type.String({ pattern: DURATION })], {
      'x-message': `${DURATION_MESSAGE}, more than 0 and at most 365 days`,
      description: 'when the job must be done, after its submission: seconds, or "12h", "1d", "HH:MM:SS" (a deferrable job without one waits at most 12 h)',
    })),
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
