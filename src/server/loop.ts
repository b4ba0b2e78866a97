/**
 * The scheduling loop on the wall clock: while this server holds the scheduler lease, each tick
 * marks silent nodes lost, then takes a snapshot from the store, runs the job scheduler on it
 * and applies the plan (fenced by the lease, so a deposed leader's plan is dropped).
 */
import { SCHEDULER_LEASE } from '../store/sqlStore.ts';
import type { Store, StoreSnapshot } from '../store/store.ts';
import type { CoreSchedulerAdapter } from './scheduling/coreAdapter.ts';

export interface LoopOptions {
  readonly serverId: string;
  readonly tickMs: number;
  readonly leaseTtlMs: number;
  /** A node silent for this long is lost. */
  readonly nodeLeaseMs: number;
  readonly clock: () => number;
  readonly onCycle?: (seconds: number, snapshot: StoreSnapshot) => void;
  readonly onError?: (e: unknown) => void;
  readonly onLeadership?: (leader: boolean) => void;
}

export class SchedulingLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private leader = false;
  /** When this server last became leader: agents may have been unable to heartbeat before it. */
  private leaderSince = 0;
  private kick = false;

  constructor(
    private readonly store: Store,
    private readonly scheduler: CoreSchedulerAdapter,
    private readonly opts: LoopOptions,
  ) {}

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.schedule(0);
  }

  /** Runs a cycle soon (after a submission) instead of waiting for the next tick. */
  poke(): void {
    this.kick = true;
    if (this.timer && !this.running) {
      clearTimeout(this.timer);
      this.schedule(5);
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.tick().finally(() => {
        this.running = null;
        this.schedule(this.kick ? 5 : this.opts.tickMs);
        this.kick = false;
      });
    }, ms);
  }

  /** One tick; exposed for tests and benchmarks. */
  async tick(): Promise<void> {
    const { store, opts } = this;
    try {
      const leader = await store.acquireLease(SCHEDULER_LEASE, opts.serverId, opts.leaseTtlMs, opts.clock());
      if (leader !== this.leader) {
        this.leader = leader;
        this.leaderSince = opts.clock();
        opts.onLeadership?.(leader);
      }
      if (!leader) return;
      // A node is lost only after a full lease of silence under this leader: after a restart or
      // a failover, agents get one lease to find the server again.
      if (opts.clock() - this.leaderSince >= opts.nodeLeaseMs) await store.expireNodes(opts.clock() - opts.nodeLeaseMs, opts.clock());
      await this.cycle();
    } catch (e) {
      opts.onError?.(e);
    }
  }

  /** Snapshot → plan → apply; returns how long it took in seconds. */
  async cycle(): Promise<number> {
    const start = performance.now();
    const snap = await this.store.snapshot();
    const now = this.opts.clock();
    const plan = this.scheduler.plan(snap, now);
    if (plan.binds.length || plan.preemptions.length || plan.pending.length) await this.store.applyPlan(plan, now, this.opts.serverId);
    const seconds = (performance.now() - start) / 1000;
    this.opts.onCycle?.(seconds, snap);
    return seconds;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (this.leader) await this.store.releaseLease(SCHEDULER_LEASE, this.opts.serverId).catch(() => {});
  }
}
