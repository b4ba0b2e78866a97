/**
 * Control-plane benchmark at a cluster's size, over real HTTP on a real server (SQLite by
 * default, PostgreSQL with --database-url or a throwaway one with --postgres):
 *
 *   1. simulated agents in a child process (bench/simAgents.ts) register `--nodes` nodes of 8
 *      GPUs (a mix of models) and heartbeat every `--heartbeat-ms` with telemetry and reports;
 *   2. long jobs (one POST each over HTTP) fill the GPUs and leave `--pending` jobs pending;
 *   3. for `--measure-seconds`, readers in a child process (bench/serverReads.ts) time
 *      `GET /v1/jobs?…`, `GET /v1/jobs/:id` and `GET /v1/nodes` while the loop cycles;
 *   4. `--submissions` single-job POSTs from a child process (bench/serverLoad.ts): jobs/s;
 *   5. `--arrays` batch arrays of `--array-size` short CPU tasks, bound by the loop, started and
 *      reported done by the simulated agents: tasks/s from the first POST to the last success.
 *
 * Scheduling cycles (snapshot → core → apply) are timed throughout, split per phase. Prints a
 * table; --json FILE writes the figures.
 *
 *   npm run bench:server -- --scale small                 # ~1 minute
 *   npm run bench:server -- --scale full --json out.json  # 1,250 agents, 10,000 GPUs, 100,000 pending
 *   npm run bench:server -- --scale small --postgres      # a throwaway PostgreSQL (initdb)
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { startServer } from '../src/server/server.ts';
import { EMPTY_CONFIG } from '../src/server/config.ts';
import { benchArgs, intFlag, usageError } from './args.ts';
import { benchDatabase } from './database.ts';
import { machineSplit, sampleCpu, type MachineSplit } from './machineCpu.ts';
import { requestBuckets, serverSide } from './requestTimes.ts';
import { PlannerSlot, ThreadedPlanner } from '../src/server/scheduling/plannerThread.ts';
import { BudgetGate } from '../src/server/usage/budgetGate.ts';
import { SqlStore } from '../src/store/sqlStore.ts';

const SCALES = {
  small: { nodes: 125, pending: 10_000, submissions: 2_000, arrays: 4, arraySize: 500, measureSeconds: 10 },
  full: { nodes: 1_250, pending: 100_000, submissions: 10_000, arrays: 10, arraySize: 1_000, measureSeconds: 30 },
} as const;

const SCRIPT = 'bench:server';
const { values } = benchArgs(SCRIPT, {
  scale: { type: 'string', default: 'small' },
  nodes: { type: 'string' },
  pending: { type: 'string' },
  submissions: { type: 'string' },
  arrays: { type: 'string' },
  'array-size': { type: 'string' },
  'measure-seconds': { type: 'string' },
  'heartbeat-ms': { type: 'string', default: '2000' },
  'read-rate': { type: 'string', default: '30' },
  concurrency: { type: 'string', default: '16' },
  'tick-ms': { type: 'string', default: '1000' },
  // New pending jobs a cycle takes in (cluster config scheduling.arrivalsPerCycle); absent: the server's default.
  'arrivals-per-cycle': { type: 'string' },
  scheduler: { type: 'string', default: 'tide' },
  placement: { type: 'string', default: 'tide' },
  'database-url': { type: 'string' },
  postgres: { type: 'boolean', default: false },
  // The scheduler plans on its own thread, as `tide server` does; --no-scheduler-thread plans on
  // the request thread (--scheduler-thread, the default, is still taken).
  'scheduler-thread': { type: 'boolean', default: true },
  'no-scheduler-thread': { type: 'boolean', default: false },
  // The simulated agents hold a wait for new work between heartbeats, as agents do; this leaves it out (heartbeats only).
  'no-agent-waits': { type: 'boolean', default: false },
  json: { type: 'string' },
  'settle-seconds': { type: 'string', default: '600' },
});

const scale = SCALES[values.scale as keyof typeof SCALES] ?? usageError(SCRIPT, `--scale must be small or full, not ${JSON.stringify(values.scale)}`);
const count = (name: string, fallback: number): number => intFlag(SCRIPT, name, (values as Record<string, unknown>)[name] as string | undefined, fallback);
const NODES = count('nodes', scale.nodes);
const PENDING = count('pending', scale.pending);
const SUBMISSIONS = count('submissions', scale.submissions);
const ARRAYS = count('arrays', scale.arrays);
const ARRAY_SIZE = count('array-size', scale.arraySize);
const MEASURE_S = count('measure-seconds', scale.measureSeconds);
const HEARTBEAT_MS = count('heartbeat-ms', 2000);
const READ_RATE = count('read-rate', 30);
const CONCURRENCY = count('concurrency', 16);
const TICK_MS = count('tick-ms', 1000);
const SETTLE_S = count('settle-seconds', 600);
const ARRIVALS_PER_CYCLE = values['arrivals-per-cycle'] === undefined ? null : count('arrivals-per-cycle', 0) || usageError(SCRIPT, '--arrivals-per-cycle must be a positive integer');
const GPUS_PER_NODE = 8;
/** Node models by position: half H100, a quarter A100, an eighth each L40S and A10G. */
const MODELS = ['H100', 'H100', 'H100', 'H100', 'A100', 'A100', 'L40S', 'A10G'] as const;
const ADMIN = 'bench-admin-token';
const AGENT = 'bench-agent-token';
const here = dirname(fileURLToPath(import.meta.url));

