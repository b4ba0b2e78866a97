/**
 * The scheduler thread's side of plannerThread.ts: keeps the open jobs from the deltas it is
 * sent, plans with a CoreSchedulerAdapter and answers the plan with only the changed reasons.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Job } from '../../api/types.ts';
import { changedReasons } from '../loop.ts';
import { CoreSchedulerAdapter, type SchedulerOptions } from './coreAdapter.ts';
import type { PlanReply, PlanRequest } from './plannerThread.ts';

const port = parentPort;
if (!port) throw new Error('plannerWorker.ts runs as a worker thread');
const init = (workerData as { init: { scheduler: string; placement: string; options: SchedulerOptions } }).init;
const send = (m: PlanReply): void => port.postMessage(m);

let adapter: CoreSchedulerAdapter;
try {
  adapter = await CoreSchedulerAdapter.create(init.scheduler, init.placement, init.options);
} catch (e) {
  send({ failed: (e as Error).message });
  throw e;
}
const jobs = new Map<string, Job>();
let list: Job[] = [];

port.on('message', (m: PlanRequest) => {
  try {
    if (m.reset) jobs.clear();
    for (const id of m.removed) jobs.delete(id);
    for (const j of m.upserts) jobs.set(j.id, j);
    if (m.reset || m.removed.length || m.upserts.length) list = [...jobs.values()].sort((a, b) => Number(a.id) - Number(b.id));
    const snap = { nodes: m.nodes, activeTasks: m.activeTasks, openJobs: list, queues: m.queues };
    const full = adapter.plan(snap, m.nowMs);
    send({ seq: m.seq, plan: { ...full, pending: changedReasons(full.pending, snap) } });
  } catch (e) {
    send({ seq: m.seq, error: (e as Error).message });
  }
});
send({ ready: true });
