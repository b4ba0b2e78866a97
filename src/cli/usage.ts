/**
 * Usage, reports and budgets (docs/energy.md), on GET /v1/usage and /v1/budgets:
 *
 *   tide usage [--from D] [--to D] [--by job|tenant|queue|model|node|service]    like sacct: your jobs' usage (admin: everyone's)
 *   tide report usage|energy|cost [--from D] [--to D] [--by tenant|queue|job|model|node|service] [-o table|json|csv]   like sreport
 *
 * Services' output (requests, tokens, J/request, yuan per million tokens) follows each kind's
 * columns: in tables when a row served something, in CSV always (so its columns never move).
 *   tide budget set TENANT --period month [--gpu-hours N] [--kwh N] [--yuan N]     admin
 *   tide budget list [--tenant T]  ·  tide budget delete TENANT --period P          (list: a tenant sees its own)
 *
 * Dates are ms since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM (the cluster's local time unless
 * a zone is given); the default window is this month so far.
 */
import type { Command } from 'commander';
import type { BudgetInfo, UsageReport, UsageRow } from '../api/usage.ts';
import { UserError } from '../util/errors.ts';
import { ApiClient, resolveConnection } from './client.ts';
import { connectionOptions, json, print, type Common } from './common.ts';
import { plainTable } from './format.ts';

const KINDS = ['usage', 'energy', 'cost'] as const;
type Kind = (typeof KINDS)[number];
const BY = ['tenant', 'queue', 'job', 'model', 'node', 'service'];

/** Numbers for people: 3 significant digits below 100, else one decimal. */
export function num(n: number): string {
  if (n === 0) return '0';
  if (Math.abs(n) >= 100) return n.toFixed(1);
  return String(Number(n.toPrecision(3)));
}

const byModel = (r: UsageRow): string =>
  Object.entries(r.gpuSecondsByModel)
    .map(([m, s]) => `${m}:${num(s / 3600)}`)
    .join(',') || '-';

/** The columns each report shows (header, cell), after the key. */
const COLUMNS: Record<Kind, readonly [string, (r: UsageRow) => string | number, (r: UsageRow) => number | string][]> = {
  usage: [
    ['RECORDS', (r) => r.records, (r) => r.records],
    ['GPU-HOURS', (r) => num(r.gpuHours), (r) => r.gpuHours],
    ['BY-MODEL (GPU-H)', byModel, (r) => byModel(r)],
    ['ENERGY-KWH', (r) => num(r.energyKwh), (r) => r.energyKwh],
    ['COST-YUAN', (r) => num(r.costYuan), (r) => r.costYuan],
  ],
  energy: [
    ['ENERGY-KWH', (r) => num(r.energyKwh), (r) => r.energyKwh],
    ['IDLE-KWH', (r) => num(r.idleJ / 3.6e6), (r) => r.idleJ / 3.6e6],
    ['FACILITY-KWH', (r) => num(r.facilityKwh), (r) => r.facilityKwh],
    ['CO2-KG', (r) => num(r.co2Grams / 1000), (r) => r.co2Grams / 1000],
    ['KWH/GPU-H', (r) => (r.gpuHours > 0 ? num(r.energyKwh / r.gpuHours) : '-'), (r) => (r.gpuHours > 0 ? r.energyKwh / r.gpuHours : '')],
  ],
  cost: [
    ['GPU-HOURS', (r) => num(r.gpuHours), (r) => r.gpuHours],
    ['ENERGY-YUAN', (r) => num(r.energyYuan), (r) => r.energyYuan],
    ['GPU-YUAN', (r) => num(r.gpuYuan), (r) => r.gpuYuan],
    ['COST-YUAN', (r) => num(r.costYuan), (r) => r.costYuan],
  ],
};

/** Services' output, after every kind's columns. */
const SERVICE_COLUMNS: readonly [string, (r: UsageRow) => string | number, (r: UsageRow) => number | string][] = [
  ['REQUESTS', (r) => num(r.requests), (r) => r.requests],
  ['TOKENS', (r) => num(r.tokens), (r) => r.tokens],
  ['J/REQ', (r) => (r.joulesPerRequest === null ? '-' : num(r.joulesPerRequest)), (r) => r.joulesPerRequest ?? ''],
  ['YUAN/MTOK', (r) => (r.yuanPerMillionTokens === null ? '-' : num(r.yuanPerMillionTokens)), (r) => r.yuanPerMillionTokens ?? ''],
];

