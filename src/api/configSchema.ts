/**
 * The cluster config file's schema (server/config.ts reads the file; see its doc comment for the
 * YAML): tokens, tenants with fair-share weights, queues with cohorts and quotas (a number of
 * GPUs or one per GPU model), GPU speeds, the scheduling options and power figures. Written to replace
 * config.ts's hand-written checks: `checkClusterConfig` gives every bad field with the same paths
 * (`queues[0].nominalQuota.H100`), the schema first, then what JSON Schema cannot say (a token
 * given to two principals, a queue defined twice, gpuQuota and nominalQuota both given).
 * config.ts keeps turning the checked document into a ClusterConfig.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { checkSchema, inSchemaOrder } from './schemaCheck.ts';
import type { FieldError } from './spec.ts';
import { NAME_PATTERN } from './specSchema.ts';
import { nullableQuota, QuotaSchema, TENANT_NAME_PATTERN } from './apiSchemas.ts';
import { DEFAULT_POWER_MODEL } from '../core/energy/powerModel.ts';
import { checkPowerConfig, type PowerConfig } from '../core/energy/powerConfig.ts';

/** A checked `power:` section with its null sections (YAML's empty values) left out. */
export function withoutNulls(p: PowerConfig): PowerConfig {
  const raw = p as { gpus?: PowerConfig['gpus'] | null; node?: PowerConfig['node'] | null };
  return { ...(raw.gpus ? { gpus: raw.gpus } : {}), ...(raw.node ? { node: raw.node } : {}) };
}
import { BudgetConfigSchema, EnergyConfigSchema } from './usage.ts';

const nullable = (t: TSchema, extra: Record<string, unknown> = {}) => Type.Optional(Type.Union([t, Type.Null()], extra));
const token = (what: string) => nullable(Type.String({ minLength: 8 }), { 'x-message': 'must be a string of at least 8 characters', description: `${what} (or its environment variable)` });
const gpus = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export { QuotaSchema };
const quota = (description: string) => nullableQuota(description, 'must be a non-negative integer up to 2^53, or a map of GPU model to one');

function MaxSubmitJobs() {
  return Type.Integer({ minimum: 0, maximum: 1e9, 'x-message': 'must be a non-negative integer', description: "the most open (pending, admitted, running or preempted) jobs a tenant may have; a submission past it is a 429 (Slurm's MaxSubmitJobs; default 250000)" });
}

export const TenantConfigSchema = Type.Object(
  {
    name: Type.String({ pattern: TENANT_NAME_PATTERN, 'x-message': 'required, lowercase letters, digits, - and _' }),
    tokens: nullable(Type.Array(Type.String({ minLength: 8, 'x-message': 'must be a string of at least 8 characters' })), { 'x-message': 'must be a list' }),
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e6, 'x-message': 'must be a number above 0, up to 1000000', description: 'fair-share weight (default 1)' })),
    maxSubmitJobs: Type.Optional(MaxSubmitJobs()),
  },
  { additionalProperties: false, 'x-message': 'must be a map with name, tokens, weight, maxSubmitJobs' },
);

/** The `limits:` section: defaults of every tenant's limits. */
export const LimitsConfigSchema = Type.Object(
  { maxSubmitJobs: Type.Optional(MaxSubmitJobs()) },
  { additionalProperties: false, 'x-message': 'must be a map with maxSubmitJobs' },
);

export const QueueConfigSchema = Type.Object(
  {
    name: Type.String({ pattern: NAME_PATTERN, 'x-message': 'required' }),
    cohort: nullable(Type.String({ pattern: NAME_PATTERN }), { 'x-message': 'must be a name (letters, digits, -, _ and .)', description: 'queues of one cohort lend each other unused quota (default: cluster)' }),
    nominalQuota: quota('nominal GPUs, or per model {H100: 8, A100: 4}; omit for unlimited'),
    gpuQuota: nullable(gpus, { 'x-message': 'must be a number (per-model quotas go in nominalQuota)', description: 'the older name of a whole-number nominalQuota' }),
    borrowingLimit: quota('GPUs it may borrow beyond its quota (number or per model); omit for unlimited'),
    lendingLimit: quota('the most of its quota others may borrow (number or per model); omit for all of it'),
    tenants: nullable(Type.Array(Type.String({ pattern: TENANT_NAME_PATTERN, 'x-message': 'must be a tenant name (lowercase letters, digits, - and _)' })), { 'x-message': 'must be a list of tenant names' }),
  },
  { additionalProperties: false, 'x-message': 'must be a map with at least name' },
);

const seconds = (description: string) => Type.Optional(Type.Number({ minimum: 0, maximum: 1e9, 'x-message': 'must be a non-negative number of seconds', description }));

