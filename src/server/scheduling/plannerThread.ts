/**
 * The scheduling core on its own thread, so that the request thread only serves requests: with
 * 100,000 pending jobs a cycle's planning takes long enough to hold up every API call and
 * heartbeat behind it. The worker (plannerWorker.ts) owns a CoreSchedulerAdapter (unchanged:
 * it is wrapped, not copied) and keeps its own copy of the open jobs, active tasks and nodes;
 * each cycle sends only what is new or changed since the last, and the keys of what is gone:
 * jobs and active tasks by identity (the store's incremental snapshot hands back the same object
 * for one that did not change), nodes by what the core reads of them. Nodes go without their
 * telemetry (the core reads none; it changes with every heartbeat). The plan comes back with
 * only the changed pending reasons. At 100,000 open jobs, 10,000 active tasks and 1,250 nodes,
 * copying all of it to the thread each cycle held the request thread for tens of milliseconds.
 *
 * The adapter's live inputs (finished jobs, usage, recent shapes: liveInputs.ts) are read by the
 * worker's adapter through the request thread: `refresh` asks the worker to refresh, and the
 * worker's store calls come back here as messages and are answered from the real store.
 */
import { Worker } from 'node:worker_threads';
import { sourceUrl } from '../../util/workerSource.ts';
import type { Job, NodeInfo } from '../../api/types.ts';
import type { ActiveTask, AppliedPlan, StoreSnapshot } from '../../store/store.ts';
import { openJobChanges } from '../../store/openJobIndex.ts';
import type { LiveAdapterConfig, SchedulerOptions } from './coreAdapter.ts';
import type { LiveSource } from './liveInputs.ts';

/** What the scheduling loop plans with: the adapter itself, or this thread. */
export interface Planner {
  /** Reads what the live inputs need beyond the snapshot (before each cycle). */
  refresh(store: LiveSource, nowMs: number): Promise<void>;
  plan(s: StoreSnapshot, nowMs: number): AppliedPlan | Promise<AppliedPlan>;
  /**
   * How long the last refresh and plan waited on another thread (ms): the request thread was
   * free for the API meanwhile, so the loop's rest asks only as long for it, not three times (SchedulingLoop.cycle).
   */
  readonly awayMs?: number;
}

/**
 * The planner the loop plans through: the scheduler thread once the server has started it (it
 * takes a second or so to load its sources, and agents must reach a restarted server well within
 * half their node lease, so the server listens first), else the adapter on the request thread,
 * which also takes over for good if the thread dies: scheduling goes on, only slower.
 */
export class PlannerSlot implements Planner {
  private thread: ThreadedPlanner | null = null;

  constructor(
    private readonly adapter: Planner,
    private readonly onThreadLost: (e: Error) => void = () => {},
  ) {}

  /** The thread plans from now on. */
  use(thread: ThreadedPlanner): void {
    this.thread = thread;
  }

  /** Who plans the next cycle. */
  get current(): Planner {
    const failed = this.thread?.failed;
    if (failed) {
      this.thread = null;
      this.onThreadLost(failed);
    }
    return this.thread ?? this.adapter;
  }

  refresh(store: LiveSource, nowMs: number): Promise<void> {
    return this.current.refresh(store, nowMs);
  }

  plan(s: StoreSnapshot, nowMs: number): AppliedPlan | Promise<AppliedPlan> {
    return this.current.plan(s, nowMs);
  }

  get awayMs(): number {
    return this.thread?.awayMs ?? 0;
  }
}

/** The store methods the worker may call, and a call of one. */
export const LIVE_SOURCE_METHODS = ['finishedRuns', 'usageByHour', 'recentSpecs'] as const;
export interface StoreCall {
  readonly call: number;
  readonly method: (typeof LIVE_SOURCE_METHODS)[number];
  readonly args: readonly unknown[];
}
/** Messages to the worker besides a PlanRequest. */
export type WorkerRequest = { readonly refresh: number; readonly nowMs: number } | { readonly answer: number; readonly result?: unknown; readonly error?: string };

