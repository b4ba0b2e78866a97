#!/usr/bin/env node
// Replays a request-rate curve against a service (through router.mjs) and scores its SLO
// windows, as the tidal benchmark does (../shared/docs/tidal-benchmark.md): Poisson arrivals at
// peak × curve(t), the curve held constant within each of its buckets; every request's queueing
// wait as the router measured it (x-tide-wait-ms); in each window, the quantile of the waits of
// the requests that arrived in it must be at most the SLO (a window with no requests is met).
//
//   node loadgen.mjs --target http://127.0.0.1:8480 --curve FILE.csv --peak 0.32
//                    [--compress 144] [--duration SECONDS] [--start SECONDS] [--seed 0]
//                    [--slo-wait 5] [--slo-quantile 0.99] [--window 300] [--json FILE]
//
// - FILE.csv: `t_seconds,value` (a header line, then rows); values are normalised to a peak of 1.
// - --peak: requests per second at the curve's peak. --compress X: X seconds of the curve pass in
//   one second (rates × X, waits ÷ X on the wall clock; the figures reported are in curve time).
// - Progress on stderr every 10 s; the summary as JSON on stdout (or --json FILE).
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';

const argv = process.argv;
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const num = (name, fallback) => {
  const raw = flag(name, undefined);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`loadgen: --${name}: not a non-negative number: '${raw}'\n`);
    process.exit(2);
  }
  return v;
};
const target = flag('target');
const curveFile = flag('curve');
if (!target || !curveFile) {
  process.stderr.write('loadgen: --target URL and --curve FILE.csv are required\n');
  process.exit(2);
}
const peak = num('peak', 1);
const compress = num('compress', 1) || 1;
const start = num('start', 0);
const seed = num('seed', 0);
const sloWait = num('slo-wait', 5);
const sloQuantile = num('slo-quantile', 0.99);
const windowSeconds = num('window', 300);
const jsonOut = flag('json');

/** The curve: sorted points, values over the peak. */
function readCurve(file) {
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const points = [];
  lines.forEach((line, i) => {
    const [t, v] = line.split(',').map(Number);
    if (i === 0 && !Number.isFinite(t)) return; // the header
    if (!Number.isFinite(t) || !Number.isFinite(v) || v < 0) {
      process.stderr.write(`loadgen: ${file} line ${i + 1}: expected t_seconds,value with numbers, value ≥ 0\n`);
      process.exit(2);
    }
    points.push({ t, v });
  });
  if (points.length === 0) {
    process.stderr.write(`loadgen: ${file}: no rows\n`);
    process.exit(2);
  }
  points.sort((a, b) => a.t - b.t);
  const top = Math.max(...points.map((p) => p.v)) || 1;
  const step = points.length > 1 ? points[1].t - points[0].t : 300;
  return { points: points.map((p) => ({ t: p.t, v: p.v / top })), end: points[points.length - 1].t + step };
}
const curve = readCurve(curveFile);
const duration = num('duration', curve.end - start);

/** The curve's value at time t (held within a bucket). */
function valueAt(t) {
  const pts = curve.points;
  let lo = 0;
  let hi = pts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pts[mid].t <= t) lo = mid;
    else hi = mid - 1;
  }
  return pts[lo].v;
}

let s = (seed >>> 0) + 0x9e3779b9;
function random() {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** Arrival times (curve seconds from `start`): a Poisson process with rate peak × value, by thinning. */
function arrivals() {
  const out = [];
  let t = 0;
  for (;;) {
    t += -Math.log(1 - random()) / Math.max(peak, 1e-9);
    if (t >= duration) return out;
    if (random() < valueAt(start + t)) out.push(t);
  }
}

const times = arrivals();
const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
const url = new URL('/infer', target);
/** Per request: arrival (curve s), wait (curve s) or null when it failed. */
const results = new Array(times.length).fill(undefined);
let done = 0;
let failed = 0;

function send(i) {
  const body = '{}';
  const req = httpRequest(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
    res.resume();
    res.on('end', () => {
      const wait = Number(res.headers['x-tide-wait-ms']);
      if (res.statusCode === 200 && Number.isFinite(wait)) results[i] = (wait / 1000) * compress;
      else {
        results[i] = null;
        failed++;
      }
      done++;
    });
  });
  req.on('error', () => {
    results[i] = null;
    failed++;
    done++;
  });
  req.end(body);
}

const t0 = performance.now();
let next = 0;
await new Promise((resolve) => {
  const tick = () => {
    const now = ((performance.now() - t0) / 1000) * compress;
    while (next < times.length && times[next] <= now) send(next++);
    // The replay lasts its whole duration, quiet hours at the end included.
    if (next >= times.length && now >= duration) return resolve();
    const until = next < times.length ? times[next] : duration;
    setTimeout(tick, Math.max(1, Math.min(20, ((until - now) / compress) * 1000)));
  };
  tick();
});
const progress = setInterval(() => process.stderr.write(`loadgen: ${done}/${times.length} answered, ${failed} failed\n`), 10_000);
const deadline = performance.now() + 120_000;
while (done < times.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
clearInterval(progress);

// SLO windows by arrival time; an unanswered or failed request counts as an infinite wait.
const windows = [];
for (let w = 0; w * windowSeconds < duration; w++) {
  const waits = [];
  for (let i = 0; i < times.length; i++) if (times[i] >= w * windowSeconds && times[i] < (w + 1) * windowSeconds) waits.push(results[i] ?? Infinity);
  waits.sort((a, b) => a - b);
  const q = waits.length ? waits[Math.min(waits.length - 1, Math.ceil(sloQuantile * waits.length) - 1)] : 0;
  windows.push({ start: start + w * windowSeconds, requests: waits.length, quantileWaitSeconds: Number.isFinite(q) ? q : null, met: q <= sloWait });
}
const all = results.filter((r) => typeof r === 'number').sort((a, b) => a - b);
const summary = {
  requests: times.length,
  answered: all.length,
  failed: times.length - all.length,
  durationSeconds: duration,
  compress,
  peakRate: peak,
  sloWaitSeconds: sloWait,
  sloQuantile,
  windowSeconds,
  windows: windows.length,
  windowsMet: windows.filter((w) => w.met).length,
  sloWindowsMetPct: windows.length ? (100 * windows.filter((w) => w.met).length) / windows.length : 100,
  p99WaitSeconds: all.length ? all[Math.min(all.length - 1, Math.ceil(0.99 * all.length) - 1)] : null,
  meanWaitSeconds: all.length ? all.reduce((a, b) => a + b, 0) / all.length : null,
  missed: windows.filter((w) => !w.met),
};
const text = JSON.stringify(summary, null, 2);
if (jsonOut) writeFileSync(jsonOut, `${text}\n`);
else process.stdout.write(`${text}\n`);
agent.destroy();
