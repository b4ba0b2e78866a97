/**
 * Many simulated node agents in one process, for bench/server.ts: each registers over HTTP with
 * the bootstrap token (getting its own node token), then heartbeats every `heartbeatMs` (phases
 * spread over the interval) with telemetry for its GPUs and reports for its tasks, as a real
 * agent would, a task's end included: reported by an early heartbeat, no sooner than
 * EARLY_REPORT_GAP_MS after the last began (agent/agent.ts), and a wait for new work held between
 * heartbeats (POST /v1/agent/wait: a bind wakes it, and the agent heartbeats at once, as
 * agent.ts does; `waits: false` in the start message leaves it out), and the lease renewed alone
 * while a heartbeat is out (POST /v1/agent/lease, as agent.ts renews it: every RENEW_AFTER_MS or
 * eighth of the lease, over a connection of the agent's own kept open by a renewal at least every
 * RENEW_AT_LEAST_EVERY_MS). Each agent keeps the time its fence counts from (the send time of its last
 * answered heartbeat or renewal) and reports the gaps a real agent's fence would have seen. A task
 * "runs" for `SIM_SECONDS`
 * from its env (absent: until told to stop), so no process is started. Driven by IPC from the
 * parent:
 *   → {type: 'start', url, agentToken, heartbeatMs, waits?, nodes: [{id, model, gpus, cpuMilli, memoryMib}]}
 *   ← {type: 'ready'}   once every node is registered
 *   → {type: 'stats'}   ← {type: 'stats', heartbeats, errors, latency: number[] (ms, since last stats), waits (woken so far),
 *                          gaps: number[] (ms from the send time of one confirmation to the answer of the next, since last stats),
 *                          renewals (answered so far), renewLatency: number[] (ms, since last stats), renewalErrors, pastHalfLease (gaps of half the lease or more since last stats: a real agent fences)}
 *   → {type: 'stop'}    stops heartbeating and exits
 */
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EARLY_REPORT_GAP_MS, RENEW_AFTER_MS, RENEW_AT_LEAST_EVERY_MS, WAIT_FOR_WORK_MS } from '../src/agent/agent.ts';
import type { TaskAssignment, TaskReport } from '../src/api/types.ts';

interface NodePlan {
  readonly id: string;
  readonly model: string;
  readonly gpus: number;
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

interface StartMessage {
  readonly type: 'start';
  readonly url: string;
  readonly agentToken: string;
  readonly heartbeatMs: number;
  /** Hold a wait for new work between heartbeats (default true). */
  readonly waits?: boolean;
  readonly nodes: readonly NodePlan[];
}

/** A task as the simulated agent holds it: started at `startedAt`, ends at `endAt` (or never). */
interface SimTask {
  readonly runId: string;
  readonly startedAt: number;
  readonly endAt: number;
  readonly pid: number;
  stopped: boolean;
}

// A connection per agent, kept between heartbeats, as on a real cluster. A shared pool of 32 had
// the heartbeats queue here, in this process, 1,218 behind 32, and counted that wait as the
// server's (a 100,000-task burst: p50 4 s, p99 12 s, while the server's request thread was held
// 3.5 s at most); it also kept the server from ever seeing more than 32 heartbeats at once. With
// Node's default of 256 idle sockets kept, the other agents would connect anew each time.
const http = new Agent({ keepAlive: true, maxFreeSockets: Infinity });
/** The waits hold a connection each (one per node), apart from the heartbeats'. */
const held = new Agent({ keepAlive: true, maxFreeSockets: Infinity });
let waits = 0;
let nextPid = 1000;
let heartbeats = 0;
let errors = 0;
let lastError = '';
let latency: number[] = [];
let gaps: number[] = [];
let renewals = 0;
let renewLatency: number[] = [];
/** This process's own event-loop delay: its agents' latencies include it (on a small machine it shares the cores with the server). */
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
let renewalErrors = 0;
let pastHalfLease = 0;
let stopped = false;
const agents: SimAgent[] = [];

function post(url: URL, token: string, body: unknown, pool = http): Promise<{ status: number; json: unknown }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: pool, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode ?? 0, json: raw ? JSON.parse(raw) : null });
        } catch {
          resolve({ status: res.statusCode ?? 0, json: raw });
        }
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

