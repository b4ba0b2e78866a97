/**
 * The cluster config's `energy:` and `budgets:` sections (schemas in api/usage.ts; the document
 * has passed them when these run):
 *
 *   energy:
 *     tariff: [{from: 0, to: 8, yuanPerKwh: 0.25}, {from: 8, to: 24, yuanPerKwh: 0.8}]   # or one price, or 24
 *     carbon: 536.6            # gCO₂e per kWh: one value or 24 (one per local hour)
 *     pue: 1.3
 *     gpuHourYuan: {H100: 18, A100: 9, '*': 4}
 *     utcOffsetHours: 8        # local time of the tariff hours and budget periods
 *   budgets:
 *     - {tenant: research, period: month, gpuHours: 100, kwh: 500, yuan: 3000}
 *
 * Fields left out keep core/energy/pricing.ts's defaults. Tariff periods must cover each hour of
 * the day exactly once (a period whose `to` is not after its `from` wraps past midnight).
 */
import { DEFAULT_PRICES, type EnergyPrices } from '../../core/energy/pricing.ts';
import type { Budget, BudgetPeriod } from '../../store/store.ts';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const per24 = (v: unknown, fallback: readonly number[]): number[] => (typeof v === 'number' ? Array(24).fill(v) : Array.isArray(v) ? (v as number[]).slice() : [...fallback]);

/** Prices from an `energy:` section (schema-checked); problems the schema cannot see go to `errors`. */
export function energyFromConfig(v: unknown, errors: string[]): EnergyPrices | undefined {
  if (!isObj(v)) return undefined;
  let tariff: number[];
  const t = v['tariff'];
  if (Array.isArray(t) && t.length > 0 && isObj(t[0])) {
    const hours: (number | undefined)[] = Array(24).fill(undefined);
    (t as { from: number; to: number; yuanPerKwh: number }[]).forEach((p, i) => {
      const end = p.to > p.from ? p.to : p.to + 24;
      for (let h = p.from; h < end; h++) {
        if (hours[h % 24] !== undefined) errors.push(`energy.tariff[${i}]: hour ${h % 24} is already in an earlier period`);
        hours[h % 24] = p.yuanPerKwh;
      }
    });
    const missing = hours.flatMap((x, h) => (x === undefined ? [h] : []));
    if (missing.length) errors.push(`energy.tariff: the periods leave hour${missing.length > 1 ? 's' : ''} ${missing.join(', ')} without a price`);
    tariff = hours.map((x) => x ?? 0);
  } else tariff = per24(t, DEFAULT_PRICES.tariffYuanPerKwh);
  const prices = v['gpuHourYuan'];
  return {
    tariffYuanPerKwh: tariff,
    carbonGramsPerKwh: per24(v['carbon'], DEFAULT_PRICES.carbonGramsPerKwh),
    pue: typeof v['pue'] === 'number' ? v['pue'] : DEFAULT_PRICES.pue,
    gpuHourYuan: isObj(prices) ? { '*': 0, ...(prices as Record<string, number>) } : DEFAULT_PRICES.gpuHourYuan,
    utcOffsetHours: typeof v['utcOffsetHours'] === 'number' ? v['utcOffsetHours'] : DEFAULT_PRICES.utcOffsetHours,
  };
}

/** Budgets from a `budgets:` list (schema-checked): each needs a limit; one per tenant and period. */
export function budgetsFromConfig(v: unknown, errors: string[]): Budget[] {
  if (!Array.isArray(v)) return [];
  const out: Budget[] = [];
  const seen = new Set<string>();
  v.forEach((b: unknown, i) => {
    if (!isObj(b)) return;
    const limit = (k: string): number | null => (typeof b[k] === 'number' ? (b[k] as number) : null);
    const budget: Budget = { tenant: b['tenant'] as string, period: b['period'] as BudgetPeriod, gpuHours: limit('gpuHours'), kwh: limit('kwh'), yuan: limit('yuan') };
    if (budget.gpuHours === null && budget.kwh === null && budget.yuan === null) errors.push(`budgets[${i}]: give at least one limit (gpuHours, kwh, yuan)`);
    const key = `${budget.tenant}/${budget.period}`;
    if (seen.has(key)) errors.push(`budgets[${i}]: tenant ${budget.tenant} has a ${budget.period} budget already`);
    seen.add(key);
    out.push(budget);
  });
  return out;
}
