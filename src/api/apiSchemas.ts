/**
 * The API's request bodies and answers as TypeBox schemas: the route schemas of server/*.ts, so
 * /openapi.json shows what the handlers accept (the request schemas are also what they validate
 * with, through schemaCheck.ts) and what they answer. Job specs are in specSchema.ts, agent
 * messages in agentSchema.ts. Answers are documentation only: the server sends them as they are.
 */
import { Type, type TSchema } from 'typebox';
import { ERROR_CODES } from './errors.ts';
import { GpuInfoSchema, GpuTelemetrySchema } from './agentSchema.ts';
import { JOB_STATES, TASK_STATES } from './types.ts';

export const TENANT_NAME_PATTERN = '^[a-z0-9][-a-z0-9_]{0,62}$';
/** The longest expiry a token may be given: 100 years. */
export const MAX_TOKEN_DAYS = 36_500;

const nullable = (t: TSchema, extra: Record<string, unknown> = {}): TSchema => Type.Union([t, Type.Null()], extra);
const expiresInDays = Type.Optional(
  nullable(Type.Number({ exclusiveMinimum: 0, maximum: MAX_TOKEN_DAYS }), {
    'x-message': `must be a number of days above 0 and at most ${MAX_TOKEN_DAYS}, or null (never)`,
    description: 'absent or null: the token never expires',
  }),
);

/** POST /v1/tokens. */
export const TokenRequestSchema = Type.Object(
  {
    role: Type.Optional(Type.Enum(['tenant'], { 'x-message': "only tenant tokens are issued here (node tokens at an agent's bootstrap registration, admin and agent tokens by the server's flags or config)" })),
    tenant: Type.String({ pattern: TENANT_NAME_PATTERN, 'x-message': 'required: a tenant name (1-63 lowercase letters, digits, - and _)' }),
    expiresInDays,
  },
  { additionalProperties: false, 'x-message': 'must be an object: {role: "tenant", tenant, expiresInDays?}' },
);

/** POST /v1/tenants. */
export const TenantRequestSchema = Type.Object(
  {
    name: Type.String({ pattern: TENANT_NAME_PATTERN, 'x-message': 'required: 1-63 lowercase letters, digits, - and _' }),
    expiresInDays,
  },
  { additionalProperties: false, 'x-message': 'must be an object: {name, expiresInDays?}' },
);

const MODEL_OR_ANY = '^(?:\\*|[A-Za-z0-9][-A-Za-z0-9_.]{0,62})$';
const wholeGpus = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** GPUs per GPU model (`*`: any model). */
const ModelQuotaSchema = Type.Unsafe<Record<string, number>>({
  type: 'object',
  propertyNames: { pattern: MODEL_OR_ANY, 'x-message': 'not a GPU model name (or * for any model)' },
  additionalProperties: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, 'x-message': 'must be a non-negative integer up to 2^53' },
});
/** GPUs: a whole number, or per GPU model a map of whole numbers (`*`: any model). */
export const QuotaSchema = Type.Union([wholeGpus, ModelQuotaSchema], { 'x-message': 'must be a non-negative integer up to 2^53, or a map of GPU model to one' });
/** An optional quota field: GPUs, GPUs per model, or null (one flat union, so an error inside the map names its key). */
export const nullableQuota = (what: string, message = 'must be a non-negative integer up to 2^53, a map of GPU model to one, or null') =>
  Type.Optional(Type.Union([wholeGpus, ModelQuotaSchema, Type.Null()], { 'x-message': message, description: what }));
const quota = (what: string) => nullableQuota(what);

/** PUT /v1/queues/{name}. */
export const QueueRequestSchema = Type.Object(
  {
    gpuQuota: Type.Optional(nullable(wholeGpus, { 'x-message': 'must be a number (per-model quotas go in nominalQuota), or null', description: 'the older name of a whole-number nominalQuota; null: unlimited' })),
    nominalQuota: quota('nominal GPUs, or per GPU model {H100: 8, A100: 4} (key * for any); null: unlimited'),
    borrowingLimit: quota('GPUs it may borrow beyond its quota, or per GPU model; null: unlimited'),
    lendingLimit: quota('the most of its quota others may borrow, or per GPU model; null: all of it'),
    cohort: Type.Optional(nullable(Type.String({ pattern: '^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$' }), { 'x-message': 'must be a name (letters, digits, -, _ and .), or null', description: 'queues of one cohort lend each other unused quota (default: cluster)' })),
    tenants: Type.Optional(nullable(Type.Array(Type.String({ 'x-message': 'must be a tenant name' })), { 'x-message': 'must be a list of tenant names, or null', description: 'the tenants it is open to; absent or null: by name (see the route)' })),
  },
  { additionalProperties: false, 'x-message': 'must be an object: {nominalQuota?, gpuQuota?, borrowingLimit?, lendingLimit?, cohort?, tenants?}' },
);

