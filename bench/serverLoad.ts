/**
 * The load generator of bench/server.ts, in its own process so that client work does not share
 * the server's thread: POSTs `jobs` job specs with `concurrency` connections, prints seconds.
 *   tsx bench/serverLoad.ts URL TOKEN JOBS CONCURRENCY
 */
import { Agent, request } from 'node:http';

const [url = '', token = '', jobsArg = '1000', concArg = '16'] = process.argv.slice(2);
const JOBS = Number(jobsArg);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concArg) });
const target = new URL('/v1/jobs', url);

const spec = (i: number): string =>
  JSON.stringify({ name: `bench-${i}`, priority: i % 3, tasks: [{ replicas: 1 + (i % 4), gpus: [1, 2, 4, 8][i % 4], cpu: 4, memory: '32Gi', command: 'sleep 60' }] });

function post(i: number): Promise<void> {
  const body = spec(i);
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': `b-${i}` } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`submit ${i}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(concArg) }, async () => {
    while (next < JOBS) await post(next++);
  }),
);
console.log(((performance.now() - t0) / 1000).toFixed(3));
agent.destroy();