class SimAgent {
  private token = '';
  private readonly tasks = new Map<string, SimTask>();
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private lastBeatAt = 0;
  /** The node's wake counter from the last answer (agent/agent.ts); a wake during a beat sends another after it. */
  private wakeSeq: number | null = null;
  private beatAgain = false;
  /** The server's node lease (from its answers), and when the last answered heartbeat or renewal was sent (the fence counts from it). */
  private leaseMs: number | null = null;
  private confirmedAt: number | null = null;
  /** The renewal under way (one at a time: callers share it). */
  private renewing: Promise<void> | null = null;
  private lastRenewAt = 0;
  /** When the heartbeat under way was sent (null: none out), and the renewal planned to cover it. */
  private beatOutSince: number | null = null;
  private renewTimer: NodeJS.Timeout | undefined;
  /** The renewals' own connection (agent/serverLink.ts, lane `lease`). */
  private readonly leaseConnection = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    private readonly base: string,
    private readonly plan: NodePlan,
    private readonly heartbeatMs: number,
  ) {}

  /** The next heartbeat in `ms` (replacing the one planned). */
  schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!stopped) this.timer = setTimeout(() => void this.beat(), ms);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.leaseConnection.destroy();
  }

  /** Holds a wait for new work (as agent.ts does); a wake sends a heartbeat as soon as the gap allows. */
  async waitForWork(): Promise<void> {
    while (!stopped) {
      const after = this.wakeSeq;
      try {
        if (after === null) throw new Error('no counter yet');
        const r = await post(new URL('/v1/agent/wait', this.base), this.token, { node: this.plan.id, after, timeoutMs: WAIT_FOR_WORK_MS }, held);
        const a = r.json as { seq?: unknown; woke?: unknown } | null;
        if (r.status !== 200 || typeof a?.seq !== 'number') throw new Error(`wait ${this.plan.id}: ${r.status}`);
        this.wakeSeq = a.seq;
        if (a.woke !== true) continue;
        waits++;
        if (this.busy) this.beatAgain = true;
        else this.schedule(Math.max(0, this.lastBeatAt + EARLY_REPORT_GAP_MS - Date.now()));
      } catch {
        await new Promise((ok) => setTimeout(ok, this.heartbeatMs));
      }
    }
  }

  /** After a heartbeat: the next regular one, or an early one for a task that ends before it (or a wake heard during it). */
  private scheduleNext(): void {
    const now = Date.now();
    let end = this.beatAgain ? now : Infinity;
    this.beatAgain = false;
    for (const t of this.tasks.values()) end = Math.min(end, t.stopped ? now : t.endAt);
    const regular = this.lastBeatAt + this.heartbeatMs;
    const early = Math.max(end, this.lastBeatAt + EARLY_REPORT_GAP_MS);
    this.schedule(Math.max(0, Math.min(regular, early) - now));
  }

  async register(agentToken: string): Promise<void> {
    const body = {
      id: this.plan.id,
      address: 'http://127.0.0.1:1',
      cpuMilli: this.plan.cpuMilli,
      memoryMib: this.plan.memoryMib,
      gpus: Array.from({ length: this.plan.gpus }, (_, i) => ({ index: i, model: this.plan.model, memoryMib: 81_920, uuid: `GPU-${this.plan.id}-${i}` })),
      simulated: true,
    };
    const r = await post(new URL('/v1/agent/register', this.base), agentToken, body);
    const token = (r.json as { nodeToken?: string } | null)?.nodeToken;
    if (r.status !== 200 || !token) throw new Error(`register ${this.plan.id}: ${r.status} ${JSON.stringify(r.json)}`);
    this.token = token;
    this.confirm(Date.now(), r.json);
  }

  /** An answer to a request sent at `sentAt` confirmed the node alive: the gap since the last confirmation is what a fence would have seen. */
  private confirm(sentAt: number, answer: unknown): void {
    const lease = (answer as { nodeLeaseMs?: unknown } | null)?.nodeLeaseMs;
    if (typeof lease === 'number') this.leaseMs = lease;
    const now = Date.now();
    if (this.confirmedAt !== null) {
      const gap = now - this.confirmedAt;
      gaps.push(gap);
      if (this.leaseMs !== null && gap >= this.leaseMs / 2) pastHalfLease++;
    }
    this.confirmedAt = Math.max(this.confirmedAt ?? sentAt, sentAt);
  }

  /**
   * While the heartbeat sent at `sentAt` is out, renews every RENEW_AFTER_MS (or eighth of the
   * lease) counted from the later of it and the last renewal sent, as agent.ts does: a renewal
   * that took long is followed by the next at once.
   */
  private coverBeat(sentAt: number): void {
    this.beatOutSince = sentAt;
    const plan = (): void => {
      const out = this.beatOutSince;
      if (out === null || stopped) return;
      const due = Math.max(out, this.lastRenewAt) + Math.min(RENEW_AFTER_MS, (this.leaseMs ?? 8 * RENEW_AFTER_MS) / 8);
      this.renewTimer = setTimeout(() => {
        if (this.beatOutSince !== null) void this.renew().then(plan);
      }, Math.max(0, due - Date.now()));
    };
    plan();
  }

  /** Renews the lease alone (agent.ts renewLeaseIfDue): while a heartbeat is out, and at least every RENEW_AT_LEAST_EVERY_MS; one at a time. */
  renew(): Promise<void> {
    if (stopped) return Promise.resolve();
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    const sentAt = Date.now();
    this.lastRenewAt = sentAt;
    try {
      const r = await post(new URL('/v1/agent/lease', this.base), this.token, { node: this.plan.id }, this.leaseConnection);
      if (r.status !== 200) throw new Error(`lease ${this.plan.id}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      renewals++;
      renewLatency.push(Date.now() - sentAt);
      this.confirm(sentAt, r.json);
    } catch (e) {
      renewalErrors++;
      lastError = (e as Error).message;
    }
  }

  /** One heartbeat: reports out, desired tasks in (skipped while the previous one is still out). */
  async beat(): Promise<void> {
    if (this.busy || stopped) return;
    this.busy = true;
    const now = Date.now();
    this.lastBeatAt = now;
    if (now - this.lastRenewAt >= RENEW_AT_LEAST_EVERY_MS) void this.renew();
    const reports: TaskReport[] = [];
    for (const t of this.tasks.values()) {
      if (t.stopped || now >= t.endAt) reports.push({ runId: t.runId, state: 'exited', pid: t.pid, exitCode: t.stopped ? 143 : 0, startedAt: t.startedAt });
      else reports.push({ runId: t.runId, state: 'running', pid: t.pid, exitCode: null, startedAt: t.startedAt });
    }
    const busyGpus = new Set<number>();
    for (const t of this.tasks.values()) if (!t.stopped) busyGpus.add(t.pid % this.plan.gpus);
    const telemetry = Array.from({ length: this.plan.gpus }, (_, i) => ({
      index: i,
      utilization: busyGpus.has(i) ? 85 + ((now / 1000 + i) % 10) : 0,
      memoryUsedMib: busyGpus.has(i) ? 60_000 : 0,
      powerWatts: busyGpus.has(i) ? 550 : 70,
    }));
    const t0 = performance.now();
    this.coverBeat(now);
    try {
      const r = await post(new URL('/v1/agent/heartbeat', this.base), this.token, { node: this.plan.id, telemetry, reports });
      this.beatOutSince = null;
      latency.push(performance.now() - t0);
      heartbeats++;
      if (r.status !== 200) throw new Error(`heartbeat ${this.plan.id}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      this.confirm(now, r.json);
      const wakeSeq = (r.json as { wakeSeq?: unknown }).wakeSeq;
      this.wakeSeq = typeof wakeSeq === 'number' ? wakeSeq : null;
      // Exited runs were reported: forget them; then take the desired state.
      for (const rep of reports) if (rep.state === 'exited') this.tasks.delete(rep.runId);
      const desired = (r.json as { tasks: TaskAssignment[] }).tasks;
      const at = Date.now();
      // A run the server no longer names (written off: the node was lost) is stopped, as a real
      // agent stops it; until it is, the server keeps the node lost.
      const named = new Set(desired.map((a) => a.runId));
      for (const t of this.tasks.values()) if (!named.has(t.runId)) t.stopped = true;
      for (const a of desired) {
        const have = this.tasks.get(a.runId);
        if (a.action === 'stop') {
          if (have) have.stopped = true;
          continue;
        }
        if (have || reports.some((rep) => rep.runId === a.runId && rep.state === 'exited')) continue;
        const seconds = Number(a.env['SIM_SECONDS'] ?? 'Infinity');
        this.tasks.set(a.runId, { runId: a.runId, startedAt: at, endAt: at + seconds * 1000, pid: nextPid++, stopped: false });
      }
    } catch (e) {
      errors++;
      lastError = (e as Error).message;
    } finally {
      this.beatOutSince = null;
      clearTimeout(this.renewTimer);
      this.busy = false;
      this.scheduleNext();
    }
  }
}

