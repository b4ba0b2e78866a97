/**
 * What the store keeps of services (migration 007), on every adapter: a service runs no task
 * and is running until cancelled, never requeued; its replicas are jobs of their own, ready only
 * for the attempt whose probe answered; a scaled-down replica ends cancelled, and cancelling the
 * service ends its replicas; bounds clamp the desired count; the borrowed flag follows the plan;
 * an immediate reclaim hands the agent a grace period of 0, and the requeue clears it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import type { Store } from './store.ts';
import { storeFactories } from './testing.ts';

const node = { id: 'n1', address: 'http://127.0.0.2:9100', cpuMilli: 32000, memoryMib: 65536, gpus: [0, 1, 2, 3].map((i) => ({ index: i, model: 'H100', memoryMib: 81920, uuid: `GPU-s-${i}` })), simulated: true };
const spec = (input: Record<string, unknown>): JobSpec => {
  const r = parseJobSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};
const service = spec({ name: 'chat', kind: 'service', service: { minReplicas: 2, maxReplicas: 4 }, tasks: [{ gpus: 1, command: 'serve' }] });
const replica = (serviceId: string, i: number): JobSpec => {
  const { service: _, ...rest } = service;
  return { ...rest, name: `chat-${i}`, replicaOf: serviceId, groups: [{ ...(service.groups[0] as JobSpec['groups'][number]), env: { TIDE_SERVICE_PORT: String(20000 + i) } }] };
};

for (const factory of storeFactories()) {
  describe(`services: ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await factory.open());
      await store.ensureTenant('ml', 1);
      await store.registerNode(node, 1);
    });
    after(async () => cleanup());

    test('a service runs no task, is running until cancelled, and its replicas are jobs that become ready per attempt', async () => {
      const svc = (await store.submit('ml', service, null, 1000)).jobs[0];
      assert.ok(svc);
      assert.deepEqual([svc.state, svc.tasks, svc.gpus, svc.kind], ['running', 0, 0, 'service']);
      assert.deepEqual(await store.listTasks(svc.id), []);
      const [rec] = await store.listServices();
      assert.deepEqual([rec?.job.id, rec?.minReplicas, rec?.maxReplicas, rec?.desired, rec?.keepMilli], [svc.id, 2, 4, 2, 0]);
      assert.equal(await store.preempt(svc.id, 'no', 1100), null, 'a service is never requeued');
      const r0 = await store.addReplica(svc.id, replica(svc.id, 0), 1200);
      const r1 = await store.addReplica(svc.id, replica(svc.id, 1), 1200);
      assert.ok(r0 && r1);
      assert.deepEqual([r0.serviceId, r0.state, r0.tasks, r0.spec.preemptible], [svc.id, 'pending', 1, false]);
      await store.applyPlan({ binds: [{ jobId: r0.id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 1300);
      let reps = await store.listReplicas([svc.id]);
      assert.deepEqual(reps.map((r) => [r.job.id, r.node, r.nodeAddress, r.ready]), [[r0.id, 'n1', node.address, false], [r1.id, null, null, false]]);
      assert.equal(await store.markReplicaReady(r0.id, 0), true);
      assert.equal((await store.listReplicas([svc.id]))[0]?.ready, false, 'not ready before its task runs');
      await store.heartbeat('n1', [], [{ runId: `${r0.id}.0.0`, state: 'running', pid: 1, exitCode: null, startedAt: 1400 }], 1400);
      assert.equal((await store.listReplicas([svc.id]))[0]?.ready, true);
      assert.equal(await store.markReplicaReady(r0.id, 0), false, 'no news');
      assert.equal(await store.markReplicaReady(r0.id, 5), false, 'another attempt');

      // Scale down: a replica ends cancelled; it is listed while its task stops.
      assert.equal(await store.stopReplica(r0.id, 'scaled down to 1 replica(s)', 1500), true);
      reps = await store.listReplicas([svc.id]);
      assert.deepEqual(reps.map((r) => [r.job.id, r.job.state, r.taskState, r.ready]), [[r0.id, 'cancelled', 'stopping', false], [r1.id, 'pending', 'pending', false]]);
      assert.equal(await store.stopReplica(svc.id, 'not a replica', 1500), false);

      // Bounds clamp the desired count; a decision is kept with its event.
      await store.decideService(svc.id, { desired: 4, keepMilli: 4000, urgent: true, reason: 'rate 3/s' }, 1600, { type: 'service:scale-up', message: '2 → 4' });
      const bounded = await store.setServiceBounds(svc.id, 1, 3, 'tenant:ml', 1700);
      assert.deepEqual([bounded?.desired, bounded?.minReplicas, bounded?.maxReplicas, bounded?.urgent, bounded?.keepMilli], [3, 1, 3, false, 4000]);
      assert.equal(await store.setServiceBounds(r1.id, 1, 3, 'x', 1700), null, 'a replica has no bounds');
      const types = (await store.listEvents({ jobId: svc.id })).map((e) => e.type);
      assert.ok(types.includes('service:scale-up') && types.includes('service:bounds'), types.join());

      // Cancelling the service ends its replicas.
      await store.cancel(svc.id, 'tenant:ml', 1800);
      assert.deepEqual([(await store.getJob(r1.id))?.state, (await store.getJob(r1.id))?.reason], ['cancelled', `its service ${svc.id} was cancelled by tenant:ml`]);
      assert.equal(await store.addReplica(svc.id, replica(svc.id, 2), 1900), null, 'no replica for a finished service');
      assert.deepEqual((await store.listServices()).map((s) => s.job.id), []);
      // Its stopping replica exits.
      await store.heartbeat('n1', [], [{ runId: `${r0.id}.0.0`, state: 'exited', pid: 1, exitCode: 0 }], 2000);
    });

    test('the borrowed flag follows the plan; an immediate reclaim stops with no grace period, and the requeue clears it', async () => {
      const train = (await store.submit('ml', spec({ name: 'train', gracePeriodSeconds: 30, tasks: [{ gpus: 1, command: 'train' }] }), null, 3000)).jobs[0];
      assert.ok(train);
      await store.applyPlan({ binds: [{ jobId: train.id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [1], gpuMilli: 1000 }] }], preemptions: [], pending: [], borrowed: { on: [train.id], off: [] } }, 3100);
      await store.heartbeat('n1', [], [{ runId: `${train.id}.0.0`, state: 'running', pid: 2, exitCode: null, startedAt: 3200 }], 3200);
      assert.equal((await store.getJob(train.id))?.borrowed, true);
      assert.equal((await store.listJobs({ tenant: 'ml' })).find((j) => j.id === train.id)?.borrowed, true);
      await store.applyPlan({ binds: [], preemptions: [{ jobId: train.id, reason: 'borrowed GPUs reclaimed for service 1: stopped at once', reclaim: 'immediate', lender: '1' }], pending: [] }, 3300);
      const stop = (await store.heartbeat('n1', [], [{ runId: `${train.id}.0.0`, state: 'running', pid: 2, exitCode: null }], 3400))?.find((a) => a.jobId === train.id);
      assert.deepEqual([stop?.action, stop?.gracePeriodSeconds], ['stop', 0]);
      assert.equal((await store.getJob(train.id))?.borrowed, false, 'a stopping job holds nothing borrowed');
      await store.heartbeat('n1', [], [{ runId: `${train.id}.0.0`, state: 'exited', pid: 2, exitCode: 137 }], 3500);
      assert.deepEqual([(await store.getJob(train.id))?.state, (await store.getJob(train.id))?.attempt], ['pending', 1]);
      await store.applyPlan({ binds: [{ jobId: train.id, attempt: 1, tasks: [{ index: 0, node: 'n1', gpus: [1], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 3600);
      const again = (await store.heartbeat('n1', [], [], 3700))?.find((a) => a.jobId === train.id);
      assert.deepEqual([again?.action, again?.gracePeriodSeconds, (await store.getJob(train.id))?.borrowed], ['run', 30, false]);
      await store.applyPlan({ binds: [], preemptions: [], pending: [], borrowed: { on: [train.id], off: [] } }, 3800);
      await store.applyPlan({ binds: [], preemptions: [], pending: [], borrowed: { on: [], off: [train.id] } }, 3900);
      assert.equal((await store.getJob(train.id))?.borrowed, false);
    });
  });
}