/** One cycle's message to the worker. */
export interface PlanRequest {
  readonly seq: number;
  readonly nowMs: number;
  /** Nodes new or changed (without telemetry), and every node's id in order when that changed (else null). */
  readonly nodeUpserts: readonly NodeInfo[];
  readonly nodeOrder: readonly string[] | null;
  /** Active tasks new or changed, and the keys (`jobId/index`) of those no longer active. */
  readonly taskUpserts: readonly ActiveTask[];
  readonly taskRemoved: readonly string[];
  readonly queues: StoreSnapshot['queues'];
  readonly reservations?: StoreSnapshot['reservations'];
  /**
   * Jobs new or changed. A changed job whose spec is the one sent before comes without it (`spec`
   * undefined): the worker keeps the spec it has (specs never change; state changes are most of a
   * busy cycle's upserts, and the spec most of a job's bytes).
   */
  readonly upserts: readonly Job[];
  readonly removed: readonly string[];
  /** The worker drops what it has first (the first cycle, or after a failed one): upserts are all of it. */
  readonly reset: boolean;
}

/** An active task's key in the deltas. */
export const taskKey = (t: ActiveTask): string => `${t.jobId}/${t.index}`;

/** Each node object's signature: the store hands out a node unchanged as the same object (rows.ts NodeInfoCache). */
const signatures = new WeakMap<NodeInfo, string>();

/** What the core may read of a node, telemetry aside (its power state and since when included): a node is sent again when this changes. */
function nodeSignature(n: NodeInfo): string {
  let signature = signatures.get(n);
  if (signature === undefined) signatures.set(n, (signature = `${n.state}|${n.powerAt ?? ''}|${n.address}|${n.cpuMilli}|${n.memoryMib}|${n.simulated}|${n.cpuUsedMilli}|${n.memoryUsedMib}|${n.gpuUsedMilli.join(',')}|${JSON.stringify(n.gpus)}`));
  return signature;
}

/**
 * What changed since the last send, by key: an item is sent again when what `seen` gives for it
 * changed (identity for jobs and tasks, a signature for nodes). Keeps what was sent by generation.
 */
class SentCopies<T, S> {
  /** Entries are updated in place: at 100,000 jobs a fresh object per job per cycle kept the collector busy on the request thread. */
  private readonly sent = new Map<string, { seen: S; gen: number }>();
  private gen = 0;
  /** Deltas that walked the whole list (the rest came from recorded changes, or the same list). */
  walks = 0;
  /** The list of the last delta: the store hands out the same list while nothing in it changed. */
  private last: readonly T[] | null = null;

  /**
   * `sameListSameItems`: the items are never changed in place, so a list seen last time has
   * nothing new (jobs, tasks; not nodes). `changes`: what changed from the last list to this one,
   * where its store recorded it (open jobs: openJobChanges), so that the delta costs what
   * changed rather than a walk over every item (100,000 pending jobs: ~100 ms a cycle on the
   * request thread); null: walk.
   */
  constructor(
    private readonly sameListSameItems = false,
    private readonly changes?: (list: readonly T[], since: readonly T[]) => { readonly upserts: readonly T[]; readonly removed: readonly string[] } | null,
  ) {}

  get size(): number {
    return this.sent.size;
  }

  /** `previous`, aligned with `upserts`: what was sent of each before (undefined: it is new). */
  delta(items: readonly T[], key: (t: T) => string, seen: (t: T) => S): { upserts: T[]; removed: string[]; previous: (S | undefined)[] } {
    if (this.sameListSameItems && items === this.last) return { upserts: [], removed: [], previous: [] };
    const changed = this.last && this.sent.size > 0 ? this.changes?.(items, this.last) : null;
    this.last = items;
    if (changed) return this.apply(changed, key, seen);
    this.walks++;
    const gen = ++this.gen;
    const upserts: T[] = [];
    const previous: (S | undefined)[] = [];
    for (const item of items) {
      const k = key(item);
      const s = seen(item);
      const had = this.sent.get(k);
      if (!had) {
        upserts.push(item);
        previous.push(undefined);
        this.sent.set(k, { seen: s, gen });
        continue;
      }
      if (had.seen !== s) {
        upserts.push(item);
        previous.push(had.seen);
        had.seen = s;
      }
      had.gen = gen;
    }
    const removed: string[] = [];
    for (const [k, e] of this.sent) {
      if (e.gen !== gen) {
        removed.push(k);
        this.sent.delete(k);
      }
    }
    return { upserts, removed, previous };
  }

