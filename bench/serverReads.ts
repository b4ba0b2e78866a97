/**
 * The API readers of bench/server.ts, in their own process: for SECONDS, issues RATE reads a
 * second (open loop: a read is sent on schedule even while earlier ones are still out, so a
 * stalled server shows as latency, not as fewer samples), cycling through a page of pending jobs
 * (`GET /v1/jobs?state=pending&after=…&limit=100`), one job with its tasks and events
 * (`GET /v1/jobs/:id`) and the node list (`GET /v1/nodes`), accepting gzip. Prints JSON: per endpoint, the
 * latencies in ms and the count of non-200 answers.
 *   tsx bench/serverReads.ts URL TOKEN SECONDS RATE MAX_JOB_ID
 */
import { Agent, request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Rng } from '../src/core/rng.ts';

const [url = '', token = '', secondsArg = '10', rateArg = '30', maxIdArg = '1000'] = process.argv.slice(2);
const SECONDS = Number(secondsArg);
const RATE = Number(rateArg);
const MAX_ID = Math.max(1, Number(maxIdArg));
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const rng = Rng.fromSeed(7);

type Endpoint = 'jobsPage' | 'job' | 'nodes';
const out: Record<Endpoint, { ms: number[]; errors: number }> = { jobsPage: { ms: [], errors: 0 }, job: { ms: [], errors: 0 }, nodes: { ms: [], errors: 0 } };

function path(e: Endpoint): string {
  const id = 1 + Math.floor(rng.float() * MAX_ID);
  if (e === 'jobsPage') return `/v1/jobs?state=pending&after=${id}&limit=100`;
  if (e === 'job') return `/v1/jobs/${id}`;
  return '/v1/nodes';
}

function get(e: Endpoint): Promise<void> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    // Like fetch, a browser or the CLI, the readers accept gzip (the server gzips answers over
    // 128 KB) and decode the whole answer at its end, in one call as the CLI does: a gunzip stream
    // decodes chunk by chunk through zlib's thread pool, ~100 hops for a 1.5-MB node list, which
    // on these two busy cores added tens of ms of the reader's own to a read.
    const req = request(new URL(path(e), url), { agent, headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          if (res.headers['content-encoding'] === 'gzip') gunzipSync(Buffer.concat(chunks));
        } catch {
          out[e].errors++;
        }
        out[e].ms.push(performance.now() - t0);
        if (res.statusCode !== 200 && res.statusCode !== 404) out[e].errors++;
        resolve();
      });
    });
    req.on('error', () => {
      out[e].errors++;
      resolve();
    });
    req.end();
  });
}

const endpoints: Endpoint[] = ['jobsPage', 'job', 'nodes'];
const inflight: Promise<void>[] = [];
const t0 = performance.now();
// RATE 0: no reads, but the phase still lasts SECONDS (to measure heartbeats and cycles alone).
if (RATE <= 0) await new Promise((r) => setTimeout(r, SECONDS * 1000));
for (let i = 0; RATE > 0; i++) {
  const due = t0 + (i * 1000) / RATE;
  if (due - t0 >= SECONDS * 1000) break;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  inflight.push(get(endpoints[i % endpoints.length] as Endpoint));
}
await Promise.all(inflight);
console.log(JSON.stringify(out));
agent.destroy();
