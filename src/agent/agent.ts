/**
 * The node agent: registers its node, heartbeats telemetry and task reports to a server (any of
 * several, for HA), and reconciles its task processes with the desired set the server answers
 * with: start what is missing, stop what is to stop or unknown, forget what has been reported.
 * It also serves its tasks' log files to the server over HTTP, to the server's key for this node
 * alone (the log key the server answers its registration and heartbeats with: server/agentLink.ts).
 *
 * Where it listens and what it registers: `listenHost` (`--listen`) if given, else the local
 * address it reaches the server from (so on one machine, 127.0.0.1); it registers
 * `http://ADDRESS:PORT` with ADDRESS = `advertise` if given, else the listen host unless that is
 * a wildcard (0.0.0.0, ::), else the local address toward the server. A specific listen host is
 * also the address its requests to the server come from, since the server accepts a registered
 * address only if it equals the address the registration came from.
 *
 * No task blocks the node: a task that cannot start (see TaskRunner.start) is reported as exited
 * with reason 'start-failed' and a message, and the server fails its job with that reason; one
 * bad assignment never keeps the others from starting or the heartbeats from going out.
 *
 * Fencing (so that a job never runs twice at once): the server answers register and heartbeat
 * with its node lease (`nodeLeaseMs`: a node silent that long is lost and its jobs requeued).
 * When no heartbeat has completed for half the lease, counted from when the last successful one
 * was sent (a lease renewal counts: see renewLeaseIfDue), the agent stops every task it runs:
 * SIGTERM to each task's process group, SIGKILL after min(grace period, a quarter of the lease),
 * so all are dead by three quarters of the lease,
 * before the server can requeue them. It keeps trying to reach a server; when it does, it
 * reports those tasks as exited with reason 'fenced' and never restarts them (a requeued job
 * comes back as a new attempt, a new run id). The lease and the time of the last successful
 * heartbeat are kept in the data directory, so an agent restarted while the server is out of
 * reach fences the tasks it adopts too.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { cpus, hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { EnergyReport, GpuTelemetry, TaskAssignment } from '../api/types.ts';
import { UserError } from '../util/errors.ts';
import { isWildcard, urlHost } from '../util/listen.ts';
import { EnergyMeter } from './energyMeter.ts';
import { discoverNvidia, SIMULATED_WORK_WINDOW_MS, simulatedGpus, type GpuSample, type GpuSource } from './gpus.ts';
import { PowerCaps } from './powerCap.ts';
import { ServerLink, type Lane } from './serverLink.ts';
import { defaultTracker } from './procTrack.ts';
import { logFile, MAX_PROGRESS_BYTES, TaskRunner, validRunId, type Watchdog } from './taskRunner.ts';

export interface AgentOptions {
  readonly servers: readonly string[];
  readonly token: string;
  readonly nodeName?: string;
  /** "8xH100"-style simulated GPUs, used when nvidia-smi finds none (or always, with forceSimulated). */
  readonly gpus?: string;
  readonly forceSimulated?: boolean;
  readonly dataDir: string;
  readonly checkpointRoot?: string;
  readonly cpuMilli?: number;
  readonly memoryMib?: number;
  readonly heartbeatMs?: number;
  readonly port?: number;
  /** Where the log endpoint listens (an IP address; 0.0.0.0 or :: for every interface). */
  readonly listenHost?: string;
  /** The IP address to register instead of the one found (it must still be the one the server sees). */
  readonly advertise?: string;
  readonly log?: (line: string) => void;
  readonly nvidiaSmi?: string;
}

const MAX_LOG_CHUNK = 1024 * 1024;
/** How long a heartbeat waits for GPU telemetry (a hung nvidia-smi must not delay it). */
const TELEMETRY_WAIT_MS = 1000;
const FENCE_FILE = 'fence.json';
/**
 * A task's end is reported by a heartbeat sent at once (as slurmd reports a job's completion),
 * not at the next regular one, so its GPUs go to the next job up to a heartbeat sooner; at most
 * one such early heartbeat per this many ms after the last one began (a node whose short tasks
 * end one after another must not flood the server).
 */
export const EARLY_REPORT_GAP_MS = 200;
/**
 * How long the server holds the agent's wait for new work (POST /v1/agent/wait,
 * server/nodeWakeups.ts): a task bound to this node, or one stopped, is heard of at once instead
 * of at the next heartbeat; the wake sends a heartbeat (no sooner than EARLY_REPORT_GAP_MS after
 * the last began), which carries the desired tasks as always.
 */
