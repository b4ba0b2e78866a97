/**
 * The node agent: registers its node, heartbeats telemetry and task reports to a server (any of
 * several, for HA), and reconciles its task processes with the desired set the server answers
 * with: start what is missing, stop what is to stop or unknown, forget what has been reported.
 * It also serves its tasks' log files to the server over HTTP.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { cpus, hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { TaskAssignment } from '../api/types.ts';
import { discoverNvidia, simulatedGpus, type GpuSource } from './gpus.ts';
import { logFile, TaskRunner } from './taskRunner.ts';

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
  readonly log?: (line: string) => void;
  readonly nvidiaSmi?: string;
}

const MAX_LOG_CHUNK = 1024 * 1024;

export class Agent {
  readonly nodeName: string;
  private runner!: TaskRunner;
  private gpus!: GpuSource;
  private http: Server | null = null;
  private address = '';
  private serverIndex = 0;
  private registered = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private busy: Promise<void> | null = null;
  private lastError = '';
  /** Runs the server asked to stop that this agent never had: reported once as exited. */
  private readonly phantoms = new Set<string>();
  heartbeats = 0;

  constructor(private readonly o: AgentOptions) {
    this.nodeName = o.nodeName ?? hostname();
  }

  get simulated(): boolean {
    return this.gpus.simulated;
  }

  get gpuCount(): number {
    return this.gpus.gpus.length;
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
    );
    const adopted = this.runner.adopt();
    if (adopted > 0) this.log(`adopted ${adopted} running task(s) from a previous agent`);
    this.http = createServer((req, res) => this.serveLogs(req.url ?? '', req.headers.authorization, res));
    await new Promise<void>((ok) => this.http?.listen(this.o.port ?? 0, '127.0.0.1', ok));
    const addr = this.http.address();
    this.address = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    this.loop(0);
  }

  private loop(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.busy = this.beat().finally(() => {
        this.busy = null;
        this.loop(this.o.heartbeatMs ?? 2000);
      });
    }, ms);
  }

  private async call(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const servers = this.o.servers;
    for (let attempt = 0; attempt < servers.length; attempt++) {
      const base = servers[this.serverIndex % servers.length] as string;
      try {
        const res = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.o.token}` },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5000),
        });
        const json: unknown = await res.json().catch(() => null);
        if (res.status >= 500) throw new Error(`${base}: ${res.status}`);
        return { status: res.status, json };
      } catch (e) {
        this.serverIndex++;
        if (attempt === servers.length - 1) throw e;
      }
    }
    throw new Error('no server');
  }

  private async register(): Promise<void> {
    const { status, json } = await this.call('/v1/agent/register', {
      id: this.nodeName,
      address: this.address,
      cpuMilli: this.o.cpuMilli ?? (this.gpus.simulated ? Math.max(cpus().length, 8 * this.gpus.gpus.length) * 1000 : cpus().length * 1000),
      memoryMib: this.o.memoryMib ?? (this.gpus.simulated ? Math.max(Math.floor(totalmem() / 2 ** 20), 64 * 1024 * this.gpus.gpus.length) : Math.floor(totalmem() / 2 ** 20)),
      gpus: this.gpus.gpus,
      simulated: this.gpus.simulated,
    });
    if (status !== 200) throw new Error(`registration refused: ${status} ${JSON.stringify(json)}`);
    this.registered = true;
    this.log(`registered with ${this.o.servers[this.serverIndex % this.o.servers.length]} (${this.gpus.gpus.length} ${this.gpus.simulated ? 'simulated ' : ''}GPUs)`);
  }

  /** One heartbeat: report, receive the desired tasks, reconcile. */
  async beat(): Promise<void> {
    try {
      const now = Date.now();
      this.runner.tick(now);
      if (!this.registered) await this.register();
      const reports = [...this.runner.reports(), ...[...this.phantoms].map((runId) => ({ runId, state: 'exited' as const, pid: null, exitCode: null }))];
      const telemetry = await this.gpus.sample(this.runner.busyMilli(this.gpus.gpus.length), now);
      const { status, json } = await this.call('/v1/agent/heartbeat', { node: this.nodeName, reports, telemetry });
      if (status === 404) {
        this.registered = false;
        return;
      }
      if (status !== 200) throw new Error(`heartbeat refused: ${status} ${JSON.stringify(json)}`);
      this.phantoms.clear();
      this.reconcile((json as { tasks: TaskAssignment[] }).tasks, Date.now());
      this.heartbeats++;
      if (this.lastError) this.log('connected again');
      this.lastError = '';
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.lastError) this.log(`cannot reach a server (${msg}); tasks keep running, retrying`);
      this.lastError = msg;
    }
  }

  private reconcile(desired: readonly TaskAssignment[], now: number): void {
    const wanted = new Map(desired.map((d) => [d.runId, d]));
    for (const d of desired) {
      const run = this.runner.runs.get(d.runId);
      if (d.action === 'run' && !run) {
        const started = this.runner.start(d, this.nodeName);
        this.log(`started ${d.runId} (${d.jobName} task ${d.taskIndex}) pid ${started.pid} gpus [${d.gpus.join(',')}]`);
      } else if (d.action === 'stop') {
        if (!run) this.phantoms.add(d.runId);
        else this.runner.stop(run, now);
      }
    }
    for (const run of [...this.runner.runs.values()]) {
      if (wanted.has(run.runId)) continue;
      if (run.exited) this.runner.forget(run.runId);
      else this.runner.stop(run, now); // not ours any more (an old attempt, a lost node's leftovers)
    }
  }

  private serveLogs(url: string, auth: string | undefined, res: import('node:http').ServerResponse): void {
    if (auth !== `Bearer ${this.o.token}`) {
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
      size = statSync(file).size;
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
    createReadStream(file, { start: offset, end: end - 1 }).pipe(res);
  }

  /** Stops heartbeating. Tasks keep running (a new agent adopts them) unless killTasks. */
  async stop(killTasks = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
    if (killTasks) this.runner.killAll();
    await new Promise<void>((ok) => (this.http ? this.http.close(() => ok()) : ok()));
  }
}