const FieldErrorSchema = Type.Object({ path: Type.String({ description: 'the field: tasks[0].gpus, env.NAME, (root)' }), message: Type.String() });

/** Every 4xx and 5xx answer. */
export const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.Enum(Object.keys(ERROR_CODES), { description: 'see api/errors.ts: each code has one HTTP status and one CLI exit code' }),
    message: Type.String(),
    fields: Type.Optional(Type.Array(FieldErrorSchema, { description: 'every bad field' })),
  }),
});

const time = (description = 'ms since the epoch'): TSchema => nullable(Type.Integer(), { description });

export const JobSchema = Type.Object({
  id: Type.String(),
  tenant: Type.String(),
  name: Type.String(),
  queue: Type.String(),
  priority: Type.Integer(),
  kind: Type.String(),
  state: Type.Enum([...JOB_STATES, 'timeout'], { description: 'timeout: stopped at its timeLimit (terminal)' }),
  reason: nullable(Type.String(), { description: 'why it is pending (or why it ended)' }),
  attempt: Type.Integer(),
  gpus: Type.Number(),
  tasks: Type.Integer(),
  createdAt: Type.Integer(),
  startedAt: time(),
  finishedAt: time(),
  estimatedStart: time('estimated start of a pending job, ms since the epoch'),
  clientKey: nullable(Type.String()),
  runSeconds: Type.Number({ description: 'running time of earlier attempts' }),
  progress: nullable(
    Type.Object({ step: Type.Integer(), totalSteps: nullable(Type.Integer()), checkpointStep: nullable(Type.Integer()), checkpointAt: time(), at: Type.Integer() }),
    { description: "task 0's last report from TIDE_PROGRESS_FILE" },
  ),
  borrowed: Type.Optional(Type.Boolean({ description: 'it runs on GPUs its queue borrows from its cohort (lent by another queue, e.g. a service\'s): reclaimed first' })),
  serviceId: Type.Optional(nullable(Type.String(), { description: "a service's replica: the service's job id" })),
  arrayId: Type.Optional(nullable(Type.String(), { description: "an array's element: the array's id (GET /v1/arrays/{id})" })),
  arrayIndex: Type.Optional(Type.Integer({ description: "an array's job: the index of the first element it stands for" })),
  arrayCount: Type.Optional(Type.Integer({ description: "an array's job: how many elements it stands for (more than 1 while the array's rest waits as one job)" })),
  powerCapWatts: Type.Optional(Type.Number({ description: "the power limit per GPU (W) its current or last attempt runs at: its own powerCapWatts, or the one the powercap stage chose (docs/energy.md)" })),
  spec: Type.Object({}, { additionalProperties: true, description: 'the normalised job spec (groups with gpuCount, gpuMilli, cpuMilli, memoryMib)' }),
});

/** A batch array (GET /v1/arrays/{id}; types.ts JobArray). */
export const ArraySchema = Type.Object({
  id: Type.String(),
  tenant: Type.String(),
  name: Type.String(),
  queue: Type.String(),
  size: Type.Integer({ description: 'its elements, each a job named name-i (TIDE_ARRAY_INDEX=i)' }),
  createdAt: Type.Integer(),
  firstJobId: nullable(Type.String(), { description: "its first element's job id; all of them: GET /v1/jobs?array={id}" }),
  counts: Type.Object(Object.fromEntries(JOB_STATES.map((s) => [s, Type.Integer()])), { description: 'its elements by state' }),
  unfinished: Type.Integer({ description: 'its elements not finished yet (pending, admitted, running, preempted)' }),
});

