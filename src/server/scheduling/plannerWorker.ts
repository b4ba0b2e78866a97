/**
 * The scheduler thread's side of plannerThread.ts: keeps the open jobs, active tasks and nodes
 * from the deltas it is sent, plans with a CoreSchedulerAdapter and answers the plan with only
 * the changed reasons.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Job, NodeInfo } from '../../api/types.ts';
import type { ActiveTask } from '../../store/store.ts';
import { hasRun, registerOpenJobs } from '../../store/openJobIndex.ts';
import { CoreSchedulerAdapter, type LiveAdapterConfig, type SchedulerOptions } from './coreAdapter.ts';
import type { LiveSource } from './liveInputs.ts';
import { taskKey, type PlanReply, type PlanRequest, type WorkerRequest } from './plannerThread.ts';

const port = parentPort;
if (!port) throw new Error('plannerWorker.ts runs as a worker thread');
const init = (workerData as { init: { scheduler: string; placement: string; options: SchedulerOptions; live: LiveAdapterConfig } }).init;
const send = (m: PlanReply): void => port.postMessage(m);

let adapter: CoreSchedulerAdapter;
try {
  adapter = await CoreSchedulerAdapter.create(init.scheduler, init.placement, init.options, init.live);
} catch (e) {
  send({ failed: (e as Error).message });
  throw e;
}
const jobs = new Map<string, Job>();
let list: Job[] = [];
/** The highest job id the map holds or held (the map is in id order while jobs only come in above it). */
let maxId = 0;
/**
 * The open jobs that run or ran (openJobIndex.ts hasRun), kept from the deltas, in id order once
 * sorted: the filter of every open job each cycle was 30-40 ms of this thread a cycle at 100,000
 * pending jobs, about a tenth of an array burst's plans.
 */
const started = new Map<string, Job>();
/** An id came into `started` since it was last put in order. */
let startedUnordered = false;
const tasks = new Map<string, ActiveTask>();
let taskList: ActiveTask[] = [];
const nodes = new Map<string, NodeInfo>();
let nodeOrder: readonly string[] = [];
let nodeList: NodeInfo[] = [];

/** The store, as far as the live inputs read it: each call answered by the request thread. */
let calls = 0;
const pendingCalls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const storeCall = (method: keyof LiveSource) => (...args: unknown[]): Promise<never> =>
  new Promise((resolve, reject) => {
    const call = ++calls;
    pendingCalls.set(call, { resolve: resolve as (v: unknown) => void, reject });
    send({ call, method, args });
  });
const source = { finishedRuns: storeCall('finishedRuns'), usageByHour: storeCall('usageByHour'), recentSpecs: storeCall('recentSpecs') } as LiveSource;

/** The map's jobs in id order, and the map put in that order again, so that later cycles can keep it so. */
function sortById(map: Map<string, Job>): Job[] {
  const sorted = [...map.values()].sort((a, b) => Number(a.id) - Number(b.id));
  map.clear();
  for (const j of sorted) map.set(j.id, j);
  return sorted;
}

port.on('message', (m: PlanRequest | WorkerRequest) => {
  if ('answer' in m) {
    const c = pendingCalls.get(m.answer);
    pendingCalls.delete(m.answer);
    if (m.error !== undefined) c?.reject(new Error(m.error));
    else c?.resolve(m.result);
    return;
  }
  if ('refresh' in m) {
    adapter.refresh(source, m.nowMs).then(
      () => send({ seq: m.refresh, refreshed: true }),
      (e: unknown) => send({ seq: m.refresh, error: (e as Error).message }),
    );
    return;
  }
  try {
    if (m.reset) {
      maxId = 0;
      jobs.clear();
      started.clear();
      tasks.clear();
      nodes.clear();
    }
    for (const id of m.removed) {
      jobs.delete(id);
      started.delete(id);
    }
    // The map keeps its order when a job is replaced or a newer one is added: sorted stays sorted.
    let ordered = !m.reset;
    const upserts: Job[] = [];
    for (const sent of m.upserts) {
      const had = jobs.get(sent.id);
      // A changed job comes without the spec it had (PlanRequest.upserts).
      let j = sent;
      if (sent.spec === undefined) {
        if (!had) throw new Error(`job ${sent.id} came without its spec, and this thread has none`);
        j = { ...sent, spec: had.spec };
      }
      if (!had && Number(j.id) < maxId) ordered = false;
      maxId = Math.max(maxId, Number(j.id));
      jobs.set(j.id, j);
      upserts.push(j);
      if (!hasRun(j)) started.delete(j.id);
      else {
        if (!started.has(j.id)) startedUnordered = true;
        started.set(j.id, j);
      }
    }
    if (m.reset || m.removed.length || upserts.length) {
      list = ordered ? [...jobs.values()] : sortById(jobs);
      // A replaced job keeps its place in the map: only a new id needs the sort.
      const startedList = startedUnordered ? sortById(started) : [...started.values()];
      startedUnordered = false;
      registerOpenJobs(list, jobs, startedList);
    }
    for (const k of m.taskRemoved) tasks.delete(k);
    for (const t of m.taskUpserts) tasks.set(taskKey(t), t);
    // As the store orders them: by job, then task index.
    if (m.reset || m.taskRemoved.length || m.taskUpserts.length) taskList = [...tasks.values()].sort((a, b) => Number(a.jobId) - Number(b.jobId) || a.index - b.index);
    for (const n of m.nodeUpserts) nodes.set(n.id, n);
    if (m.nodeOrder !== null) {
      nodeOrder = m.nodeOrder;
      const kept = new Set(nodeOrder);
      for (const id of [...nodes.keys()]) if (!kept.has(id)) nodes.delete(id);
    }
    if (m.reset || m.nodeOrder !== null || m.nodeUpserts.length) nodeList = nodeOrder.map((id) => nodes.get(id)).filter((n): n is NodeInfo => n !== undefined);
    const snap = { nodes: nodeList, activeTasks: taskList, openJobs: list, queues: m.queues, ...(m.reservations ? { reservations: m.reservations } : {}) };
    const plan = adapter.plan(snap, m.nowMs, true, m.reset ? undefined : { upserts, removed: m.removed });
    // The adapter already leaves out the reasons a job shows (changedReasonsOnly).
    send({ seq: m.seq, plan });
  } catch (e) {
    send({ seq: m.seq, error: (e as Error).message });
  }
});
send({ ready: true });