const tty = process.stderr.isTTY;
let lastProgress = 0;
/** A progress line: rewritten in place on a terminal, else printed every 15 s (a log). */
const progress = (line: string): void => {
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
  else if (line && Date.now() - lastProgress >= 15_000) {
    lastProgress = Date.now();
    console.error(line);
  }
};
const say = (line: string): void => {
  if (tty) process.stderr.write('\r\x1b[K');
  console.error(line);
};

const database = await benchDatabase({ postgres: values.postgres, databaseUrl: values['database-url'] });
const databaseUrl = database.url;
const stopPostgres = database.stop;

const dir = mkdtempSync(join(tmpdir(), 'tide-bench-'));
const server = await startServer({
  dataDir: dir,
  ...(databaseUrl ? { databaseUrl } : {}),
  port: 0,
  adminToken: ADMIN,
  agentToken: AGENT,
  scheduler: values.scheduler,
  placement: values.placement,
  schedulerThread: !values['no-scheduler-thread'],
  tickMs: TICK_MS,
  // The one tenant's open-job limit is still counted, but never reached: every size of run fits.
  config: { ...EMPTY_CONFIG, limits: { maxSubmitJobs: 1e9 }, ...(ARRIVALS_PER_CYCLE !== null ? { scheduling: { arrivalsPerCycle: ARRIVALS_PER_CYCLE } } : {}) },
  log: (line) => say(line),
});
const store = server.store;

