/**
 * Dominant resource fairness over time (DRF with decayed usage, as Slurm's fair-share and
 * YuniKorn's DRF do it): a tenant's share is the largest of its decayed GPU, CPU and memory
 * usage, each divided by the cluster's capacity of that resource, divided by its weight. The
 * tenant with the smallest share is served first.
 */
import type { SchedulerSnapshot } from './scheduler.ts';

/** Tenant → dominant share (seconds of whole-cluster use per unit of weight; smaller first). */
export function dominantShares(s: Pick<SchedulerSnapshot, 'nodes' | 'tenants' | 'tenantUsage'>): Map<string, number> {
  let gpus = 0;
  let cpuMilli = 0;
  let memoryMib = 0;
  for (const n of s.nodes) {
    gpus += n.spec.gpus.length;
    cpuMilli += n.spec.cpuMilli;
    memoryMib += n.spec.memoryMib;
  }
  const weight = new Map((s.tenants ?? []).map((t) => [t.name, t.weight ?? 1]));
  const shares = new Map<string, number>();
  for (const u of s.tenantUsage ?? []) {
    const gpu = gpus > 0 ? u.gpuSeconds / gpus : 0;
    const cpu = cpuMilli > 0 && u.cpuSeconds !== undefined ? (u.cpuSeconds * 1000) / cpuMilli : 0;
    const mem = memoryMib > 0 && u.memoryMibSeconds !== undefined ? u.memoryMibSeconds / memoryMib : 0;
    shares.set(u.name, Math.max(gpu, cpu, mem) / Math.max(1e-9, weight.get(u.name) ?? 1));
  }
  return shares;
}
