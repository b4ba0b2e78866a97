/**
 * `tide bench service-live`: the tidal benchmark's service live, compressed. A real `tide
 * server` and agents with simulated GPUs (child processes on 127.0.0.1), the example model
 * server (examples/service/model-server.mjs) as the service's replicas, the example router and
 * load generator in front replaying a day of a curve (curve A by default) `compress` times
 * faster, and a backlog of preemptible one-GPU training jobs (examples/workload/trainer.mjs)
 * that borrow what the service lends.
 *
 * Every time is the benchmark's (../shared/docs/tidal-benchmark.md), divided by `compress` on
 * the wall clock: a request takes 16.4 s on average, a replica loads in 22.7 s (median, σ 0.48),
 * the SLO is a p99 wait ≤ 5 s in every 5-minute window, the autoscaler decides every 30 s (the
 * server runs its services' clock `compress` times faster), training checkpoints every 30
 * minutes and a restart costs 2 minutes. The cluster is smaller than the benchmark's 109 GPUs
 * (`gpus`, 8 by default), so its peak rate is scaled the way that keeps the benchmark's
 * character rather than its 65 % busy (which a pool of 8 cannot serve within the SLO even with
 * every GPU: 8 % of requests would wait over 5 s): the peak is the highest rate at which the
 * reactive sizing (the rate × 1.5, M/M/c) still fits the pool — for 109 GPUs that is 4.0
 * requests/s, the benchmark's 4.3 within a tenth.
 *
 * With `history` (the curve's preceding days, `--history-days`), the service starts with them as
 * its rate history (PUT /v1/jobs/{id}/history, as a Prometheus export: history.ts), and the
 * replay begins on a 5-minute boundary of the services' clock so the curve's buckets line up
 * with the forecaster's; what the history would hold after the service started (between its start
 * and the replay's) is left out — the service observed that time itself, with no load.
 *
 * Reported (in the curve's hours): SLO windows met, p99 wait, GPU-time lent to training, net
 * training GPU-time (the steps the trainers kept), evictions planned and immediate, useful
 * utilisation; and a chart of the rate, replicas and lent GPUs over time. What the machine's
 * own load adds to the control plane (heartbeats, process starts) is part of the live figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serversNeeded } from '../../core/tidal/queueing.ts';
import { lineChartSvg } from '../../report/svgChart.ts';
import { callJson } from '../../util/httpJson.ts';
import { exitAfterOutput } from '../../util/childExit.ts';
import type { RateCurve } from '../../sim/tidal/curves.ts';
import { curveCsv } from './curve.ts';
import { exportedHistory } from './history.ts';
import { runTwin, type TwinFigures, type TwinHistory } from './twin.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TIDE = join(ROOT, 'bin', 'tide.js');
const MODEL = join(ROOT, 'examples', 'service', 'model-server.mjs');
const ROUTER = join(ROOT, 'examples', 'service', 'router.mjs');
const LOADGEN = join(ROOT, 'examples', 'service', 'loadgen.mjs');
const TRAINER = join(ROOT, 'examples', 'workload', 'trainer.mjs');
const ADMIN = 'service-live-admin-token';
const AGENT = 'service-live-agent-token';
const TENANT = 'service-live-tenant-token';

/** The benchmark's times (seconds of the curve). */
export const TIDAL = { serviceSeconds: 16.4, loadMedian: 22.7, loadP90: 42, loadSigma: 0.48, sloWait: 5, sloQuantile: 0.99, window: 300, decide: 30, checkpointEvery: 1800, restart: 120, evict: 30 } as const;
/** Steps a trainer does per wall second (its progress is reported in steps). */
const TRAIN_RATE = 10;

