#!/usr/bin/env node
// A stand-in for a model server, for Tide services (docs/services.md): it "loads its model" for
// a while before it is ready, then serves POST /infer from one FCFS queue with `concurrency`
// slots, each request taking an exponential service time. No GPU work: it sleeps, so dozens run
// on a small machine.
//
//   node model-server.mjs [--port P] [--host H] [--load-seconds S] [--load-sigma X]
//                         [--concurrency C] [--service-seconds S] [--tokens-per-request N]
//                         [--time-scale X] [--seed N]
//   (or MODEL_PORT, MODEL_HOST, MODEL_LOAD_SECONDS, MODEL_LOAD_SIGMA, MODEL_CONCURRENCY,
//    MODEL_SERVICE_SECONDS, MODEL_TOKENS_PER_REQUEST, MODEL_TIME_SCALE, MODEL_SEED; the port
//    defaults to TIDE_SERVICE_PORT)
//
// - Load time: --load-seconds (the median), log-normal with --load-sigma (0: exactly that).
// - --time-scale X divides every time (load and service) by X: a replay compressed X times.
// - Tokens are an imitation: every request served counts --tokens-per-request tokens (default
//   256, whole; 0: none), as a model server counts the tokens it generated, so that usage reports
//   can show yuan per million tokens. Nothing is generated.
// - GET /healthz: 200 once loaded, 503 before (and while draining).
// - GET /metrics (Prometheus text): tide_requests_total (counter, requests that arrived),
//   tide_tokens_total (counter, tokens of the requests served),
//   tide_queue_length (gauge, waiting), tide_requests_in_flight (gauge, in service),
//   tide_request_service_seconds and tide_request_wait_seconds (summaries: _sum, _count),
//   tide_requests_completed_total, tide_model_ready (0/1).
// - POST /infer: answers {"waitMs", "serviceMs", "tokens", "replica"} once served; x-queue-wait-ms too.
// - SIGTERM: stops taking requests (503), finishes those queued and in service, exits 0.
// - MODEL_LOG_REQUESTS=1: one line per GET on stdout with the address it came in on.
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { createServer } from 'node:http';

const env = process.env;
function arg(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : env[envName];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`model-server: --${name} (${envName}): not a non-negative number: '${raw}'\n`);
    process.exit(2);
  }
  return v;
}
const hostArg = process.argv.indexOf('--host');
const host = hostArg >= 0 ? process.argv[hostArg + 1] : (env.MODEL_HOST ?? '0.0.0.0');
const port = arg('port', 'MODEL_PORT', Number(env.TIDE_SERVICE_PORT ?? 8080));
const scale = arg('time-scale', 'MODEL_TIME_SCALE', 1) || 1;
const loadMedian = arg('load-seconds', 'MODEL_LOAD_SECONDS', 2);
const loadSigma = arg('load-sigma', 'MODEL_LOAD_SIGMA', 0);
const concurrency = Math.max(1, Math.floor(arg('concurrency', 'MODEL_CONCURRENCY', 1)));
const serviceSeconds = arg('service-seconds', 'MODEL_SERVICE_SECONDS', 1);
const tokensPerRequest = Math.floor(arg('tokens-per-request', 'MODEL_TOKENS_PER_REQUEST', 256));
const logRequests = env.MODEL_LOG_REQUESTS === '1';
const name = env.TIDE_RUN_ID ?? `pid-${process.pid}`;

// A small seeded generator (mulberry32), so a run with --seed replays its times.
let state = (arg('seed', 'MODEL_SEED', [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7)) >>> 0) || 1;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const exponential = (mean) => -mean * Math.log(1 - random());

let ready = false;
let draining = false;
let arrived = 0;
let completed = 0;
let tokens = 0;
let serviceSum = 0;
let waitSum = 0;
let busy = 0;
const queue = [];

function startNext() {
  while (busy < concurrency && queue.length > 0) {
    const job = queue.shift();
    busy++;
    const wait = performance.now() - job.at;
    const service = (exponential(serviceSeconds) * 1000) / scale;
    setTimeout(() => {
      busy--;
      completed++;
      tokens += tokensPerRequest;
      serviceSum += service / 1000;
      waitSum += wait / 1000;
      job.done(wait, service);
      startNext();
      if (draining && busy === 0 && queue.length === 0) process.exit(0);
    }, service);
  }
}

const metrics = () =>
  [
    '# HELP tide_requests_total Requests that arrived.',
    '# TYPE tide_requests_total counter',
    `tide_requests_total ${arrived}`,
    '# HELP tide_queue_length Requests waiting for a slot.',
    '# TYPE tide_queue_length gauge',
    `tide_queue_length ${queue.length}`,
    '# HELP tide_requests_in_flight Requests in service.',
    '# TYPE tide_requests_in_flight gauge',
    `tide_requests_in_flight ${busy}`,
    '# HELP tide_request_service_seconds Service time of finished requests (wall clock).',
    '# TYPE tide_request_service_seconds summary',
    `tide_request_service_seconds_sum ${serviceSum}`,
    `tide_request_service_seconds_count ${completed}`,
    '# HELP tide_request_wait_seconds Queueing wait of finished requests (wall clock).',
    '# TYPE tide_request_wait_seconds summary',
    `tide_request_wait_seconds_sum ${waitSum}`,
    `tide_request_wait_seconds_count ${completed}`,
    '# HELP tide_tokens_total Tokens of the requests served (an imitation: --tokens-per-request each).',
    '# TYPE tide_tokens_total counter',
    `tide_tokens_total ${tokens}`,
    '# TYPE tide_requests_completed_total counter',
    `tide_requests_completed_total ${completed}`,
    '# TYPE tide_model_ready gauge',
    `tide_model_ready ${ready ? 1 : 0}`,
    '',
  ].join('\n');

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET') {
    if (logRequests) process.stdout.write(`GET ${path} from ${req.socket.remoteAddress} on ${req.socket.localAddress}:${req.socket.localPort}\n`);
    if (path === '/healthz') {
      res.writeHead(ready && !draining ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? (draining ? 'draining\n' : 'ok\n') : 'loading\n');
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics());
      return;
    }
  }
  if (req.method === 'POST' && path === '/infer') {
    req.resume();
    if (!ready || draining) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: ready ? 'draining' : 'loading' }));
      return;
    }
    arrived++;
    queue.push({
      at: performance.now(),
      done: (wait, service) => {
        const body = JSON.stringify({ waitMs: wait, serviceMs: service, tokens: tokensPerRequest, replica: name });
        res.writeHead(200, { 'content-type': 'application/json', 'x-queue-wait-ms': wait.toFixed(3) }).end(body);
      },
    });
    startNext();
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
});
server.keepAliveTimeout = 30_000;

server.on('error', (e) => {
  process.stderr.write(`model-server: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  const load = (loadMedian * Math.exp(loadSigma * normal()) * 1000) / scale;
  process.stdout.write(`model-server ${name}: listening on ${host}:${port}, loading for ${(load / 1000).toFixed(3)} s\n`);
  setTimeout(() => {
    ready = true;
    process.stdout.write(`model-server ${name}: ready (concurrency ${concurrency}, mean service ${(serviceSeconds / scale).toFixed(4)} s)\n`);
  }, load);
});

process.on('SIGTERM', () => {
  draining = true;
  process.stdout.write(`model-server ${name}: draining ${queue.length} queued, ${busy} in service\n`);
  if (busy === 0 && queue.length === 0) process.exit(0);
});
