/**
 * Quota accounting with Kueue's semantics. Each ClusterQueue has a nominal quota per GPU model
 * (key `*`: any model). Inside a cohort a queue may go above its nominal quota by borrowing
 * what other members leave unused, up to its borrowingLimit; a member lends at most its
 * lendingLimit. The rule checked: for every quota key, Σ borrowed ≤ Σ lendable-and-unused.
 */
import type { GpuModel } from '../model.ts';
import type { QueueConfig } from './model.ts';

const ANY = '*';

interface QueueRecord {
  readonly config: QueueConfig;
  readonly cohort: CohortRecord;
  /** GPUs in use per key: models and '*'. */
  readonly used: Map<string, number>;
}

interface CohortRecord {
  readonly members: QueueRecord[];
  readonly configs: QueueConfig[];
  /** Keys some member has a nominal quota for (a key no member names is not limited). */
  readonly keys: Set<string>;
}

export class QuotaLedger {
  private readonly queues = new Map<string, QueueRecord>();

  constructor(queues: readonly QueueConfig[]) {
    const cohorts = new Map<string, CohortRecord>();
    for (const q of queues) {
      const name = q.cohort ?? `queue:${q.name}`;
      let cohort = cohorts.get(name);
      if (!cohort) cohorts.set(name, (cohort = { members: [], configs: [], keys: new Set() }));
      const record: QueueRecord = { config: q, cohort, used: new Map() };
      cohort.members.push(record);
      cohort.configs.push(q);
      for (const key of Object.keys(q.nominalQuota)) if (q.nominalQuota[key] !== undefined) cohort.keys.add(key);
      this.queues.set(q.name, record);
    }
  }

  /** False when no queues are configured: everything is admitted. */
  get enforced(): boolean {
    return this.queues.size > 0;
  }

  used(queue: string, key: GpuModel | '*'): number {
    return this.queues.get(queue)?.used.get(key) ?? 0;
  }

  add(queue: string, model: GpuModel, gpus: number): void {
    const u = this.queues.get(queue)?.used;
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
    return Math.max(0, (q.used.get(key) ?? 0) - (q.config.nominalQuota[key] ?? 0));
  }

  /** The cohort members of a queue (itself included). */
  cohortOf(queue: string): readonly QueueConfig[] {
    return this.queues.get(queue)?.cohort.configs ?? [];
  }

  /**
   * Could `queue` take `gpus` more GPUs of `model`? Null when yes, else a one-line reason.
   * With `withinNominal`, only its own nominal quota counts (what reclaim may restore).
   */
  check(queue: string, model: GpuModel, gpus: number, withinNominal = false): string | null {
    if (!this.enforced || gpus === 0) return null;
    const q = this.queues.get(queue);
    if (!q) return `queue '${queue}' does not exist`;
    const keys = q.cohort.keys;
    if (!keys.has(model) && !keys.has(ANY)) return `queue '${queue}' has no quota for ${model}`;
    if (keys.has(model)) {
      const error = this.checkKey(q, model, model, gpus, withinNominal);
      if (error !== null) return error;
    }
    return keys.has(ANY) ? this.checkKey(q, ANY, model, gpus, withinNominal) : null;
  }

  /** check() for one quota key. */
  private checkKey(q: QueueRecord, key: string, model: GpuModel, gpus: number, withinNominal: boolean): string | null {
    const { config } = q;
    const queue = config.name;
    const nominal = config.nominalQuota[key] ?? 0;
    const after = (q.used.get(key) ?? 0) + gpus;
    if (after <= nominal) return null;
    const label = key === ANY ? 'GPUs' : `${model} GPUs`;
    if (withinNominal || config.cohort === undefined) return `queue '${queue}' would use ${after} ${label}, nominal quota ${nominal}`;
    const limit = config.borrowingLimit?.[key];
    if (limit !== undefined && after - nominal > limit) {
      return `queue '${queue}' would borrow ${after - nominal} ${label}, borrowing limit ${limit}`;
    }
    let borrowed = 0;
    let lendable = 0;
    for (const m of q.cohort.members) {
      const mNominal = m.config.nominalQuota[key] ?? 0;
      const mUsed = (m.used.get(key) ?? 0) + (m === q ? gpus : 0);
      borrowed += Math.max(0, mUsed - mNominal);
      lendable += Math.min(m.config.lendingLimit?.[key] ?? mNominal, Math.max(0, mNominal - mUsed));
    }
    if (borrowed > lendable) {
      return `queue '${queue}' would borrow ${after - nominal} ${label}; cohort '${config.cohort}' has ${lendable - (borrowed - (after - nominal))} to lend`;
    }
    return null;
  }
}