  /** The delta from recorded changes (the items of the list not named in them are as sent). */
  private apply(changed: { readonly upserts: readonly T[]; readonly removed: readonly string[] }, key: (t: T) => string, seen: (t: T) => S): { upserts: T[]; removed: string[]; previous: (S | undefined)[] } {
    const upserts: T[] = [];
    const previous: (S | undefined)[] = [];
    for (const item of changed.upserts) {
      const k = key(item);
      const s = seen(item);
      const had = this.sent.get(k);
      if (!had) {
        this.sent.set(k, { seen: s, gen: this.gen });
        previous.push(undefined);
      } else if (had.seen !== s) {
        previous.push(had.seen);
        had.seen = s;
      } else continue;
      upserts.push(item);
    }
    const removed = changed.removed.filter((k) => this.sent.delete(k));
    return { upserts, removed, previous };
  }

  clear(): void {
    this.sent.clear();
    this.last = null;
  }
}

export type PlanReply =
  | { readonly seq: number; readonly plan: AppliedPlan }
  | { readonly seq: number; readonly error: string }
  | { readonly seq: number; readonly refreshed: true }
  | StoreCall
  | { readonly ready: true }
  | { readonly failed: string };

const boot = sourceUrl('util/workerBoot.mjs');
const entry = sourceUrl('server/scheduling/plannerWorker.ts');