export const WAIT_FOR_WORK_MS = 25_000;

/**
 * A heartbeat out this long (a busy server: in a burst, 1,250 heartbeats' reports wait for the
 * database one behind another, 13 s at worst) is covered by lease renewals, one at a time, this
 * often (or every eighth of the lease, if that is shorter), as Kubernetes' kubelet renews a small
 * Lease apart from its large node status.
 */
export const RENEW_AFTER_MS = 2000;

/**
 * A lease renewal at least this often, heartbeats out or not: it keeps the renewals' own
 * connection open (ServerLink's `lease` lane; the server closes a connection idle for 72 s), so
 * that a renewal during a burst need not wait for the busy server to accept a new one.
 */
export const RENEW_AT_LEAST_EVERY_MS = 60_000;
/** The energy meter's state (agent/energyMeter.ts): counters survive an agent restart. */
export const ENERGY_FILE = 'energy.json';
/**
 * The node's own credential ({node, token, pending}, mode 600). The agent makes the token and
 * keeps it here before it offers the token's SHA-256 in a registration with the shared bootstrap
 * (agent) token (pending: offered, not yet accepted), so a crash at any point cannot lose a
 * credential the server has recorded; once accepted it sends this token instead of the bootstrap
 * token (docs/security.md, "Tokens and identities").
 */
export const NODE_TOKEN_FILE = 'node-token.json';

export class Agent {
  readonly nodeName: string;
  private runner!: TaskRunner;
  private gpus!: GpuSource;
  private http: Server | null = null;
  /** The host the log endpoint listens on, once it does. */
  private listening: string | null = null;
  private address = '';
  private link!: ServerLink;
  /** The key the server reads this node's logs with (from its answers); null: none yet, every read refused. */
  private logKey: string | null = null;
  private serverIndex = 0;
  private registered = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private busy: Promise<void> | null = null;
  private lastError = '';
  /** Runs whose malformed progress file has been logged (once per run). */
  private readonly badProgress = new Set<string>();
  /** Runs the server asked to stop that this agent never had: reported once as exited. */
  private readonly phantoms = new Set<string>();
  heartbeats = 0;
  /** The server's node lease (from register and heartbeat answers); null until known. */
  private nodeLeaseMs: number | null = null;
  /** When the last heartbeat that succeeded was sent (ms). */
  private lastOkAt: number | null = null;
  /** True once the first heartbeat after start has been tried (fencing waits for it). */
  private tried = false;
  /** True while fenced: tasks stopped, no heartbeat since. */
  private fenced = false;
  /** When the heartbeat under way was sent (null: none is out), and when the last lease renewal was (renewLeaseIfDue). */
  private beatSentAt: number | null = null;
  private lastRenewAt = 0;
  private renewing = false;
  /** The last renewal refusal logged (each is logged once, not every renewal). */
  private renewRefusal = '';
  /** Checks the fence and the tasks' ends every 100 ms. */
  private watchTimer: NodeJS.Timeout | null = null;
  /** When the last heartbeat began (ms), and whether a task has ended since (see EARLY_REPORT_GAP_MS). */
  private lastBeatAt = 0;
  private endsUnreported = false;
  /** The node's wake counter from the last answer (null: none yet, or a server without waits); a wake during a heartbeat sends another after it. */
  private wakeSeq: number | null = null;
  private beatAgain = false;
  private waitPause: NodeJS.Timeout | null = null;
  /** Ends the wait loop's pause: a heartbeat brought a counter to wait on. */
  private resumeWaits: (() => void) | null = null;
  private telemetry: GpuTelemetry[] = [];
  private sampling: Promise<void> | null = null;
  /** This node's own token (see NODE_TOKEN_FILE); null: none yet. */
  private nodeToken: string | null = null;
  /** True while nodeToken is offered to the server (with the bootstrap token) but not yet accepted. */
  private pending = false;
  /** Measured energy per run (docs/energy.md), kept in ENERGY_FILE. */
  private meter!: EnergyMeter;
  private caps!: PowerCaps;

  constructor(private readonly o: AgentOptions) {
    this.nodeName = o.nodeName ?? hostname();
  }

  get simulated(): boolean {
    return this.gpus.simulated;
  }

  get gpuCount(): number {
    return this.gpus.gpus.length;
  }

