/**
 * From the store's usage groups to what reports and budgets show (docs/energy.md): rows per key
 * with GPU-seconds per model, energy in J and kWh, cost and carbon, and for services requests,
 * tokens, joules per request and yuan per million tokens. Energy was priced when it was used (by
 * the tariff's hour); GPU-hours are priced here, at their model's price per GPU-hour. Budget
 * usage is the same report, for one tenant over its period.
 */
import { gpuTimeYuan, type EnergyPrices } from '../../core/energy/pricing.ts';
import type { BudgetInfo, UsageKey, UsageRow } from '../../api/usage.ts';
import type { Budget, Store, UsageGroup } from '../../store/store.ts';
import { periodWindow } from './periods.ts';

/** CPU-only tasks' "model" in GPU-seconds by model. */
export const CPU_ONLY = 'cpu';

const empty = (key: string): UsageRow => ({ key, records: 0, gpuSeconds: 0, gpuHours: 0, gpuSecondsByModel: {}, energyJ: 0, energyKwh: 0, facilityKwh: 0, idleJ: 0, energyYuan: 0, gpuYuan: 0, costYuan: 0, co2Grams: 0, requests: 0, tokens: 0, joulesPerRequest: null, yuanPerMillionTokens: null });

/**
 * A service's output per unit of input, from the sums: GPU joules per request (energy per unit of
 * work, as the energy benchmark's energyPerWorkUnit and ML.ENERGY's energy per request; it adds
 * up: J/request × requests = J) and the whole cost (energy yuan + GPU yuan) per million tokens,
 * the figure token prices are quoted in. Null where nothing was served.
 */
export const perOutput = (energyJ: number, costYuan: number, requests: number, tokens: number): Pick<UsageRow, 'joulesPerRequest' | 'yuanPerMillionTokens'> => ({
  joulesPerRequest: requests > 0 ? energyJ / requests : null,
  yuanPerMillionTokens: tokens > 0 ? (costYuan / tokens) * 1e6 : null,
});

function add(row: UsageRow, g: UsageGroup, prices: EnergyPrices): UsageRow {
  const model = g.model ?? CPU_ONLY;
  const gpuYuan = g.model === null ? 0 : gpuTimeYuan(prices, g.model, g.gpuSeconds);
  const gpuSeconds = row.gpuSeconds + g.gpuSeconds;
  const energyJ = row.energyJ + g.energyJ;
  const costYuan = row.costYuan + g.energyYuan + gpuYuan;
  const requests = row.requests + g.requests;
  const tokens = row.tokens + g.tokens;
  return {
    ...row,
    records: row.records + g.records,
    gpuSeconds,
    gpuHours: gpuSeconds / 3600,
    gpuSecondsByModel: { ...row.gpuSecondsByModel, [model]: (row.gpuSecondsByModel[model] ?? 0) + g.gpuSeconds },
    energyJ,
    energyKwh: energyJ / 3.6e6,
    facilityKwh: row.facilityKwh + g.kwh,
    idleJ: row.idleJ + g.idleJ,
    energyYuan: row.energyYuan + g.energyYuan,
    gpuYuan: row.gpuYuan + gpuYuan,
    costYuan,
    co2Grams: row.co2Grams + g.co2Grams,
    requests,
    tokens,
    ...perOutput(energyJ, costYuan, requests, tokens),
  };
}

/** Rows per key (in the store's key order) and their totals. */
export function usageRows(groups: readonly UsageGroup[], by: UsageKey, prices: EnergyPrices): { rows: UsageRow[]; totals: UsageRow } {
  const rows = new Map<string, UsageRow>();
  let totals = empty('total');
  for (const g of groups) {
    const key = by === 'model' ? g.model ?? CPU_ONLY : g.key;
    const base = rows.get(key) ?? { ...empty(key), ...(g.tenant !== undefined ? { tenant: g.tenant } : {}), ...(g.queue !== undefined ? { queue: g.queue } : {}) };
    rows.set(key, add(base, g, prices));
    totals = add(totals, g, prices);
  }
  return { rows: [...rows.values()], totals };
}

/** The limit a tenant's usage has reached (usage ≥ limit), first of GPU-hours, kWh, yuan; null: none. */
export function reachedLimit(b: Pick<Budget, 'gpuHours' | 'kwh' | 'yuan'>, used: BudgetInfo['used']): BudgetInfo['reached'] {
  if (b.gpuHours !== null && used.gpuHours >= b.gpuHours) return 'gpuHours';
  if (b.kwh !== null && used.kwh >= b.kwh) return 'kwh';
  if (b.yuan !== null && used.yuan >= b.yuan) return 'yuan';
  return null;
}

/** A budget with the tenant's usage in its current period. */
export async function budgetInfo(store: Pick<Store, 'usage'>, prices: EnergyPrices, b: Budget, now: number): Promise<BudgetInfo> {
  const w = periodWindow(b.period, now, prices.utcOffsetHours);
  const groups = await store.usage({ from: w.from, to: Math.min(w.to, now + 1), now, by: 'tenant', tenant: b.tenant, utcOffsetHours: prices.utcOffsetHours });
  const { totals } = usageRows(groups, 'tenant', prices);
  const used = { gpuHours: totals.gpuHours, kwh: totals.facilityKwh, yuan: totals.costYuan };
  return { ...b, from: w.from, resetsAt: Number.isFinite(w.to) ? w.to : null, used, reached: reachedLimit(b, used) };
}
