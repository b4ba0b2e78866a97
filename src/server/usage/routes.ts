/**
 * The usage and budget routes (docs/energy.md), registered from buildApp with one line:
 *
 * - GET /v1/usage?from&to&by&tenant&limit: usage records grouped by tenant, queue, job, GPU model,
 *   node or service over [from, to) (default: this month so far, local time), with GPU-hours,
 *   energy, cost and carbon, and services' requests and tokens. A tenant sees its own records
 *   only (naming another tenant is a 403).
 * - GET /v1/usage/nodes: admin: each node's measured energy and where it went (closure).
 * - GET /v1/budgets: budgets with the usage of their current period (a tenant: its own).
 * - PUT /v1/budgets/{name}, DELETE /v1/budgets/{name}?period=: admin: set or remove a tenant's budget.
 */
import type { FastifyInstance } from 'fastify';
import { answers } from '../../api/apiSchemas.ts';
import { ApiError } from '../../api/errors.ts';
import { checkSchema } from '../../api/schemaCheck.ts';
import { BudgetRequestSchema, BudgetSchema, BudgetsSchema, NodeEnergySchema, PERIODS, USAGE_KEYS, UsageReportSchema, type NodeEnergyRow, type Period, type UsageReport } from '../../api/usage.ts';
import type { EnergyPrices } from '../../core/energy/pricing.ts';
import type { Store } from '../../store/store.ts';
import { authenticate, requireRole, type Principal } from '../auth.ts';
import { nameParam, QueryReader, refuse } from '../query.ts';
import { parseWhen, periodWindow } from './periods.ts';
import { budgetInfo, usageRows } from './report.ts';

export interface UsageRouteOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly prices: EnergyPrices;
  /** Called when a budget changes, so the loop re-judges held jobs at once. */
  readonly onBudget: () => void;
}