  /** Progress files ignored as too big or malformed since the agent started. */
  get progressRejected(): number {
    return this.runner.progressRejected;
  }

  get url(): string {
    return this.address;
  }

  private log(line: string): void {
    this.o.log?.(`agent ${this.nodeName}: ${line}`);
  }

  async start(): Promise<void> {
    const real = this.o.forceSimulated ? null : await discoverNvidia(this.o.nvidiaSmi);
    this.gpus = real ?? simulatedGpus(this.o.gpus ?? '8xH100');
    const dir = resolve(this.o.dataDir);
    this.runner = new TaskRunner(
      { stateDir: join(dir, 'runs'), logDir: join(dir, 'logs'), checkpointRoot: resolve(this.o.checkpointRoot ?? join(dir, 'checkpoints')) },
      Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string' && !e[0].startsWith('TIDE_'))),
      (i) => this.gpus.gpus[i]?.memoryMib ?? 0,
      this.gpus.gpus.length,
      defaultTracker(`${this.nodeName}-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`),
      () => this.watchdog(),
      (i) => this.gpus.gpus[i]?.model,
    );
    const adopted = this.runner.adopt();
    if (adopted > 0) this.log(`adopted ${adopted} running task(s) from a previous agent`);
    this.meter = new EnergyMeter(randomBytes(8).toString('hex'), readJson(join(dir, ENERGY_FILE)));
    this.caps = new PowerCaps(this.gpus.simulated, (l) => this.log(l), this.o.nvidiaSmi);
    this.caps.update(this.cappedRuns());
    this.loadFence();
    this.loadNodeToken();
    const host = this.o.listenHost;
    this.link = new ServerLink(host !== undefined && !isWildcard(host) ? host : undefined);
    // Without --listen the address is known only once a server is reached (register()).
    if (host !== undefined) await this.listenOn(host);
    this.loop(0);
    void this.waitForWork();
    this.watchTimer = setInterval(() => {
      const now = Date.now();
      this.checkFence(now);
      this.renewLeaseIfDue(now);
      this.reportEndsEarly(now);
    }, 100);
    this.watchTimer.unref();
  }

  /**
   * Fences when no heartbeat has succeeded for half the node lease (see the file comment), and
   * sends overdue SIGKILLs meanwhile (a heartbeat may hang for seconds on a cut network).
   */
  private checkFence(now: number): void {
    const lease = this.nodeLeaseMs;
    if (this.stopped || lease === null || this.lastOkAt === null || !this.tried) return;
    if (!this.fenced && now - this.lastOkAt >= lease / 2) {
      this.fenced = true;
      const n = this.runner.fence(now, lease / 4);
      if (n > 0) this.log(`no heartbeat for ${now - this.lastOkAt} ms, half the node lease (${lease} ms): stopped ${n} task(s) so that none runs on after the server requeues it`);
    }
    if (this.fenced) this.runner.tick(now);
  }

  /**
   * While a heartbeat waits for its answer (see RENEW_AFTER_MS), renews the node's lease alone
   * (POST /v1/agent/lease): the server writes it ahead of its queued work and it counts as a
   * heartbeat for the fence, so a server busy with someone's burst does not make this node stop
   * its tasks. Not while fenced (only a heartbeat, reporting the fenced tasks, ends a fence); a
   * lost node's renewal is refused (409), and the fence goes on as without one. Also every
   * RENEW_AT_LEAST_EVERY_MS, to keep the renewals' connection open.
   */
  private renewLeaseIfDue(now: number): void {
    const out = this.beatSentAt;
    const lease = this.nodeLeaseMs;
    if (lease === null || this.renewing || this.fenced || this.stopped || !this.registered) return;
    const every = Math.min(RENEW_AFTER_MS, lease / 8);
    const covering = out !== null && now - Math.max(out, this.lastRenewAt) >= every;
    if (!covering && now - this.lastRenewAt < RENEW_AT_LEAST_EVERY_MS) return;
    this.renewing = true;
    this.lastRenewAt = now;
    this.call('/v1/agent/lease', { node: this.nodeName }, undefined, Math.max(1000, lease / 4), 'lease')
      .then(({ status, json }) => {
        if (status === 200 && !this.fenced) this.confirmed(now, json);
        const refusal = status === 200 ? '' : `lease renewal refused (${status}): ${JSON.stringify(json).slice(0, 200)}`;
        if (refusal && refusal !== this.renewRefusal) this.log(refusal);
        this.renewRefusal = refusal;
      })
      .catch(() => {
        /* as a heartbeat that did not get through: the fence counts on */
      })
      .finally(() => (this.renewing = false));
  }