const served = (rep: UsageReport): boolean => rep.totals.requests > 0 || rep.totals.tokens > 0;

const keyHead = (by: string): string[] => (by === 'job' ? ['JOBID', 'TENANT', 'QUEUE'] : by === 'service' ? ['SERVICE', 'TENANT', 'QUEUE'] : [by.toUpperCase()]);
const keyCells = (by: string, r: UsageRow): string[] => (by === 'job' || by === 'service' ? [r.key, r.tenant ?? '', r.queue ?? ''] : [r.key]);

/** A report as a table: one row per key, then the totals. */
export function reportTable(kind: Kind, rep: UsageReport): string {
  const cols = served(rep) ? [...COLUMNS[kind], ...SERVICE_COLUMNS] : COLUMNS[kind];
  const head = [...keyHead(rep.by), ...cols.map((c) => c[0])];
  const rows = rep.rows.map((r) => [...keyCells(rep.by, r), ...cols.map((c) => c[1](r))]);
  const blank = keyHead(rep.by).slice(1).map(() => '');
  rows.push(['TOTAL', ...blank, ...cols.map((c) => c[1](rep.totals))]);
  return plainTable(head, rows);
}

const csvCell = (v: string | number): string => {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** A report as CSV (full precision), with a header line; no totals row. */
export function reportCsv(kind: Kind, rep: UsageReport): string {
  const cols = [...COLUMNS[kind], ...SERVICE_COLUMNS];
  const head = [...keyHead(rep.by), ...cols.map((c) => c[0])].map((h) => h.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/_$/, ''));
  return [head, ...rep.rows.map((r) => [...keyCells(rep.by, r), ...cols.map((c) => c[2](r))])].map((row) => row.map(csvCell).join(',')).join('\n');
}

function query(o: { from?: string; to?: string; by?: string; tenant?: string; limit?: string }, by: string): string {
  if (!BY.includes(by)) throw new UserError(`--by: must be one of ${BY.join(', ')}, got '${by}'`);
  const qs = new URLSearchParams({ by });
  if (o.from !== undefined) qs.set('from', o.from);
  if (o.to !== undefined) qs.set('to', o.to);
  if (o.tenant !== undefined) qs.set('tenant', o.tenant);
  if (o.limit !== undefined) qs.set('limit', o.limit);
  return `/v1/usage?${qs}`;
}

const when = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/:\d{2}\.\d{3}Z$/, 'Z'));

export function budgetsTable(budgets: readonly BudgetInfo[]): string {
  const limit = (l: number | null, used: number): string => (l === null ? '-' : `${num(used)}/${num(l)}`);
  return plainTable(
    ['TENANT', 'PERIOD', 'GPU-HOURS', 'KWH', 'YUAN', 'RESETS', 'STATE'],
    budgets.map((b) => [b.tenant, b.period, limit(b.gpuHours, b.used.gpuHours), limit(b.kwh, b.used.kwh), limit(b.yuan, b.used.yuan), when(b.resetsAt), b.reached ? `reached (${b.reached}): new jobs wait` : 'open']),
  );
}

const output = (o: Common, allowed: readonly string[]): string => {
  const v = o.output ?? 'table';
  if (!allowed.includes(v)) throw new UserError(`-o: must be ${allowed.join(' or ')}, got '${v}'`);
  return v;
};

const positive = (flag: string, v: string | undefined): number | null => {
  if (v === undefined) return null;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw new UserError(`${flag}: must be a non-negative number, got '${v}'`);
  return n;
};

interface WindowFlags {
  from?: string;
  to?: string;
  by?: string;
  tenant?: string;
  limit?: string;
}

const windowOptions = (cmd: Command, by: string): Command =>
  cmd
    .option('--from <date>', 'start: YYYY-MM-DD[THH:MM] (cluster local time) or ms since the epoch (default: the first of this month)')
    .option('--to <date>', 'end (exclusive; default: now)')
    .option('--by <key>', `group by ${BY.join(', ')}`, by)
    .option('--tenant <name>', 'admin: only this tenant')
    .option('--limit <n>', 'at most n groups (default 1000)');

