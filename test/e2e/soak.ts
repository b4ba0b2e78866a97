/**
 * The fault soak, shared by `npm run soak` (minutes) and the e2e test (seconds): a real
 * `tide server` and agents (each behind its own TcpProxy), on SQLite or on a throwaway
 * PostgreSQL, run a load of jobs (single, fractional, gang, long, checkpointing) while random
 * faults hit them: kill -9 of the server, of an agent, of a task's process, a PostgreSQL restart
 * (immediate), and an agent partitioned from the server for longer than its node lease.
 *
 * Checked while it runs and at the end, from the tasks' own ledger (ledger.ts) and the API:
 * - no accepted job lost: every idempotency key names exactly one job (and no job lacks a key);
 * - no job running twice at once, no GPU used beyond its capacity (ledger spans that overlap);
 * - every job ends within `settleMs` after the faults stop; failed and cancelled ones say why;
 * - attempts: job.attempt equals its `job:requeued` events; no run on the ledger has a later
 *   attempt than the job, or two runs of one task and attempt; a succeeded job's last attempt
 *   ran every task to exit 0 on the ledger (an attempt may have no run at all: stopped before
 *   its tasks started);
 * - no server or agent exits on its own (`crash`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, freePort, sleep, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';
import { checkpointWork, Ledger, ledgerCommand, ledgerViolations, type LedgerRun, type Violation } from './ledger.ts';
import { TcpProxy } from './tcpProxy.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from './throwawayPostgres.ts';

export const FAULT_KINDS = ['server-kill', 'agent-kill', 'task-kill', 'pg-restart', 'partition'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export const VIOLATION_KINDS = ['lost-or-duplicate-job', 'double-run', 'gpu-shared', 'not-ended', 'no-reason', 'attempts', 'crash', 'rejected'] as const;

export interface SoakOptions {
  /** How long faults are injected (jobs are submitted meanwhile). */
  readonly durationMs: number;
  readonly seed: number;
  readonly database: 'sqlite' | 'postgres';
  readonly agents?: number;
  readonly gpusPerAgent?: number;
  readonly nodeLeaseMs?: number;
  /** How much longer than the node lease a partition lasts: uniform in [min, max] ms. */
  readonly partitionExtraMs?: readonly [number, number];
  /** Time between faults: uniform in [min, max] ms. */
  readonly faultGapMs?: readonly [number, number];
  readonly kinds?: readonly FaultKind[];
  /** These faults once, in this order (within `durationMs`), instead of random ones: a short run hits each. */
  readonly schedule?: readonly FaultKind[];
  /** Scales how long jobs run (1: 0.2 s to 15 s; a short run takes less). */
  readonly jobScale?: number;
  /** Jobs kept pending or running at once. */
  readonly concurrency?: number;
  /** Bound on the time every job takes to end once the faults stop. */
  readonly settleMs?: number;
  /** Keep the data directory (servers', agents' and tasks' files) even when all was well. */
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

export interface SoakReport {
  database: string;
  seed: number;
  seconds: number;
  rounds: number;
  /** `rerunAfterSuccess`: jobs run again after an attempt had succeeded unseen (partitioned): done twice, not at once. */
  jobs: { submitted: number; succeeded: number; failed: number; cancelled: number; unfinished: number; requeued: number; rerunAfterSuccess: number };
  runs: number;
  /** The longest an agent kill left its node silent, and how many kills outlasted the node lease. */
  agentDown: { maxMs: number; beyondLease: number };
  faults: Record<string, number>;
  violations: Record<string, number>;
  details: string[];
  /** Kept when something was wrong: the servers', agents' and tasks' files. */
  dataDir: string | null;
}