/** POST /v1/arrays/{id}/cancel: which elements (Slurm's scancel 123_[5-10]); none: every one. */
export const ArrayCancelRequestSchema = Type.Object(
  {
    elements: Type.Optional(Type.String({ pattern: '^\\d{1,5}(-\\d{1,5})?(,\\d{1,5}(-\\d{1,5})?)*$', maxLength: 20_000, description: 'element indexes, e.g. "0-9,12"', 'x-message': 'must be element indexes such as "0-9,12"' })),
  },
  { additionalProperties: false },
);

/** POST /v1/jobs/{id}/scale. */
export const ScaleRequestSchema = Type.Object(
  {
    minReplicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, 'x-message': 'must be an integer from 1 to 1024' })),
    maxReplicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, 'x-message': 'must be an integer from 1 to 1024' })),
  },
  { additionalProperties: false, minProperties: 1, 'x-message': 'must be an object: {minReplicas?, maxReplicas?} with at least one' },
);

/** A service's state in GET /v1/jobs/{id} (api/types.ts ServiceStatus). */
export const ServiceStatusSchema = Type.Object({
  minReplicas: Type.Integer(),
  maxReplicas: Type.Integer(),
  desiredReplicas: Type.Integer({ description: 'replicas its autoscaler wants now' }),
  keepGpus: Type.Number({ description: 'GPUs of its queue it keeps from lending; the rest is lent to its cohort' }),
  urgent: Type.Boolean({ description: 'the last rise was needed at once: borrowers were stopped with no grace period' }),
  reason: nullable(Type.String(), { description: "the autoscaler's last reason" }),
  decidedAt: time(),
  replicas: Type.Array(Type.Object({
    id: Type.String({ description: "the replica's own job id" }),
    state: Type.Enum([...JOB_STATES]),
    attempt: Type.Integer(),
    node: nullable(Type.String()),
    url: nullable(Type.String({ description: 'http://HOST:PORT of the replica on its node' })),
    ready: Type.Boolean({ description: 'its readiness check answered 200: it takes requests' }),
    startedAt: time(),
  })),
  history: Type.Optional(nullable(Type.Object({
    points: Type.Integer(),
    fromSeconds: Type.Number({ description: 'the first point (s, the autoscaler clock: Unix time)' }),
    toSeconds: Type.Number({ description: 'the last point (s), before the service started' }),
    updatedAt: Type.Integer({ description: 'when it was imported (ms since epoch)' }),
  }), { description: 'the rate history imported from before Tide ran it (PUT /v1/jobs/{id}/history), or null' })),
});

export const TaskSchema = Type.Object({
  jobId: Type.String(),
  index: Type.Integer(),
  group: Type.String(),
  attempt: Type.Integer(),
  runId: Type.String(),
  state: Type.Enum([...TASK_STATES]),
  node: nullable(Type.String()),
  gpus: Type.Array(Type.Integer()),
  gpuMilli: Type.Integer(),
  exitCode: nullable(Type.Integer()),
  startedAt: time(),
  finishedAt: time(),
});

export const EventSchema = Type.Object({
  id: Type.Integer(),
  at: Type.Integer(),
  type: Type.String({ description: 'job:submitted, job:admitted, task:started, job:timeout, node:lost, …' }),
  jobId: nullable(Type.String()),
  nodeId: nullable(Type.String()),
  tenant: nullable(Type.String()),
  message: Type.String(),
});

export const NodeSchema = Type.Object({
  id: Type.String(),
  state: Type.Enum(['ready', 'lost', 'drained', 'suspended', 'resuming'], { description: 'suspended: powered down by consolidation; resuming: asked to power up, not back yet (docs/energy.md)' }),
  address: Type.String(),
  cpuMilli: Type.Integer(),
  memoryMib: Type.Integer(),
  gpus: Type.Array(GpuInfoSchema),
  simulated: Type.Boolean(),
  lastHeartbeat: Type.Integer(),
  leaseRenewedAt: Type.Optional(Type.Integer({ description: "the last lease renewal (ms since the epoch): an agent renews while its heartbeat waits on a busy server; the node is silent when this and lastHeartbeat are both a lease old" })),
  telemetry: Type.Array(GpuTelemetrySchema),
  gpuUsedMilli: Type.Array(Type.Integer(), { description: 'milli-GPU in use per device index' }),
  cpuUsedMilli: Type.Integer(),
  memoryUsedMib: Type.Integer(),
  powerAt: Type.Optional(Type.Integer({ description: 'suspended or resuming: since when (ms since the epoch)' })),
});