/** Groups one report returns at most (by job, a long window holds many). */
export const MAX_USAGE_GROUPS = 10_000;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function registerUsageRoutes(app: FastifyInstance, o: UsageRouteOptions): void {
  const { store, clock, prices } = o;
  const auth = (header: string | undefined): Promise<Principal> => authenticate(store, header, clock());
  /** A tenant reads its own; an admin all, or ?tenant=NAME (which must exist). */
  const whose = async (p: Principal, named: string | undefined): Promise<string | undefined> => {
    if (p.role === 'tenant') {
      if (named !== undefined && named !== p.tenant) throw new ApiError('forbidden', 'tenant: a tenant token reads its own tenant only');
      return p.tenant ?? '';
    }
    if (named !== undefined && !(await store.listTenants()).includes(named)) throw new ApiError('not_found', `no tenant ${named}`);
    return named;
  };

  app.get('/v1/usage', {
    schema: {
      description: `Usage records (one per task attempt) over [from, to), grouped by ${USAGE_KEYS.join(', ')} (by), with GPU-seconds by model, energy (J, kWh, idle), cost (energy at its hour's tariff + GPU-hours at their price) and gCO₂e; for services, requests served, tokens, GPU joules per request and cost per million tokens (by=service: a service's replicas together). from/to: ms since the epoch or an ISO date or date-time (local time of the cluster without a zone); default: this month so far. limit: groups (1-${MAX_USAGE_GROUPS}, default 1000). A tenant sees its own; admins all, or tenant=NAME.`,
      tags: ['usage'],
      querystring: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' }, by: { type: 'string', enum: [...USAGE_KEYS] }, tenant: { type: 'string' }, limit: { type: 'string' } } },
      response: answers(200, UsageReportSchema),
    },
  }, async (req): Promise<UsageReport> => {
    const p = await auth(req.headers.authorization);
    requireRole(p, 'tenant', 'admin');
    const now = clock();
    const q = new QueryReader(req.query);
    const when = (key: string, fallback: number): number => {
      const v = q.string(key);
      if (v === undefined) return fallback;
      const t = parseWhen(v, prices.utcOffsetHours);
      if (t === null) q.problems.push({ path: key, message: `must be ms since the epoch or a date (2026-12-01) or date-time (2026-12-01T08:00, with Z or ±HH:MM for another zone), got ${JSON.stringify(v.slice(0, 40))}` });
      return t ?? fallback;
    };
    const from = when('from', periodWindow('month', now, prices.utcOffsetHours).from);
    const to = when('to', now);
    const by = q.oneOf('by', USAGE_KEYS) ?? 'tenant';
    const limit = q.int('limit', 1, MAX_USAGE_GROUPS) ?? 1000;
    const named = q.string('tenant');
    q.done();
    if (to <= from) refuse([{ path: 'to', message: `must be after from (${new Date(from).toISOString()})` }]);
    const tenant = await whose(p, named);
    const groups = await store.usage({ from, to, now, by, limit: limit + 1, utcOffsetHours: prices.utcOffsetHours, ...(tenant !== undefined ? { tenant } : {}) });
    const truncated = groups.length > limit;
    const { rows, totals } = usageRows(truncated ? groups.slice(0, limit) : groups, by, prices);
    return { from, to, by, rows, totals, truncated };
  });

  app.get('/v1/usage/nodes', { schema: { description: "Admin: each node's measured GPU energy since it first reported and where it went: task attempts (their allocated-idle part included), unallocated GPUs, and what runs the server did not know got (unattributed; 0 when accounting closes)", tags: ['usage'], response: answers(200, NodeEnergySchema) } }, async (req) => {
    const p = await auth(req.headers.authorization);
    requireRole(p, 'admin');
    const nodes: NodeEnergyRow[] = (await store.nodeEnergy()).map((n) => ({ ...n, unattributedJ: n.energyJ - n.jobsJ - n.unallocatedJ }));
    return { nodes };
  });

  app.get('/v1/budgets', {
    schema: { description: 'Budgets with the usage of their current period and whether a limit is reached (a tenant sees its own; admins all, or tenant=NAME)', tags: ['usage'], querystring: { type: 'object', properties: { tenant: { type: 'string' } } }, response: answers(200, BudgetsSchema) },
  }, async (req) => {
    const p = await auth(req.headers.authorization);
    requireRole(p, 'tenant', 'admin');
    const q = new QueryReader(req.query);
    const named = q.string('tenant');
    q.done();
    const tenant = await whose(p, named);
    const now = clock();
    const budgets = await store.listBudgets(tenant);
    return { budgets: await Promise.all(budgets.map((b) => budgetInfo(store, prices, b, now))) };
  });

  app.put('/v1/budgets/:name', {
    schema: { description: "Admin: set a tenant's budget for a period (replacing the one it had for that period): any of gpuHours, kwh (at the meter), yuan; its pending jobs wait once its usage in the period reaches a limit", tags: ['usage'], body: BudgetRequestSchema, response: answers(200, BudgetSchema) },
  }, async (req) => {
    const p = await auth(req.headers.authorization);
    requireRole(p, 'admin');
    const tenant = nameParam(req.params, 'name', 'a tenant name');
    const b = req.body ?? {};
    const problems = checkSchema(BudgetRequestSchema, b);
    const body = isObj(b) ? b : {};
    const limit = (k: string): number | null => (typeof body[k] === 'number' ? (body[k] as number) : null);
    const budget = { tenant, period: body['period'] as Period, gpuHours: limit('gpuHours'), kwh: limit('kwh'), yuan: limit('yuan') };
    if (problems.length === 0 && budget.gpuHours === null && budget.kwh === null && budget.yuan === null) problems.push({ path: '(root)', message: 'give at least one limit: gpuHours, kwh or yuan' });
    refuse(problems);
    if (!(await store.listTenants()).includes(tenant)) throw new ApiError('not_found', `no tenant ${tenant}`);
    await store.putBudget(budget, clock());
    o.onBudget();
    return { budget: await budgetInfo(store, prices, budget, clock()) };
  });

  app.delete('/v1/budgets/:name', {
    schema: { description: "Admin: remove a tenant's budget for a period", tags: ['usage'], querystring: { type: 'object', properties: { period: { type: 'string', enum: [...PERIODS] } } }, response: answers(200, BudgetsSchema) },
  }, async (req) => {
    const p = await auth(req.headers.authorization);
    requireRole(p, 'admin');
    const tenant = nameParam(req.params, 'name', 'a tenant name');
    const q = new QueryReader(req.query);
    const period = q.oneOf('period', PERIODS);
    if (period === undefined && q.problems.length === 0) q.problems.push({ path: 'period', message: `required: one of ${PERIODS.join(', ')}` });
    q.done();
    if (!(await store.deleteBudget(tenant, period as Period))) throw new ApiError('not_found', `tenant ${tenant} has no ${period} budget`);
    o.onBudget();
    const now = clock();
    return { budgets: await Promise.all((await store.listBudgets(tenant)).map((x) => budgetInfo(store, prices, x, now))) };
  });
}