/** A small seeded generator (reproducible fault and job sequences). */
class Draw {
  private s: number;
  constructor(seed: number) {
    this.s = (seed * 2654435761) >>> 0 || 1;
  }
  next(): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s / 2 ** 32;
  }
  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timeout']);

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  // Two streams, so that the faults drawn do not depend on how many jobs were submitted meanwhile.
  const jobDraw = new Draw(o.seed);
  const draw = new Draw(o.seed + 7919);
  const nodeLeaseMs = o.nodeLeaseMs ?? 5000;
  const [gapLo, gapHi] = o.faultGapMs ?? [2000, 5000];
  const kinds = (o.kinds ?? FAULT_KINDS).filter((k) => k !== 'pg-restart' || o.database === 'postgres');
  const t0 = Date.now();
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

  const dir = tempDir('soak');
  const ledgerFile = join(dir, 'ledger.txt');
  writeFileSync(ledgerFile, '');
  const ledger = new Ledger(ledgerFile);
  const config = writeConfig(dir);
  const violations = new Map<string, Violation>();
  const violate = (v: Violation): void => {
    if (violations.has(v.key)) return;
    violations.set(v.key, v);
    log(`[${elapsed()}] VIOLATION ${v.kind}: ${v.message}`);
  };
  const faults: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));

  let pg: ThrowawayPostgres | null = null;
  let server: ServerHandle | null = null;
  const agents: { name: string; proc: Proc; proxy: TcpProxy }[] = [];
  const expectedDown = new Set<string>(); // processes we are killing or restarting now
  const keys: { key: string; spec: unknown; id: string | null }[] = [];
  let stopSubmitting = false;
  let finished = false;
  let rounds = 0;
  const agentDown = { maxMs: 0, beyondLease: 0 };

  const port = await freePort();
  const startServer = async (): Promise<ServerHandle> =>
    startServerProcess({ port, config, nodeLeaseMs, ...(pg ? { databaseUrl: pg.url } : { dataDir: join(dir, 'server') }) });
  const startAgent = (i: number, proxy: TcpProxy): Proc =>
    startAgentProcess({ servers: [proxy.url], name: `soak-${i}`, gpus: `${o.gpusPerAgent ?? 4}xH100`, dataDir: join(dir, `agent-${i}`), checkpointRoot: join(dir, 'ckpt') });

  /** One job of the mix; its command writes the ledger. */
  const spec = (n: number): unknown => {
    const x = jobDraw.next();
    const task = (gpus: number, work: string, replicas = 1, checkpointing = false) => ({
      replicas, gpus, cpu: 1, memory: '1Gi', command: ledgerCommand(ledgerFile, Math.round(Math.min(gpus, 1) * 1000), work, checkpointing),
    });
    const scale = o.jobScale ?? 1;
    const sleepFor = (lo: number, hi: number): string => `sleep ${(jobDraw.between(lo, hi) * scale).toFixed(1)}`;
    if (x < 0.3) return { name: `short-${n}`, tasks: [task(1, sleepFor(0.2, 1))] };
    if (x < 0.45) return { name: `fraction-${n}`, kind: 'inference', tasks: [task(jobDraw.pick([0.25, 0.5]), sleepFor(0.5, 3))] };
    // Long ones outlast a node lease: a partition then finds them running.
    if (x < 0.6) return { name: `long-${n}`, tasks: [task(jobDraw.pick([1, 2]), sleepFor(4, 15))] };
    if (x < 0.75) return { name: `gang-${n}`, tasks: [task(jobDraw.pick([1, 2]), sleepFor(1, 4), 2)] };
    return { name: `ckpt-${n}`, checkpoint: true, gracePeriodSeconds: 5, tasks: [task(1, checkpointWork(Math.max(1, Math.round(jobDraw.between(8, 30) * scale))), jobDraw.pick([1, 1, 2]), true)] };
  };

  const api = (): Api => new Api(server?.url ?? `http://127.0.0.1:${port}`);
  let active = 0;

  const submitter = async (): Promise<void> => {
    while (!stopSubmitting) {
      if (active >= (o.concurrency ?? 10)) {
        await sleep(200);
        continue;
      }
      const entry = { key: `soak-${o.seed}-${keys.length}`, spec: spec(keys.length), id: null as string | null };
      keys.push(entry);
      active++;
      // Retried with the same key and body until the server answers (it may be down or restarting).
      for (;;) {
        try {
          const r = await api().req('POST', '/v1/jobs', entry.spec, { 'idempotency-key': entry.key });
          if (r.status === 200 || r.status === 201) {
            entry.id = r.json.jobs[0].id as string;
            break;
          }
          if (r.status < 500 && r.status !== 429) {
            violate({ kind: 'rejected', key: `rejected ${entry.key}`, message: `submission ${entry.key} refused: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}` });
            break;
          }
        } catch {
          // unreachable: retry
        }
        if (finished) return;
        await sleep(300);
      }
    }
  };

  /** Continuous checks: the ledger, the processes, the number of active jobs, progress. */
  const watcher = async (): Promise<void> => {
    let lastCheck = 0;
    let lastProgress = 0;
    while (!finished) {
      ledger.read();
      ledger.probe();
      const now = Date.now();
      if (now - lastCheck >= 1000) {
        lastCheck = now;
        for (const v of ledgerViolations(ledger.runs.values())) violate(v);
        if (server && !server.proc.alive && !expectedDown.has('server')) {
          violate({ kind: 'crash', key: `crash server ${now}`, message: `the server exited on its own: ${server.proc.output.slice(-400)}` });
          expectedDown.add('server');
          server = await startServer().finally(() => expectedDown.delete('server'));
        }
        for (const [i, a] of agents.entries()) {
          if (!a.proc.alive && !expectedDown.has(a.name)) {
            violate({ kind: 'crash', key: `crash ${a.name} ${now}`, message: `agent ${a.name} exited on its own: ${a.proc.output.slice(-400)}` });
            a.proc = startAgent(i, a.proxy);
          }
        }
        try {
          const r = await api().req('GET', '/v1/jobs?state=pending,admitted,running,preempted&limit=1000');
          if (r.status === 200) active = (r.json.jobs as unknown[]).length + keys.filter((k) => k.id === null).length;
        } catch {
          // the server is down: keep the last count
        }
      }
      if (now - lastProgress >= 5000) {
        lastProgress = now;
        const injected = Object.values(faults).reduce((a, b) => a + b, 0);
        log(`[${elapsed()}] jobs ${keys.length} submitted, ${active} active | runs ${ledger.runs.size} (${ledger.open().length} live) | faults ${injected} | violations ${violations.size}`);
      }
      await sleep(100);
    }
  };

  const inject = async (kind: FaultKind): Promise<boolean> => {
    switch (kind) {
      case 'server-kill': {
        if (!server) return false;
        expectedDown.add('server');
        await server.proc.kill9();
        await sleep(draw.between(200, 2000));
        server = await startServer();
        expectedDown.delete('server');
        return true;
      }
      case 'agent-kill': {
        // Down for well under the node lease (its start included): its tasks are adopted, not lost.
        const i = Math.floor(draw.next() * agents.length);
        const a = agents[i] as (typeof agents)[number];
        log(`[${elapsed()}]   ${a.name}`);
        expectedDown.add(a.name);
        const killedAt = Date.now();
        await a.proc.kill9();
        await sleep(draw.between(100, 800));
        a.proc = startAgent(i, a.proxy);
        expectedDown.delete(a.name);
        // How long the node was silent: past the lease, its tasks run on (no agent to fence them)
        // while the server requeues their jobs.
        const proc = a.proc;
        const back = await waitFor(`${a.name} registered`, async () => (proc.output.includes('registered with') ? Date.now() : undefined), 60_000).catch(() => Date.now());
        const downMs = back - killedAt;
        agentDown.maxMs = Math.max(agentDown.maxMs, downMs);
        if (downMs >= nodeLeaseMs) agentDown.beyondLease++;
        log(`[${elapsed()}]   ${a.name} back after ${(downMs / 1000).toFixed(1)} s${downMs >= nodeLeaseMs ? ', longer than the node lease' : ''}`);
        return true;
      }
      case 'task-kill': {
        ledger.read();
        ledger.probe();
        const live = ledger.open();
        if (live.length === 0) return false;
        const run = draw.pick(live);
        log(`[${elapsed()}]   run ${run.runId} of job ${run.jobId} on ${run.node} (pid ${run.pid})`);
        try {
          process.kill(run.pid, 'SIGKILL');
        } catch {
          return false;
        }
        return true;
      }
      case 'pg-restart': {
        if (!pg) return false;
        await pg.restart();
        return true;
      }
      case 'partition': {
        const a = draw.pick(agents);
        const mode = draw.next() < 0.5 ? 'blackhole' : 'reset';
        const holdMs = nodeLeaseMs + draw.between(...(o.partitionExtraMs ?? [2000, 8000]));
        log(`[${elapsed()}]   ${a.name} cut off (${mode}) for ${(holdMs / 1000).toFixed(1)} s; node lease ${nodeLeaseMs / 1000} s`);
        a.proxy.cut(mode);
        await sleep(holdMs);
        a.proxy.heal();
        return true;
      }
    }
  };

  let watching: Promise<void> = Promise.resolve();
  let submitting: Promise<void> = Promise.resolve();
  try {
    if (o.database === 'postgres') pg = await startThrowawayPostgres();
    server = await startServer();
    for (let i = 0; i < (o.agents ?? 3); i++) {
      const proxy = new TcpProxy(port);
      await proxy.listen();
      agents.push({ name: `soak-${i}`, proc: startAgent(i, proxy), proxy });
    }
    await waitFor('agents registered', async () => ((await api().req('GET', '/v1/nodes')).json.nodes?.filter((n: any) => n.state === 'ready').length === agents.length ? true : undefined), 60_000);
    log(`[${elapsed()}] ${o.database}: server on ${port}, ${agents.length} agents × ${o.gpusPerAgent ?? 4} GPUs, node lease ${nodeLeaseMs} ms; faults: ${kinds.join(', ')}`);
    watching = watcher();
    submitting = submitter();

    const faultsEnd = Date.now() + o.durationMs;
    while (Date.now() < faultsEnd && (!o.schedule || rounds < o.schedule.length)) {
      await sleep(draw.between(gapLo, gapHi));
      if (Date.now() >= faultsEnd) break;
      const kind = o.schedule ? (o.schedule[rounds] as FaultKind) : draw.pick(kinds);
      log(`[${elapsed()}] fault ${rounds + 1}: ${kind}`);
      if (await inject(kind)) {
        faults[kind] = (faults[kind] ?? 0) + 1;
        rounds++;
      } else log(`[${elapsed()}]   (nothing to hit)`);
    }

    // The faults stop: every job must now end within the bound.
    stopSubmitting = true;
    for (const a of agents) a.proxy.heal();
    const settleBy = Date.now() + (o.settleMs ?? 60_000);
    log(`[${elapsed()}] faults stopped; waiting up to ${((o.settleMs ?? 60_000) / 1000).toFixed(0)} s for every job to end`);
    while (keys.some((k) => k.id === null) && Date.now() < settleBy && !violations.has(`rejected ${keys.find((k) => k.id === null)?.key}`)) await sleep(200);
    let jobs: any[] = [];
    for (;;) {
      try {
        jobs = await api().allJobs();
        if (jobs.every((j) => TERMINAL.has(j.state))) break;
      } catch {
        // keep trying until the bound
      }
      if (Date.now() > settleBy) break;
      await sleep(500);
    }
    finished = true;
    await Promise.all([watching, submitting]);
    await sleep(300);
    ledger.read();
    ledger.probe();
    for (const v of ledgerViolations(ledger.runs.values())) violate(v);

    // Final checks from the API.
    const byKey = new Map<string, any[]>();
    for (const j of jobs) byKey.set(j.clientKey ?? '', [...(byKey.get(j.clientKey ?? '') ?? []), j]);
    for (const k of keys) {
      const found = byKey.get(k.key) ?? [];
      if (k.id !== null && (found.length !== 1 || found[0].id !== k.id)) violate({ kind: 'lost-or-duplicate-job', key: `key ${k.key}`, message: `key ${k.key} (accepted as job ${k.id}) names ${found.length} jobs: ${found.map((j) => j.id).join(', ') || 'none'}` });
      if (k.id === null && found.length > 1) violate({ kind: 'lost-or-duplicate-job', key: `key ${k.key}`, message: `key ${k.key} names ${found.length} jobs` });
    }
    const known = new Set(keys.map((k) => k.key));
    for (const j of jobs) if (!known.has(j.clientKey)) violate({ kind: 'lost-or-duplicate-job', key: `job ${j.id}`, message: `job ${j.id} has no key of ours (${j.clientKey})` });
    const runsByJob = new Map<string, LedgerRun[]>();
    for (const r of ledger.runs.values()) runsByJob.set(r.jobId, [...(runsByJob.get(r.jobId) ?? []), r]);
    let rerunAfterSuccess = 0;
    for (const j of jobs) {
      if (!TERMINAL.has(j.state)) {
        const detail = await api().job(j.id).catch(() => ({ tasks: [], events: [] }));
        const tasks = detail.tasks.map((t: any) => `task ${t.index} ${t.runId} ${t.state} on ${t.node} exit ${t.exitCode}`).join(', ');
        const events = detail.events.slice(-3).map((e: any) => `${e.type} ${e.message}`).join('; ');
        violate({ kind: 'not-ended', key: `not-ended ${j.id}`, message: `job ${j.id} (${j.name}) still ${j.state} ${((o.settleMs ?? 60_000) / 1000).toFixed(0)} s after the faults stopped: ${j.reason ?? ''} [${tasks}] last events: ${events}` });
        continue;
      }
      if (j.state !== 'succeeded' && !j.reason) violate({ kind: 'no-reason', key: `no-reason ${j.id}`, message: `job ${j.id} ${j.state} without a reason` });
      const runs = runsByJob.get(j.id) ?? [];
      const { events } = await api().job(j.id);
      const requeues = events.filter((e: any) => e.type === 'job:requeued').length;
      const bad = (what: string): void => violate({ kind: 'attempts', key: `attempts ${j.id} ${what}`, message: `job ${j.id} (${j.name}, attempt ${j.attempt}, ${j.state}): ${what}` });
      if (requeues !== j.attempt) bad(`${requeues} job:requeued events`);
      for (const r of runs) if (r.attempt > j.attempt) bad(`run ${r.runId} on the ledger has attempt ${r.attempt}`);
      const seen = new Set<string>();
      for (const r of runs) {
        const slot = `${r.attempt}/${r.task}`;
        if (seen.has(slot)) bad(`task ${r.task} of attempt ${r.attempt} ran twice`);
        seen.add(slot);
      }
      if (runs.some((r) => r.rc === 0 && r.attempt < j.attempt)) rerunAfterSuccess++;
      if (j.state === 'succeeded') {
        for (let t = 0; t < j.tasks; t++) {
          if (!runs.some((r) => r.attempt === j.attempt && r.task === t && r.rc === 0)) bad(`succeeded, but the ledger has no clean end of task ${t} in attempt ${j.attempt}`);
        }
      }
    }
    const count = (s: string): number => jobs.filter((j) => j.state === s).length;
    const byKind: Record<string, number> = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0]));
    for (const v of violations.values()) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
    return {
      database: o.database,
      seed: o.seed,
      seconds: Math.round((Date.now() - t0) / 1000),
      rounds,
      jobs: { submitted: keys.length, succeeded: count('succeeded'), failed: count('failed'), cancelled: count('cancelled'), unfinished: jobs.filter((j) => !TERMINAL.has(j.state)).length, requeued: jobs.filter((j) => j.attempt > 0).length, rerunAfterSuccess },
      runs: ledger.runs.size,
      agentDown,
      faults,
      violations: byKind,
      details: [...violations.values()].map((v) => `${v.kind}: ${v.message}`),
      dataDir: violations.size > 0 || o.keep ? dir : null,
    };
  } finally {
    finished = true;
    stopSubmitting = true;
    await Promise.allSettled([watching, submitting]);
    for (const a of agents) {
      await a.proc.stop();
      await a.proxy.close();
      writeFileSync(join(dir, `${a.name}.log`), a.proc.output);
    }
    await server?.proc.stop();
    if (server) writeFileSync(join(dir, 'server.log'), server.proc.output);
    // Tasks outlive agents by design: end what the soak started (each run's process group).
    ledger.read();
    ledger.probe();
    for (const r of ledger.open()) killGroup(r.pid);
    pg?.stop();
    if (violations.size === 0 && !o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** SIGKILL to a task's process group (the agent's wrapper leads it), else to the process. */
function killGroup(pid: number): void {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    process.kill(pgid > 1 ? -pgid : pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
