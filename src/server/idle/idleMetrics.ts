/**
 * Prometheus metrics of idle allocation: `tide_idle_gpus{tenant}` (GPUs held by running tasks
 * that have read idle for at least idle.afterMinutes, a fraction counting in part; read from the
 * store when scraped, so every server answers alike) and `tide_idle_gpu_seconds_total{tenant}`
 * (GPU-seconds of idle streaks that reached the threshold, counted whole once they do; the
 * leader's idle monitor adds to it, so sum it over servers).
 */
import client from 'prom-client';
import type { Store } from '../../store/store.ts';

export interface IdleMetrics {
  /** Adds GPU-seconds of idle allocation for a tenant. */
  addIdleSeconds(tenant: string, seconds: number): void;
}

export function registerIdleMetrics(registry: client.Registry, store: Store): IdleMetrics {
  new client.Gauge({
    name: 'tide_idle_gpus',
    help: 'GPUs held by running tasks that read idle (utilization and memory near zero) for at least idle.afterMinutes, by tenant; fractions count in part',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      const byTenant = new Map<string, number>();
      for (const r of await store.listIdleGpus()) if (r.crossedAt !== null) byTenant.set(r.tenant, (byTenant.get(r.tenant) ?? 0) + r.gpuMilli / 1000);
      for (const [tenant, n] of byTenant) this.set({ tenant }, Math.round(n * 1000) / 1000);
    },
  });
  const seconds = new client.Counter({
    name: 'tide_idle_gpu_seconds_total',
    help: 'GPU-seconds allocated GPUs spent idle in streaks that reached idle.afterMinutes (counted by the leader), by tenant',
    labelNames: ['tenant'],
    registers: [registry],
  });
  return { addIdleSeconds: (tenant, s) => seconds.inc({ tenant }, s) };
}