export const QueueSchema = Type.Object({
  name: Type.String(),
  gpuQuota: nullable(Type.Integer()),
  borrowingLimit: nullable(Type.Integer()),
  tenants: nullable(Type.Array(Type.String()), { description: 'null: shared by all (a tenant sees only itself here)' }),
  pending: Type.Integer(),
  running: Type.Integer(),
  usedGpuMilli: Type.Integer(),
  lentGpus: Type.Optional(Type.Number({ description: 'GPUs of its quota other queues of its cohort borrow now' })),
  borrowedGpus: Type.Optional(Type.Number({ description: 'GPUs it uses beyond its nominal quota, borrowed from its cohort' })),
});

export const TokenSchema = Type.Object({
  id: Type.String({ description: 'public id: the first 12 hex digits of the SHA-256 of the secret' }),
  role: Type.Enum(['admin', 'tenant', 'agent', 'node']),
  tenant: nullable(Type.String()),
  node: nullable(Type.String()),
  createdAt: Type.Integer(),
  expiresAt: time(),
  revokedAt: time(),
  lastUsedAt: nullable(Type.Integer(), { description: 'recorded at most once a minute' }),
});

/** A job with GPUs that read idle (server/idle/idleReport.ts JobIdleView; docs/idle.md). */
export const IdleJobSchema = Type.Object({
  job: Type.String(),
  name: Type.String(),
  tenant: Type.String(),
  queue: Type.String(),
  kind: Type.String(),
  state: Type.String(),
  policy: Type.Enum(['report', 'reclaim'], { description: "what happens when every GPU it holds stays idle: its idlePolicy, else the cluster's idle.action (report for inference)" }),
  gpus: Type.Array(Type.Object({
    node: Type.String(),
    gpu: Type.Integer(),
    task: Type.Integer(),
    gpuMilli: Type.Integer({ description: "the task's share of the GPU (1000: all of it)" }),
    idleSince: Type.Integer({ description: 'first idle sample of the streak (ms since the epoch)' }),
    lastIdleAt: Type.Integer({ description: 'latest idle sample recorded' }),
    idleSeconds: Type.Number({ description: 'lastIdleAt - idleSince' }),
    pastThreshold: Type.Boolean({ description: 'idle for at least idle.afterMinutes' }),
  })),
  idleGpus: Type.Number({ description: 'GPUs idle past the threshold (a fraction counts in part)' }),
  heldGpus: Type.Number({ description: 'GPUs its active tasks hold' }),
  idleSince: Type.Integer(),
  idleSeconds: Type.Number({ description: 'the longest idle time of its listed GPUs' }),
  allIdle: Type.Boolean({ description: 'every GPU it holds is idle past the threshold' }),
  reclaimAt: time('policy reclaim: when it is reclaimed if every GPU it holds stays idle; null: not while a GPU shows work, or policy report'),
});

export const IdleSettingsSchema = Type.Object({
  afterMinutes: Type.Number(),
  utilizationPercent: Type.Number(),
  memoryPercent: Type.Number(),
  action: Type.Enum(['report', 'reclaim']),
  jobsMayOptOut: Type.Boolean(),
});

const page = (key: string, item: TSchema): TSchema => Type.Object({ [key]: Type.Array(item), next: nullable(Type.String(), { description: 'cursor of the next page; null at the end' }) });

