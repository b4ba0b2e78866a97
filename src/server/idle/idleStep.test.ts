/**
 * The idle monitor steps its streaks at most every tenth of the threshold (5 s at most): the
 * cycles in between skip the walk over every GPU held, and detection is late by at most that.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { openStore } from '../../store/sqlStore.ts';
import { idleConfigOf } from './idleConfig.ts';
import { IdleMonitor } from './idleMonitor.ts';

test('cycles within the step interval skip the walk; the next step reports the crossing', async () => {
  const store = await openStore('memory:');
  try {
    await store.ensureTenant('a', 1);
    await store.registerNode({ id: 'n1', address: 'http://127.0.0.1:9', cpuMilli: 8000, memoryMib: 65536, gpus: [{ index: 0, model: 'H100', memoryMib: 81_920, uuid: 'GPU-0' }], simulated: true }, 1);
    const spec = parseJobSpec({ name: 'idle', idlePolicy: 'report', tasks: [{ gpus: 1, command: 'sleep 600' }] });
    assert.ok(spec.ok);
    const t0 = 10_000;
    const id = (await store.submit('a', spec.spec, null, t0)).jobs[0]?.id ?? '';
    await store.applyPlan({ binds: [{ jobId: id, attempt: 0, tasks: [{ index: 0, node: 'n1', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, t0);
    const monitor = new IdleMonitor(store, idleConfigOf({ afterMinutes: 0.9 }), { maxGapMs: 15_000 });
    assert.equal(monitor.stepEveryMs, 5_000);
    const cycle = async (at: number) => {
      await store.heartbeat('n1', [{ index: 0, utilization: 0, memoryUsedMib: 100, powerWatts: 70 }], [{ runId: `${id}.0.0`, state: 'running', pid: 7, exitCode: null, startedAt: t0 }], at);
      return (await monitor.enforce(await store.snapshot(), at, 1)).reported;
    };
    // Idle samples from t0 + 2 s: 54 s of them (the threshold) at t0 + 56 s. Steps at t0 + 2, 7, … 52 s.
    for (let at = t0 + 2_000; at <= t0 + 52_000; at += 5_000) assert.deepEqual(await cycle(at), []);
    assert.deepEqual(await cycle(t0 + 56_500), [], 'past the threshold, but 4.5 s since the last step: skipped');
    assert.deepEqual(await cycle(t0 + 57_000), [id], 'the next step reports it');
  } finally {
    await store.close();
  }
});