// What the store asked of the database in each phase (counts: they do not depend on the machine's load).
const sqlStats = store instanceof SqlStore ? store.sqlStats : null;
interface SqlPhase {
  readonly seconds: number;
  /** CPU seconds the server's process used (its threads together: request thread and scheduler thread). */
  readonly cpuSeconds: number;
  /** Of which in the kernel (sockets, SQLite's file writes). */
  readonly systemCpuSeconds: number;
  /** Of which the request thread's (Linux: /proc; null elsewhere). */
  readonly mainCpuSeconds: number | null;
  /** On the scheduler thread: jobs, active tasks and nodes sent to it, per cycle. */
  readonly sentPerCycle: { jobs: number; tasks: number; nodes: number } | null;
  /** The quiet heartbeats' view of the nodes (store/nodeTasksView.ts): shared reads, heartbeats answered, and of those how many waited for a read, and how long on average. */
  readonly nodeView: { reads: number; answers: number; waited: number; avgWaitMs: number } | null;
  /** How the node list was answered (SqlStore.nodeListCounts): kept, kept with the tasks' use brought up to date, read first; read in the background. */
  readonly nodeList: { kept: number; used: number; read: number; background: number } | null;
  readonly transactions: number;
  readonly statements: number;
  readonly rows: number;
  readonly top: ReturnType<NonNullable<typeof sqlStats>['top']>;
  /** The request thread's event-loop delay (ms): how long a request that arrived could wait for the thread. */
  readonly loopDelayMs: { p50: number; p99: number; max: number };
  /** Garbage collection in the phase (ms): every pause's total, the longest, and the count of major ones. */
  readonly gc: { pauses: number; ms: number; maxMs: number; majors: number };
  /** The whole machine's CPU time in the phase, and the database's, agents' and load's shares (machineCpu.ts; null off Linux). */
  readonly machine: MachineSplit | null;
}
const sqlPhases: Record<string, SqlPhase> = {};
// The server's process is this one: its CPU time per phase says what the work cost, however
// loaded the machine (the agents, readers and submitters are other processes).
let sqlPhaseStart = performance.now();
let cpuStart = process.cpuUsage();
let machineStart = sampleCpu(undefined);
/** CPU seconds of this process's main thread (the request thread), from /proc; null where there is none. */
function mainThreadCpu(): number | null {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks (100 a second).
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}
let mainCpuStart = mainThreadCpu();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
// The longest holds of the request thread (a timer's lateness), with when they ended (s since start), for the timeline.
const benchStart = performance.now();
let holdTick = performance.now();
let holds: { at: number; ms: number; busy: number; gc: number }[] = [];
let holdElu = performance.eventLoopUtilization();
let gcMs = 0;
/** This phase's garbage collection (the server's and this script's; one process): pauses, their time, the longest, the major ones. */
let gcPhase = { pauses: 0, ms: 0, maxMs: 0, majors: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcPhase.pauses++;
    gcPhase.ms += e.duration;
    gcPhase.maxMs = Math.max(gcPhase.maxMs, e.duration);
    if (((e as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gcPhase.majors++;
  }
}).observe({ entryTypes: ['gc'] });
let holdGc = 0;
setInterval(() => {
  const now = performance.now();
  const late = now - holdTick - 100;
  holdTick = now;
  const elu = performance.eventLoopUtilization(holdElu);
  holdElu = performance.eventLoopUtilization();
  const gc = gcMs - holdGc;
  holdGc = gcMs;
  if (late > 500) holds.push({ at: Math.round((now - benchStart) / 100) / 10, ms: Math.round(late), busy: Math.round(elu.utilization * 100), gc: Math.round(gc) });
}, 100).unref();
/** Nanoseconds to milliseconds, to the microsecond. */
const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
// The loop plans through the budget gate (server/usage/budgetGate.ts), which wraps the thread.
await server.looping;
const gated = server.loop.planner instanceof BudgetGate ? server.loop.planner.inner : server.loop.planner;
const wrapped = gated instanceof PlannerSlot ? gated.current : gated;
const planner = wrapped instanceof ThreadedPlanner ? wrapped : null;
let sentStart = planner ? { ...planner.sentCounts } : null;
let viewStart = store instanceof SqlStore ? { ...store.nodeTasks.counts } : null;
let listStart = store instanceof SqlStore ? { ...store.nodeListCounts } : null;
let ckStart = { background: 0, quiet: 0, quietMs: 0, failures: 0 };
let commitStart = { count: 0, ms: 0, maxMs: 0 };
/** Closes the SQL counts and CPU time of a phase. */
function sqlPhase(name: string): void {
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  let sentPerCycle: SqlPhase['sentPerCycle'] = null;
  if (planner && sentStart) {
    const c = planner.sentCounts;
    const n = Math.max(1, c.cycles - sentStart.cycles);
    sentPerCycle = { jobs: Math.round((c.jobs - sentStart.jobs) / n), tasks: Math.round((c.tasks - sentStart.tasks) / n), nodes: Math.round((c.nodes - sentStart.nodes) / n) };
    sentStart = { ...c };
  }
  const view = store instanceof SqlStore ? { ...store.nodeTasks.counts } : null;
  const nodeView = view && viewStart ? { reads: view.reads - viewStart.reads, answers: view.answers - viewStart.answers, waited: view.waited - viewStart.waited, avgWaitMs: Math.round((10 * (view.waitMs - viewStart.waitMs)) / Math.max(1, view.waited - viewStart.waited)) / 10 } : null;
  viewStart = view;
  const listed = store instanceof SqlStore ? { ...store.nodeListCounts } : null;
  const nodeList = listed && listStart ? { kept: listed.kept - listStart.kept, used: listed.used - listStart.used, read: listed.read - listStart.read, background: listed.background - listStart.background } : null;
  listStart = listed;
  const main = mainThreadCpu();
  const mainCpuSeconds = main === null || mainCpuStart === null ? null : main - mainCpuStart;
  mainCpuStart = main;
  const machineNow = sampleCpu(agents.pid);
  const machine = machineStart && machineNow ? machineSplit(machineStart, machineNow) : null;
  machineStart = machineNow;
  sqlPhases[name] = { seconds: (performance.now() - sqlPhaseStart) / 1000, cpuSeconds, systemCpuSeconds: cpu.system / 1e6, mainCpuSeconds, sentPerCycle, nodeView, nodeList, ...(sqlStats?.totals() ?? { transactions: 0, statements: 0, rows: 0 }), top: sqlStats?.top(60) ?? [], loopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) }, gc: { pauses: gcPhase.pauses, ms: Math.round(gcPhase.ms), maxMs: Math.round(gcPhase.maxMs), majors: gcPhase.majors }, machine };
  gcPhase = { pauses: 0, ms: 0, maxMs: 0, majors: 0 };
  const writes = store instanceof SqlStore ? store.sqliteWrites : null;
  if (writes) {
    const c = writes.commits;
    const ck = writes.checkpoints?.counts ?? { background: 0, quiet: 0, quietMs: 0, failures: 0 };
    console.log(`${name}: COMMITs ${c.count - commitStart.count} took the request thread ${Math.round(c.ms - commitStart.ms)} ms (longest ${c.maxMs.toFixed(1)} ms); checkpoints on their thread: ${ck.background - ckStart.background} beside writes, ${ck.quiet - ckStart.quiet} quiet (the connection waited ${Math.round(ck.quietMs - ckStart.quietMs)} ms), ${ck.failures} failures`);
    commitStart = { ...c };
    c.maxMs = 0;
    ckStart = { ...ck };
  }
  if (holds.length) console.log(`${name}: request thread held (s since start: ms) ${holds.map((h) => `${h.at}: ${h.ms} (${h.busy}% busy, gc ${h.gc} ms)`).join(', ')}`);
  holds = [];
  loopDelay.reset();
  sqlStats?.reset();
  sqlPhaseStart = performance.now();
  cpuStart = process.cpuUsage();
}

