/**
 * The dashboard's server side over real HTTP: the live stream pushes a tenant its own jobs and
 * never another's, the telemetry history is bounded and filtered by time, placements hide other
 * tenants' jobs, and the dry run checks a spec as a submission would without creating it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { NodeInfo } from '../api/types.ts';
import { LiveHub, samplePoint } from './liveEvents.ts';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'live-admin';
const AGENT = 'live-agent';
const A = 'live-alice';
const B = 'live-bob';
let server: RunningServer;
const call = (method: string, path: string, token: string | null, body?: unknown) => httpCall(server.url, method, path, token, body);

before(async () => {
  server = await memoryServer({ adminToken: ADMIN, agentToken: AGENT, tickMs: 60_000, nodeLeaseMs: 600_000, tenants: { alice: [A], bob: [B] }, queues: [{ name: 'shared', gpuQuota: null, borrowingLimit: null }] });
  const r = await call('POST', '/v1/agent/register', AGENT, { id: 'n1', address: 'http://127.0.0.1:9', cpuMilli: 64_000, memoryMib: 262_144, gpus: [0, 1, 2, 3].map((i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `GPU-live-${i}` })), simulated: true });
  assert.equal(r.status, 200, r.text);
});
after(async () => server.close());

interface Sse {
  readonly messages: { event: string; data: any }[];
  /** Resolves with the first message that passes `test` (already received or still to come). */
  next(test: (m: { event: string; data: any }) => boolean): Promise<{ event: string; data: any }>;
  close(): void;
}

/** Reads /v1/stream as the dashboard does (fetch with the token in the header). */
async function listen(token: string): Promise<Sse> {
  const ctl = new AbortController();
  const res = await fetch(`${server.url}/v1/stream`, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const messages: { event: string; data: any }[] = [];
  const waiters: { test: (m: { event: string; data: any }) => boolean; resolve: (m: { event: string; data: any }) => void }[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event || !data) continue;
          const m = { event, data: JSON.parse(data) };
          messages.push(m);
          for (const w of waiters.splice(0)) {
            if (w.test(m)) w.resolve(m);
            else waiters.push(w);
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    messages,
    next: (t) => {
      const found = messages.find(t);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ test: t, resolve }));
    },
    close: () => ctl.abort(),
  };
}

test('the stream pushes each tenant its own jobs and events, never another\'s; the admin gets all', async () => {
  const [a, b, admin] = await Promise.all([listen(A), listen(B), listen(ADMIN)]);
  try {
    assert.deepEqual((await a.next((m) => m.event === 'hello')).data.tenant, 'alice');
    assert.equal((await b.next((m) => m.event === 'nodes')).data.nodes[0].id, 'n1');
    const ra = await call('POST', '/v1/jobs', A, { name: 'secret-a', queue: 'shared', tasks: [{ gpus: 1, command: 'true' }] });
    assert.equal(ra.status, 201, ra.text);
    const aId: string = ra.json.jobs[0].id;
    const rb = await call('POST', '/v1/jobs', B, { name: 'job-b', queue: 'shared', tasks: [{ gpus: 0, command: 'true' }] });
    const bId: string = rb.json.jobs[0].id;
    // Each gets its own job; the admin both; then B cancels its job and gets that change too.
    assert.equal((await a.next((m) => m.event === 'job' && m.data.job.id === aId)).data.job.name, 'secret-a');
    await b.next((m) => m.event === 'job' && m.data.job.id === bId);
    await admin.next((m) => m.event === 'job' && m.data.job.id === aId);
    await admin.next((m) => m.event === 'job' && m.data.job.id === bId);
    await call('POST', `/v1/jobs/${bId}/cancel`, B);
    await b.next((m) => m.event === 'job' && m.data.job.id === bId && m.data.job.state === 'cancelled');
    await b.next((m) => m.event === 'event' && m.data.event.jobId === bId && /cancel/.test(m.data.event.type));
    // By now B has seen every change up to its cancel: none of them was A's.
    const seenByB = JSON.stringify(b.messages);
    assert.doesNotMatch(seenByB, /secret-a|alice/);
    assert.ok(!b.messages.some((m) => m.data.job?.id === aId || m.data.event?.jobId === aId), 'B got nothing of A\'s job');
    assert.ok(!a.messages.some((m) => m.data.job?.id === bId || m.data.event?.jobId === bId), 'A got nothing of B\'s job');
  } finally {
    a.close();
    b.close();
    admin.close();
  }
});