export interface ServiceLiveOptions {
  /** The curve, built by the tidal simulator's curve builder (src/sim/tidal/curves.ts), covering `hours`. */
  readonly curve: RateCurve;
  readonly curveName: string;
  /** The curve's preceding days (same builder, same seed): the service's history, or none. */
  readonly history?: RateCurve;
  readonly compress: number;
  readonly gpus: number;
  /** Hours of the curve to replay (from its start). */
  readonly hours: number;
  readonly seed: number;
  readonly autoscaler: string;
  readonly options?: Readonly<Record<string, number>>;
  readonly keep?: boolean;
  /** The service's scaleDownDelaySeconds (HPA's stabilization window; 0: none). */
  readonly scaleDownDelaySeconds?: number;
  readonly log?: (line: string) => void;
  readonly onProgress?: (p: { hour: number; hours: number; desired: number; ready: number; lent: number }) => void;
}

export interface ServiceLiveReport {
  readonly curve: string;
  readonly seed: number;
  readonly compress: number;
  readonly gpus: number;
  readonly hours: number;
  readonly autoscaler: string;
  readonly scaleDownDelaySeconds: number;
  /** Days of history the service started with, the points sent, and the curve seconds between its start and the replay's (left out of the history). */
  readonly historyDays: number;
  readonly historyPoints: number;
  readonly historyGapSeconds: number | null;
  /** The controller's tracked p99 of decision → replica ready at the end (curve seconds), from /metrics. */
  readonly scaleUpP99Seconds: number | null;
  /** The machine's 1-minute load average: at the start, and its mean and highest over the replay. */
  readonly loadAverage: { readonly start: number; readonly mean: number; readonly max: number };
  readonly peakRate: number;
  readonly requests: number;
  readonly failed: number;
  readonly sloWindowsMetPct: number;
  readonly windows: number;
  readonly windowsMet: number;
  readonly p99WaitSeconds: number | null;
  /** The windows that missed the SLO: their start (curve hour), requests, and the quantile wait (s; null: a request failed). */
  readonly missedWindows: readonly { readonly hour: number; readonly requests: number; readonly quantileWaitSeconds: number | null }[];
  /** GPU-hours held by borrowers (the service's lent GPUs at work), and what they kept as progress. */
  readonly lentGpuHours: number;
  readonly lentGpuPct: number;
  readonly trainingNetGpuHours: number;
  /** Lent GPU-time that did not become kept progress: restarts, checkpoints, work lost to evictions. */
  readonly lostGpuHours: number;
  readonly inferenceBusyPct: number;
  readonly usefulUtilisationPct: number;
  readonly evictions: { readonly planned: number; readonly immediate: number };
  readonly scaleUps: number;
  readonly scaleDowns: number;
  readonly wallSeconds: number;
  /** Curve hours → desired and ready replicas, GPUs lent, and the curve's rate (requests/s). */
  readonly timeline: readonly { readonly hour: number; readonly rate: number; readonly desired: number; readonly ready: number; readonly lent: number }[];
  readonly dir: string | null;
  /**
   * The same run in the tidal simulator (twin.ts), when it can be the same: whole days and no
   * scale-down delay (the simulator has none); else null, with `twinNote` saying why.
   */
  readonly twin: TwinFigures | null;
  readonly twinNote: string | null;
}

/** What this runner reads of the API's answers. */
interface ApiJob {
  readonly id: string;
  readonly state: string;
  readonly startedAt: number | null;
  readonly progress: { readonly checkpointStep: number | null } | null;
}
interface JobAnswer {
  readonly job: ApiJob;
  readonly attempts: readonly { readonly startedAt: number | null; readonly finishedAt: number | null }[];
  readonly service?: { readonly desiredReplicas: number; readonly replicas: readonly { readonly ready: boolean }[] };
}
interface LoadSummary {
  readonly requests: number;
  readonly answered: number;
  readonly failed: number;
  readonly windows: number;
  readonly windowsMet: number;
  readonly sloWindowsMetPct: number;
  readonly p99WaitSeconds: number | null;
  readonly missed?: readonly { readonly start: number; readonly requests: number; readonly quantileWaitSeconds: number | null }[];
}