async function start(m: StartMessage): Promise<void> {
  agents.push(...m.nodes.map((n) => new SimAgent(m.url, n, m.heartbeatMs)));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < agents.length) await (agents[next++] as SimAgent).register(m.agentToken);
    }),
  );
  // Each agent's renewal connection opened (as a running agent's is), 16 at a time.
  next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < agents.length) await (agents[next++] as SimAgent).renew();
    }),
  );
  // Phases spread evenly over the interval, as independent agents' would be.
  agents.forEach((a, i) => a.schedule(Math.floor((i * m.heartbeatMs) / agents.length)));
  if (m.waits !== false) for (const a of agents) void a.waitForWork();
  process.send?.({ type: 'ready' });
}

// The bench process ended (or died): stop, rather than heartbeat into nothing.
process.on('disconnect', () => process.exit(0));

process.on('message', (m: { type: string }) => {
  if (m.type === 'start') {
    start(m as StartMessage).catch((e: unknown) => {
      process.send?.({ type: 'error', message: (e as Error).message });
      process.exit(1);
    });
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', heartbeats, errors, lastError, latency, waits, gaps, renewals, renewLatency, renewalErrors, pastHalfLease, loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 } });
    loopDelay.reset();
    pastHalfLease = 0;
    latency = [];
    gaps = [];
    renewLatency = [];
  } else if (m.type === 'stop') {
    stopped = true;
    for (const a of agents) a.stop();
    http.destroy();
    held.destroy();
    process.disconnect?.();
  }
});
