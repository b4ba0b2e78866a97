/**
 * Usage, energy, cost and budgets as the API answers them (GET /v1/usage, /v1/usage/nodes,
 * /v1/budgets; docs/energy.md), with their TypeBox schemas for /openapi.json and the budget
 * request body the handler validates with.
 */
import { Type, type TSchema } from 'typebox';

export const USAGE_KEYS = ['tenant', 'queue', 'job', 'model', 'node', 'service'] as const;
export type UsageKey = (typeof USAGE_KEYS)[number];
export const PERIODS = ['day', 'week', 'month', 'total'] as const;
export type Period = (typeof PERIODS)[number];

/** One group of usage records (a tenant, queue, job, GPU model, node or service) over the window. */
export interface UsageRow {
  readonly key: string;
  /** by=job and by=service: the tenant and queue. */
  readonly tenant?: string;
  readonly queue?: string;
  /** Task attempts counted (each overlapping the window). */
  readonly records: number;
  readonly gpuSeconds: number;
  readonly gpuHours: number;
  /** GPU-seconds per GPU model (`cpu`: CPU-only tasks hold no GPU). */
  readonly gpuSecondsByModel: Readonly<Record<string, number>>;
  /** Measured GPU energy attributed to the records. */
  readonly energyJ: number;
  /** energyJ in kWh (GPU side). */
  readonly energyKwh: number;
  /** At the meter: energyKwh × PUE. */
  readonly facilityKwh: number;
  /** The part of energyJ spent while the GPUs read 0 % (allocated but unused). */
  readonly idleJ: number;
  /** Energy at the tariff of the hour it was used in. */
  readonly energyYuan: number;
  /** GPU-hours × the price per GPU-hour of their model. */
  readonly gpuYuan: number;
  readonly costYuan: number;
  readonly co2Grams: number;
  /** Services: requests their replicas served (finished) and tokens they produced, from their scraped counters. */
  readonly requests: number;
  readonly tokens: number;
  /** energyJ ÷ requests: GPU joules per request served (null when none was). */
  readonly joulesPerRequest: number | null;
  /** costYuan ÷ tokens × 10⁶: energy at its tariff (PUE included) plus GPU-hours at their price, per million tokens (null when none). */
  readonly yuanPerMillionTokens: number | null;
}

export interface UsageReport {
  /** The window [from, to), ms since the epoch. */
  readonly from: number;
  readonly to: number;
  readonly by: UsageKey;
  readonly rows: readonly UsageRow[];
  readonly totals: UsageRow;
  /** True when more groups exist than `limit` returned. */
  readonly truncated: boolean;
}

/** A node's measured energy since it first reported, and where it went (all time). */
export interface NodeEnergyRow {
  readonly node: string;
  readonly energyJ: number;
  /** Given to task attempts (their allocated-idle part included). */
  readonly jobsJ: number;
  readonly allocatedIdleJ: number;
  /** GPUs (or stretches of time) no task held. */
  readonly unallocatedJ: number;
  /** energyJ − jobsJ − unallocatedJ: runs the server did not know (0 when accounting closes). */
  readonly unattributedJ: number;
}

export interface BudgetInfo {
  readonly tenant: string;
  readonly period: Period;
  /** The limits (null: none on that measure). */
  readonly gpuHours: number | null;
  readonly kwh: number | null;
  readonly yuan: number | null;
  /** The current period: [from, resetsAt) (resetsAt null for total). */
  readonly from: number;
  readonly resetsAt: number | null;
  readonly used: { readonly gpuHours: number; readonly kwh: number; readonly yuan: number };
  /** The first limit the usage has reached (gpuHours, kwh, yuan), or null: admission is open. */
  readonly reached: 'gpuHours' | 'kwh' | 'yuan' | null;
}

const limit = (what: string): TSchema =>
  Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1e15 }), Type.Null()], { 'x-message': 'must be a number from 0 to 1e15, or null (no limit)', description: what }));

/** PUT /v1/budgets/{name}. */
export const BudgetRequestSchema = Type.Object(
  {
    period: Type.Enum([...PERIODS], { 'x-message': `required: one of ${PERIODS.join(', ')}`, description: 'day, week (from Monday), month, in the cluster\'s local time; or total' }),
    gpuHours: limit('GPU-hours (GPU-seconds by gpu milli, ÷ 3600)'),
    kwh: limit('kWh at the meter (PUE included)'),
    yuan: limit('yuan: energy at its tariff plus GPU-hours at their price'),
  },
  { additionalProperties: false, 'x-message': 'must be an object: {period, gpuHours?, kwh?, yuan?}' },
);

const UsageRowSchema = Type.Object({
  key: Type.String(),
  tenant: Type.Optional(Type.String()),
  queue: Type.Optional(Type.String()),
  records: Type.Integer(),
  gpuSeconds: Type.Number(),
  gpuHours: Type.Number(),
  gpuSecondsByModel: Type.Record(Type.String(), Type.Number()),
  energyJ: Type.Number(),
  energyKwh: Type.Number(),
  facilityKwh: Type.Number(),
  idleJ: Type.Number(),
  energyYuan: Type.Number(),
  gpuYuan: Type.Number(),
  costYuan: Type.Number(),
  co2Grams: Type.Number(),
  requests: Type.Number({ description: 'services: requests served (the count of the replicas\' service-time summary)' }),
  tokens: Type.Number({ description: 'services: tokens produced (the replicas\' tokens counter)' }),
  joulesPerRequest: Type.Union([Type.Number(), Type.Null()], { description: 'GPU joules per request served (energyJ ÷ requests); null when none' }),
  yuanPerMillionTokens: Type.Union([Type.Number(), Type.Null()], { description: 'costYuan (energy at its tariff, PUE included, plus GPU-hours at their price) per million tokens; null when none' }),
});