export class ThreadedPlanner implements Planner {
  /** What the worker has: jobs and tasks by identity, nodes by signature. */
  private readonly jobs = new SentCopies<Job, Job>(true, openJobChanges);
  private readonly tasks = new SentCopies<ActiveTask, ActiveTask>(true);
  private readonly nodes = new SentCopies<NodeInfo, string>();
  private nodeOrder: readonly string[] = [];
  private seq = 0;
  /** Objects sent to the worker in all (jobs, active tasks, nodes), for benchmarks. */
  readonly sentCounts = { jobs: 0, tasks: 0, nodes: 0, cycles: 0, withoutSpec: 0 };
  /** Cycles whose job delta walked every open job (for tests and benchmarks). */
  get jobWalks(): number {
    return this.jobs.walks;
  }
  /** Calls awaiting the worker's answer, by seq: a plan's resolves with the plan, a refresh's with nothing. */
  private readonly waiting = new Map<number, { resolve: (answer: AppliedPlan | undefined) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  /** ms the last refresh and plan spent waiting for the worker (the refresh's store calls included: they are short). */
  awayMs = 0;
  /** When the current wait began (performance clock). */
  private awaySince = 0;
  /** The store the worker's live inputs read from (set by refresh). */
  private source: LiveSource | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: PlanReply) => {
      if ('call' in m) {
        this.answer(m);
        return;
      }
      if (!('seq' in m)) return;
      const w = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if ('error' in m) w?.reject(new Error(m.error));
      else w?.resolve('plan' in m ? m.plan : undefined);
    });
    const die = (e: Error): void => {
      this.dead = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`scheduler thread exited (${code})`)));
  }

  /** Starts the worker and its adapter; rejects with the adapter's error (an unknown scheduler, say). */
  static async start(scheduler: string, placement: string, options: SchedulerOptions = {}, live: LiveAdapterConfig = {}): Promise<ThreadedPlanner> {
    const worker = new Worker(boot, { workerData: { entry: entry.href, init: { scheduler, placement, options, live } } });
    await new Promise<void>((resolve, reject) => {
      const on = (m: PlanReply): void => {
        if ('ready' in m) resolve();
        else if ('failed' in m) reject(new Error(m.failed));
        else return;
        worker.off('message', on);
      };
      worker.on('message', on);
      worker.once('error', reject);
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    return new ThreadedPlanner(worker);
  }

  /** Why the worker is gone (it crashed, or was closed); null while it runs. */
  get failed(): Error | null {
    return this.dead;
  }

  /** The worker's adapter refreshes its live inputs, reading the store through this thread. */
  async refresh(store: LiveSource, nowMs: number): Promise<void> {
    if (this.dead) throw this.dead;
    this.source = store;
    const seq = ++this.seq;
    this.awaySince = performance.now();
    this.awayMs = 0;
    await new Promise<void>((resolve, reject) => {
      this.waiting.set(seq, { resolve: () => resolve(), reject });
      this.worker.postMessage({ refresh: seq, nowMs } satisfies WorkerRequest);
    }).finally(() => this.cameBack());
  }

  private cameBack(): void {
    this.awayMs += performance.now() - this.awaySince;
  }

  /** Answers a store call of the worker's (only the live-input reads are allowed). */
  private answer(m: StoreCall): void {
    const reply = (r: WorkerRequest): void => this.worker.postMessage(r);
    if (!this.source || !LIVE_SOURCE_METHODS.includes(m.method)) {
      reply({ answer: m.call, error: `store call ${String(m.method)} refused` });
      return;
    }
    const fn = this.source[m.method] as (...a: unknown[]) => Promise<unknown>;
    fn.apply(this.source, [...m.args]).then(
      (result) => reply({ answer: m.call, result }),
      (e: unknown) => reply({ answer: m.call, error: (e as Error).message }),
    );
  }

  plan(s: StoreSnapshot, nowMs: number): Promise<AppliedPlan> {
    if (this.dead) return Promise.reject(this.dead);
    const reset = this.jobs.size === 0 && this.tasks.size === 0 && this.nodes.size === 0;
    const jobs = this.jobs.delta(s.openJobs, (j) => j.id, (j) => j);
    const tasks = this.tasks.delta(s.activeTasks, taskKey, (t) => t);
    const nodes = this.nodes.delta(s.nodes, (n) => n.id, nodeSignature);
    const order = s.nodes.map((n) => n.id);
    const orderChanged = reset || order.length !== this.nodeOrder.length || order.some((id, i) => id !== this.nodeOrder[i]);
    this.nodeOrder = order;
    const seq = ++this.seq;
    const req: PlanRequest = {
      seq,
      nowMs,
      nodeUpserts: nodes.upserts.map((n) => ({ ...n, telemetry: [] })),
      nodeOrder: orderChanged ? order : null,
      taskUpserts: tasks.upserts,
      taskRemoved: tasks.removed,
      queues: s.queues,
      ...(s.reservations ? { reservations: s.reservations } : {}),
      upserts: this.withoutKnownSpecs(jobs.upserts, jobs.previous),
      removed: jobs.removed,
      reset,
    };
    this.sentCounts.jobs += jobs.upserts.length;
    this.sentCounts.tasks += tasks.upserts.length;
    this.sentCounts.nodes += nodes.upserts.length;
    this.sentCounts.cycles++;
    return new Promise<AppliedPlan>((resolve, reject) => {
      this.waiting.set(seq, { resolve: (plan) => (plan ? resolve(plan) : reject(new Error('scheduler thread answered a plan request without a plan'))), reject });
      try {
        this.awaySince = performance.now();
        this.worker.postMessage(req);
      } catch (e) {
        this.waiting.delete(seq);
        // The worker's copy may now differ from ours: send everything next time.
        this.forget();
        reject(e as Error);
      }
    })
      .finally(() => this.cameBack())
      .catch((e: unknown) => {
        this.forget();
        throw e;
      });
  }

  /** The jobs to send, those whose spec is the one the worker has (`previous`, as SentCopies gives it) without it (PlanRequest.upserts). */
  private withoutKnownSpecs(upserts: readonly Job[], previous: readonly (Job | undefined)[]): Job[] {
    return upserts.map((j, i) => {
      if (previous[i]?.spec !== j.spec) return j;
      this.sentCounts.withoutSpec++;
      return { ...j, spec: undefined as unknown as Job['spec'] };
    });
  }

  /** Sends everything next time (the worker's copy may differ from what this side thinks). */
  private forget(): void {
    this.jobs.clear();
    this.tasks.clear();
    this.nodes.clear();
    this.nodeOrder = [];
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
