/**
 * The live server over real HTTP (in-memory SQLite, the scheduling loop in process, the fifo
 * scheduler, whose reasons name the job a job waits behind): what no node could ever run is
 * refused at submission naming the field; a job accepted before its node was drained holds
 * back no queue; pending reasons never name another tenant's job.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ERROR_CODES } from '../api/errors.ts';
import { PENDING_REASONS } from '../core/scheduling/reasons.ts';
import type { RunningServer } from './server.ts';
import { httpCall, memoryServer } from './testing.ts';

const ADMIN = 'admin-token-feas';
const AGENT = 'agent-token-feas';
const ALICE = 'alice-token-feas';
const BOB = 'bob-token-feasi';

describe('unschedulable jobs on the live server', () => {
  let server: RunningServer;
  const call = (method: string, path: string, token: string, body?: unknown) => httpCall(server.url, method, path, token, body);
  const submit = (token: string, name: string, task: Record<string, unknown>, extra: Record<string, unknown> = {}) => call('POST', '/v1/jobs', token, { name, tasks: [{ command: 'true', ...task }], ...extra });
  const submitted = async (token: string, name: string, task: Record<string, unknown>): Promise<string> => {
    const r = await submit(token, name, task);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return r.json.jobs[0].id as string;
  };
  const job = async (token: string, id: string) => (await call('GET', `/v1/jobs/${id}`, token)).json.job as { state: string; reason: string | null; estimatedStart: number | null };
  const register = (id: string, gpus: number) =>
    call('POST', '/v1/agent/register', AGENT, {
      id,
      address: 'http://127.0.0.1:9',
      cpuMilli: 64_000,
      memoryMib: 512 * 1024,
      gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: 'H100', memoryMib: 81_920, uuid: `${id}-${i}` })),
      simulated: true,
    });

  before(async () => {
    server = await memoryServer({ adminToken: ADMIN, agentToken: AGENT, scheduler: 'fifo', tickMs: 3_600_000, tenants: { alice: [ALICE], bob: [BOB] } });
  });
  after(async () => server.close());

  test('with no node registered a job is accepted and waits for one', async () => {
    const id = await submitted(ALICE, 'early', { gpus: 1 });
    await server.loop.tick();
    const j = await job(ALICE, id);
    assert.equal(j.state, 'pending');
    assert.equal(j.reason, 'unschedulable: no node registered yet');
  });

  test('what no registered node could run is refused with 422, naming the field and the largest node', async () => {
    assert.equal((await register('n8', 8)).status, 200);
    assert.equal((await register('big', 16)).status, 200);
    const cases: [Record<string, unknown>, string, string][] = [
      [{ gpus: 17 }, 'tasks[0].gpus', '17 GPUs on one node, but the largest node has 16 (H100)'],
      [{ gpus: 1, cpu: 10000 }, 'tasks[0].cpu', '10000 cores, the largest node has 64'],
      [{ gpus: 1, memory: '600Gi' }, 'tasks[0].memory', '600Gi of memory, the largest node has 512Gi'],
      [{ gpus: 1, gpuModels: ['B200'] }, 'tasks[0].gpuModels', 'no node has a B200 GPU (they have H100)'],
      [{ gpus: 16, replicas: 2 }, 'tasks[0].replicas', '2 tasks must run at once, but the nodes can hold at most 1'],
    ];
    for (const [task, path, message] of cases) {
      const r = await submit(ALICE, 'never', task);
      assert.equal(r.status, 422, path);
      assert.equal(ERROR_CODES.unsatisfiable.status, 422);
      assert.equal(r.json.error.code, 'unsatisfiable');
      assert.deepEqual(r.json.error.fields, [{ path, message }]);
      assert.equal(r.json.error.message, `no node of this cluster could run the job: ${path}: ${message}`);
    }
    // The second task group is named by its index.
    const two = await call('POST', '/v1/jobs', ALICE, { name: 'two', tasks: [{ name: 'a', gpus: 1, command: 'x' }, { name: 'b', gpus: 0, cpu: 100, command: 'x' }] });
    assert.equal(two.json.error.fields[0].path, 'tasks[1].cpu');
    // Each group fits a node, but together they need more H100s than the cluster has.
    const together = await call('POST', '/v1/jobs', ALICE, { name: 'together', tasks: [{ name: 'a', gpus: 16, command: 'x' }, { name: 'b', gpus: 8, replicas: 2, command: 'x' }] });
    assert.deepEqual([together.status, together.json.error.fields], [422, [{ path: 'tasks', message: 'its tasks need 32 GPUs of one model at once, but the nodes have 24 (H100)' }]]);
    // Nothing of them was stored.
    assert.ok((await call('GET', '/v1/jobs', ALICE)).json.jobs.every((j: { name: string }) => j.name === 'early'));
  });

  test('a job that fits only a drained node is accepted and holds back nothing: the 1-GPU job behind it starts', async () => {
    // Drained first (a drained node still counts at submission), so no cycle can place it there.
    assert.equal((await call('POST', '/v1/nodes/big/drain', ADMIN)).status, 200);
    const big = await submitted(ALICE, 'twelve', { gpus: 12 });
    const small = await submitted(ALICE, 'small', { gpus: 1 });
    await server.loop.tick();
    assert.equal((await job(ALICE, small)).state, 'admitted');
    const j = await job(ALICE, big);
    assert.equal(j.state, 'pending');
    assert.equal(j.reason, 'unschedulable: 12 GPUs on one node, but the largest schedulable node has 8 (H100)');
    assert.equal(j.estimatedStart, null);
  });

  test("a reason names the job it waits behind only to that job's tenant", async () => {
    // n8 has 6 GPUs free ('early' and 'small' hold one each): a 7-GPU job waits at the head of 'default'.
    const head = await submitted(ALICE, 'head', { gpus: 7 });
    const mine = await submitted(ALICE, 'mine', { gpus: 1 });
    const theirs = await submitted(BOB, 'theirs', { gpus: 1 });
    await server.loop.tick();
    assert.match((await job(ALICE, head)).reason ?? '', /^waiting-for-resources: /);
    assert.equal((await job(ALICE, mine)).reason, `lower-priority: behind job ${head} in queue 'default'`);
    const bobs = await job(BOB, theirs);
    assert.equal(bobs.reason, "lower-priority: behind an earlier job in queue 'default'");
    const listed = (await call('GET', '/v1/jobs', BOB)).json.jobs as { reason: string | null }[];
    assert.ok(listed.every((j) => !(j.reason ?? '').includes(`job ${head}`)), 'no other tenant id in the list either');
    // Every stored reason is one of the documented codes.
    for (const j of (await call('GET', '/v1/jobs?state=pending', ADMIN)).json.jobs as { reason: string }[]) assert.ok(Object.hasOwn(PENDING_REASONS, j.reason.split(':')[0] as string), j.reason);
  });
  test('a retry of an accepted submission gets its job back after the cluster shrank (the key is looked up before the check)', async () => {
    assert.equal((await register('huge', 32)).status, 200);
    const first = await call('POST', '/v1/jobs', ALICE, { name: 'wide', clientKey: 'wide-1', tasks: [{ gpus: 32, command: 'true' }] });
    assert.equal(first.status, 201, JSON.stringify(first.json));
    // 'huge' falls silent and is lost; the other nodes stay.
    const lostBefore = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    for (const n of await server.store.listNodes()) if (n.id !== 'huge') await server.store.registerNode({ id: n.id, address: n.address, cpuMilli: n.cpuMilli, memoryMib: n.memoryMib, gpus: n.gpus, simulated: true }, Date.now());
    assert.deepEqual(await server.store.expireNodes(lostBefore, Date.now()), ['huge']);
    const retry = await call('POST', '/v1/jobs', ALICE, { name: 'wide', clientKey: 'wide-1', tasks: [{ gpus: 32, command: 'true' }] });
    assert.equal(retry.status, 200, JSON.stringify(retry.json));
    assert.equal(retry.json.jobs[0].id, first.json.jobs[0].id);
    const fresh = await call('POST', '/v1/jobs', ALICE, { name: 'wide', clientKey: 'wide-2', tasks: [{ gpus: 32, command: 'true' }] });
    assert.equal(fresh.status, 422, 'a new submission is still checked');
  });
});