test('the stream and the other dashboard routes ask for a tenant or admin token', async () => {
  for (const path of ['/v1/stream', '/v1/telemetry', '/v1/placements', '/v1/session']) {
    assert.equal((await call('GET', path, null)).status, 401, path);
    assert.equal((await call('GET', path, AGENT)).status, 403, path);
  }
  assert.equal((await call('GET', '/v1/telemetry?since=soon', A)).status, 400);
  assert.match((await call('GET', '/v1/telemetry?since=soon', A)).text, /since/);
  assert.equal((await call('GET', '/v1/stream?once=maybe', A)).status, 400);
  const once = await call('GET', '/v1/stream?once=true', B);
  assert.equal(once.status, 200);
  assert.match(once.text, /^event: hello\ndata: .*"tenant":"bob"/);
  const session = (await call('GET', '/v1/session', B)).json;
  assert.deepEqual([session.role, session.tenant], ['tenant', 'bob']);
  assert.deepEqual([(await call('GET', '/v1/session', ADMIN)).json.role, (await call('GET', '/v1/session', ADMIN)).json.tenant], ['admin', null]);
});

test('placements: the admin sees whose job holds a GPU; another tenant sees only that it is held', async () => {
  const r = await call('POST', '/v1/jobs', A, { name: 'placed-a', queue: 'shared', tasks: [{ gpus: 1, command: 'true' }] });
  const id: string = r.json.jobs[0].id;
  server.loop.poke();
  const find = async (token: string) => {
    for (let i = 0; i < 200; i++) {
      // The state first, then the placements: read the other way round, they could predate the placement.
      if ((await call('GET', `/v1/jobs/${id}`, A)).json.job.state !== 'pending') return (await call('GET', '/v1/placements', token)).json.placements as any[];
      await new Promise((res) => setTimeout(res, 25)); // the loop places the job on its next cycle
    }
    throw new Error(`never placed: ${JSON.stringify((await call('GET', '/v1/jobs', ADMIN)).json.jobs.map((j: any) => [j.id, j.name, j.state, j.reason]))}`);
  };
  const asAdmin = await find(ADMIN);
  assert.ok(asAdmin.some((x) => x.job === id && x.tenant === 'alice' && x.mine));
  const asB = await find(B);
  assert.ok(asB.length > 0);
  for (const x of asB.filter((y) => !y.mine)) assert.deepEqual(Object.keys(x).sort(), ['gpuMilli', 'gpus', 'mine', 'node', 'state']);
  assert.ok(asAdmin.some((x) => x.job === id && x.queue === 'shared'), 'the admin sees the queue');
  assert.doesNotMatch(JSON.stringify(asB), /placed-a|alice/);
  await call('POST', `/v1/jobs/${id}/cancel`, A);
});

