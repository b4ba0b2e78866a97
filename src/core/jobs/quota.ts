/**
 * Quota accounting with Kueue's semantics. Each ClusterQueue has a nominal quota per GPU model
 * (key `*`: any model). Inside a cohort a queue may go above its nominal quota by borrowing
 * what other members leave unused, up to its borrowingLimit; a member lends at most its
 * lendingLimit. The rule checked: for every quota key, Σ borrowed ≤ Σ lendable-and-unused.
 */
import type { GpuModel } from '../model.ts';
import type { QueueConfig } from './model.ts';

const ANY = '*';

export class QuotaLedger {
  private readonly queues = new Map<string, QueueConfig>();
  private readonly members = new Map<string, QueueConfig[]>();
  /** usage[queue][key] in GPUs, keys: models and '*'. */
  private readonly usage = new Map<string, Map<string, number>>();

  constructor(queues: readonly QueueConfig[]) {
    for (const q of queues) {
      this.queues.set(q.name, q);
      this.usage.set(q.name, new Map());
      const cohort = q.cohort ?? `queue:${q.name}`;
      const list = this.members.get(cohort) ?? [];
      list.push(q);
      this.members.set(cohort, list);
    }
  }

  /** False when no queues are configured: everything is admitted. */
  get enforced(): boolean {
    return this.queues.size > 0;
  }

  used(queue: string, key: GpuModel | '*'): number {
    return this.usage.get(queue)?.get(key) ?? 0;
  }

  add(queue: string, model: GpuModel, gpus: number): void {
    const u = this.usage.get(queue);
    if (!u || gpus === 0) return;
    u.set(model, (u.get(model) ?? 0) + gpus);
    u.set(ANY, (u.get(ANY) ?? 0) + gpus);
  }

  remove(queue: string, model: GpuModel, gpus: number): void {
    this.add(queue, model, -gpus);
  }

  /** GPUs of `key` the queue holds above its nominal quota. */
  borrowed(queue: string, key: GpuModel | '*'): number {
    const q = this.queues.get(queue);
    if (!q) return 0;
    return Math.max(0, this.used(queue, key) - (q.nominalQuota[key] ?? 0));
  }

  /** The cohort members of a queue (itself included). */
  cohortOf(queue: string): readonly QueueConfig[] {
    const q = this.queues.get(queue);
    if (!q) return [];
    return this.members.get(q.cohort ?? `queue:${q.name}`) ?? [q];
  }

  /**
   * Could `queue` take `gpus` more GPUs of `model`? Null when yes, else a one-line reason.
   * With `withinNominal`, only its own nominal quota counts (what reclaim may restore).
   */
  check(queue: string, model: GpuModel, gpus: number, withinNominal = false): string | null {
    if (!this.enforced || gpus === 0) return null;
    const q = this.queues.get(queue);
    if (!q) return `queue '${queue}' does not exist`;
    const cohort = this.cohortOf(queue);
    let anyKey = false;
    for (const key of [model, ANY]) {
      if (!cohort.some((m) => m.nominalQuota[key] !== undefined)) continue;
      anyKey = true;
      const nominal = q.nominalQuota[key] ?? 0;
      const after = this.used(queue, key) + gpus;
      if (after <= nominal) continue;
      const label = key === ANY ? 'GPUs' : `${model} GPUs`;
      if (withinNominal || q.cohort === undefined) return `queue '${queue}' would use ${after} ${label}, nominal quota ${nominal}`;
      const limit = q.borrowingLimit?.[key];
      if (limit !== undefined && after - nominal > limit) {
        return `queue '${queue}' would borrow ${after - nominal} ${label}, borrowing limit ${limit}`;
      }
      let borrowed = 0;
      let lendable = 0;
      for (const m of cohort) {
        const mNominal = m.nominalQuota[key] ?? 0;
        const mUsed = this.used(m.name, key) + (m.name === queue ? gpus : 0);
        borrowed += Math.max(0, mUsed - mNominal);
        lendable += Math.min(m.lendingLimit?.[key] ?? mNominal, Math.max(0, mNominal - mUsed));
      }
      if (borrowed > lendable) {
        return `queue '${queue}' would borrow ${after - nominal} ${label}; cohort '${q.cohort}' has ${lendable - (borrowed - (after - nominal))} to lend`;
      }
    }
    if (!anyKey) return `queue '${queue}' has no quota for ${model}`;
    return null;
  }
}