export function registerUsageCommands(program: Command): void {
  windowOptions(connectionOptions(program.command('usage')), 'job')
    .description("Your usage (sacct-like): GPU-hours, energy and cost per job this month, and your budgets (admin: everyone's)")
    .action(async (o: Common & WindowFlags) => {
      const out = output(o, ['table', 'json']);
      const api = new ApiClient(resolveConnection(o));
      const rep = (await api.request<UsageReport>('GET', query(o, o.by ?? 'job'))).body;
      const budgets = (await api.request<{ budgets: BudgetInfo[] }>('GET', `/v1/budgets${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`)).body.budgets;
      if (out === 'json') return json({ usage: rep, budgets });
      const lines = [`Usage ${when(rep.from)} to ${when(rep.to)}:`, rep.rows.length ? reportTable('usage', rep) : 'No usage records in this window.'];
      if (rep.truncated) lines.push(`(the first ${rep.rows.length} groups: --limit for more)`);
      lines.push('', budgets.length ? budgetsTable(budgets) : 'No budgets.');
      print(lines.join('\n'));
    });

  windowOptions(connectionOptions(program.command('report').argument('<kind>', KINDS.join('|'))), 'tenant')
    .description('Usage, energy or cost over a window, grouped (sreport-like); -o table, json or csv')
    .action(async (kind: string, o: Common & WindowFlags) => {
      if (!(KINDS as readonly string[]).includes(kind)) throw new UserError(`report: the kind must be one of ${KINDS.join(', ')}, got '${kind}'`);
      const out = output(o, ['table', 'json', 'csv']);
      const rep = (await new ApiClient(resolveConnection(o)).request<UsageReport>('GET', query(o, o.by ?? 'tenant'))).body;
      if (out === 'json') return json(rep);
      if (out === 'csv') return print(reportCsv(kind as Kind, rep));
      print(`${kind[0]?.toUpperCase()}${kind.slice(1)} by ${rep.by}, ${when(rep.from)} to ${when(rep.to)}:\n${reportTable(kind as Kind, rep)}${rep.truncated ? `\n(the first ${rep.rows.length} groups: --limit for more)` : ''}`);
    });

  const budget = program.command('budget').description('Budgets per tenant and period in GPU-hours, kWh or yuan: admission stops at the limit');
  connectionOptions(budget.command('set').argument('<tenant>'))
    .description("Admin: set a tenant's budget for a period (replaces its budget for that period)")
    .requiredOption('--period <p>', 'day, week, month (cluster local time) or total')
    .option('--gpu-hours <n>', 'GPU-hours')
    .option('--kwh <n>', 'kWh at the meter (PUE included)')
    .option('--yuan <n>', 'yuan: energy at its tariff + GPU-hours at their price')
    .action(async (tenant: string, o: Common & { period: string; gpuHours?: string; kwh?: string; yuan?: string }) => {
      const out = output(o, ['table', 'json']);
      const body = { period: o.period, gpuHours: positive('--gpu-hours', o.gpuHours), kwh: positive('--kwh', o.kwh), yuan: positive('--yuan', o.yuan) };
      if (body.gpuHours === null && body.kwh === null && body.yuan === null) throw new UserError('budget set: give at least one of --gpu-hours, --kwh, --yuan');
      const r = await new ApiClient(resolveConnection(o, 'admin')).request<{ budget: BudgetInfo }>('PUT', `/v1/budgets/${encodeURIComponent(tenant)}`, JSON.stringify(body));
      if (out === 'json') return json(r.body.budget);
      print(budgetsTable([r.body.budget]));
    });
  connectionOptions(budget.command('list'))
    .description('Budgets with the usage of their current period (a tenant sees its own)')
    .option('--tenant <name>', 'admin: only this tenant')
    .action(async (o: Common & { tenant?: string }) => {
      const out = output(o, ['table', 'json']);
      const r = await new ApiClient(resolveConnection(o)).request<{ budgets: BudgetInfo[] }>('GET', `/v1/budgets${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`);
      if (out === 'json') return json(r.body.budgets);
      print(r.body.budgets.length ? budgetsTable(r.body.budgets) : 'No budgets.');
    });
  connectionOptions(budget.command('delete').argument('<tenant>'))
    .description("Admin: remove a tenant's budget for a period")
    .requiredOption('--period <p>', 'day, week, month or total')
    .action(async (tenant: string, o: Common & { period: string }) => {
      const out = output(o, ['table', 'json']);
      const r = await new ApiClient(resolveConnection(o, 'admin')).request<{ budgets: BudgetInfo[] }>('DELETE', `/v1/budgets/${encodeURIComponent(tenant)}?period=${encodeURIComponent(o.period)}`);
      if (out === 'json') return json(r.body.budgets);
      print(`Removed ${tenant}'s ${o.period} budget.${r.body.budgets.length ? `\n${budgetsTable(r.body.budgets)}` : ''}`);
    });
}
