/**
 * The scheduling core on its own thread, so that the request thread only serves requests: with
 * 100,000 pending jobs a cycle's planning takes long enough to hold up every API call and
 * heartbeat behind it. The worker (plannerWorker.ts) owns a CoreSchedulerAdapter (unchanged:
 * it is wrapped, not copied) and keeps its own copy of the open jobs; each cycle sends only the
 * jobs that are new or changed since the last (the store's incremental snapshot hands back the
 * same Job object for a job that did not change) and the ids of those gone, with the nodes,
 * active tasks and queues. The plan comes back with only the pending reasons that changed.
 *
 * The adapter's live inputs (finished jobs, usage, recent shapes: liveInputs.ts) are read by the
 * worker's adapter through the request thread: `refresh` asks the worker to refresh, and the
 * worker's store calls come back here as messages and are answered from the real store.
 */
import { Worker } from 'node:worker_threads';
import type { Job } from '../../api/types.ts';
import type { AppliedPlan, StoreSnapshot } from '../../store/store.ts';
import type { LiveAdapterConfig, SchedulerOptions } from './coreAdapter.ts';
import type { LiveSource } from './liveInputs.ts';

/** What the scheduling loop plans with: the adapter itself, or this thread. */
export interface Planner {
  /** Reads what the live inputs need beyond the snapshot (before each cycle). */
  refresh(store: LiveSource, nowMs: number): Promise<void>;
  plan(s: StoreSnapshot, nowMs: number): AppliedPlan | Promise<AppliedPlan>;
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
  readonly nodes: StoreSnapshot['nodes'];
  readonly activeTasks: StoreSnapshot['activeTasks'];
  readonly queues: StoreSnapshot['queues'];
  readonly reservations?: StoreSnapshot['reservations'];
  readonly upserts: readonly Job[];
  readonly removed: readonly string[];
  /** The worker drops its jobs first (the first cycle, or after a failed one): upserts are all of them. */
  readonly reset: boolean;
}

export type PlanReply =
  | { readonly seq: number; readonly plan: AppliedPlan }
  | { readonly seq: number; readonly error: string }
  | { readonly seq: number; readonly refreshed: true }
  | StoreCall
  | { readonly ready: true }
  | { readonly failed: string };

const boot = new URL('../../util/workerBoot.mjs', import.meta.url);
const entry = new URL('./plannerWorker.ts', import.meta.url);

export class ThreadedPlanner implements Planner {
  /** The job objects the worker has, by id, with the generation that last saw each. */
  private readonly sent = new Map<string, { job: Job; gen: number }>();
  private gen = 0;
  private seq = 0;
  /** Calls awaiting the worker's answer, by seq: a plan's resolves with the plan, a refresh's with nothing. */
  private readonly waiting = new Map<number, { resolve: (answer: AppliedPlan | undefined) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
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

  /** The worker's adapter refreshes its live inputs, reading the store through this thread. */
  async refresh(store: LiveSource, nowMs: number): Promise<void> {
    if (this.dead) throw this.dead;
    this.source = store;
    const seq = ++this.seq;
    await new Promise<void>((resolve, reject) => {
      this.waiting.set(seq, { resolve: () => resolve(), reject });
      this.worker.postMessage({ refresh: seq, nowMs } satisfies WorkerRequest);
    });
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
    const reset = this.sent.size === 0;
    const gen = ++this.gen;
    const upserts: Job[] = [];
    for (const job of s.openJobs) {
      const had = this.sent.get(job.id);
      if (!had || had.job !== job) upserts.push(job);
      this.sent.set(job.id, { job, gen });
    }
    const removed: string[] = [];
    for (const [id, e] of this.sent) {
      if (e.gen !== gen) {
        removed.push(id);
        this.sent.delete(id);
      }
    }
    const seq = ++this.seq;
    const req: PlanRequest = { seq, nowMs, nodes: s.nodes, activeTasks: s.activeTasks, queues: s.queues, ...(s.reservations ? { reservations: s.reservations } : {}), upserts, removed, reset };
    return new Promise<AppliedPlan>((resolve, reject) => {
      this.waiting.set(seq, { resolve: (plan) => (plan ? resolve(plan) : reject(new Error('scheduler thread answered a plan request without a plan'))), reject });
      try {
        this.worker.postMessage(req);
      } catch (e) {
        this.waiting.delete(seq);
        // The worker's copy may now differ from ours: send everything next time.
        this.sent.clear();
        reject(e as Error);
      }
    }).catch((e: unknown) => {
      this.sent.clear();
      throw e;
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