// Cycle timing, split into the store's snapshot, the core's plan and the store's apply.
let phase = 'fill';
interface Cycle {
  readonly phase: string;
  readonly seconds: number;
  readonly snapshot: number;
  /** The live inputs' refresh (before the snapshot), and the time-limit, idle and power checks (after it). */
  readonly refresh: number;
  readonly checks: number;
  /** The scheduler's plan (on its thread unless --no-scheduler-thread), reasons included. */
  readonly plan: number;
  readonly apply: number;
  readonly open: number;
  /** When the cycle ended (ms, performance clock), and the tasks its plan bound. */
  readonly endedAt: number;
  readonly binds: number;
}
const cycles: Cycle[] = [];
let applySeconds = 0;
let appliedBinds = 0;
const applyPlan = store.applyPlan.bind(store);
store.applyPlan = async (...args) => {
  const t = performance.now();
  appliedBinds = args[0].binds.reduce((n, b) => n + b.tasks.length * (b.units ?? 1), 0);
  try {
    return await applyPlan(...args);
  } finally {
    applySeconds = (performance.now() - t) / 1000;
  }
};
// Nodes written off (their tasks requeued), by phase: a burst must cost no one their node.
const lostNodes: Record<string, number> = {};
const expireNodes = store.expireNodes.bind(store);
store.expireNodes = async (...args) => {
  const lost = await expireNodes(...args);
  if (lost.length) lostNodes[phase] = (lostNodes[phase] ?? 0) + lost.length;
  return lost;
};
server.loop.observe((seconds, snap) => {
  const parts = server.loop.lastCycleParts;
  cycles.push({ phase, seconds, snapshot: parts.snapshot, plan: parts.plan, apply: applySeconds, refresh: parts.refresh, checks: parts.checks, open: snap.openJobs.length, endedAt: performance.now(), binds: appliedBinds });
  applySeconds = 0;
  appliedBinds = 0;
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An admin API call; a POST carries an idempotency key, so a retry after a dropped connection is safe. */
async function api(method: string, path: string, body?: unknown, key?: string): Promise<unknown> {
  let res: Response | undefined;
  for (let attempt = 0; !res; attempt++) {
    try {
      res = await fetch(new URL(path, server.url), {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(key ? { 'idempotency-key': key } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      if (attempt >= 3) throw e;
      say(`${method} ${path}: ${(e as Error).message}; retrying`);
      await sleep(1000);
    }
  }
  const json: unknown = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}


// 1. The agents.
const agents = fork(join(here, 'simAgents.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const fromAgents = (type: string): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>): void => {
      if (m['type'] === 'error') reject(new Error(`simulated agents: ${String(m['message'])}`));
      if (m['type'] !== type) return;
      agents.off('message', on);
      resolve(m);
    };
    agents.on('message', on);
  });
const nodes = Array.from({ length: NODES }, (_, n) => ({ id: `node-${String(n).padStart(5, '0')}`, model: MODELS[n % MODELS.length] as string, gpus: GPUS_PER_NODE, cpuMilli: 128_000, memoryMib: 2 * 1024 * 1024 }));
const t0 = performance.now();
agents.send({ type: 'start', url: server.url, agentToken: AGENT, heartbeatMs: HEARTBEAT_MS, waits: !values['no-agent-waits'], nodes });
await fromAgents('ready');
say(`${NODES} agents registered (${NODES * GPUS_PER_NODE} GPUs) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// 2. Fill: long jobs of 1, 2, 4 or 8 GPUs of one model (or any), each a job of its own over HTTP,
// FILL_IN_FLIGHT at a time (submissions that arrive together are committed together). Not as
// arrays: an array's waiting elements are one job (migration 019), and this fill is to leave
// `--pending` jobs waiting. A thousand in a row share a shape, as the arrays they were did.
const FILL_MODELS = [['H100'], ['A100'], ['L40S'], [], ['A10G'], ['H100']] as const;
const FILL_IN_FLIGHT = 64;
const avgGpus = (1 + 2 + 4 + 8) / 4;
const fillTotal = PENDING + Math.round((NODES * GPUS_PER_NODE) / avgGpus);
const fillStart = performance.now();
let filled = 0;
let nextFill = 0;
async function fillOne(n: number): Promise<void> {
  const k = Math.floor(n / 1000);
  const gpus = [1, 2, 4, 8][k % 4] as number;
  const models = FILL_MODELS[Math.floor(k / 4) % FILL_MODELS.length] as readonly string[];
  await api('POST', '/v1/jobs', {
    name: `fill-${k}-${n % 1000}`,
    priority: k % 3,
    tasks: [{ replicas: 1, gpus, gpuModels: models, cpu: 4 * gpus, memory: `${32 * gpus}Gi`, command: 'sleep infinity' }],
  }, `fill-${n}`);
  if (++filled % 1000 === 0) progress(`fill: ${filled}/${fillTotal} jobs submitted, ${cycles.length} cycles, last ${cycles.at(-1)?.seconds.toFixed(2) ?? '-'} s`);
}
await Promise.all(
  Array.from({ length: FILL_IN_FLIGHT }, async () => {
    while (nextFill < fillTotal) await fillOne(nextFill++);
  }),
);
const fillSubmitSeconds = (performance.now() - fillStart) / 1000;
say(`fill: ${fillTotal} jobs submitted in ${fillSubmitSeconds.toFixed(1)} s`);

// Settled: every bound task reported running by its agent, and two whole cycles since bound nothing more.
let counts: Record<string, number>;
let lastRunning = -1;
let cyclesAtChange = cycles.length;
const settleStart = performance.now();
for (;;) {
  await sleep(2000);
  counts = await store.jobStateCounts();
  const running = counts['running'] ?? 0;
  if (running !== lastRunning || (counts['admitted'] ?? 0) > 0) cyclesAtChange = cycles.length;
  lastRunning = running;
  // Settled: the running jobs unchanged for two cycles, and every pending job taken in by the scheduler.
  if (running > 0 && cycles.length - cyclesAtChange >= 2 && server.loop.backlog === 0) break;
  progress(`settling: ${JSON.stringify(counts)}, ${server.loop.backlog} not taken in yet, ${cycles.length} cycles, last ${cycles.at(-1)?.seconds.toFixed(2) ?? '-'} s`);
  if ((performance.now() - settleStart) / 1000 > SETTLE_S) {
    say(`settle: gave up after ${SETTLE_S} s: ${JSON.stringify(counts)}`);
    break;
  }
}
const usedGpus = (await store.listNodes()).reduce((n, x) => n + x.gpuUsedMilli.reduce((a, b) => a + b, 0) / 1000, 0);
say(`settled in ${((performance.now() - settleStart) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}, ${usedGpus.toFixed(0)} of ${NODES * GPUS_PER_NODE} GPUs used`);
const steadyCounts = counts;

interface AgentStats {
  readonly heartbeats: number;
  readonly errors: number;
  readonly lastError: string;
  readonly latency: number[];
  /** Waits for new work answered with a wake, so far. */
  readonly waits: number;
  /** What the agents' fences saw (simAgents.ts): ms from one confirmation's send to the next's answer, since the last stats; renewals so far; gaps of half the lease or more since the last stats. */
  readonly gaps: number[];
  readonly renewals: number;
  readonly renewLatency: number[];
  /** The agents' process's own event-loop delay since the last stats (its latencies include it). */
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
  readonly renewalErrors: number;
  readonly pastHalfLease: number;
}
async function agentStats(): Promise<AgentStats> {
  const reply = fromAgents('stats');
  agents.send({ type: 'stats' });
  return (await reply) as unknown as AgentStats;
}
const fillHeartbeats = await agentStats(); // and resets the samples
sqlPhase('fill');

function child(script: string, args: readonly string[]): Promise<string> {
  const c = spawn(process.execPath, ['--import', 'tsx', join(here, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}: ${out}`)))));
}

