/**
 * The cluster config file (YAML): tokens, tenants and queues with quotas. Applied to the store
 * at startup (upserts: the file adds and updates, never deletes).
 *
 *   adminToken: …            # or TIDE_ADMIN_TOKEN
 *   agentToken: …            # or TIDE_AGENT_TOKEN
 *   tenants:
 *     - name: research
 *       tokens: [research-token]
 *       weight: 2            # fair-share weight (default 1)
 *       maxSubmitJobs: 50000 # the most open jobs it may have; past it a submission is a 429 (Slurm's MaxSubmitJobs)
 *   queues:
 *     - name: default
 *       cohort: research     # queues of one cohort lend each other unused quota (default: cluster)
 *       nominalQuota: 8      # nominal GPUs, or per model {H100: 8, A100: 4}; omit for unlimited (`gpuQuota: 8` too)
 *       borrowingLimit: 4    # GPUs it may borrow beyond quota (number or per model); omit for unlimited
 *       lendingLimit: 4      # the most of its quota others may borrow (number or per model); omit for all
 *       tenants: [research]  # who may submit to it (Kueue's LocalQueue → ClusterQueue)
 *   gpuSpeeds: {H100: 1, A100: 0.6}   # relative speed per GPU model (over the built-in table)
 *   scheduling:
 *     restartSeconds: 60     # what a restart costs (charged to every preemption; default 60)
 *     minRunSeconds: 300     # a job runs this long in its attempt before it may be preempted
 *     maxPreemptions: 5      # default per-job preemption budget
 *     usageHalfLifeHours: 24 # decay of tenants' usage for fair share
 *     arrivalsPerCycle: 4000 # new pending jobs a cycle takes in (Slurm's default_queue_depth; the rest the next cycles)
 *     energy:                # the energy stages (docs/energy.md, "Live"; scheduling/energyStages.ts)
 *       powercap: true       # default on: a cap per job within its maxSlowdown (or {maxSlowdown: 0.03, eta: 0.5})
 *       timeshift: true      # default on: deferrable jobs wait for cheaper hours (or {minSaving: 0.1, slackSeconds: 3600})
 *       consolidate:         # default off: suspend empty nodes, resume them for work (Slurm's power saving)
 *         suspendSeconds: 600
 *         resumeSeconds: 300
 *         resumeTimeoutSeconds: 600
 *         suspendProgram: /usr/local/sbin/node-off   # run with the node's name; none: a dry run
 *         resumeProgram: /usr/local/sbin/node-on
 *   idle:                    # idle-allocation detection (server/idle/idleConfig.ts, docs/idle.md)
 *     afterMinutes: 30
 *     action: report         # or reclaim
 *   power:                   # power figures over the built-in model (src/core/energy/powerModel.ts)
 *     gpus: {H100: {idleWithMemoryWatts: 110, loadFraction: 0.8}}
 *     node: {baseWatts: 1200}  # or perNodeWatts, perCoreWatts, perGibWatts; suspendedWatts
 *   energy: {tariff: 0.65, carbon: 536.6, pue: 1.3, gpuHourYuan: {H100: 18}, utcOffsetHours: 8}
 *   budgets:               # per tenant and period (day, week, month, total): docs/energy.md
 *     - {tenant: research, period: month, gpuHours: 100}
 *   limits:
 *     maxSubmitJobs: 250000  # every tenant's open-job limit unless it sets its own (default 250000)
 *
 * A queue without `tenants`: one named like a tenant (other than `default`) is that tenant's
 * alone; any other (`default`, the queue of `tide up`, included) is shared by all tenants.
 * `tenants: []` closes a queue to every tenant.
 */
import { readFileSync } from 'node:fs';
import { checkClusterConfig, withoutNulls } from '../api/configSchema.ts';
import { DEFAULT_POWER_MODEL, type PowerModel } from '../core/energy/powerModel.ts';
import { mergePowerConfig, type PowerConfig } from '../core/energy/powerConfig.ts';
import { parseYamlStrict } from '../api/strictParse.ts';
import { UserError } from '../util/errors.ts';
import { DEFAULT_PRICES, type EnergyPrices } from '../core/energy/pricing.ts';
import type { Budget, ModelQuota, QueueConfig } from '../store/store.ts';
import type { IdleConfigInput } from './idle/idleConfig.ts';
import { budgetsFromConfig, energyFromConfig } from './usage/config.ts';
import { DEFAULT_MAX_SUBMIT_JOBS } from './submitLimits.ts';
import { checkEnergyStagesConfig, liveEnergy, type EnergyStagesConfig, type LiveEnergy } from './scheduling/energyStages.ts';

