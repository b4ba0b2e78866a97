#!/usr/bin/env node
// A small router in front of a Tide service (docs/services.md): it learns the service's ready
// replicas from GET /v1/jobs/:id (the service's `replicas`, each with its URL and readiness) and
// forwards each POST /infer to the ready replica with the fewest requests it has outstanding
// there (join the shortest queue; ties in turn). A request that arrives while no replica is
// ready waits in the router, in arrival order. It measures each request's queueing wait (time
// held here plus the replica's own x-queue-wait-ms) and returns it, so SLO windows can be scored.
//
//   node router.mjs --server URL --service ID [--token T] [--listen HOST:PORT] [--poll-ms 500]
//   (or TIDE_SERVER, TIDE_SERVICE, TIDE_TOKEN)
//
// - POST /infer → the replica's answer, with x-tide-wait-ms (router hold + replica queue) and
//   x-tide-replica; 503 when no replica became ready within --hold-ms.
// - GET /metrics: tide_router_requests_total, tide_router_failures_total,
//   tide_router_ready_replicas, tide_router_wait_seconds (summary).
// - GET /replicas: the replicas it routes to now (JSON).
/* global fetch, AbortSignal */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { setInterval } from 'node:timers';
import { createServer, request as httpRequest, Agent } from 'node:http';

const argv = process.argv;
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const server = flag('server', process.env.TIDE_SERVER);
const service = flag('service', process.env.TIDE_SERVICE);
const token = flag('token', process.env.TIDE_TOKEN);
const listen = flag('listen', '127.0.0.1:8480');
const pollMs = Number(flag('poll-ms', '500'));
const holdMs = Number(flag('hold-ms', '120000'));
if (!server || !service || !/^\d+$/.test(service)) {
  process.stderr.write('router: --server URL and --service ID (the service\'s job id) are required\n');
  process.exit(2);
}
const [listenHost, listenPort] = listen.includes(':') ? [listen.slice(0, listen.lastIndexOf(':')), Number(listen.slice(listen.lastIndexOf(':') + 1))] : ['127.0.0.1', Number(listen)];

const agent = new Agent({ keepAlive: true, maxSockets: 256 });
/** url → requests outstanding there. */
let replicas = new Map();
let turn = 0;
const held = [];
let requests = 0;
let failures = 0;
let waitSum = 0;
let waitCount = 0;
let lastError = '';

async function poll() {
  try {
    const res = await fetch(`${server}/v1/jobs/${service}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET /v1/jobs/${service}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    const body = await res.json();
    if (body.job?.state !== 'running' && body.job?.state !== undefined && body.job.state !== 'admitted') {
      process.stderr.write(`router: service ${service} is ${body.job.state}\n`);
    }
    const ready = (body.service?.replicas ?? []).filter((r) => r.ready && r.url).map((r) => r.url);
    const next = new Map();
    for (const url of ready) next.set(url, replicas.get(url) ?? 0);
    replicas = next;
    lastError = '';
    release();
  } catch (e) {
    if (e.message !== lastError) process.stderr.write(`router: ${e.message}\n`);
    lastError = e.message;
  }
}

/** The ready replica with the fewest outstanding requests (ties in turn), or null. */
function pick(exclude) {
  const urls = [...replicas.keys()].filter((u) => !exclude.has(u));
  if (urls.length === 0) return null;
  let best = null;
  for (let k = 0; k < urls.length; k++) {
    const u = urls[(turn + k) % urls.length];
    if (best === null || replicas.get(u) < replicas.get(best)) best = u;
  }
  turn++;
  return best;
}

/** Sends held requests, oldest first, while replicas are ready. */
function release() {
  while (held.length > 0 && replicas.size > 0) forward(held.shift());
}

function forward(job) {
  const url = pick(job.tried);
  if (url === null) {
    if (job.tried.size > 0 && replicas.size > 0) job.tried.clear();
    held.push(job);
    return;
  }
  replicas.set(url, (replicas.get(url) ?? 0) + 1);
  const sentAt = performance.now();
  const up = httpRequest(`${url}/infer`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': job.body.length } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      if (replicas.has(url)) replicas.set(url, Math.max(0, replicas.get(url) - 1));
      if (res.statusCode === 503) return retry(job, url);
      const replicaWait = Number(res.headers['x-queue-wait-ms'] ?? 0);
      const wait = sentAt - job.at + (Number.isFinite(replicaWait) ? replicaWait : 0);
      waitSum += wait / 1000;
      waitCount++;
      job.res.writeHead(res.statusCode ?? 502, { 'content-type': 'application/json', 'x-tide-wait-ms': wait.toFixed(3), 'x-tide-replica': url }).end(Buffer.concat(chunks));
    });
  });
  up.on('error', () => {
    if (replicas.has(url)) replicas.set(url, Math.max(0, replicas.get(url) - 1));
    retry(job, url);
  });
  up.end(job.body);
}

/** A replica refused or went away: try another (it is no longer routed to until the next poll says it is ready). */
function retry(job, url) {
  job.tried.add(url);
  if (performance.now() - job.at > holdMs) {
    failures++;
    job.res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no replica answered' }));
    return;
  }
  forward(job);
}

const http = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/infer') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests++;
      forward({ at: performance.now(), body: Buffer.concat(chunks), res, tried: new Set() });
    });
    return;
  }
  if (req.method === 'GET' && path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(
      [
        '# TYPE tide_router_requests_total counter',
        `tide_router_requests_total ${requests}`,
        '# TYPE tide_router_failures_total counter',
        `tide_router_failures_total ${failures}`,
        '# TYPE tide_router_ready_replicas gauge',
        `tide_router_ready_replicas ${replicas.size}`,
        '# TYPE tide_router_held_requests gauge',
        `tide_router_held_requests ${held.length}`,
        '# TYPE tide_router_wait_seconds summary',
        `tide_router_wait_seconds_sum ${waitSum}`,
        `tide_router_wait_seconds_count ${waitCount}`,
        '',
      ].join('\n'),
    );
    return;
  }
  if (req.method === 'GET' && path === '/replicas') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ replicas: Object.fromEntries(replicas), held: held.length }));
    return;
  }
  res.writeHead(404).end();
});

// Held requests wait at most --hold-ms.
setInterval(() => {
  const now = performance.now();
  while (held.length > 0 && now - held[0].at > holdMs) {
    failures++;
    held.shift().res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no replica became ready' }));
  }
}, 1000).unref();

await poll();
setInterval(poll, pollMs);
http.listen(listenPort, listenHost, () => process.stderr.write(`router: service ${service} on ${listenHost}:${http.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