// 3. Reads while the loop cycles.
phase = 'steady';
const maxId = Number((await store.listJobs({ order: 'desc', limit: 1 }))[0]?.id ?? 1);
const readsTimer = setInterval(() => progress(`reads: ${cycles.filter((c) => c.phase === 'steady').length} cycles, last ${cycles.at(-1)?.seconds.toFixed(2) ?? '-'} s`), 1000);
const readsTimedFrom = await requestBuckets(server.metrics.requestSeconds);
const reads = JSON.parse(await child('serverReads.ts', [server.url, ADMIN, String(MEASURE_S), String(READ_RATE), String(maxId)])) as Record<string, { ms: number[]; errors: number }>;
const readsTimedTo = await requestBuckets(server.metrics.requestSeconds);
/** The same reads as the server timed them (its request histogram): the readers' route for each. */
const READ_ROUTES: Record<string, string> = { jobsPage: 'GET /v1/jobs', job: 'GET /v1/jobs/:id', nodes: 'GET /v1/nodes' };
const readsInServer = Object.fromEntries(Object.entries(READ_ROUTES).map(([k, route]) => [k, serverSide(readsTimedFrom, readsTimedTo, route)]));
clearInterval(readsTimer);
const steadyHeartbeats = await agentStats();
sqlPhase('steady');
// Each phase's figures as it ends, so that a run stopped early still tells something.
const quick = (xs: readonly number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): string => (s.length ? (s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] as number).toFixed(3) : '-');
  return `n=${s.length} p50=${at(0.5)} p99=${at(0.99)}`;
};
say(`steady: cycles s ${quick(cycles.filter((c) => c.phase === 'steady').map((c) => c.seconds))}; reads ms ${Object.entries(reads).map(([k, v]) => `${k} ${quick(v.ms)}`).join('; ')}; heartbeats ms ${quick(steadyHeartbeats.latency)}`);

// 4. Submissions.
phase = 'submit';
const submitTimer = setInterval(() => progress(`submissions: ${cycles.filter((c) => c.phase === 'submit').length} cycles`), 1000);
const submitSeconds = SUBMISSIONS ? Number((await child('serverLoad.ts', [server.url, ADMIN, String(SUBMISSIONS), String(CONCURRENCY)])).trim()) : 0;
clearInterval(submitTimer);
sqlPhase('submit');
say(`submissions: ${SUBMISSIONS} in ${submitSeconds.toFixed(1)} s; cycles s ${quick(cycles.filter((c) => c.phase === 'submit').map((c) => c.seconds))}`);

/**
 * What a client opening a new connection meets (a CLI call, the dashboard, an agent that
 * restarted): one fresh connection at a time, 100 ms after the last answer, to /healthz; ms from
 * its start to the answer's end, measured in the server's own process.
 */
function freshConnections(): () => number[] {
  const ms: number[] = [];
  let stopped = false;
  const next = (): void => void (stopped || setTimeout(one, 100));
  const one = (): void => {
    const began = performance.now();
    httpGet(`${server.url}/healthz`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        ms.push(performance.now() - began);
        next();
      });
    }).on('error', next);
  };
  one();
  return () => {
    stopped = true;
    return ms;
  };
}