/** The `scheduling:` section: options of the core scheduler and of its live inputs. */
export interface SchedulingConfig {
  /** Seconds a restart costs; the core charges it to every preemption. */
  readonly restartSeconds?: number;
  /** Seconds a job runs in its attempt before it may be preempted. */
  readonly minRunSeconds?: number;
  /** Default per-job preemption budget (a job's own `maxPreemptions` overrides it). */
  readonly maxPreemptions?: number;
  /** Half-life of tenants' decayed usage (fair share); default 24. */
  readonly usageHalfLifeHours?: number;
  /** New pending jobs a cycle takes in (scheduling/arrivalQueue.ts); default 4,000. */
  readonly arrivalsPerCycle?: number;
  /** The energy stages (scheduling/energyStages.ts); absent: the live defaults. */
  readonly energy?: EnergyStagesConfig;
}

export interface ClusterConfig {
  readonly adminToken: string | null;
  readonly agentToken: string | null;
  /** weight: fair-share weight, default 1; maxSubmitJobs: its open-job limit (server/submitLimits.ts), default `limits.maxSubmitJobs`. */
  readonly tenants: readonly { readonly name: string; readonly tokens: readonly string[]; readonly weight?: number; readonly maxSubmitJobs?: number }[];
  readonly queues: readonly QueueConfig[];
  /** Relative speed per GPU model, over the built-in table (scheduling/gpuSpeeds.ts). */
  readonly gpuSpeeds?: Readonly<Record<string, number>>;
  readonly scheduling?: SchedulingConfig;
  /** The `idle:` section (server/idle/idleConfig.ts): defaults are filled where it is used. */
  readonly idle?: IdleConfigInput;
  /** Power figures over the built-in model (src/core/energy/powerModel.ts): see `powerModel`. */
  readonly power?: PowerConfig;
  /** Tariff, carbon, PUE and GPU-hour prices (`energy:`; server/usage/config.ts); absent: the defaults. */
  readonly energy?: EnergyPrices;
  /** Budgets per tenant and period (`budgets:`), applied at startup like queues. */
  readonly budgets?: readonly Budget[];
  /** Defaults of every tenant's limits (`limits:`). */
  readonly limits?: { readonly maxSubmitJobs?: number };
}

/** The tenant's open-job limit: its own `maxSubmitJobs`, else `limits.maxSubmitJobs`, else DEFAULT_MAX_SUBMIT_JOBS. */
export function maxSubmitJobsOf(c: ClusterConfig, tenant: string): number {
  return c.tenants.find((t) => t.name === tenant)?.maxSubmitJobs ?? c.limits?.maxSubmitJobs ?? DEFAULT_MAX_SUBMIT_JOBS;
}

/** The cluster's power model: the config's `power:` section over the built-in defaults. */
export function powerModel(c: ClusterConfig): PowerModel {
  return mergePowerConfig(DEFAULT_POWER_MODEL, c.power);
}

/** The energy stages the live server runs (`scheduling.energy` over the live defaults), with the cluster's power model and prices. */
export function energyStagesOf(c: ClusterConfig): LiveEnergy {
  return liveEnergy(c.scheduling?.energy, powerModel(c), c.energy ?? DEFAULT_PRICES);
}

/** What a restart costs live when `scheduling.restartSeconds` is not set: live restarts are never free (the simulator's default, 0, is Gavel's protocol). */
export const LIVE_RESTART_SECONDS = 60;

/** The core scheduler's options that the `scheduling:` section sets, over the live defaults (flags override them). */
export function schedulingOptions(c: ClusterConfig): Record<string, number> {
  const s = c.scheduling ?? {};
  return {
    restartSeconds: s.restartSeconds ?? LIVE_RESTART_SECONDS,
    ...(s.minRunSeconds !== undefined ? { minRunSeconds: s.minRunSeconds } : {}),
    ...(s.maxPreemptions !== undefined ? { maxPreemptions: s.maxPreemptions } : {}),
  };
}

