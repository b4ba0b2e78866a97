/**
 * Large answers gzipped for clients that accept it (compression.ts), over real HTTP with
 * node:http, which (unlike fetch) shows the bytes as they came: a node list and an array's POST
 * over 128 KB, a small answer, and clients that do not accept gzip.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ApiClient } from '../cli/client.ts';
import { acceptsGzip, COMPRESS_MIN_BYTES } from './compression.ts';
import { startServer, type RunningServer } from './server.ts';

const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One call with node:http: the answer's bytes as sent, not decoded. */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('acceptsGzip', () => {
  test('reads Accept-Encoding as RFC 9110 does: listed or *, with a q-value above 0', () => {
    assert.equal(acceptsGzip(undefined), false);
    assert.equal(acceptsGzip(''), false);
    assert.equal(acceptsGzip('gzip, deflate, br'), true);
    assert.equal(acceptsGzip('br;q=1.0, GZIP;q=0.5'), true);
    assert.equal(acceptsGzip('gzip;q=0'), false);
    assert.equal(acceptsGzip('gzip;q=0.000'), false);
    assert.equal(acceptsGzip('deflate, br'), false);
    assert.equal(acceptsGzip('identity'), false);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip('*;q=0'), false);
    assert.equal(acceptsGzip('gzip;q=0, *'), false, 'gzip refused by name is refused, whatever * says');
    assert.equal(acceptsGzip('x-gzip'), true);
    assert.equal(acceptsGzip(['deflate', 'gzip']), true);
  });
});

describe('large answers are gzipped', () => {
  let server: RunningServer;
  const admin = { authorization: `Bearer ${ADMIN}` };

  before(async () => {
    server = await startServer({ dataDir: '/nonexistent', databaseUrl: 'memory:', port: 0, adminToken: ADMIN, agentToken: 'agent-token-123', tickMs: 3_600_000, config: { adminToken: null, agentToken: null, tenants: [{ name: 'alice', tokens: [ALICE] }], queues: [] } });
    await server.loop.stop();
    // 200 nodes of 8 GPUs: a list of more than 128 KB.
    const gpus = Array.from({ length: 8 }, (_, index) => ({ index, model: 'H100', memoryMib: 81920, uuid: `GPU-${index}` }));
    for (let i = 0; i < 200; i++) await server.store.registerNode({ id: `node-${String(i).padStart(3, '0')}`, address: `http://127.0.0.1:1/${i}`, cpuMilli: 64_000, memoryMib: 512_000, gpus, simulated: true }, Date.now());
  });
  after(async () => server.close());

  test('the node list: gzipped when accepted, the same JSON either way, and the same bytes while the list is unchanged', async () => {
    const plain = await raw(server.url, 'GET', '/v1/nodes', admin);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.ok(plain.body.length >= COMPRESS_MIN_BYTES, `the list is ${plain.body.length} bytes`);
    assert.equal(plain.headers['vary'], 'accept-encoding');
    const listed = JSON.parse(plain.body.toString()) as { nodes: { id: string }[] };
    assert.equal(listed.nodes.length, 200);

    const zipped = await raw(server.url, 'GET', '/v1/nodes', { ...admin, 'accept-encoding': 'gzip, deflate' });
    assert.equal(zipped.status, 200);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers['vary'], 'accept-encoding');
    assert.match(String(zipped.headers['content-type']), /^application\/json/);
    assert.equal(Number(zipped.headers['content-length']), zipped.body.length);
    assert.ok(zipped.body.length * 5 < plain.body.length, `gzipped ${zipped.body.length} bytes of ${plain.body.length}`);
    assert.deepEqual(JSON.parse(gunzipSync(zipped.body).toString()), listed);

    // Unchanged list: the kept gzip is answered again.
    const again = await raw(server.url, 'GET', '/v1/nodes', { ...admin, 'accept-encoding': 'gzip' });
    assert.ok(again.body.equals(zipped.body));

    const refused = await raw(server.url, 'GET', '/v1/nodes', { ...admin, 'accept-encoding': 'gzip;q=0, identity' });
    assert.equal(refused.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(refused.body.toString()), listed);

    // fetch and the CLI's client ask for gzip and decode it.
    const fetched = await fetch(`${server.url}/v1/nodes`, { headers: admin });
    assert.deepEqual(await fetched.json(), listed);
    const cli = new ApiClient({ servers: [server.url], token: ADMIN });
    const viaCli = await cli.request<unknown>('GET', '/v1/nodes');
    assert.equal(viaCli.headers['content-encoding'], 'gzip');
    assert.deepEqual(viaCli.body, listed);
  });

  test("an array's elements listed are gzipped; its POST answer (one array), a small answer and an error are not", async () => {
    const spec = { name: 'sweep', array: 400, tasks: [{ replicas: 1, gpus: 0, cpu: 0.5, memory: '1Gi', command: 'true' }] };
    const posted = await raw(server.url, 'POST', '/v1/jobs', { authorization: `Bearer ${ALICE}`, 'accept-encoding': 'gzip' }, JSON.stringify(spec));
    assert.equal(posted.status, 201, posted.body.toString().slice(0, 200));
    assert.equal(posted.headers['content-encoding'], undefined, 'one array, not 400 jobs: under the size worth compressing');
    const { array } = JSON.parse(posted.body.toString()) as { array: { id: string; size: number } };
    assert.equal(array.size, 400);
    // Its waiting elements are one job until some are cancelled: every other one, 400 jobs in all.
    const every = Array.from({ length: 200 }, (_, i) => String(2 * i)).join(',');
    assert.equal((await raw(server.url, 'POST', `/v1/arrays/${array.id}/cancel`, { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json' }, JSON.stringify({ elements: every }))).status, 200);
    const listed = await raw(server.url, 'GET', `/v1/jobs?array=${array.id}`, { authorization: `Bearer ${ALICE}`, 'accept-encoding': 'gzip' });
    assert.equal(listed.headers['content-encoding'], 'gzip');
    const answer = JSON.parse(gunzipSync(listed.body).toString()) as { jobs: { name: string }[] };
    assert.equal(answer.jobs.length, 400);
    assert.equal(answer.jobs[399]?.name, 'sweep-399');

    const small = await raw(server.url, 'GET', '/v1/queues', { authorization: `Bearer ${ALICE}`, 'accept-encoding': 'gzip' });
    assert.equal(small.status, 200);
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(small.headers['vary'], undefined);
    JSON.parse(small.body.toString());

    const error = await raw(server.url, 'GET', '/v1/jobs/999999', { authorization: `Bearer ${ALICE}`, 'accept-encoding': 'gzip' });
    assert.equal(error.status, 404);
    assert.equal(error.headers['content-encoding'], undefined);
    assert.equal((JSON.parse(error.body.toString()) as { error: { code: string } }).error.code, 'not_found');
  });
});
