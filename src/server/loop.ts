/**
 * The scheduling loop on the wall clock: while this server holds the scheduler lease, each tick
 * marks silent nodes lost, then takes a snapshot from the store, times out jobs at their time
 * limit (timeLimits.ts), tracks and reclaims idle allocations (idle/idleMonitor.ts), follows nodes
 * being suspended or resumed (power/nodePower.ts), runs the job scheduler on the snapshot and applies the plan (fenced by the lease, so a deposed leader's plan is dropped), then
 * the plan's node power changes.
 */
import { SCHEDULER_LEASE } from '../store/sqlStore.ts';
import type { AppliedPlan, Store, StoreSnapshot } from '../store/store.ts';
import type { Planner } from './scheduling/plannerThread.ts';
import { ThreadStalls } from './threadStalls.ts';
import { TimeLimits } from './timeLimits.ts';
import { changedReasons, openJob } from './scheduling/changedReasons.ts';

export interface LoopOptions {
  readonly serverId: string;
  readonly tickMs: number;
  readonly leaseTtlMs: number;
  /** A node silent for this long is lost. */
  readonly nodeLeaseMs: number;
  readonly clock: () => number;
  readonly onCycle?: (seconds: number, snapshot: StoreSnapshot) => void;
  /** Told, per job started by an applied plan, how long it waited since submission (seconds). */
  readonly onAdmitted?: (waitSeconds: number, queue: string) => void;
  readonly onError?: (e: unknown) => void;
  readonly onLeadership?: (leader: boolean) => void;
  /** Told each cycle's snapshot after the time limits (server/idle/idleMonitor.ts); `leaderSince` marks a new term. */
  readonly idle?: { enforce(snap: StoreSnapshot, now: number, leaderSince: number): Promise<{ readonly reclaimed: readonly string[] }> };
  /** GPUs services keep from lending now (the services' controller), handed to the scheduler with each snapshot. */
  readonly reservations?: () => StoreSnapshot['reservations'];
  /** Told the nodes an applied plan bound tasks to or stopped tasks on, so their agents hear of it now (nodeWakeups.ts). */
  readonly onNodesChanged?: (nodes: ReadonlySet<string>) => void;
  /** Told the applied preemptions that took lent GPUs back for a service. */
  readonly onReclaim?: (preemptions: AppliedPlan['preemptions']) => void;
  /**
   * Node power saving (server/power/nodePower.ts): `check` each cycle's snapshot (nodes back from
   * a resume, or past its timeout), `apply` each applied plan's power changes.
   */
  readonly power?: {
    check(snap: StoreSnapshot, now: number): Promise<unknown>;
    apply(changes: NonNullable<AppliedPlan['nodePower']>, now: number): Promise<unknown>;
  };
}

/** Delay of a poked cycle. */
const POKE_MS = 50;
/** The longest rest between poked cycles (ms): Volcano's schedule period. Work that came in during a long cycle (half an array's tasks, say) waits no longer than this for the next. */
const MAX_REST_MS = 1000;

