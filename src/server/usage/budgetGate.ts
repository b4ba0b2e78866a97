/**
 * Budgets at admission (docs/energy.md): before each cycle, every tenant that has pending jobs
 * and a budget has its usage in the budget's current period read (store/usage.ts); a tenant whose
 * usage has reached any of its limits (used ≥ limit: exactly at the limit counts as reached) has
 * its pending jobs kept out of the job scheduler's snapshot, so none is admitted, and each gets
 * the pending reason `budget-exhausted: …`. Jobs already running are not stopped: they run to
 * their end, and their usage counts against the period (so a period can end over its limit by
 * what was running when the limit was reached). Wraps whichever planner the loop uses.
 */
import type { EnergyPrices } from '../../core/energy/pricing.ts';
import type { AppliedPlan, Budget, Store, StoreSnapshot } from '../../store/store.ts';
import type { LiveSource } from '../scheduling/liveInputs.ts';
import type { Planner } from '../scheduling/plannerThread.ts';
import { localText } from './periods.ts';
import { budgetInfo } from './report.ts';

export const BUDGET_REASON = 'budget-exhausted';

const UNIT = { gpuHours: 'GPU-hours', kwh: 'kWh', yuan: 'yuan' } as const;
const round = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(1) : n.toPrecision(4)).replace(/\.?0+$/, '');

export class BudgetGate implements Planner {
  constructor(
    /** The planner it wraps (the adapter, or the scheduler thread: benchmarks read its counts). */
    readonly inner: Planner,
    private readonly store: Pick<Store, 'listBudgets' | 'usage'>,
    private readonly prices: EnergyPrices,
  ) {}

  refresh(store: LiveSource, nowMs: number): Promise<void> {
    return this.inner.refresh(store, nowMs);
  }

  get awayMs(): number {
    return this.inner.awayMs ?? 0;
  }

  async plan(s: StoreSnapshot, nowMs: number): Promise<AppliedPlan> {
    const held = await this.held(s, nowMs);
    if (held.size === 0) return this.inner.plan(s, nowMs);
    const kept = s.openJobs.filter((j) => !(j.state === 'pending' && held.has(j.tenant)));
    const plan = await this.inner.plan({ ...s, openJobs: kept }, nowMs);
    const reasons = s.openJobs.filter((j) => j.state === 'pending' && held.has(j.tenant)).map((j) => ({ jobId: j.id, reason: held.get(j.tenant) as string, estimatedStart: null }));
    return { ...plan, pending: [...plan.pending, ...reasons] };
  }

  /** Tenants with pending jobs whose usage has reached a budget, with the reason their jobs show. */
  async held(s: StoreSnapshot, nowMs: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const all = await this.store.listBudgets();
    if (all.length === 0) return out;
    // Tenants with a budget that have pending jobs (a walk that stops once every one is found).
    const tenants = new Set(all.map((b) => b.tenant));
    const waiting = new Set<string>();
    for (const j of s.openJobs) {
      if (j.state !== 'pending' || !tenants.has(j.tenant)) continue;
      waiting.add(j.tenant);
      if (waiting.size === tenants.size) break;
    }
    const budgets = all.filter((b) => waiting.has(b.tenant));
    for (const b of budgets) {
      if (out.has(b.tenant)) continue;
      const reason = await this.reasonFor(b, nowMs);
      if (reason !== null) out.set(b.tenant, reason);
    }
    return out;
  }

  private async reasonFor(b: Budget, nowMs: number): Promise<string | null> {
    const info = await budgetInfo(this.store, this.prices, b, nowMs);
    if (info.reached === null) return null;
    const limit = info[info.reached] as number;
    const when = b.period === 'total' ? 'in all' : `this ${b.period} (until ${localText(info.resetsAt as number, this.prices.utcOffsetHours)})`;
    return `${BUDGET_REASON}: tenant ${b.tenant} has used ${round(info.used[info.reached])} of its ${round(limit)} ${UNIT[info.reached]} ${when}; running jobs go on, new ones wait for the next period or a larger budget (tide budget set)`;
  }
}