const ratio = (max: number, description: string) => Type.Optional(Type.Number({ minimum: 0, maximum: max, 'x-message': `must be a number from 0 to ${max}`, description }));
const program = (description: string) =>
  nullable(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 64 })]), {
    'x-message': 'must be a program (its path), or a list [program, argument, …]; the node name is appended',
    description,
  });
const stageSwitch = <T extends TSchema>(options: T, what: string, fields: string) => Type.Optional(Type.Union([Type.Boolean(), Type.Null(), options], { 'x-message': `must be true, false or a map (${fields})`, description: what }));

/** `scheduling.energy`: the energy stages the live server runs around its job scheduler (docs/energy.md, "Live"). */
export const EnergyStagesConfigSchema = Type.Object(
  {
    powercap: stageSwitch(
      Type.Object(
        {
          maxSlowdown: ratio(0.5, "the slowdown a job that says nothing accepts for a power cap (default 0.03; 0: only jobs that ask are capped)"),
          eta: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, 'x-message': 'must be a number above 0, at most 1', description: "Zeus's weight of energy against time (default 0.5)" })),
          congestedSlowdown: ratio(0.5, 'the slowdown used while jobs wait for GPUs of the model (default 0: full power)'),
          countNodeBase: Type.Optional(Type.Boolean({ 'x-message': 'must be true or false', description: "count the node's base power in the energy minimised (default true)" })),
          jctWatts: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, 'x-message': 'must be a number of watts from 0 to 1000000', description: "what an hour of a job's completion time is worth (default: from eta)" })),
        },
        { additionalProperties: false, 'x-message': 'must be a map with maxSlowdown, eta, congestedSlowdown, countNodeBase, jctWatts' },
      ),
      'a power cap per job within the slowdown it allows (default on)',
      'maxSlowdown, eta, congestedSlowdown, countNodeBase, jctWatts',
    ),
    timeshift: stageSwitch(
      Type.Object(
        {
          minSaving: ratio(1, 'hold a deferrable job only for an hour cheaper than now by this share (default 0.1)'),
          slackSeconds: seconds('kept between the declared end and the deadline (default 3600)'),
          maxDeferSeconds: seconds('how long a deferrable job without a deadline may wait (default 43200)'),
          carbonYuanPerKg: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, 'x-message': 'must be a number of yuan from 0 to 1000000', description: "carbon's price when hours are compared (default 0: the tariff alone)" })),
        },
        { additionalProperties: false, 'x-message': 'must be a map with minSaving, slackSeconds, maxDeferSeconds, carbonYuanPerKg' },
      ),
      'deferrable jobs wait for cheaper or lower-carbon hours, never past their deadline (default on)',
      'minSaving, slackSeconds, maxDeferSeconds, carbonYuanPerKg',
    ),
    consolidate: stageSwitch(
      Type.Object(
        {
          suspendSeconds: seconds("how long a node stays empty before it is suspended (Slurm's SuspendTime; default 600)"),
          resumeSeconds: seconds('how long a node takes to come back (estimates; the dry run waits this long; default 300)'),
          resumeTimeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9, 'x-message': 'must be a number of seconds above 0', description: "a node not back by then is marked down (Slurm's ResumeTimeout; default twice resumeSeconds, at least 60)" })),
          spareNodes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e6, 'x-message': 'must be a non-negative integer', description: 'empty nodes kept powered whatever happens (default 0)' })),
          suspendProgram: program("what powers a node down (Slurm's SuspendProgram), run with the node's name; none: a dry run that only marks the node"),
          resumeProgram: program("what powers a node up (Slurm's ResumeProgram), run with the node's name; none: a dry run, the node is back after resumeSeconds"),
          programTimeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 86_400, 'x-message': 'must be a number of seconds above 0, at most 86400', description: 'a program running longer is killed and counts as failed (default 60)' })),
        },
        { additionalProperties: false, 'x-message': 'must be a map with suspendSeconds, resumeSeconds, resumeTimeoutSeconds, spareNodes, suspendProgram, resumeProgram, programTimeoutSeconds' },
      ),
      "empty nodes are suspended and woken when work needs them (Slurm's power saving; default off)",
      'suspendSeconds, resumeSeconds, resumeTimeoutSeconds, spareNodes, suspendProgram, resumeProgram, programTimeoutSeconds',
    ),
  },
  { additionalProperties: false, 'x-message': 'must be a map with powercap, timeshift, consolidate' },
);

