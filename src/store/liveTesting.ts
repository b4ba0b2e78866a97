/** Test helpers for the live core's store reads: nodes, and jobs run to their end through the store. */
import assert from 'node:assert/strict';
import { parseJobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';

function spec(over: Record<string, unknown>) {
  const r = parseJobSpec({ name: 'train', tasks: [{ gpus: 2, command: 'true' }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

/** Submits a job as `tenant`, binds its one task to GPUs 0-1 of n1, runs it from `start` to `end` (ms) with exit code `code`. */
export async function runJob(store: Store, tenant: string, over: Record<string, unknown>, start: number, end: number, code = 0): Promise<string> {
  const job = (await store.submit(tenant, spec(over), null, start - 1000)).jobs[0];
  assert.ok(job);
  assert.ok(await store.applyPlan({ binds: [{ jobId: job.id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [0, 1], gpuMilli: 2000 }] }], preemptions: [], pending: [] }, start - 500));
  const runId = ((await store.heartbeat('n1', [], [], start - 1)) ?? []).find((d) => d.jobId === job.id)?.runId ?? '';
  await store.heartbeat('n1', [], [{ runId, state: 'running', pid: 1, exitCode: null }], start);
  await store.heartbeat('n1', [], [{ runId, state: 'exited', pid: 1, exitCode: code }], end);
  return job.id;
}

export const node = (id: string, model: string, gpus = 4) => ({
  id,
  address: 'http://127.0.0.1:9',
  cpuMilli: 32000,
  memoryMib: 256 * 1024,
  gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model, memoryMib: 81920, uuid: `GPU-${id}-${i}` })),
  simulated: true,
});