export const UsageReportSchema = Type.Object({
  from: Type.Integer(),
  to: Type.Integer(),
  by: Type.Enum([...USAGE_KEYS]),
  rows: Type.Array(UsageRowSchema),
  totals: UsageRowSchema,
  truncated: Type.Boolean(),
});

export const NodeEnergySchema = Type.Object({
  nodes: Type.Array(Type.Object({ node: Type.String(), energyJ: Type.Number(), jobsJ: Type.Number(), allocatedIdleJ: Type.Number(), unallocatedJ: Type.Number(), unattributedJ: Type.Number() })),
});

const BudgetInfoSchema = Type.Object({
  tenant: Type.String(),
  period: Type.Enum([...PERIODS]),
  gpuHours: Type.Union([Type.Number(), Type.Null()]),
  kwh: Type.Union([Type.Number(), Type.Null()]),
  yuan: Type.Union([Type.Number(), Type.Null()]),
  from: Type.Integer(),
  resetsAt: Type.Union([Type.Integer(), Type.Null()]),
  used: Type.Object({ gpuHours: Type.Number(), kwh: Type.Number(), yuan: Type.Number() }),
  reached: Type.Union([Type.Enum(['gpuHours', 'kwh', 'yuan']), Type.Null()]),
});

export const BudgetsSchema = Type.Object({ budgets: Type.Array(BudgetInfoSchema) });
export const BudgetSchema = Type.Object({ budget: BudgetInfoSchema });

const hourly = (what: string, max: number): TSchema =>
  Type.Union([Type.Number({ minimum: 0, maximum: max }), Type.Array(Type.Number({ minimum: 0, maximum: max }), { minItems: 24, maxItems: 24 })], {
    'x-message': `must be a number from 0 to ${max}, or a list of 24 (one per hour of the local day)`,
    description: what,
  });

/** A time-of-use period of the tariff: hours [from, to) of the local day (to ≤ from wraps past midnight). */
const TouPeriodSchema = Type.Object(
  {
    from: Type.Integer({ minimum: 0, maximum: 23, 'x-message': 'must be an hour from 0 to 23' }),
    to: Type.Integer({ minimum: 0, maximum: 24, 'x-message': 'must be an hour from 0 to 24' }),
    yuanPerKwh: Type.Number({ minimum: 0, maximum: 1000, 'x-message': 'must be a price from 0 to 1000 yuan per kWh' }),
  },
  { additionalProperties: false, 'x-message': 'must be a map {from, to, yuanPerKwh}' },
);

/** The cluster config's `energy:` section (server/usage/config.ts reads it into EnergyPrices). */
export const EnergyConfigSchema = Type.Object(
  {
    tariff: Type.Optional(
      Type.Union([Type.Number({ minimum: 0, maximum: 1000 }), Type.Array(Type.Number({ minimum: 0, maximum: 1000 }), { minItems: 24, maxItems: 24 }), Type.Array(TouPeriodSchema, { minItems: 1, maxItems: 48 })], {
        'x-message': 'must be yuan per kWh: one price, 24 (one per hour), or time-of-use periods [{from, to, yuanPerKwh}]',
        description: 'yuan per kWh at the meter by hour of the local day (default: Guangdong time-of-use shape on 0.65)',
      }),
    ),
    carbon: Type.Optional(hourly('grams of CO₂e per kWh (default: 536.6, China 2022)', 10_000)),
    pue: Type.Optional(Type.Number({ minimum: 1, maximum: 5, 'x-message': 'must be a number from 1 to 5', description: 'facility power ÷ IT power (default 1.56)' })),
    gpuHourYuan: Type.Optional(
      Type.Unsafe<Record<string, number>>({
        type: 'object',
        propertyNames: { pattern: '^(?:\\*|[A-Za-z0-9][-A-Za-z0-9_.]{0,62})$', 'x-message': 'not a GPU model name (or * for any model)' },
        additionalProperties: { type: 'number', minimum: 0, maximum: 1e6, 'x-message': 'must be yuan per GPU-hour from 0 to 1000000' },
        'x-message': 'must be a map of GPU model (or *) to yuan per GPU-hour',
        description: 'price per GPU-hour by model (* for the others; default 0: energy only)',
      }),
    ),
    utcOffsetHours: Type.Optional(Type.Number({ minimum: -12, maximum: 14, 'x-message': 'must be a number of hours from -12 to 14', description: 'local time = UTC + this (default 8); tariff hours and budget periods are local' })),
  },
  { additionalProperties: false, 'x-message': 'must be a map with tariff, carbon, pue, gpuHourYuan, utcOffsetHours' },
);

/** One entry of the cluster config's `budgets:` list. */
export const BudgetConfigSchema = Type.Object(
  {
    tenant: Type.String({ pattern: '^[a-z0-9][-a-z0-9_]{0,62}$', 'x-message': 'required: a tenant name' }),
    period: Type.Enum([...PERIODS], { 'x-message': `required: one of ${PERIODS.join(', ')}` }),
    gpuHours: limit('GPU-hours'),
    kwh: limit('kWh at the meter'),
    yuan: limit('yuan'),
  },
  { additionalProperties: false, 'x-message': 'must be a map {tenant, period, gpuHours?, kwh?, yuan?}' },
);