// 5. Batch arrays of short CPU tasks (high priority, so they go before the pending GPU jobs).
phase = 'arrays';
// Counted among the jobs after this id (one index range: counting every job's state twice a
// second held the server's thread for tens of ms at 100,000 jobs).
const burstAfter = Number((await store.listJobs({ order: 'desc', limit: 1 }))[0]?.id ?? 0);
const succeeded = async (): Promise<number> => (store instanceof SqlStore ? store.countJobs('succeeded', burstAfter) : ((await store.jobStateCounts())['succeeded'] ?? 0));
const before = await succeeded();
const arrayTotal = ARRAYS * ARRAY_SIZE;
const arrayStart = performance.now();
const arrayStartEpoch = Date.now();
const stopFreshConnections = freshConnections();
for (let k = 0; k < ARRAYS; k++) {
  await api('POST', '/v1/jobs', { name: `burst-${k}`, priority: 1000, array: ARRAY_SIZE, tasks: [{ replicas: 1, gpus: 0, cpu: 0.5, memory: '1Gi', command: 'true', env: { SIM_SECONDS: '0' } }] }, `burst-${k}`);
}
const arraySubmitSeconds = (performance.now() - arrayStart) / 1000;
let done = 0;
/** Tasks done by each poll (seconds since the first POST), for the timeline printed at the end. */
const doneAt: [number, number][] = [];
while (done < arrayTotal) {
  await sleep(500);
  done = (await succeeded()) - before;
  doneAt.push([(performance.now() - arrayStart) / 1000, done]);
  progress(`arrays: ${done}/${arrayTotal} tasks done, ${cycles.filter((c) => c.phase === 'arrays').length} cycles, last ${cycles.at(-1)?.seconds.toFixed(2) ?? '-'} s`);
  if ((performance.now() - arrayStart) / 1000 > SETTLE_S) break;
}
const polledSeconds = (performance.now() - arrayStart) / 1000;
const freshConnectionMs = stopFreshConnections();
const arrayHeartbeats = await agentStats();
sqlPhase('arrays');
// The phase ends when its last task ended (its job's finish time, on the store's clock); the poll
// that saw it came up to half a second later. Read after the phase's counts are taken.
let lastEnd = 0;
/** Array tasks that ran more than once (requeued: a node written off, a preemption). */
let rerun = 0;
if (done === arrayTotal) {
  for (let after = burstAfter; ; ) {
    const page = await store.listJobs({ afterId: after, states: ['succeeded'], limit: 5000 });
    if (page.length === 0) break;
    for (const j of page) {
      lastEnd = Math.max(lastEnd, j.finishedAt ?? 0);
      if (j.attempt > 0) rerun++;
    }
    after = Number(page.at(-1)?.id);
  }
}
const arraySeconds = lastEnd > 0 ? (lastEnd - arrayStartEpoch) / 1000 : polledSeconds;

agents.send({ type: 'stop' });
await new Promise((r) => agents.once('exit', r));
await server.close();
rmSync(dir, { recursive: true, force: true });
await stopPostgres();
progress('');

// Report.
function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const r1 = (x: number): number => Math.round(x * 10) / 10;
const stats = (xs: readonly number[]): { n: number; p50: number; p99: number; max: number } => ({ n: xs.length, p50: r3(pct(xs, 50)), p99: r3(pct(xs, 99)), max: r3(xs.length ? Math.max(...xs) : NaN) });
const cycleStats = (p: string | null): Record<string, unknown> => {
  const cs = cycles.filter((c) => (p === null ? c.phase !== 'fill' : c.phase === p));
  // The slowest cycle's parts: `checks` are the time-limit, idle and power checks; the rest of its time is the lease renewed before the apply and the pending reasons' filter.
  const slow = cs.reduce<(typeof cs)[number] | null>((a, c) => (a === null || c.seconds > a.seconds ? c : a), null);
  const slowest = slow
    ? { refresh: r3(slow.refresh), snapshot: r3(slow.snapshot), checks: r3(slow.checks), plan: r3(slow.plan), apply: r3(slow.apply), other: r3(slow.seconds - slow.refresh - slow.snapshot - slow.checks - slow.plan - slow.apply) }
    : null;
  return { ...stats(cs.map((c) => c.seconds)), snapshotP50: r3(pct(cs.map((c) => c.snapshot), 50)), planP50: r3(pct(cs.map((c) => c.plan), 50)), planMax: r3(Math.max(0, ...cs.map((c) => c.plan))), applyP50: r3(pct(cs.map((c) => c.apply), 50)), openJobsMax: cs.reduce((m, c) => Math.max(m, c.open), 0), slowest };
};
const report = {
  command: `npm run bench:server -- ${process.argv.slice(2).join(' ')}`.trim(),
  database: store.dialect,
  scheduler: `${values.scheduler}/${values.placement}${values['no-scheduler-thread'] ? ' (request thread)' : ' (thread)'}`,
  cluster: { nodes: NODES, gpus: NODES * GPUS_PER_NODE, heartbeatMs: HEARTBEAT_MS, agentWaits: !values['no-agent-waits'], models: [...new Set(MODELS)] },
  steady: { jobs: steadyCounts, gpusUsed: Math.round(usedGpus) },
  fillSubmitSeconds: r3(fillSubmitSeconds),
  cycleSeconds: { all: cycleStats(null), steady: cycleStats('steady'), submit: cycleStats('submit'), arrays: cycleStats('arrays') },
  readMs: Object.fromEntries(Object.entries(reads).map(([k, v]) => [k, { ...stats(v.ms), errors: v.errors }])),
  /** The same reads in the server (request arrival to answer): how many, how many over 100 ms, and the histogram bound under which 99 % finished. */
  readMsInServer: readsInServer,
  heartbeatMs: { steady: { ...stats(steadyHeartbeats.latency), errors: steadyHeartbeats.errors }, arrays: { ...stats(arrayHeartbeats.latency), errors: arrayHeartbeats.errors - steadyHeartbeats.errors }, lastError: arrayHeartbeats.lastError || null },
  /** The longest an agent went between confirmations (a heartbeat answered or a lease renewed, from its send): a real agent fences at half the lease. Renewals: all run. */
  fenceGapMs: Object.fromEntries(
    Object.entries({ fill: fillHeartbeats, steady: steadyHeartbeats, arrays: arrayHeartbeats }).map(([k, a]) => [k, { ...stats(a.gaps), pastHalfLease: a.pastHalfLease, agentsLoopDelayMs: a.loopDelayMs }]),
  ),
  nodesLost: lostNodes,
  /** New connections to /healthz during the arrays phase, one at a time (freshConnections). */
  freshConnectionMs: stats(freshConnectionMs),
  leaseRenewals: { answered: arrayHeartbeats.renewals, errors: arrayHeartbeats.renewalErrors, ms: stats([...fillHeartbeats.renewLatency, ...steadyHeartbeats.renewLatency, ...arrayHeartbeats.renewLatency]) },
  submissions: { jobs: SUBMISSIONS, concurrency: CONCURRENCY, seconds: r3(submitSeconds), perSecond: submitSeconds ? Math.round(SUBMISSIONS / submitSeconds) : null },
  arrays: { arrays: ARRAYS, size: ARRAY_SIZE, tasks: arrayTotal, done, submitSeconds: r3(arraySubmitSeconds), seconds: r3(arraySeconds), tasksPerSecond: Math.round(done / arraySeconds), agentsWoken: arrayHeartbeats.waits - steadyHeartbeats.waits },
  sql: Object.fromEntries(Object.entries(sqlPhases).map(([k, v]) => [k, { ...v, seconds: r3(v.seconds) }])),
  /** Statements per heartbeat in the steady phase: every statement of the phase (cycles and reads too) over its heartbeats. */
  sqlPerHeartbeat: sqlPhases['steady'] && steadyHeartbeats.latency.length ? r3(sqlPhases['steady'].statements / steadyHeartbeats.latency.length) : null,
  /** Server CPU ms per heartbeat in the steady phase (cycles and reads included; the request thread's alone), and per submission and array task. */
  cpuMsPerHeartbeat: sqlPhases['steady'] && steadyHeartbeats.latency.length ? r3((1000 * sqlPhases['steady'].cpuSeconds) / steadyHeartbeats.latency.length) : null,
  mainCpuMsPerHeartbeat: sqlPhases['steady']?.mainCpuSeconds != null && steadyHeartbeats.latency.length ? r3((1000 * sqlPhases['steady'].mainCpuSeconds) / steadyHeartbeats.latency.length) : null,
  cpuMsPerSubmission: sqlPhases['submit'] && SUBMISSIONS ? r3((1000 * sqlPhases['submit'].cpuSeconds) / SUBMISSIONS) : null,
  cpuMsPerArrayTask: sqlPhases['arrays'] && done ? r3((1000 * sqlPhases['arrays'].cpuSeconds) / done) : null,
};