  /**
   * Holds a wait for new work while registered and not fenced (see WAIT_FOR_WORK_MS); a wake
   * sends a heartbeat. A refused or failed wait is tried again a heartbeat interval later, so a
   * server without waits costs one request per interval and no more.
   */
  private async waitForWork(): Promise<void> {
    const every = this.o.heartbeatMs ?? 2000;
    const pause = (ms: number) =>
      new Promise<void>((ok) => {
        this.resumeWaits = ok;
        this.waitPause = setTimeout(ok, ms);
      });
    while (!this.stopped) {
      const after = this.wakeSeq;
      if (after === null || this.fenced || !this.registered) {
        await pause(every);
        continue;
      }
      try {
        const { status, json } = await this.call('/v1/agent/wait', { node: this.nodeName, after, timeoutMs: WAIT_FOR_WORK_MS }, undefined, WAIT_FOR_WORK_MS + 5000);
        const a = json as { seq?: unknown; woke?: unknown } | null;
        if (status !== 200 || typeof a?.seq !== 'number') {
          await pause(every);
          continue;
        }
        this.wakeSeq = a.seq;
        if (a.woke === true) this.beatSoon();
      } catch {
        if (!this.stopped) await pause(every);
      }
    }
  }

  /** The next heartbeat as soon as EARLY_REPORT_GAP_MS allows (after the one under way, if any). */
  private beatSoon(): void {
    if (this.stopped) return;
    if (this.busy !== null) {
      this.beatAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.loop(this.gapLeft());
  }

  /** How long until EARLY_REPORT_GAP_MS has passed since the last heartbeat began (ms, 0 if it has). */
  private gapLeft(): number {
    return Math.max(0, this.lastBeatAt + EARLY_REPORT_GAP_MS - Date.now());
  }

  /** Sends the next heartbeat now when a task has ended since the last one began (see EARLY_REPORT_GAP_MS). */
  private reportEndsEarly(now: number): void {
    if (this.stopped || this.fenced || !this.registered) return;
    if (this.runner.tick(now) > 0) this.endsUnreported = true;
    if (!this.endsUnreported || this.busy !== null || now - this.lastBeatAt < EARLY_REPORT_GAP_MS) return;
    if (this.timer) clearTimeout(this.timer);
    this.loop(0);
  }

  /**
   * The task wrappers' own fence, for when this agent cannot fence (killed, hung): a task whose
   * agent has not heartbeated for 0.6 of the node lease is stopped, and killed 0.2 of the lease
   * later (its clock ticks every half second, so leases under 3 s are not covered): all before
   * the server requeues at the full lease. It never fires before the agent's own fence (half).
   */
  private watchdog(): Watchdog | null {
    const lease = this.nodeLeaseMs;
    if (lease === null || lease < 3000) return null;
    return { aliveFile: join(resolve(this.o.dataDir), FENCE_FILE), fenceAfterMs: lease * 0.6, killAfterMs: lease * 0.2 };
  }

  private loadFence(): void {
    try {
      const f = JSON.parse(readFileSync(join(resolve(this.o.dataDir), FENCE_FILE), 'utf8')) as { nodeLeaseMs?: unknown; lastOkAt?: unknown };
      if (typeof f.nodeLeaseMs === 'number' && f.nodeLeaseMs > 0 && typeof f.lastOkAt === 'number') {
        this.nodeLeaseMs = f.nodeLeaseMs;
        this.lastOkAt = f.lastOkAt;
      }
    } catch {
      /* none yet */
    }
  }

  private loadNodeToken(): void {
    try {
      const f = JSON.parse(readFileSync(join(resolve(this.o.dataDir), NODE_TOKEN_FILE), 'utf8')) as { node?: unknown; token?: unknown; pending?: unknown };
      if (f.node === this.nodeName && typeof f.token === 'string') {
        this.nodeToken = f.token;
        this.pending = f.pending === true;
      }
      else if (typeof f.node === 'string') this.log(`${NODE_TOKEN_FILE} is node ${f.node}'s, not this node's: registering with the bootstrap token`);
    } catch {
      /* none yet: the first registration gets one */
    }
  }

  /** Keeps the node token (written to a temporary file, then renamed: never half a file). */
  private saveNodeToken(token: string, pending: boolean): void {
    this.nodeToken = token;
    this.pending = pending;
    const dir = resolve(this.o.dataDir);
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${NODE_TOKEN_FILE}.tmp`);
      writeFileSync(tmp, JSON.stringify({ node: this.nodeName, token, pending }), { mode: 0o600 });
      renameSync(tmp, join(dir, NODE_TOKEN_FILE));
    } catch (e) {
      this.log(`cannot keep the node token in ${dir} (${(e as Error).message}): after a restart an admin must reset this node's credential`);
    }
  }