export const SchedulingConfigSchema = Type.Object(
  {
    restartSeconds: seconds('what a restart costs (charged to every preemption)'),
    minRunSeconds: seconds('a job runs this long in its attempt before it may be preempted'),
    maxPreemptions: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e9, 'x-message': 'must be a non-negative integer', description: "default per-job preemption budget (a job's own maxPreemptions overrides it)" })),
    usageHalfLifeHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9, 'x-message': 'must be a number of hours above 0', description: "decay of tenants' usage for fair share (default 24)" })),
    arrivalsPerCycle: Type.Optional(Type.Integer({ minimum: 1, maximum: 1e9, 'x-message': 'must be a positive integer', description: "new pending jobs a scheduling cycle takes in; the rest wait for the next cycles (Slurm's default_queue_depth; default 4000)" })),
    energy: nullable(EnergyStagesConfigSchema, { 'x-message': 'must be a map with powercap, timeshift, consolidate' }),
  },
  { additionalProperties: false, 'x-message': 'must be a map (restartSeconds, minRunSeconds, maxPreemptions, usageHalfLifeHours, arrivalsPerCycle, energy)' },
);

/** The `idle:` section: idle-allocation detection and reclaim (server/idle/, docs/idle.md). */
export const IdleConfigSchema = Type.Object(
  {
    afterMinutes: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 525_600, 'x-message': 'must be a number of minutes above 0 (fractions allowed), at most 525600', description: 'how long an allocated GPU must read idle before it is reported (default 30)' })),
    utilizationPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, 'x-message': 'must be a percentage from 0 to 100', description: 'idle: GPU utilization at or below this (default 5)' })),
    memoryPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, 'x-message': 'must be a percentage from 0 to 100', description: "idle: memory in use at or below this share of the GPU's memory (default 5)" })),
    action: Type.Optional(Type.Enum(['report', 'reclaim'], { 'x-message': 'must be report or reclaim', description: 'what happens to a job whose GPUs all stay idle, unless its idlePolicy says otherwise (default report)' })),
    jobsMayOptOut: Type.Optional(Type.Boolean({ 'x-message': 'must be true or false', description: "false: a job's idlePolicy report does not override action reclaim (default true)" })),
  },
  { additionalProperties: false, 'x-message': 'must be a map (afterMinutes, utilizationPercent, memoryPercent, action, jobsMayOptOut)' },
);

const watts = (description: string) => Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, 'x-message': 'must be a number of watts from 0 to 1000000', description }));
const share = (description: string, max = 1) => Type.Number({ exclusiveMinimum: 0, maximum: max, 'x-message': `must be a number above 0, at most ${max}`, description });

/** One GPU model's power figures (src/core/energy/powerModel.ts), each over the built-in default. */
export const GpuPowerConfigSchema = Type.Object(
  {
    tdpWatts: watts('board power limit at its default (maximum)'),
    minCapWatts: watts('the lowest power limit the driver accepts'),
    idleWatts: watts('idle, no process'),
    idleWithMemoryWatts: watts("idle with a job's memory held"),
    loadFraction: Type.Optional(share("a typical training job's power at the full limit, as a share of tdpWatts")),
    capCurve: Type.Optional(
      Type.Array(
        Type.Object(
          { fraction: share('power limit ÷ TDP'), throughput: share('throughput relative to the full limit', 2), energy: share('energy per unit of work relative to the full limit', 5) },
          { additionalProperties: false, 'x-message': 'must be a map with fraction, throughput, energy' },
        ),
        { minItems: 1, maxItems: 100, 'x-message': 'must be a list of 1 to 100 points', description: 'throughput and energy by power limit, ending at fraction 1' },
      ),
    ),
  },
  { additionalProperties: false, 'x-message': 'must be a map with tdpWatts, minCapWatts, idleWatts, idleWithMemoryWatts, loadFraction, capCurve' },
);

/** The `power:` section: GPU models' power figures and the nodes' base power. */
export const PowerConfigSchema = Type.Object(
  {
    gpus: nullable(
      Type.Unsafe<Record<string, Static<typeof GpuPowerConfigSchema>>>({
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z0-9][-A-Za-z0-9_. ]{0,62}$', 'x-message': 'not a GPU model name' },
        additionalProperties: GpuPowerConfigSchema,
      }),
      { 'x-message': 'must be a map of GPU model to its power figures' },
    ),
    node: nullable(
      Type.Object(
        {
          baseWatts: watts('what a node draws besides its GPUs (instead of the per-core and per-GiB rule)'),
          perNodeWatts: watts('per node, beside the per-core and per-GiB parts'),
          perCoreWatts: watts('per CPU core'),
          perGibWatts: watts('per GiB of memory'),
          suspendedWatts: watts('a suspended node'),
        },
        { additionalProperties: false, 'x-message': 'must be a map with baseWatts, perNodeWatts, perCoreWatts, perGibWatts, suspendedWatts' },
      ),
      { 'x-message': 'must be a map with baseWatts, perNodeWatts, perCoreWatts, perGibWatts, suspendedWatts' },
    ),
  },
  { additionalProperties: false, 'x-message': 'must be a map with gpus, node' },
);