/** Answers by route, for the route schemas' `response` (with the error answer for 4xx and 5xx). */
export const RESPONSES = {
  submit: Type.Object({
    created: Type.Boolean({ description: 'false: an earlier submission with the same idempotency key' }),
    jobs: Type.Array(JobSchema, { description: 'the job; empty for an array (see array)' }),
    array: Type.Optional(ArraySchema),
  }),
  array: Type.Object({ array: ArraySchema }),
  arrayCancel: Type.Object({ array: ArraySchema, cancelled: Type.Integer({ description: 'elements this call cancelled' }) }),
  jobs: page('jobs', JobSchema),
  job: Type.Object({ job: JobSchema, tasks: Type.Array(TaskSchema), events: Type.Array(EventSchema), idle: Type.Optional(nullable(IdleJobSchema, { description: 'its GPUs that read idle now (docs/idle.md); null: none' })), service: Type.Optional(ServiceStatusSchema) }),
  idle: Type.Object({ jobs: Type.Array(IdleJobSchema), settings: IdleSettingsSchema }),
  scale: Type.Object({ job: JobSchema, service: ServiceStatusSchema }),
  jobChange: Type.Object({ job: JobSchema }),
  events: page('events', EventSchema),
  nodes: Type.Object({ nodes: Type.Array(NodeSchema) }),
  node: Type.Object({ node: NodeSchema }),
  queues: Type.Object({ queues: Type.Array(QueueSchema) }),
  queue: Type.Object({ queue: Type.Object({ name: Type.String(), gpuQuota: nullable(Type.Integer()), borrowingLimit: nullable(Type.Integer()), tenants: nullable(Type.Array(Type.String())) }) }),
  tenant: Type.Object({ tenant: Type.String(), token: Type.String({ description: 'the secret, shown once' }), id: Type.String(), expiresAt: time() }),
  tenants: Type.Object({ tenants: Type.Array(Type.String()) }),
  tokens: Type.Object({ tokens: Type.Array(TokenSchema) }),
  tokenIssued: Type.Object({ secret: Type.String({ description: 'shown once' }), token: TokenSchema }),
  tokenRevoked: Type.Object({ token: TokenSchema }),
  credentialRevoked: Type.Object({ node: Type.String(), revoked: Type.Array(Type.String()) }),
  register: Type.Object({ ok: Type.Boolean(), serverId: Type.String(), nodeLeaseMs: Type.Integer(), nodeToken: Type.Optional(Type.String({ description: 'bootstrap without nodeTokenHash: the new node token, shown once' })) }),
  heartbeat: Type.Object({ tasks: Type.Array(Type.Object({}, { additionalProperties: true, description: 'a TaskAssignment (api/types.ts)' })), serverId: Type.String(), nodeLeaseMs: Type.Integer(), wakeSeq: Type.Integer({ description: "the node's wake counter: a wait (POST /v1/agent/wait) names it" }) }),
  lease: Type.Object({ renewed: Type.Literal(true), serverId: Type.String(), nodeLeaseMs: Type.Integer() }),
  wait: Type.Object({ seq: Type.Integer({ description: "the node's wake counter now" }), woke: Type.Boolean({ description: 'true: the node has new work, heartbeat now' }) }),
} as const;

/** A route's `response`: its answer for `status`, and the error body for every 4xx and 5xx. */
export const answers = (status: number, body: TSchema): Record<string, TSchema> => ({ [status]: body, '4xx': ErrorSchema, '5xx': ErrorSchema });

const open = (description: string, properties: Record<string, TSchema>) => Type.Object(properties, { additionalProperties: true, description });

/** The answers of the dashboard's routes (server/dashboardRoutes.ts, liveEvents.ts, whatIf.ts). */
export const DASHBOARD_ANSWERS = {
  session: open('who the token is', { role: Type.String(), tenant: Type.Union([Type.String(), Type.Null()]), name: Type.Union([Type.String(), Type.Null()]) }),
  validation: open('{ok: true, jobs, spec}, or {ok: false, error} as POST /v1/jobs would answer it', { ok: Type.Boolean() }),
  stream: Type.String({ description: 'text/event-stream: hello, job, event and nodes events' }),
  telemetry: open('cluster samples, oldest first', { points: Type.Array(Type.Object({}, { additionalProperties: true })), idleUtilization: Type.Number() }),
  placements: open('what holds each GPU now', { placements: Type.Array(Type.Object({ node: Type.String(), gpus: Type.Array(Type.Integer()), gpuMilli: Type.Number(), state: Type.String(), mine: Type.Boolean() }, { additionalProperties: true })) }),
  whatIfBounds: open('what a what-if run may compare', { policies: Type.Array(Type.String()), maxJobs: Type.Integer(), maxFileBytes: Type.Integer() }),
  whatIf: open("the simulator's summary per policy and the chart tide sim --svg writes", { report: Type.Object({}, { additionalProperties: true }), svg: Type.String() }),
};