  /** A 401 for the node token (revoked by an admin reset, or a server with a new database): the next registration offers a new one. */
  private dropNodeToken(json: unknown): void {
    this.log(`the server refused this node's token (${JSON.stringify(json).slice(0, 200)}): registering again with the bootstrap token`);
    this.nodeToken = null;
    this.pending = false;
    this.registered = false;
  }

  /** Takes the node lease from a server's answer, if it states one. */
  private takeLease(json: unknown): void {
    const lease = (json as { nodeLeaseMs?: unknown } | null)?.nodeLeaseMs;
    if (typeof lease !== 'number' || !Number.isFinite(lease) || lease <= 0 || lease === this.nodeLeaseMs) return;
    this.nodeLeaseMs = lease;
    const every = this.o.heartbeatMs ?? 2000;
    if (every > lease / 4) this.log(`warning: a heartbeat every ${every} ms is slow for the server's node lease of ${lease} ms; tasks are stopped after ${lease / 2} ms without one`);
  }

  /**
   * GPU telemetry for a heartbeat: a fresh sample if it comes within TELEMETRY_WAIT_MS, else the
   * last one. While a sample hangs (a stuck nvidia-smi), later heartbeats do not wait for it.
   */
  private async sampleTelemetry(now: number): Promise<GpuTelemetry[]> {
    if (this.sampling) return this.telemetry;
    const sampling = this.gpus
      .sample(this.runner.computingMilli(this.gpus.gpus.length, now, SIMULATED_WORK_WINDOW_MS), now)
      .then((t) => void (this.telemetry = this.meterSample(Date.now(), t)), () => {})
      .finally(() => (this.sampling = null));
    this.sampling = sampling;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([sampling, new Promise<void>((ok) => (timer = setTimeout(ok, TELEMETRY_WAIT_MS)))]);
    clearTimeout(timer);
    return this.telemetry;
  }

  /** The runs as the power caps see them. */
  private cappedRuns(): { gpus: readonly number[]; powerCapWatts?: number; alive: boolean }[] {
    return [...this.runner.runs.values()].map((r) => ({ gpus: r.assignment.gpus, alive: !r.exited && r.pid > 0, ...(r.assignment.powerCapWatts !== undefined ? { powerCapWatts: r.assignment.powerCapWatts } : {}) }));
  }

  /**
   * Feeds a sample to the energy meter (simulated GPUs' power held under their cap first) and
   * keeps its state; returns the telemetry to send (without the energy counter).
   */
  private meterSample(at: number, samples: readonly GpuSample[]): GpuTelemetry[] {
    const telemetry = samples.map((s) => {
      const cap = this.gpus.simulated ? this.caps.capOf(s.index) : undefined;
      return { index: s.index, utilization: s.utilization, memoryUsedMib: s.memoryUsedMib, powerWatts: cap === undefined ? s.powerWatts : Math.min(s.powerWatts, cap) };
    });
    const runs = [...this.runner.runs.values()].map((r) => ({ runId: r.runId, gpus: r.assignment.gpus, gpuMilli: r.assignment.gpuMilli, startedAt: r.pid > 0 ? r.startedAt : null, alive: !r.exited }));
    this.meter.observe(at, telemetry.map((t, i) => ({ ...t, ...(samples[i]?.energyMj !== undefined ? { energyMj: samples[i]?.energyMj } : {}) })), runs);
    this.saveMeter();
    return telemetry;
  }

  /** Keeps the meter's state (a temporary file renamed: never half a file). */
  private saveMeter(): void {
    const dir = resolve(this.o.dataDir);
    try {
      const tmp = join(dir, `${ENERGY_FILE}.tmp`);
      writeFileSync(tmp, JSON.stringify(this.meter.state()));
      renameSync(tmp, join(dir, ENERGY_FILE));
    } catch {
      /* a full disk must not stop heartbeats; a restart then begins a new epoch and loses only the unsent joules */
    }
  }