test('the dry run answers the field errors a submission would, creates nothing, and hides other tenants\' queues', async () => {
  const before = (await call('GET', '/v1/jobs', ADMIN)).json.jobs.length;
  const ok = await call('POST', '/v1/jobs/validate', A, { name: 'dry', queue: 'shared', tasks: [{ gpus: 1, memory: '1Gi', command: 'true' }] });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.ok, true);
  const bad = await call('POST', '/v1/jobs/validate', A, { name: 'dry', queue: 'shared', tasks: [{ gpus: 1, memory: 'lots', command: 'true' }] });
  assert.equal(bad.json.ok, false);
  assert.equal(bad.json.error.code, 'invalid_spec');
  assert.deepEqual(bad.json.error.fields.map((f: any) => f.path), ['tasks[0].memory']);
  const real = await call('POST', '/v1/jobs', A, { name: 'dry', queue: 'shared', tasks: [{ gpus: 1, memory: 'lots', command: 'true' }] });
  assert.deepEqual(real.json.error.fields, bad.json.error.fields, 'the same errors as a submission');
  const tooBig = await call('POST', '/v1/jobs/validate', A, { name: 'dry', queue: 'shared', tasks: [{ gpus: 16, command: 'true' }] });
  assert.equal(tooBig.json.error.code, 'unsatisfiable');
  // alice's own queue (named like her) is closed to bob: the answer names only bob's queues.
  const other = await call('POST', '/v1/jobs/validate', B, { name: 'dry', queue: 'alice', tasks: [{ gpus: 1, command: 'true' }] });
  const unknown = await call('POST', '/v1/jobs/validate', B, { name: 'dry', queue: 'no-such-queue', tasks: [{ gpus: 1, command: 'true' }] });
  assert.equal(other.json.ok, false);
  assert.deepEqual(other.json.error, unknown.json.error, 'another tenant\'s queue reads as an unknown one');
  assert.equal((await call('POST', '/v1/jobs/validate?tenant=alice', B, { name: 'dry', tasks: [{ gpus: 1, command: 'true' }] })).status, 403);
  assert.equal((await call('GET', '/v1/jobs', ADMIN)).json.jobs.length, before, 'nothing was created');
});

test('telemetry: samples count allocated, idle and free GPUs; the history is bounded and read since a time', async () => {
  const node = (state: NodeInfo['state'], used: number[], util: number[]): NodeInfo => ({
    id: `n-${state}`, state, address: '', cpuMilli: 0, memoryMib: 0, simulated: true, lastHeartbeat: 0, cpuUsedMilli: 0, memoryUsedMib: 0,
    gpus: used.map((_, i) => ({ index: i, model: 'H100', memoryMib: 80_000, uuid: `u${i}` })),
    gpuUsedMilli: used,
    telemetry: util.map((u, i) => ({ index: i, utilization: u, memoryUsedMib: 1000, powerWatts: 100 })),
  });
  const p = samplePoint([node('ready', [1000, 500, 0, 1000], [90, 50, 0, 1]), node('lost', [1000], [0])], 7);
  assert.deepEqual(p, { at: 7, gpus: 4, allocated: 3, allocatedIdle: 1, free: 1, utilization: 35.3, powerWatts: 400, memoryUsedMib: 4000 });
  let now = 1000;
  const hub = new LiveHub(server.store, () => now, { maxPoints: 3, sampleMs: 3_600_000, pollMs: 3_600_000 });
  try {
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await hub.sample();
    }
    assert.deepEqual(hub.telemetry(0).map((x) => x.at), [4000, 5000, 6000], 'the last three');
    assert.deepEqual(hub.telemetry(5000).map((x) => x.at), [6000]);
  } finally {
    hub.close();
  }
  const r = await call('GET', '/v1/telemetry?since=0', A);
  assert.equal(r.status, 200);
  assert.ok(r.json.points.length >= 1, r.text);
  assert.deepEqual(Object.keys(r.json.points[0]).sort(), ['allocated', 'allocatedIdle', 'at', 'free', 'gpus', 'memoryUsedMib', 'powerWatts', 'utilization']);
});

test('the job list filters by kind (the dashboard\'s filter), and a bad kind is a 400 naming it', async () => {
  for (const kind of ['batch', 'inference']) assert.equal((await call('POST', '/v1/jobs', A, { name: `k-${kind}`, kind, queue: 'shared', tasks: [{ gpus: 0, command: 'true' }] })).status, 201);
  const inference = (await call('GET', '/v1/jobs?kind=inference', A)).json.jobs as any[];
  assert.ok(inference.length >= 1);
  assert.ok(inference.every((j) => j.kind === 'inference'));
  assert.ok(inference.some((j) => j.name === 'k-inference'));
  const bad = await call('GET', '/v1/jobs?kind=quantum', A);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.fields[0].path, 'kind');
});