const MODEL_NAME = /^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$/;
const COHORT_NAME = /^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/;
const QUEUE_FIELDS = ['name', 'gpuQuota', 'nominalQuota', 'borrowingLimit', 'lendingLimit', 'cohort', 'tenants'];

/** GPUs: a whole number, or per GPU model (key `*`: any model) a map of whole numbers. */
function quotaOf(v: unknown, path: string, errors: string[]): { n: number | null; map?: ModelQuota } {
  if (v === undefined || v === null) return { n: null };
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) errors.push(`${path}: must be a non-negative integer up to 2^53, or a map of GPU model to one`);
    return { n: v };
  }
  if (!isObj(v)) {
    errors.push(`${path}: must be a non-negative integer, or a map of GPU model to one`);
    return { n: null };
  }
  const map: Record<string, number> = {};
  for (const [m, x] of Object.entries(v)) {
    if (m !== '*' && !MODEL_NAME.test(m)) errors.push(`${path}.${keyName(m)}: not a GPU model name (or * for any model)`);
    else if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) errors.push(`${path}.${keyName(m)}: must be a non-negative integer up to 2^53`);
    else map[m] = x;
  }
  return { n: null, map };
}

/**
 * A queue's quota fields (config file and `PUT /v1/queues`): `nominalQuota` (or `gpuQuota`),
 * `borrowingLimit`, `lendingLimit` (each a number or per GPU model), `cohort`. Problems are
 * pushed to `errors` as `PATH.field: message`; `at` prefixes the path (e.g. `queues[0].`).
 */
export function queueQuotaFields(q: Readonly<Record<string, unknown>>, at: string, errors: string[]): Omit<QueueConfig, 'name' | 'tenants'> {
  if (q['gpuQuota'] !== undefined && q['gpuQuota'] !== null && q['nominalQuota'] !== undefined && q['nominalQuota'] !== null) errors.push(`${at}nominalQuota: give nominalQuota or gpuQuota, not both`);
  const gpuQuota = quotaOf(q['gpuQuota'], `${at}gpuQuota`, errors);
  if (gpuQuota.map) errors.push(`${at}gpuQuota: must be a number (per-model quotas go in nominalQuota)`);
  const nominal = q['nominalQuota'] !== undefined && q['nominalQuota'] !== null ? quotaOf(q['nominalQuota'], `${at}nominalQuota`, errors) : gpuQuota.map ? { n: null } : gpuQuota;
  const borrowing = quotaOf(q['borrowingLimit'], `${at}borrowingLimit`, errors);
  const lending = quotaOf(q['lendingLimit'], `${at}lendingLimit`, errors);
  const cohort = q['cohort'];
  if (cohort !== undefined && cohort !== null && (typeof cohort !== 'string' || !COHORT_NAME.test(cohort))) errors.push(`${at}cohort: must be a name (letters, digits, -, _ and .)`);
  const total = nominal.map ? (nominal.map['*'] ?? Object.values(nominal.map).reduce((a, b) => a + b, 0)) : nominal.n;
  return {
    gpuQuota: total,
    borrowingLimit: borrowing.n,
    ...(typeof cohort === 'string' ? { cohort } : {}),
    ...(nominal.map ? { nominalQuota: nominal.map } : {}),
    ...(borrowing.map ? { borrowingLimits: borrowing.map } : {}),
    ...(lending.map ? { lendingLimits: lending.map } : lending.n !== null ? { lendingLimits: { '*': lending.n } } : {}),
  };
}

export const EMPTY_CONFIG: ClusterConfig = { adminToken: null, agentToken: null, tenants: [], queues: [] };