  private loop(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.lastBeatAt = Date.now();
      this.endsUnreported = false;
      this.beatAgain = false;
      this.busy = this.beat().finally(() => {
        this.busy = null;
        this.loop(this.beatAgain ? this.gapLeft() : (this.o.heartbeatMs ?? 2000));
      });
    }, ms);
  }

  /**
   * Starts (or moves) the log endpoint to `host`, on --port if given, else on the port it had
   * (a new one if that is taken), so a moved endpoint keeps its address where it can.
   */
  private async listenOn(host: string): Promise<void> {
    if (this.http && this.listening === host) return;
    const before = this.http?.address();
    const previousPort = typeof before === 'object' && before ? before.port : 0;
    if (this.http) {
      const old = this.http;
      await new Promise<void>((ok) => {
        old.close(() => ok());
        old.closeAllConnections();
      });
    }
    const server = createServer((req, res) => this.serveLogs(req.url ?? '', req.headers.authorization, res));
    const listen = (port: number): Promise<void> =>
      new Promise((ok, fail) => {
        server.once('error', fail);
        server.listen(port, host, () => {
          server.off('error', fail);
          ok();
        });
      });
    const port = this.o.port ?? previousPort;
    try {
      await listen(port).catch((e: NodeJS.ErrnoException) => (this.o.port === undefined && port !== 0 && e.code === 'EADDRINUSE' ? listen(0) : Promise.reject(e)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new UserError(`--listen: the log endpoint cannot listen on ${urlHost(host)}:${port} (${code}${code === 'EADDRNOTAVAIL' ? ': not an address of this machine' : ''})`);
    }
    this.http = server;
    this.listening = host;
    const addr = server.address();
    this.address = `http://${urlHost(host)}:${typeof addr === 'object' && addr ? addr.port : 0}`;
    this.log(`serving task logs to the server at ${this.address}`);
  }

  /**
   * The address to register (see the file comment), listening there first if --listen did not
   * say where: found by connecting to the server this agent talks to now.
   */
  private async endpoint(): Promise<string> {
    const listen = this.o.listenHost;
    let found: string | undefined;
    if (listen === undefined || isWildcard(listen)) {
      const server = this.o.servers[this.serverIndex % this.o.servers.length] as string;
      try {
        found = await this.link.localAddressToward(server, 5000);
      } catch (e) {
        this.serverIndex++;
        throw e;
      }
    }
    await this.listenOn(listen ?? (found as string));
    const addr = this.http?.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const host = this.o.advertise ?? (listen !== undefined && !isWildcard(listen) ? listen : (found as string));
    return `http://${urlHost(host)}:${port}`;
  }

  /** Takes this node's log key from a server's answer, if it states one. */
  private takeLogKey(json: unknown): void {
    const key = (json as { logKey?: unknown } | null)?.logKey;
    if (typeof key === 'string' && key.length > 0) this.logKey = key;
  }

  private async call(path: string, body: unknown, token = this.nodeToken ?? this.o.token, timeoutMs = 5000, lane: Lane = 'main'): Promise<{ status: number; json: unknown }> {
    const servers = this.o.servers;
    for (let attempt = 0; attempt < servers.length; attempt++) {
      const base = servers[this.serverIndex % servers.length] as string;
      try {
        const { status, json } = await this.link.post(`${base}${path}`, token, body, timeoutMs, lane);
        if (status >= 500) throw new Error(`${base}: ${status}`);
        return { status, json };
      } catch (e) {
        this.serverIndex++;
        if (attempt === servers.length - 1) throw e;
      }
    }
    throw new Error('no server');
  }

  private async register(): Promise<void> {
    const reg = {
      id: this.nodeName,
      address: await this.endpoint(),
      cpuMilli: this.o.cpuMilli ?? (this.gpus.simulated ? Math.max(cpus().length, 8 * this.gpus.gpus.length) * 1000 : cpus().length * 1000),
      memoryMib: this.o.memoryMib ?? (this.gpus.simulated ? Math.max(Math.floor(totalmem() / 2 ** 20), 64 * 1024 * this.gpus.gpus.length) : Math.floor(totalmem() / 2 ** 20)),
      gpus: this.gpus.gpus,
      simulated: this.gpus.simulated,
    };
    if (this.nodeToken === null) this.saveNodeToken(`tide_node_${randomBytes(18).toString('base64url')}`, true);
    const token = this.nodeToken as string;
    let { status, json } = this.pending
      ? await this.call('/v1/agent/register', { ...reg, nodeTokenHash: createHash('sha256').update(token).digest('hex') }, this.o.token)
      : await this.call('/v1/agent/register', reg, token);
    if (status === 409 && this.pending) {
      // The offer may have been accepted and its answer lost (a crash, a timeout): try the token itself.
      const probe = await this.call('/v1/agent/register', reg, token);
      if (probe.status === 200) ({ status, json } = probe);
    }
    if (status === 401 && !this.pending) this.dropNodeToken(json);
    if (status !== 200) {
      const said = (json as { error?: { message?: unknown } } | null)?.error?.message;
      throw new Error(`registration refused (${status}): ${typeof said === 'string' ? said : JSON.stringify(json)}`);
    }
    this.takeLogKey(json);
    const issued = (json as { nodeToken?: unknown } | null)?.nodeToken;
    if (typeof issued === 'string') this.saveNodeToken(issued, false);
    else if (this.pending) this.saveNodeToken(token, false);
    this.takeLease(json);
    this.registered = true;
    this.log(`registered with ${this.o.servers[this.serverIndex % this.o.servers.length]} (${this.gpus.gpus.length} ${this.gpus.simulated ? 'simulated ' : ''}GPUs, logs at ${reg.address})`);
  }

  /** One heartbeat: report, receive the desired tasks, reconcile. */
  async beat(): Promise<void> {
    let answered = false;
    try {
      const now = Date.now();
      this.runner.tick(now);
      if (!this.registered) await this.register();
      for (const run of this.runner.readProgress()) {
        if (this.badProgress.has(run.runId)) continue;
        this.badProgress.add(run.runId);
        this.log(`${run.runId}: ignored its progress file (over ${MAX_PROGRESS_BYTES} bytes, or not JSON {"step": n, "totalSteps"?: N, "checkpointStep"?: c} with non-negative integers); ${this.runner.progressRejected} rejected so far`);
      }
      const reports = [...this.runner.reports(), ...[...this.phantoms].map((runId) => ({ runId, state: 'exited' as const, pid: null, exitCode: null }))];
      const telemetry = await this.sampleTelemetry(now);
      const energy: EnergyReport = this.meter.counters();
      const sentAt = Date.now();
      this.beatSentAt = sentAt;
      // The whole lease, not 5 s: renewals keep the node alive meanwhile, and a heartbeat given up
      // on while the server still works on it would be sent again and queue behind itself.
      const { status, json } = await this.call('/v1/agent/heartbeat', { node: this.nodeName, reports, telemetry, energy }, undefined, Math.max(5000, this.nodeLeaseMs ?? 0));
      answered = true;
      if (status === 404) {
        this.registered = false;
        return;
      }
      if (status === 401 && this.nodeToken !== null && !this.pending) return this.dropNodeToken(json);
      if (status !== 200) throw new Error(`the server refused the heartbeat: ${status} ${JSON.stringify(json).slice(0, 500)}`);
      const tasks = (json as { tasks?: unknown } | null)?.tasks;
      if (!Array.isArray(tasks)) throw new Error(`the server answered the heartbeat without a task list: ${JSON.stringify(json).slice(0, 200)}`);
      this.heartbeatOk(sentAt, json);
      const wakeSeq = (json as { wakeSeq?: unknown }).wakeSeq;
      this.wakeSeq = typeof wakeSeq === 'number' ? wakeSeq : null;
      if (this.wakeSeq !== null) this.resumeWaits?.();
      this.meter.acknowledged(energy.seq);
      this.takeLogKey(json);
      this.phantoms.clear();
      this.runner.progressSent(reports);
      this.reconcile(tasks as unknown[], Date.now());
      this.caps.update(this.cappedRuns());
      this.heartbeats++;
      if (this.lastError) this.log('connected again');
      this.lastError = '';
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.lastError) this.log(answered ? `${msg}; retrying` : `cannot reach a server (${msg}); tasks keep running until half the node lease has passed, retrying`);
      this.lastError = msg;
    } finally {
      this.tried = true;
      this.beatSentAt = null;
    }
  }

  private heartbeatOk(sentAt: number, json: unknown): void {
    if (this.fenced) this.log('reached a server again: reporting the fenced tasks');
    this.fenced = false;
    this.confirmed(sentAt, json);
  }

  /** The server recorded this node alive as of a request sent at `sentAt` (a heartbeat or a lease renewal): the fence counts from there. */
  private confirmed(sentAt: number, json: unknown): void {
    this.takeLease(json);
    this.lastOkAt = Math.max(this.lastOkAt ?? sentAt, sentAt);
    if (this.nodeLeaseMs === null) return;
    try {
      writeFileSync(join(resolve(this.o.dataDir), FENCE_FILE), JSON.stringify({ nodeLeaseMs: this.nodeLeaseMs, lastOkAt: this.lastOkAt }));
    } catch {
      /* a full disk must not stop heartbeats; a restarted agent then fences later or not at all */
    }
  }

  /** Starts, stops and forgets runs to match the server's desired set; one bad entry never stops the rest. */
  private reconcile(list: readonly unknown[], now: number): void {
    const desired: TaskAssignment[] = [];
    for (const d of list) {
      if (typeof d === 'object' && d !== null && validRunId((d as TaskAssignment).runId)) desired.push(d as TaskAssignment);
      else this.log(`ignored an assignment without a valid run id: ${JSON.stringify(d)?.slice(0, 200)}`);
    }
    const wanted = new Map(desired.map((d) => [d.runId, d]));
    for (const d of desired) {
      try {
        const run = this.runner.runs.get(d.runId);
        if (d.action === 'run' && !run) {
          const started = this.runner.start(d, this.nodeName);
          if (started.reason === 'start-failed') this.log(`could not start ${d.runId} (${d.jobName} task ${d.taskIndex}): ${started.message ?? ''}`);
          else this.log(`started ${d.runId} (${d.jobName} task ${d.taskIndex}) pid ${started.pid} gpus [${d.gpus.join(',')}]`);
        } else if (d.action === 'stop') {
          if (!run) this.phantoms.add(d.runId);
          else this.runner.stop(run, now);
        }
      } catch (e) {
        this.log(`${d.runId}: ${(e as Error).message}`);
      }
    }
    for (const run of [...this.runner.runs.values()]) {
      if (wanted.has(run.runId)) continue;
      if (run.exited) {
        this.runner.forget(run.runId);
        this.badProgress.delete(run.runId);
      }
      else this.runner.stop(run, now); // not ours any more (an old attempt, a lost node's leftovers)
    }
  }

  private serveLogs(url: string, auth: string | undefined, res: import('node:http').ServerResponse): void {
    // Only the server's key for this node: not the bootstrap token, which every agent holds.
    if (this.logKey === null || !sameSecret(auth ?? '', `Bearer ${this.logKey}`)) {
      res.writeHead(401).end('unauthorized');
      return;
    }
    const u = new URL(url, 'http://agent');
    const m = /^\/logs\/(\d+)\/(\d+)$/.exec(u.pathname);
    if (!m) {
      res.writeHead(404).end('not found');
      return;
    }
    const stream = u.searchParams.get('stream') === 'stderr' ? 'stderr' : 'stdout';
    const offset = Math.max(0, Number(u.searchParams.get('offset') ?? 0) || 0);
    const file = logFile(join(resolve(this.o.dataDir), 'logs'), m[1] as string, Number(m[2]), stream);
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-tide-next-offset': String(offset) }).end('');
      return;
    }
    const end = Math.min(size, offset + MAX_LOG_CHUNK);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-tide-next-offset': String(Math.max(offset, end)) });
    if (end <= offset) {
      res.end('');
      return;
    }
    // A file that vanishes or cannot be read after the stat must not take the agent down.
    createReadStream(file, { start: offset, end: end - 1 })
      .on('error', () => res.destroy())
      .pipe(res);
  }

  /** Stops heartbeating. Tasks keep running (a new agent adopts them) unless killTasks. */
  async stop(killTasks = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.waitPause) clearTimeout(this.waitPause);
    await this.busy;
    if (killTasks) this.runner.killAll();
    await new Promise<void>((ok) => (this.http ? this.http.close(() => ok()) : ok()));
    this.link?.close();
  }
}

/** A JSON file's value, or undefined when it is missing or not JSON. */
function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Compares a presented secret with the expected one in time that does not depend on where they differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
