/**
 * Real processes for end-to-end tests: `tide server` and `tide agent` started as child processes
 * on 127.0.0.1, an API helper, and polling with a deadline (a deadline bounds a wait; it is not
 * a timing assertion).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callJson } from '../../src/util/httpJson.ts';
import { exitAfterOutput } from '../../src/util/childExit.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TIDE = join(ROOT, 'bin', 'tide.js');
export const ADMIN = 'e2e-admin-token';
export const AGENT = 'e2e-agent-token';
export const TENANT = 'e2e-tenant-token';

export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), `tide-${prefix}-`));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The test files that run services, each with replica ports of its own (they run side by side and bind on every address). */
const SERVICE_TESTS = ['services', 'serviceHistory', 'serviceUsage'] as const;

/**
 * The first of 50 replica ports for a service test: random within its file's own third of
 * 21000-28999, so two service tests running at once never hand out the same port (a replica
 * whose port is taken fails, and is replaced on the next).
 */
export function replicaPortBase(test: (typeof SERVICE_TESTS)[number]): number {
  const slots = Math.floor(160 / SERVICE_TESTS.length);
  return 21_000 + 50 * (SERVICE_TESTS.indexOf(test) * slots + Math.floor(Math.random() * slots));
}

/** The sum of the server's /metrics samples whose line matches `pattern`. */
export async function metricSum(serverUrl: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${serverUrl}/metrics`)).text();
  return text.split('\n').filter((l) => pattern.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export class Proc {
  output = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = exitAfterOutput(child);
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  kill9(): Promise<number | null> {
    this.child.kill('SIGKILL');
    return this.exited;
  }
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export function tide(args: readonly string[], env: Record<string, string> = {}): Proc {
  return new Proc(spawn(process.execPath, [TIDE, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Polls fn until it returns a value that is not undefined; fails after the deadline. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, deadlineMs = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export interface ServerHandle {
  proc: Proc;
  url: string;
  port: number;
}

export async function startServerProcess(opts: { dataDir?: string; databaseUrl?: string; port?: number; config: string; nodeLeaseMs?: number; extra?: string[] }): Promise<ServerHandle> {
  const port = opts.port ?? (await freePort());
  const args = ['server', '--port', String(port), '--config', opts.config, '--tick-ms', '200', '--node-lease-ms', String(opts.nodeLeaseMs ?? 3000), '--lease-ttl-ms', '2000', ...(opts.extra ?? [])];
  if (opts.databaseUrl) args.push('--database-url', opts.databaseUrl);
  else args.push('--data-dir', opts.dataDir ?? tempDir('server'));
  const proc = tide(args);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `server on ${url}`,
    async () => {
      if (!proc.alive) throw new Error(`server exited: ${proc.output}`);
      const r = await fetch(`${url}/healthz`);
      return r.ok ? true : undefined;
    },
    30_000,
  );
  return { proc, url, port };
}

export function startAgentProcess(opts: { servers: string[]; name: string; gpus: string; dataDir: string; checkpointRoot: string }): Proc {
  return tide([
    'agent', '--server', opts.servers.join(','), '--token', AGENT, '--name', opts.name, '--gpus', opts.gpus, '--simulate',
    '--data-dir', opts.dataDir, '--checkpoint-root', opts.checkpointRoot, '--heartbeat-ms', '250', '--cpus', '16', '--memory-gib', '64',
  ]);
}

export function writeConfig(dir: string): string {
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - name: e2e\n    tokens: [${TENANT}]\n`);
  return file;
}

export class Api {
  constructor(
    public base: string,
    private readonly token = TENANT,
  ) {}
  /** Every job, page by page (a page holds at most 1000). */
  async allJobs(): Promise<any[]> {
    const jobs: any[] = [];
    for (let next: string | null = null; ; ) {
      const r: { jobs: any[]; next: string | null } = (await this.req('GET', `/v1/jobs?limit=1000${next === null ? '' : `&after=${next}`}`)).json;
      jobs.push(...r.jobs);
      if ((next = r.next) === null) return jobs;
    }
  }

  async req<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: T; headers: Headers }> {
    const r = await callJson(this.base, method, path, { token: this.token, body, headers, timeoutMs: 10_000 });
    return { status: r.status, json: r.json as T, headers: r.headers };
  }
  async job(id: string): Promise<{ job: any; tasks: any[]; events: any[] }> {
    const r = await this.req('GET', `/v1/jobs/${id}`);
    if (r.status !== 200) throw new Error(`GET job ${id}: ${r.status}`);
    return r.json;
  }
  async submit(spec: unknown, key?: string): Promise<string> {
    const r = await this.req('POST', '/v1/jobs', spec, key ? { 'idempotency-key': key } : {});
    if (r.status !== 201 && r.status !== 200) throw new Error(`submit: ${r.status} ${JSON.stringify(r.json)}`);
    // An array is answered as one: its first element's id.
    return (r.json.array ? r.json.array.firstJobId : r.json.jobs[0].id) as string;
  }
  async logs(id: string, task = 0, stream = 'stdout'): Promise<string> {
    const res = await fetch(`${this.base}/v1/jobs/${id}/logs?task=${task}&stream=${stream}`, { headers: { authorization: `Bearer ${this.token}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`logs of ${id}: ${res.status} ${text}`);
    return text;
  }
  waitState(id: string, states: string[], deadlineMs = 30_000): Promise<any> {
    return waitFor(
      `job ${id} in ${states.join('|')}`,
      async () => {
        const { job } = await this.job(id);
        return states.includes(job.state) ? job : undefined;
      },
      deadlineMs,
    );
  }
}
