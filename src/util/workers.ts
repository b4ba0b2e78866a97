/**
 * A small pool of worker threads running a TypeScript module, for CPU-bound work that splits
 * into independent jobs (benchmarks over policies × seeds). Results come back in job order,
 * whichever worker finished first, so output is deterministic.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const boot = new URL('./workerBoot.mjs', import.meta.url);

export interface PoolOptions<J, R> {
  /** URL of the worker module: it answers each {index, job} message with {index, result} or {index, error}. */
  readonly entry: URL;
  /** Data every worker gets once (readable there as workerData.init). */
  readonly init: unknown;
  readonly jobs: readonly J[];
  readonly threads?: number;
  readonly onResult?: (result: R, done: number, total: number) => void;
}

type Reply<R> = { index: number; result: R } | { index: number; error: string };

export function defaultThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

export async function runPool<J, R>(opts: PoolOptions<J, R>): Promise<R[]> {
  const { jobs } = opts;
  const results: R[] = new Array(jobs.length);
  if (jobs.length === 0) return results;
  const threads = Math.max(1, Math.min(opts.threads ?? defaultThreads(), jobs.length));
  let next = 0;
  let done = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const feed = (w: Worker): void => {
        if (next < jobs.length) {
          const index = next++;
          w.postMessage({ index, job: jobs[index] });
        }
      };
      for (let i = 0; i < threads; i++) {
        const w = new Worker(boot, { workerData: { entry: opts.entry.href, init: opts.init } });
        workers.push(w);
        w.on('message', (reply: Reply<R>) => {
          if ('error' in reply) return reject(new Error(reply.error));
          results[reply.index] = reply.result;
          done++;
          opts.onResult?.(reply.result, done, jobs.length);
          if (done === jobs.length) resolve();
          else feed(w);
        });
        w.on('error', reject);
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
