/**
 * Each tenant's open-job limit (submitLimits.ts, config `maxSubmitJobs`), over real HTTP: a
 * submission past it is a 429 naming the tenant, its limit and its count, refused whole; what
 * was accepted stays; another tenant submits on; a retry of an accepted submission gets its jobs
 * back; concurrent submissions never pass the limit; ended jobs free room again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseConfig } from './config.ts';
import { startServer, type RunningServer } from './server.ts';
import { SubmitLimits } from './submitLimits.ts';
import { httpCall } from './testing.ts';

const ADMIN = 'admin-token-limits';
const HOG = 'hog-token-limits';
const CALM = 'calm-token-limits';
let server: RunningServer;
before(async () => {
  server = await startServer({
    dataDir: '/nonexistent',
    databaseUrl: 'memory:',
    port: 0,
    adminToken: ADMIN,
    agentToken: 'agent-token-limits',
    // No cycle runs: every job stays open.
    tickMs: 3_600_000,
    config: { adminToken: null, agentToken: null, tenants: [{ name: 'hog', tokens: [HOG], maxSubmitJobs: 5 }, { name: 'calm', tokens: [CALM] }], queues: [], limits: { maxSubmitJobs: 1000 } },
  });
});
after(async () => server.close());

const job = (over: Record<string, unknown> = {}) => ({ name: 'j', tasks: [{ gpus: 0, command: 'true' }], ...over });
const post = (token: string, body: unknown) => httpCall(server.url, 'POST', '/v1/jobs', token, body);
/** The tenant's open jobs, an array's waiting rest counted by its elements. */
const openOf = async (token: string): Promise<number> =>
  (await httpCall(server.url, 'GET', '/v1/jobs?limit=1000', token)).json.jobs
    .filter((j: { state: string }) => ['pending', 'admitted', 'running', 'preempted'].includes(j.state))
    .reduce((n: number, j: { arrayCount?: number }) => n + (j.arrayCount ?? 1), 0);

test('a submission past the tenant limit is a 429 naming it; the accepted stay, others go on, a retry gets its jobs back', async () => {
  assert.equal((await post(HOG, job({ array: 3, clientKey: 'first' }))).status, 201);
  const over = await post(HOG, job({ array: 3 }));
  assert.equal(over.status, 429, over.text);
  assert.equal(over.json.error.code, 'too_many_jobs');
  assert.match(over.json.error.message, /tenant hog has 3 open jobs and a limit of 5 \(maxSubmitJobs\): this submission of 3 would pass it/);
  assert.deepEqual(over.json.error.fields, [{ path: 'array', message: '3 open + 3 > 5' }]);
  assert.equal((await post(HOG, job({ array: 2 }))).status, 201, 'up to the limit exactly');
  assert.equal((await post(HOG, job())).status, 429);
  assert.equal(await openOf(HOG), 5, 'what was accepted is kept, nothing of the refused');
  // The retry of an accepted submission is answered with its array, at the limit or not.
  const first = (await httpCall(server.url, 'GET', '/v1/jobs?limit=1', HOG)).json.jobs[0];
  const retry = await post(HOG, job({ array: 3, clientKey: 'first' }));
  assert.equal(retry.status, 200, retry.text);
  assert.deepEqual([retry.json.array.id, retry.json.array.size, retry.json.array.firstJobId, retry.json.jobs], [first.arrayId, 3, first.id, []]);
  // An admin submitting for the tenant is held to the tenant's limit too.
  assert.equal((await httpCall(server.url, 'POST', '/v1/jobs?tenant=hog', ADMIN, job())).status, 429);
  // The other tenant is not held back by the first's limit (its own is limits.maxSubmitJobs).
  assert.equal((await post(CALM, job({ array: 50 }))).status, 201);
  assert.equal((await post(CALM, job({ array: 1000 }))).status, 429);
});

test('submissions at once never pass the limit, and jobs that end free room again', async () => {
  for (const j of (await httpCall(server.url, 'GET', '/v1/jobs?limit=1000', HOG)).json.jobs) {
    assert.equal((await httpCall(server.url, 'POST', `/v1/jobs/${j.id}/cancel`, HOG)).status, 200);
  }
  // Cancelled jobs are counted until the tenant's count is read again (at most a second later).
  await new Promise((r) => setTimeout(r, 1100));
  const answers = await Promise.all(Array.from({ length: 12 }, () => post(HOG, job())));
  assert.deepEqual(answers.map((a) => a.status).sort(), [...Array<number>(5).fill(201), ...Array<number>(7).fill(429)]);
  assert.equal(await openOf(HOG), 5);
});

test('the config refuses a bad limit and names the field', () => {
  assert.throws(() => parseConfig('tenants:\n  - {name: a, maxSubmitJobs: -1}\nlimits: {maxSubmitJobs: lots, other: 1}\n', 'c.yaml'), (e: Error) => {
    assert.match(e.message, /tenants\[0\]\.maxSubmitJobs: must be a non-negative integer/);
    assert.match(e.message, /limits\.maxSubmitJobs: must be a non-negative integer/);
    assert.match(e.message, /limits\.other/);
    return true;
  });
  const c = parseConfig('tenants:\n  - {name: a, maxSubmitJobs: 7}\n  - {name: b}\nlimits: {maxSubmitJobs: 9}\n', 'c.yaml');
  assert.deepEqual([c.tenants[0]?.maxSubmitJobs, c.limits?.maxSubmitJobs], [7, 9]);
});

test("a tenant far below its limit is not held for its count's next read; one near its limit waits for it", async () => {
  const reads: ((n: number) => void)[] = [];
  const limits = new SubmitLimits({ countOpenJobs: () => new Promise<number>((resolve) => reads.push(resolve)) }, () => 100);
  const settled = async (p: Promise<void>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
  const first = limits.refresh('t');
  assert.equal(await settled(first), false, 'never counted: the first submission waits for the read');
  reads[0]?.(10);
  await first;
  limits.admit('t', 70); // 80 open
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await settled(limits.refresh('t')), true, 'at 80 of 100 the stale count is read beside the submission');
  assert.equal(reads.length, 2);
  limits.admit('t', 5); // 85 of 100, counted on the old read
  reads[1]?.(90); // the store's count now (another server's 5 among them); the 5 above may be in it too
  await new Promise((r) => setTimeout(r, 1100));
  const near = limits.refresh('t');
  assert.equal(await settled(near), false, 'at 90 of 100 the submission waits for the count');
  reads[2]?.(90);
  await near;
  assert.throws(() => limits.admit('t', 11), /tenant t has 90 open jobs and a limit of 100/);
});