const rows: [string, string][] = [
  ['database / scheduler', `${report.database} / ${report.scheduler}`],
  ['cluster', `${NODES} agents x ${GPUS_PER_NODE} GPUs = ${NODES * GPUS_PER_NODE} GPUs, heartbeat ${HEARTBEAT_MS} ms${values['no-agent-waits'] ? ', no waits for work' : ', waits for work'}`],
  ['steady state', `${steadyCounts['pending'] ?? 0} pending, ${steadyCounts['running'] ?? 0} running, ${Math.round(usedGpus)} GPUs used`],
];
for (const [name, c] of Object.entries(report.cycleSeconds)) {
  const x = c as { n: number; p50: number; p99: number; max: number; snapshotP50: number; planP50: number; planMax: number; applyP50: number; slowest: Record<string, number> | null };
  const slowest = x.slowest ? `; slowest: ${Object.entries(x.slowest).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
  rows.push([`cycle s (${name})`, `n=${x.n} p50=${x.p50} p99=${x.p99} max=${x.max} (snapshot p50 ${x.snapshotP50}, plan p50 ${x.planP50} max ${x.planMax}, apply p50 ${x.applyP50}${slowest})`]);
}
for (const [name, x] of Object.entries(report.readMs)) {
  const inServer = report.readMsInServer[name];
  rows.push([`read ms ${name}`, `n=${x.n} p50=${x.p50} p99=${x.p99} max=${x.max} errors=${x.errors}${inServer ? `; in the server: p99 ≤ ${inServer.p99AtMostMs ?? '-'} ms, ${inServer.over} of ${inServer.n} over 100 ms` : ''}`]);
}
for (const [name, x] of Object.entries(report.heartbeatMs)) if (typeof x === 'object' && x) rows.push([`heartbeat ms (${name})`, `n=${x.n} p50=${x.p50} p99=${x.p99} max=${x.max} errors=${x.errors}`]);
for (const [name, x] of Object.entries(report.fenceGapMs)) {
  rows.push([`fence gap ms (${name})`, `n=${x.n} p50=${x.p50} p99=${x.p99} max=${x.max}; half the lease or more (a real agent fences): ${x.pastHalfLease} (the agents' own process delayed p99 ${r3(x.agentsLoopDelayMs.p99)} max ${r3(x.agentsLoopDelayMs.max)})`]);
}
const renewed = report.leaseRenewals;
rows.push(['fresh connections (arrays)', `ms p50=${report.freshConnectionMs.p50} p99=${report.freshConnectionMs.p99} max=${report.freshConnectionMs.max} (n=${report.freshConnectionMs.n}, one at a time to /healthz)`]);
rows.push(['lease renewals', `${renewed.answered} answered (ms p50=${renewed.ms.p50} p99=${renewed.ms.p99} max=${renewed.ms.max}), ${renewed.errors} failed`]);
for (const [name, x] of Object.entries(sqlPhases)) if (x.nodeView) rows.push([`heartbeats' node view (${name})`, `${x.nodeView.reads} reads for ${x.nodeView.answers} quiet heartbeats; ${x.nodeView.waited} waited for one, ${x.nodeView.avgWaitMs} ms on average`]);
for (const [name, x] of Object.entries(sqlPhases)) if (x.nodeList) rows.push([`node list (${name})`, `${x.nodeList.kept} answered as kept, ${x.nodeList.used} kept with the tasks' use brought up to date, ${x.nodeList.read} read first; ${x.nodeList.background} read in the background`]);
for (const [name, x] of Object.entries(sqlPhases)) if (x.sentPerCycle) rows.push([`to the thread (${name})`, `per cycle: ${x.sentPerCycle.jobs} jobs, ${x.sentPerCycle.tasks} active tasks, ${x.sentPerCycle.nodes} nodes`]);
for (const [name, x] of Object.entries(sqlPhases)) rows.push([`request thread delay (${name})`, `ms p50=${x.loopDelayMs.p50} p99=${x.loopDelayMs.p99} max=${x.loopDelayMs.max}`]);
for (const [name, x] of Object.entries(sqlPhases)) rows.push([`garbage collection (${name})`, `${x.gc.ms} ms in ${x.gc.pauses} pauses, longest ${x.gc.maxMs} ms, ${x.gc.majors} major`]);
for (const [name, x] of Object.entries(sqlPhases)) {
  const m = x.machine;
  // The server's process is this one (its CPU includes this script's, a small part); "others": the kernel's own work and every process not named.
  if (m) rows.push([`machine (${name})`, `busy ${m.busySeconds.toFixed(1)} s of ${(m.busySeconds + m.idleSeconds).toFixed(1)} (${Math.round((100 * m.busySeconds) / Math.max(1e-9, m.busySeconds + m.idleSeconds))} % of ${m.cores} cores; I/O wait ${m.ioWaitSeconds.toFixed(1)} s; some task waited for a core ${m.cpuStallSeconds.toFixed(1)} s, for a disk ${m.ioStallSeconds.toFixed(1)} s): server ${x.cpuSeconds.toFixed(1)}, database ${m.databaseSeconds.toFixed(1)}, agents ${m.agentsSeconds.toFixed(1)}, submitters and readers ${m.childrenSeconds.toFixed(1)}, others ${Math.max(0, m.busySeconds - x.cpuSeconds - m.databaseSeconds - m.agentsSeconds - m.childrenSeconds).toFixed(1)}`]);
}
for (const [name, x] of Object.entries(sqlPhases)) rows.push([`server (${name})`, `${x.seconds.toFixed(1)} s: CPU ${x.cpuSeconds.toFixed(1)} s (kernel ${x.systemCpuSeconds.toFixed(1)} s; request thread ${x.mainCpuSeconds?.toFixed(1) ?? '?'} s); SQL ${x.transactions} transactions, ${x.statements} statements, ${x.rows} rows`]);
if (report.sqlPerHeartbeat !== null) rows.push(['per heartbeat (steady)', `${report.sqlPerHeartbeat} statements, ${report.cpuMsPerHeartbeat} ms server CPU, ${report.mainCpuMsPerHeartbeat ?? '?'} ms on the request thread (cycles and reads included)`]);
if (report.cpuMsPerSubmission !== null) rows.push(['per submission', `${report.cpuMsPerSubmission} ms server CPU`]);
if (report.cpuMsPerArrayTask !== null) rows.push(['per array task', `${report.cpuMsPerArrayTask} ms server CPU`]);
rows.push(['submissions/s', `${report.submissions.perSecond} (${SUBMISSIONS} jobs, ${CONCURRENCY} connections)`]);
rows.push(['array tasks/s', `${report.arrays.tasksPerSecond} (${done}/${arrayTotal} in ${r3(arraySeconds)} s, seen done by a poll at ${r3(polledSeconds)} s; POSTs took ${r3(arraySubmitSeconds)} s; agents woken ${report.arrays.agentsWoken} times)`]);
const w = Math.max(...rows.map((r) => r[0].length));
console.log(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n'));
console.log(`array tasks run more than once (requeued): ${rerun}; nodes written off: ${JSON.stringify(lostNodes)}`);
// Where the array phase's time went: each cycle (start, length, tasks bound) and tasks done by each poll.
const arrayCycles = cycles.filter((c) => c.phase === 'arrays').map((c) => `${r1((c.endedAt - c.seconds * 1000 - arrayStart) / 1000)}+${r1(c.seconds)}s:${c.binds}`);
console.log(`arrays timeline: POSTs done at ${r1(arraySubmitSeconds)} s; cycles (start+length: binds) ${arrayCycles.join(' ')}; done ${doneAt.map(([t, n]) => `${r1(t)}s:${n}`).join(' ')}`);
for (const phase of ['steady', 'arrays']) for (const t of sqlPhases[phase]?.top.slice(0, 8) ?? []) console.log(`  ${phase} sql: ${t.statements} x (${t.rows} rows, ${t.ms} ms) ${t.sql}`);
if (report.heartbeatMs.lastError) console.log(`last heartbeat error: ${report.heartbeatMs.lastError}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