const TENANT_NAME = /^[a-z0-9][-a-z0-9_]{0,62}$/;
/** A key as the user can find it in an error: quoted unless it is a plain name ("", " x" or "a: b" stay readable). */
const keyName = (k: string): string => (/^[A-Za-z_][\w-]*$/.test(k) ? k : JSON.stringify(k));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a config document; throws a UserError naming every bad field. */
export function parseConfig(text: string, file: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parseYamlStrict(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return EMPTY_CONFIG;
  if (!isObj(doc)) throw new UserError(`${file}: must be a map with adminToken, agentToken, tenants, queues`);
  // The schema (api/configSchema.ts, the one /openapi.json's queue body shares) judges the
  // document; what follows turns a valid one into a ClusterConfig.
  const problems = checkClusterConfig(doc);
  if (problems.length) throw new UserError(`${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  const errors: string[] = [];
  const str = (v: unknown, path: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v.length < 8) errors.push(`${path}: must be a string of at least 8 characters`);
    return typeof v === 'string' ? v : null;
  };
  for (const k of Object.keys(doc)) if (!['adminToken', 'agentToken', 'tenants', 'queues', 'gpuSpeeds', 'scheduling', 'idle', 'power', 'energy', 'budgets', 'limits'].includes(k)) errors.push(`${keyName(k)}: unknown field`);
  // One token, one principal: a token listed twice would belong to whichever is applied last
  // (a tenant's token could become the admin's, or another tenant's).
  const owners = new Map<unknown, string>();
  const claim = (tok: unknown, path: string): void => {
    if (typeof tok !== 'string') return;
    const first = owners.get(tok);
    if (first !== undefined) errors.push(`${path}: the same token as ${first}`);
    else owners.set(tok, path);
  };
  claim(doc['adminToken'], 'adminToken');
  claim(doc['agentToken'], 'agentToken');
  const tenants: { name: string; tokens: string[]; weight?: number; maxSubmitJobs?: number }[] = [];
  const tIn = doc['tenants'] ?? [];
  if (!Array.isArray(tIn)) errors.push('tenants: must be a list');
  else
    tIn.forEach((t: unknown, i) => {
      if (!isObj(t) || typeof t['name'] !== 'string' || !TENANT_NAME.test(t['name'])) {
        errors.push(`tenants[${i}].name: required, lowercase letters, digits, - and _`);
        return;
      }
      for (const k of Object.keys(t)) if (!['name', 'tokens', 'weight', 'maxSubmitJobs'].includes(k)) errors.push(`tenants[${i}].${keyName(k)}: unknown field`);
      const tokens = t['tokens'] ?? [];
      if (!Array.isArray(tokens)) errors.push(`tenants[${i}].tokens: must be a list`);
      else tokens.forEach((tok: unknown, j) => claim(str(tok, `tenants[${i}].tokens[${j}]`), `tenants[${i}].tokens[${j}]`));
      const weight = t['weight'];
      if (weight !== undefined && (typeof weight !== 'number' || !(weight > 0) || weight > 1e6)) errors.push(`tenants[${i}].weight: must be a number above 0, up to 1000000`);
      // The schema has judged it (configSchema.ts MaxSubmitJobs).
      const maxSubmitJobs = t['maxSubmitJobs'] as number | undefined;
      tenants.push({ name: t['name'], tokens: Array.isArray(tokens) ? tokens.filter((x): x is string => typeof x === 'string') : [], ...(typeof weight === 'number' ? { weight } : {}), ...(maxSubmitJobs !== undefined ? { maxSubmitJobs } : {}) });
    });
  const queues: QueueConfig[] = [];
  const qIn = doc['queues'] ?? [];
  if (!Array.isArray(qIn)) errors.push('queues: must be a list');
  else
    qIn.forEach((q: unknown, i) => {
      if (!isObj(q) || typeof q['name'] !== 'string' || !/^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/.test(q['name'])) {
        errors.push(`queues[${i}].name: required`);
        return;
      }
      for (const k of Object.keys(q)) if (!QUEUE_FIELDS.includes(k)) errors.push(`queues[${i}].${keyName(k)}: unknown field`);
      if (queues.some((x) => x.name === q['name'])) errors.push(`queues[${i}].name: queue "${q['name']}" is defined twice`);
      const tenantsIn = q['tenants'];
      let bound: string[] | undefined;
      if (tenantsIn !== undefined && tenantsIn !== null) {
        if (!Array.isArray(tenantsIn)) errors.push(`queues[${i}].tenants: must be a list of tenant names`);
        else {
          tenantsIn.forEach((t: unknown, j) => {
            if (typeof t !== 'string' || !TENANT_NAME.test(t)) errors.push(`queues[${i}].tenants[${j}]: must be a tenant name (lowercase letters, digits, - and _)`);
          });
          bound = [...new Set(tenantsIn.filter((t): t is string => typeof t === 'string'))];
        }
      }
      queues.push({ name: q['name'], ...queueQuotaFields(q, `queues[${i}].`, errors), ...(bound ? { tenants: bound } : {}) });
    });
  const gpuSpeeds: Record<string, number> = {};
  const speedsIn = doc['gpuSpeeds'];
  if (speedsIn !== undefined && speedsIn !== null) {
    if (!isObj(speedsIn)) errors.push('gpuSpeeds: must be a map of GPU model to relative speed');
    else
      for (const [m, v] of Object.entries(speedsIn)) {
        if (!MODEL_NAME.test(m)) errors.push(`gpuSpeeds.${keyName(m)}: not a GPU model name`);
        else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1000) errors.push(`gpuSpeeds.${keyName(m)}: must be a number from 0 to 1000 (0: cannot run jobs)`);
        else gpuSpeeds[m] = v;
      }
  }
  const scheduling: Record<string, number> = {};
  const schedIn = doc['scheduling'];
  if (schedIn !== undefined && schedIn !== null) {
    if (!isObj(schedIn)) errors.push('scheduling: must be a map (restartSeconds, minRunSeconds, maxPreemptions, usageHalfLifeHours, arrivalsPerCycle)');
    else
      for (const [k, v] of Object.entries(schedIn)) {
        // The schema has judged the energy section's shape; what it cannot say is checked below.
        if (k === 'energy') continue;
        const integer = k === 'maxPreemptions' || k === 'arrivalsPerCycle';
        if (!['restartSeconds', 'minRunSeconds', 'maxPreemptions', 'usageHalfLifeHours', 'arrivalsPerCycle'].includes(k)) errors.push(`scheduling.${keyName(k)}: unknown field (restartSeconds, minRunSeconds, maxPreemptions, usageHalfLifeHours, arrivalsPerCycle, energy)`);
        else if (k === 'arrivalsPerCycle' && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 1e9)) errors.push('scheduling.arrivalsPerCycle: must be a positive integer');
        else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1e9 || (integer && !Number.isInteger(v)) || (k === 'usageHalfLifeHours' && v === 0))
          errors.push(`scheduling.${k}: must be ${integer ? 'a non-negative integer' : k === 'usageHalfLifeHours' ? 'a number of hours above 0' : 'a non-negative number of seconds'}`);
        else scheduling[k] = v;
      }
  }
  const energyIn = isObj(schedIn) && isObj(schedIn['energy']) ? (schedIn['energy'] as EnergyStagesConfig) : undefined;
  checkEnergyStagesConfig(energyIn, errors);
  const adminToken = str(doc['adminToken'], 'adminToken');
  const agentToken = str(doc['agentToken'], 'agentToken');
  const energy = energyFromConfig(doc['energy'], errors);
  const budgets = budgetsFromConfig(doc['budgets'], errors);
  if (errors.length) throw new UserError(`${file}: ${errors.join('; ')}`);
  // The schema has checked the idle section whole (configSchema.ts IdleConfigSchema).
  const idle = isObj(doc['idle']) ? (doc['idle'] as IdleConfigInput) : undefined;
  // The schema and checkPowerConfig have judged the section: it is taken as it is.
  const powerIn = doc['power'];
  const power = isObj(powerIn) ? withoutNulls(powerIn as PowerConfig) : undefined;
  // Likewise the limits section (configSchema.ts LimitsConfigSchema).
  const limits = isObj(doc['limits']) ? (doc['limits'] as { maxSubmitJobs?: number }) : undefined;
  return {
    adminToken, agentToken, tenants, queues,
    ...(speedsIn !== undefined && speedsIn !== null ? { gpuSpeeds } : {}),
    ...(schedIn !== undefined && schedIn !== null ? { scheduling: { ...scheduling, ...(energyIn ? { energy: energyIn } : {}) } } : {}),
    ...(idle ? { idle } : {}),
    ...(power ? { power } : {}),
    ...(energy ? { energy } : {}),
    ...(budgets.length ? { budgets } : {}),
    ...(limits ? { limits } : {}),
  };
}

export function loadConfig(file: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}