/** The whole file (an empty file is an empty config: check `null` before calling). */
export const ClusterConfigSchema = Type.Object(
  {
    adminToken: token('the admin token'),
    agentToken: token("the agents' bootstrap token"),
    tenants: nullable(Type.Array(TenantConfigSchema), { 'x-message': 'must be a list' }),
    queues: nullable(Type.Array(QueueConfigSchema), { 'x-message': 'must be a list' }),
    gpuSpeeds: nullable(
      Type.Unsafe<Record<string, number>>({
        type: 'object',
        propertyNames: { pattern: NAME_PATTERN, 'x-message': 'not a GPU model name' },
        additionalProperties: { type: 'number', minimum: 0, maximum: 1000, 'x-message': 'must be a number from 0 to 1000 (0: cannot run jobs)' },
      }),
      { 'x-message': 'must be a map of GPU model to relative speed', description: 'relative speed per GPU model, over the built-in table' },
    ),
    scheduling: nullable(SchedulingConfigSchema, { 'x-message': 'must be a map (restartSeconds, minRunSeconds, maxPreemptions, usageHalfLifeHours, arrivalsPerCycle, energy)' }),
    idle: nullable(IdleConfigSchema, { 'x-message': 'must be a map (afterMinutes, utilizationPercent, memoryPercent, action, jobsMayOptOut)' }),
    power: nullable(PowerConfigSchema, { 'x-message': 'must be a map with gpus, node', description: "power figures over the built-in model (src/core/energy/powerModel.ts)" }),
    energy: nullable(EnergyConfigSchema, { 'x-message': 'must be a map with tariff, carbon, pue, gpuHourYuan, utcOffsetHours' }),
    budgets: nullable(Type.Array(BudgetConfigSchema), { 'x-message': 'must be a list of {tenant, period, gpuHours?, kwh?, yuan?}' }),
    limits: nullable(LimitsConfigSchema, { 'x-message': 'must be a map with maxSubmitJobs' }),
  },
  { additionalProperties: false, 'x-message': 'must be a map with adminToken, agentToken, tenants, queues, gpuSpeeds, scheduling, idle, power, energy, budgets, limits' },
);

export type ClusterConfigDocument = Static<typeof ClusterConfigSchema>;

/** Every bad field of a config document (none: []), in the order of the file's fields. */
export function checkClusterConfig(doc: unknown): FieldError[] {
  const errors = checkSchema(ClusterConfigSchema, doc);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return errors;
  const d = doc as Record<string, unknown>;
  const named: FieldError[] = [];
  // One token, one principal: a token listed twice would belong to whichever is applied last.
  const owners = new Map<unknown, string>();
  const claim = (tok: unknown, path: string): void => {
    if (typeof tok !== 'string') return;
    const first = owners.get(tok);
    if (first !== undefined) named.push({ path, message: `the same token as ${first}` });
    else owners.set(tok, path);
  };
  claim(d['adminToken'], 'adminToken');
  claim(d['agentToken'], 'agentToken');
  const list = (k: string): Record<string, unknown>[] => (Array.isArray(d[k]) ? (d[k] as unknown[]).filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : []);
  list('tenants').forEach((t, i) => {
    const tokens = t['tokens'];
    if (Array.isArray(tokens)) tokens.forEach((tok: unknown, j) => claim(tok, `tenants[${i}].tokens[${j}]`));
  });
  const names = new Set<unknown>();
  (Array.isArray(d['queues']) ? (d['queues'] as unknown[]) : []).forEach((q, i) => {
    if (typeof q !== 'object' || q === null) return;
    const o = q as Record<string, unknown>;
    if (typeof o['name'] === 'string' && names.has(o['name'])) named.push({ path: `queues[${i}].name`, message: `queue "${o['name']}" is defined twice` });
    names.add(o['name']);
    const given = (k: string): boolean => o[k] !== undefined && o[k] !== null;
    if (given('gpuQuota') && given('nominalQuota')) named.push({ path: `queues[${i}].nominalQuota`, message: 'give nominalQuota or gpuQuota, not both' });
  });
  // What the schema cannot say about power figures (idle below TDP, a curve ending at 1, …), once the section's shape is right.
  const power = d['power'];
  if (typeof power === 'object' && power !== null && !errors.some((e) => e.path === 'power' || e.path.startsWith('power.'))) named.push(...checkPowerConfig(DEFAULT_POWER_MODEL, withoutNulls(power as PowerConfig)));
  const seen = new Set(errors.map((e) => e.path));
  return inSchemaOrder([...errors, ...named.filter((e) => !seen.has(e.path))], ClusterConfigSchema, doc);
}