export class SchedulingLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private leader = false;
  /** When this server last became leader: agents may have been unable to heartbeat before it. */
  private leaderSince = 0;
  private kick = false;
  /** How long a poked cycle waits after the last one ends (ms): set by each cycle. */
  private rest = 0;
  /** When the timer set fires (ms, performance clock). */
  private dueAt = 0;
  /** A poke starts no cycle before this (ms, performance clock): see schedule. */
  private restUntil = 0;
  /** Where the last cycle's time went, in seconds (for benchmarks): the live inputs' refresh, the snapshot (beyond the refresh, beside which it runs), the time-limit, idle and power checks, the plan (beyond the checks, beside which it runs) and the apply (lease renewal included). */
  lastCycleParts = { refresh: 0, snapshot: 0, checks: 0, plan: 0, apply: 0 };
  /** New pending jobs the last plan left for later cycles (AppliedPlan.backlog): 0 once every one has been taken in. */
  backlog = 0;
  /** The last plan's wakeAt (ms): the next cycle runs by then even if the tick is longer. */
  private wakeAt: number | undefined;
  private readonly timeLimits: TimeLimits;
  /** How long the request thread was held: silence the agents are not blamed for (threadStalls.ts). */
  readonly stalls: ThreadStalls;
  private readonly observers: ((seconds: number, snapshot: StoreSnapshot) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly scheduler: Planner,
    private readonly opts: LoopOptions,
  ) {
    this.timeLimits = new TimeLimits(store);
    this.stalls = new ThreadStalls(opts.nodeLeaseMs);
  }

  /** The rest after the last cycle (ms); for tests. */
  get restMs(): number {
    return this.rest;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** What plans the cycles (the adapter, or the scheduler thread); for benchmarks. */
  get planner(): Planner {
    return this.scheduler;
  }

  /** Adds a listener told each cycle's time and snapshot (as opts.onCycle is); for benchmarks. */
  observe(fn: (seconds: number, snapshot: StoreSnapshot) => void): void {
    this.observers.push(fn);
  }

  start(): void {
    this.stalls.start();
    this.schedule(0);
  }

  /**
   * Runs a cycle soon (after a submission or a task exit) instead of waiting for the next tick;
   * pokes within POKE_MS of each other share one cycle, and none starts a cycle within three
   * times the last cycle's length of its end, so a stream of submissions is not starved by
   * back-to-back cycles (as Slurm's sched_min_interval keeps its scheduler from running on every
   * submission).
   */
  poke(): void {
    if (this.kick) return;
    this.kick = true;
    if (this.timer && !this.running) {
      const at = Math.max(performance.now() + POKE_MS, this.restUntil);
      if (at >= this.dueAt) return;
      clearTimeout(this.timer);
      this.schedule(at - performance.now());
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.dueAt = performance.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick = false;
      this.running = this.tick().finally(() => {
        this.running = null;
        const poked = this.kick;
        this.kick = false;
        this.restUntil = performance.now() + this.rest;
        this.schedule(poked ? Math.max(POKE_MS, this.rest) : this.untilWake());
      });
    }, ms);
  }

  /** The delay of the next tick: the tick, or less when the last plan asked to be woken sooner (a deferred job's hour, a node's suspend time). */
  private untilWake(): number {
    const due = this.wakeAt === undefined ? Infinity : this.wakeAt - this.opts.clock();
    // A wake-up long past (a stale one) is not a reason to spin.
    return due < -this.opts.tickMs ? this.opts.tickMs : Math.min(this.opts.tickMs, Math.max(POKE_MS, due));
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
      // a failover, agents get one lease to find the server again; and the time this server's
      // thread was held in the last lease (heartbeats waited unread) is not the nodes' silence.
      // Its failure is reported, and the cycle runs all the same: a fault in expiry (a deadlock
      // PostgreSQL aborted, a value it refused) must not stop scheduling for everyone.
      if (opts.clock() - this.leaderSince >= opts.nodeLeaseMs) await store.expireNodes(opts.clock() - opts.nodeLeaseMs - this.stalls.heldWithin(opts.nodeLeaseMs), opts.clock()).catch((e: unknown) => opts.onError?.(e));
      await this.cycle();
    } catch (e) {
      opts.onError?.(e);
    }
  }

  /** Time limits, idle GPUs and node power, judged on the cycle's snapshot. */
  private async checks(snap: StoreSnapshot, now: number): Promise<void> {
    const timedOut = await this.timeLimits.enforce(snap, now);
    // Idle detection must not hold up scheduling: its failure is reported, and the cycle goes on.
    const idle = this.opts.idle ? await this.opts.idle.enforce(snap, now, this.leaderSince).catch((e: unknown) => void this.opts.onError?.(e)) : undefined;
    // Their tasks are stopping: their agents hear of it now.
    const stopped = [...timedOut, ...(idle?.reclaimed ?? [])];
    if (stopped.length) this.opts.onNodesChanged?.(nodesOf(stopped, snap));
    // Likewise node power: a node back from its resume is seen by the next cycle (poked at once).
    if (this.opts.power) await this.opts.power.check(snap, now).catch((e: unknown) => this.opts.onError?.(e));
  }

  /** Snapshot → plan → apply; returns how long it took in seconds. */
  async cycle(): Promise<number> {
    const start = performance.now();
    // The live inputs (finished runs, usage) and the open jobs are read side by side: neither
    // depends on the other, and on PostgreSQL each has connections of its own (the finished runs
    // of a cycle's 4,000 array tasks are eight pages, 0.25 s before the snapshot began).
    let refreshed = start;
    const [, taken] = await Promise.all([this.scheduler.refresh(this.store, this.opts.clock()).then(() => void (refreshed = performance.now())), this.store.snapshot()]);
    const snapped = performance.now();
    const reservations = this.opts.reservations?.();
    const snap = reservations?.length ? { ...taken, reservations } : taken;
    const now = this.opts.clock();
    // The checks write what they find while the scheduler plans on the same snapshot: the plan
    // never saw their effects (they act on the store, not on the snapshot), and on PostgreSQL
    // their writes (the idle monitor's thousands of rows) held 0.1-1 s of a cycle before the plan.
    let checked = snapped;
    const [, full] = await Promise.all([this.checks(snap, now).then(() => void (checked = performance.now())), this.scheduler.plan(snap, now)]);
    const plan = { ...full, pending: changedReasons(full.pending, snap) };
    const planned = performance.now();
    this.wakeAt = full.wakeAt;
    // Arrivals the planner has not taken in yet: the next cycle comes after the rest, as if poked.
    this.backlog = full.backlog ?? 0;
    if (this.backlog) this.kick = true;
    if (plan.binds.length || plan.preemptions.length || plan.pending.length || plan.borrowed || plan.nodePower?.length) {
      // A cycle may outlast the lease taken at the tick: renew it, or the plan is fenced off.
      // If another server took the lease meanwhile, this fails and the plan is dropped.
      const applyAt = this.opts.clock();
      const held = await this.store.acquireLease(SCHEDULER_LEASE, this.opts.serverId, this.opts.leaseTtlMs, applyAt);
      const applied = held && (await this.store.applyPlan(plan, now, this.opts.serverId));
      // Suspends and resumes only once the plan is in the store (its binds are active tasks then, which keep a node up).
      if (applied && plan.nodePower?.length && this.opts.power) await this.opts.power.apply(plan.nodePower, now).catch((e: unknown) => this.opts.onError?.(e));
      if (applied && this.opts.onNodesChanged) this.opts.onNodesChanged(changedNodes(plan, snap));
      const reclaims = plan.preemptions.filter((p) => p.reclaim !== undefined);
      if (applied && reclaims.length) this.opts.onReclaim?.(reclaims);
      if (applied && this.opts.onAdmitted) {
        for (const b of plan.binds) {
          const j = openJob(snap, b.jobId);
          for (let u = 0; j && u < (b.units ?? 1); u++) this.opts.onAdmitted(Math.max(0, now - j.createdAt) / 1000, j.queue);
        }
      }
    }
    const end = performance.now();
    const seconds = (end - start) / 1000;
    // A poked cycle waits three times what the last one took of the request thread, or what it
    // took of the scheduler thread if that is longer: under a burst of submissions the loop takes at
    // most a quarter of the request thread from the API, and half a core for planning (on two
    // cores, planning back to back starved the API as surely as planning on its thread); at most
    // MAX_REST_MS. Each bound holds with the longer of the two rests alone: their sum (until
    // December 6) rested an array burst's cycles a full second, 0.3 s more than either asked.
    const away = Math.min(seconds * 1000, this.scheduler.awayMs ?? 0);
    this.rest = Math.min(MAX_REST_MS, Math.max(3 * (seconds * 1000 - away), away));
    this.lastCycleParts = {
      refresh: (refreshed - start) / 1000,
      snapshot: Math.max(0, snapped - refreshed) / 1000,
      checks: (checked - snapped) / 1000,
      plan: Math.max(0, planned - checked) / 1000,
      apply: (end - planned) / 1000,
    };
    this.opts.onCycle?.(seconds, snap);
    for (const fn of this.observers) fn(seconds, snap);
    return seconds;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stalls.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (this.leader) await this.store.releaseLease(SCHEDULER_LEASE, this.opts.serverId).catch(() => {});
  }
}

/** The nodes a plan binds tasks to or stops tasks on. */
function changedNodes(plan: AppliedPlan, snap: StoreSnapshot): Set<string> {
  const nodes = plan.preemptions.length ? nodesOf(plan.preemptions.map((p) => p.jobId), snap) : new Set<string>();
  for (const b of plan.binds) for (const t of b.tasks) nodes.add(t.node);
  return nodes;
}

/** The nodes the jobs' active tasks are on. */
function nodesOf(jobIds: readonly string[], snap: StoreSnapshot): Set<string> {
  const jobs = new Set(jobIds);
  const nodes = new Set<string>();
  for (const t of snap.activeTasks) if (jobs.has(t.jobId)) nodes.add(t.node);
  return nodes;
}