class Child {
  output = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    const keep = (d: Buffer): void => {
      this.output += d.toString();
      if (this.output.length > 100_000) this.output = this.output.slice(-50_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = exitAfterOutput(child);
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const node = (args: readonly string[]): Child => new Child(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
    s.on('error', reject);
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The peak rate for a pool of `gpus`: the highest at which the rate × 1.5 needs at most the pool under the SLO (M/M/c). */
export function peakRateFor(gpus: number): number {
  let lo = 0;
  let hi = gpus / TIDAL.serviceSeconds;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (serversNeeded(1.5 * mid, TIDAL.serviceSeconds, TIDAL.sloWait, TIDAL.sloQuantile) <= gpus) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Runs the service live under the curve with a training backlog; returns the report. */
export async function runServiceLive(o: ServiceLiveOptions): Promise<ServiceLiveReport> {
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'tide-service-live-'));
  const c = o.compress;
  const peakRate = peakRateFor(o.gpus);
  const children: Child[] = [];
  const started = Date.now();
  try {
    writeFileSync(join(dir, 'cluster.yaml'), [
      `adminToken: ${ADMIN}`, `agentToken: ${AGENT}`,
      'tenants:', '  - name: bench', `    tokens: [${TENANT}]`,
      'queues:',
      '  - name: serve', '    cohort: tidal', `    nominalQuota: ${o.gpus}`, '    tenants: [bench]',
      '  - name: train', '    cohort: tidal', '    nominalQuota: 0', '    tenants: [bench]', '',
    ].join('\n'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const ports = 21_000 + 64 * Math.floor(Math.random() * 120);
    const server = new Child(spawn(process.execPath, [TIDE, 'server', '--port', String(port), '--config', join(dir, 'cluster.yaml'), '--data-dir', join(dir, 'server'),
      '--tick-ms', '100', '--service-decide-ms', String(Math.max(50, Math.round((TIDAL.decide * 1000) / c))), '--service-reconcile-ms', '100', '--service-time-scale', String(c),
      // Replica ports of its own: another cluster on the machine (a test, another benchmark) may hold the default range's first ports.
      '--service-ports', `${ports}-${ports + 63}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(server);
    await until('the server', async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 120_000);
    const perAgent = 4;
    for (let i = 0; i * perAgent < o.gpus; i++) {
      const n = Math.min(perAgent, o.gpus - i * perAgent);
      children.push(new Child(spawn(process.execPath, [TIDE, 'agent', '--server', url, '--token', AGENT, '--name', `node-${i}`, '--gpus', `${n}xH100`, '--simulate', '--data-dir', join(dir, `agent-${i}`), '--checkpoint-root', join(dir, 'ckpt'), '--heartbeat-ms', '100', '--cpus', '64', '--memory-gib', '256'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })));
    }
    const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await callJson(url, method, path, { token: TENANT, ...(body !== undefined ? { body } : {}), timeoutMs: 30_000 });
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
      return r.json as T;
    };
    const submit = async (spec: unknown): Promise<string> => (await call<{ jobs: { id: string }[] }>('POST', '/v1/jobs', spec)).jobs[0]?.id ?? '';
    const readyGpus = async (): Promise<number> => (await call<{ nodes: { state: string; gpus: unknown[] }[] }>('GET', '/v1/nodes')).nodes.filter((n) => n.state === 'ready').reduce((k, n) => k + n.gpus.length, 0);
    await until('the agents', async () => ((await readyGpus()) === o.gpus ? true : undefined), 120_000);
    log(`cluster up: ${o.gpus} simulated GPUs on ${Math.ceil(o.gpus / perAgent)} agents, server ${url}, files in ${dir}`);

    const svc = await submit({
      name: 'tidal-service',
      kind: 'service',
      queue: 'serve',
      gracePeriodSeconds: 5,
      service: {
        minReplicas: 2,
        maxReplicas: o.gpus,
        concurrency: 1,
        serviceSeconds: TIDAL.serviceSeconds,
        slo: { quantile: TIDAL.sloQuantile, waitSeconds: TIDAL.sloWait, windowSeconds: TIDAL.window },
        loadSeconds: { median: TIDAL.loadMedian, p90: TIDAL.loadP90 },
        evictSeconds: TIDAL.evict,
        scaleDownDelaySeconds: o.scaleDownDelaySeconds ?? 0,
        autoscaler: o.autoscaler,
        ...(o.options ? { options: o.options } : {}),
      },
      tasks: [{ gpus: 1, cpu: 0.25, memory: '128Mi', command: ['node', MODEL, '--time-scale', String(c), '--service-seconds', String(TIDAL.serviceSeconds), '--load-seconds', String(TIDAL.loadMedian), '--load-sigma', String(TIDAL.loadSigma)] }],
    });
    const status = async (): Promise<JobAnswer> => call<JobAnswer>('GET', `/v1/jobs/${svc}`);
    const readyReplicas = (a: JobAnswer): number => (a.service?.replicas ?? []).filter((r) => r.ready).length;
    await until('two ready replicas', async () => (readyReplicas(await status()) >= 2 ? true : undefined), 120_000);
    const trainers: string[] = [];
    for (let i = 0; i < o.gpus; i++) {
      trainers.push(await submit({
        name: `train-${i}`,
        kind: 'training',
        queue: 'train',
        checkpoint: true,
        // A planned eviction's checkpoint (30 s) fits in the grace period; an immediate one (grace 0) is cut short.
        gracePeriodSeconds: Math.max(1, (2 * TIDAL.evict) / c),
        tasks: [{ gpus: 1, cpu: 0.25, memory: '128Mi', command: ['node', TRAINER, '--steps', '1000000000', '--rate', String(TRAIN_RATE), '--checkpoint-every', String(TIDAL.checkpointEvery / c), '--load-seconds', String(TIDAL.restart / c), '--save-seconds', String(TIDAL.evict / c)] }],
      }));
    }

    const routerPort = await freePort();
    const router = node([ROUTER, '--server', url, '--service', svc, '--token', TENANT, '--listen', `127.0.0.1:${routerPort}`, '--poll-ms', '100']);
    children.push(router);
    await until('the router', async () => ((await fetch(`http://127.0.0.1:${routerPort}/replicas`)).ok ? true : undefined), 30_000);
    // The replay begins on a 5-minute boundary of the services' clock (wall × c), a few seconds from now.
    const bucketMs = (o.curve.bucketSeconds * 1000) / c;
    const startAtMs = Math.ceil((Date.now() + 4000) / bucketMs) * bucketMs;
    let historyPoints = 0;
    let historyGapSeconds: number | null = null;
    let twinHistory: TwinHistory | null = null;
    if (o.history) {
      const startedAt = (await status()).job.startedAt ?? Date.now();
      historyGapSeconds = ((startAtMs - startedAt) / 1000) * c;
      const gap = historyGapSeconds;
      const points = exportedHistory(o.history, peakRate, o.seed).filter((p) => p.t < -gap);
      const t0 = (startAtMs / 1000) * c;
      await call('PUT', `/v1/jobs/${svc}/history`, { points: points.map((p) => [t0 + p.t, p.rate]) });
      historyPoints = points.length;
      twinHistory = { points, gapSeconds: gap };
      log(`history: ${points.length} points over ${(o.history.values.length * o.history.bucketSeconds / 86_400).toFixed(1)} day(s) before the replay, the last ${(gap / 60).toFixed(0)} curve minutes (after the service started) left out`);
    }
    const curveFile = join(dir, 'curve.csv');
    writeFileSync(curveFile, curveCsv(o.curve));
    const top = Math.max(...o.curve.values) || 1;
    const summaryFile = join(dir, 'load.json');
    const seconds = o.hours * 3600;
    log(`replaying ${o.hours} h of curve ${o.curveName} at ${c}× (${(seconds / c).toFixed(0)} s), peak ${peakRate.toFixed(3)} requests/s, with ${o.gpus} training jobs waiting to borrow`);
    const load = node([LOADGEN, '--target', `http://127.0.0.1:${routerPort}`, '--curve', curveFile, '--peak', String(peakRate * top), '--compress', String(c), '--duration', String(seconds),
      '--seed', String(o.seed), '--slo-wait', String(TIDAL.sloWait), '--slo-quantile', String(TIDAL.sloQuantile), '--window', String(TIDAL.window), '--json', summaryFile, '--start-at', String(Math.round(startAtMs))]);
    children.push(load);
    const t0 = startAtMs;
    const loadStart = loadavg()[0] as number;
    const loads: number[] = [];
    const timeline: { hour: number; rate: number; desired: number; ready: number; lent: number }[] = [];
    while (load.alive) {
      const hour = Math.max(0, (((Date.now() - t0) / 1000) * c) / 3600);
      loads.push(loadavg()[0] as number);
      try {
        const s = await status();
        const lent = (await call<{ queues: { name: string; lentGpus?: number }[] }>('GET', '/v1/queues')).queues.find((q) => q.name === 'serve')?.lentGpus ?? 0;
        const bucket = Math.min(o.curve.values.length - 1, Math.floor((hour * 3600) / o.curve.bucketSeconds));
        const point = { hour, rate: peakRate * (o.curve.values[bucket] ?? 0), desired: s.service?.desiredReplicas ?? 0, ready: readyReplicas(s), lent };
        timeline.push(point);
        o.onProgress?.({ hour, hours: o.hours, desired: point.desired, ready: point.ready, lent });
      } catch (e) {
        log(`sample failed: ${(e as Error).message}`);
      }
      await sleep(1000);
    }
    if ((await load.exited) !== 0) throw new Error(`the load generator failed: ${load.output.slice(-500)}`);
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as LoadSummary;
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const counter = (re: RegExp): number => metrics.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    const evictions = { planned: counter(/^tide_evictions_total\{kind="planned"\}/), immediate: counter(/^tide_evictions_total\{kind="immediate"\}/) };
    const scaleUps = counter(/^tide_service_scale_decisions_total\{direction="up"\}/);
    const scaleDowns = counter(/^tide_service_scale_decisions_total\{direction="down"\}/);
    const scaleUpLine = metrics.split('\n').find((l) => l.startsWith(`tide_service_scale_up_seconds{service="${svc}"}`));
    const scaleUpP99Seconds = scaleUpLine === undefined ? null : Number(scaleUpLine.split(' ').pop());
    // The training backlog's use of lent GPUs: every attempt's running time; then cancel (each saves a checkpoint) and read what it kept.
    const end = Date.now();
    let lentWall = 0;
    for (const id of trainers) {
      for (const a of (await call<JobAnswer>('GET', `/v1/jobs/${id}`)).attempts) {
        if (a.startedAt === null) continue;
        lentWall += Math.max(0, Math.min(a.finishedAt ?? end, end) - a.startedAt) / 1000;
      }
    }
    // The service and the trainers end here (an agent that stops leaves its tasks running for its next start).
    for (const id of [svc, ...trainers]) await call('POST', `/v1/jobs/${id}/cancel`).catch(() => undefined);
    let steps = 0;
    await until('the trainers to stop', async () => {
      const jobs = await Promise.all(trainers.map(async (id) => (await call<JobAnswer>('GET', `/v1/jobs/${id}`)).job));
      if (jobs.some((j) => j.state !== 'cancelled' && j.state !== 'succeeded' && j.state !== 'failed')) return undefined;
      steps = jobs.reduce((n, j) => n + (j.progress?.checkpointStep ?? 0), 0);
      return true;
    }, 60_000);
    await until('the replicas to stop', async () => ((await call<{ nodes: { gpuUsedMilli: number[] }[] }>('GET', '/v1/nodes')).nodes.every((n) => n.gpuUsedMilli.every((m) => m === 0)) ? true : undefined), 60_000);
    const toHours = (wallSeconds: number): number => (wallSeconds * c) / 3600;
    const total = o.gpus * o.hours;
    const lentGpuHours = toHours(lentWall);
    const trainingNetGpuHours = toHours(steps / TRAIN_RATE);
    const inferenceBusy = (summary.answered * TIDAL.serviceSeconds) / 3600;
    const report: ServiceLiveReport = {
      curve: o.curveName,
      seed: o.seed,
      compress: c,
      gpus: o.gpus,
      hours: o.hours,
      autoscaler: o.autoscaler,
      scaleDownDelaySeconds: o.scaleDownDelaySeconds ?? 0,
      historyDays: o.history ? (o.history.values.length * o.history.bucketSeconds) / 86_400 : 0,
      historyPoints,
      historyGapSeconds,
      scaleUpP99Seconds,
      loadAverage: { start: loadStart, mean: loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : loadStart, max: Math.max(loadStart, ...loads) },
      peakRate,
      requests: summary.requests,
      failed: summary.failed,
      sloWindowsMetPct: summary.sloWindowsMetPct,
      windows: summary.windows,
      windowsMet: summary.windowsMet,
      p99WaitSeconds: summary.p99WaitSeconds,
      missedWindows: (summary.missed ?? []).map((w) => ({ hour: w.start / 3600, requests: w.requests, quantileWaitSeconds: w.quantileWaitSeconds })),
      lentGpuHours,
      lentGpuPct: (100 * lentGpuHours) / total,
      trainingNetGpuHours,
      lostGpuHours: Math.max(0, lentGpuHours - trainingNetGpuHours),
      inferenceBusyPct: (100 * inferenceBusy) / total,
      usefulUtilisationPct: (100 * (inferenceBusy + trainingNetGpuHours)) / total,
      evictions,
      scaleUps,
      scaleDowns,
      wallSeconds: (Date.now() - started) / 1000,
      timeline,
      dir: o.keep ? dir : null,
      ...twinOf(o, peakRate, twinHistory),
    };
    writeFileSync(join(dir, 'report.json'), JSON.stringify(report, null, 2));
    return report;
  } catch (e) {
    for (const ch of children) if (!ch.alive || /error/i.test(ch.output.slice(-2000))) log(ch.output.slice(-1500));
    throw e;
  } finally {
    for (const ch of [...children].reverse()) await ch.stop();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The simulated twin of the run, or why there is none. */
function twinOf(o: ServiceLiveOptions, lambdaPeak: number, history: TwinHistory | null): { twin: TwinFigures | null; twinNote: string | null } {
  if (o.hours % 24 !== 0) return { twin: null, twinNote: 'the simulator runs whole days: no twin for a part of one' };
  if ((o.scaleDownDelaySeconds ?? 0) > 0) return { twin: null, twinNote: 'the simulator has no scale-down delay: no twin' };
  return { twin: runTwin({ gpus: o.gpus, lambdaPeak, curve: o.curve, days: o.hours / 24, seed: o.seed, autoscaler: o.autoscaler, ...(o.options ? { options: o.options } : {}), ...(history ? { history } : {}) }), twinNote: null };
}

/** The run's timeline as an SVG chart: arrival rate, replicas wanted and ready, GPUs lent. */
export function serviceLiveSvg(r: ServiceLiveReport): string {
  const scale = r.gpus / Math.max(1e-9, r.peakRate);
  return lineChartSvg({
    title: `Service live: curve ${r.curve}, ${r.gpus} GPUs, ${r.autoscaler}${r.historyDays ? ` (history ${r.historyDays} d)` : ''}${r.scaleDownDelaySeconds ? ` (scale-down delay ${r.scaleDownDelaySeconds} s)` : ''}, ${r.compress}× (SLO windows met ${r.sloWindowsMetPct.toFixed(1)} %)`,
    xLabel: 'hour of the curve',
    yLabel: 'GPUs (rate: scaled so that the peak is the cluster)',
    yFromZero: true,
    series: [
      { name: `arrival rate × ${scale.toFixed(1)}`, points: r.timeline.map((p) => [p.hour, p.rate * scale]), dashed: true },
      { name: 'replicas wanted', points: r.timeline.map((p) => [p.hour, p.desired]) },
      { name: 'replicas ready', points: r.timeline.map((p) => [p.hour, p.ready]) },
      { name: 'GPUs lent to training', points: r.timeline.map((p) => [p.hour, p.lent]) },
    ],
  });
}
