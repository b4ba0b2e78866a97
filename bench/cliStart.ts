/**
 * CLI start-up: wall time of `tide --version`, `tide jobs`, `tide nodes` (against a real
 * server) and `tide validate FILE` (local: YAML and the schema through Ajv); the server is a real
 * server (compiled, as a child process, with one simulated 8-GPU agent and 20 jobs: 8 running,
 * 12 pending), for the compiled CLI (bin/tide.js → dist/, what users run after `npm ci`), for
 * dist/main.js run directly (without bin's freshness check of src/), and for the TypeScript
 * sources through tsx (TIDE_FROM_SOURCES=1: the CLI before it was compiled). `node -e 0` is the
 * floor; `kubectl version --client` (a Go binary, when installed) a reference. Runs are
 * interleaved (one of each per round) so that load on the machine hits every variant alike.
 *
 *   npm run bench:cli [-- --runs 15]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.ts';

const { values } = benchArgs('bench:cli', { runs: { type: 'string', default: '15' } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a positive integer, got '${values.runs}'`);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'tide.js');
const DIST = join(ROOT, 'dist', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'tide-cli-bench-'));
const [ADMIN, AGENT, TENANT] = ['bench-admin', 'bench-agent', 'bench-tenant'];
const config = join(dir, 'cluster.yaml');
writeFileSync(config, `adminToken: ${ADMIN}\nagentToken: ${AGENT}\ntenants:\n  - name: bench\n    tokens: [${TENANT}]\n`);

/** Same rule as bin/tide.js: dist/ is used only when none of the sources its .stamp lists is newer. */
function distIsFresh(): boolean {
  try {
    const stamp = join(ROOT, 'dist', '.stamp');
    const built = statSync(stamp).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(stamp, 'utf8')) as { inputs: string[] };
    return inputs.every((file) => statSync(join(ROOT, file)).mtimeMs <= built);
  } catch {
    return false;
  }
}
const build = (): void => {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
};
if (!distIsFresh()) build();

const children: ChildProcess[] = [];
function start(args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [DIST, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const server = start(['server', '--port', '0', '--data-dir', join(dir, 'server'), '--config', config, '--tick-ms', '200']);
const url = await until('the server', () => /listening on (http:\/\/\S+)/.exec(server.output())?.[1]);
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's JSON, read loosely
const api = async (method: string, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TENANT}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return res.json();
};
start(['agent', '--server', url, '--token', AGENT, '--name', 'bench-node', '--gpus', '8xH100', '--simulate', '--data-dir', join(dir, 'agent'), '--heartbeat-ms', '500']);
await until('the agent', async () => ((await api('GET', '/v1/nodes')).nodes?.length ? true : undefined));
const ids: string[] = [];
for (let i = 0; i < 20; i++) ids.push((await api('POST', '/v1/jobs', { name: `bench-${i}`, tasks: [{ gpus: 1, command: 'sleep 300' }] })).jobs[0].id);
await until('8 running jobs', async () => ((await api('GET', '/v1/jobs?state=running')).jobs.length >= 8 ? true : undefined));

interface Variant {
  readonly name: string;
  readonly argv: (args: string[]) => [string, string[]];
  readonly env?: Record<string, string>;
  /** Measures bin's choice of dist/: a run during which src/ changed (bin may have run tsx) is dropped. */
  readonly viaBin?: boolean;
}
const specFile = join(dir, 'spec.yaml');
writeFileSync(specFile, 'name: train\ntimeLimit: 2h\ntasks:\n  - replicas: 4\n    gpus: 8\n    memory: 64Gi\n    command: python train.py\n    env: {LR: 0.1}\n');
/** `tide validate` reads and checks a spec locally (YAML, the schema through Ajv); no server. */
const tideArgs = (cmd: string): string[] => (cmd === '--version' ? ['--version'] : cmd === 'validate' ? ['validate', specFile] : [cmd, '--server', url, '--token', TENANT]);
const variants: Variant[] = [
  { name: 'compiled (bin → dist)', argv: (a) => [process.execPath, [BIN, ...a]], viaBin: true },
  { name: 'dist/main.js direct', argv: (a) => [process.execPath, [DIST, ...a]] },
  { name: 'tsx (before)', argv: (a) => [process.execPath, [BIN, ...a]], env: { TIDE_FROM_SOURCES: '1' } },
];
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
type Series = { label: string; path: string; ms: number[]; cpuMs: number[] };
const series: Series[] = [{ label: 'node -e 0', path: 'floor', ms: [], cpuMs: [] }];
for (const cmd of ['--version', 'jobs', 'nodes', 'validate']) for (const v of variants) series.push({ label: `tide ${cmd}`, path: v.name, ms: [], cpuMs: [] });
if (kubectl) series.push({ label: 'kubectl version --client', path: 'reference (Go)', ms: [], cpuMs: [] });

/**
 * CPU time (user + system) of this process's reaped children so far, in ms, from /proc (Linux;
 * clock ticks, usually 10 ms: the mean over many runs is still fine). Wall time on a busy
 * machine is mostly waiting for a core; CPU time is what a start costs on an idle one.
 */
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
function childrenCpuMs(): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[13]) + Number(fields[14])) * TICK_MS; // cutime, cstime (fields 16, 17)
  } catch {
    return NaN;
  }
}

let dropped = 0;
function time(file: string, args: string[], env: Record<string, string> = {}): { ms: number; cpuMs: number } {
  const cpu = childrenCpuMs();
  const t = process.hrtime.bigint();
  const r = spawnSync(file, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return { ms, cpuMs: childrenCpuMs() - cpu };
}
const record = (s: Series | undefined, m: { ms: number; cpuMs: number }): void => {
  s?.ms.push(m.ms);
  s?.cpuMs.push(m.cpuMs);
};

const loadBefore = loadavg().map((l) => l.toFixed(1)).join(' ');
try {
  for (let run = 0; run < RUNS; run++) {
    // Another edit under src/ would send bin to tsx: rebuild so that the compiled path is measured.
    if (!distIsFresh()) build();
    let i = 0;
    record(series[i++], time(process.execPath, ['-e', '0']));
    for (const cmd of ['--version', 'jobs', 'nodes', 'validate']) {
      for (const v of variants) {
        const [file, args] = v.argv(tideArgs(cmd));
        if (v.viaBin && !distIsFresh()) build();
        const m = time(file, args, v.env);
        if (v.viaBin && !distIsFresh()) dropped++;
        else record(series[i], m);
        i++;
      }
    }
    if (kubectl) record(series[i++], time('kubectl', ['version', '--client']));
    process.stderr.write(`\rround ${run + 1}/${RUNS}`);
  }
  process.stderr.write('\n');
} finally {
  await Promise.all(ids.map((id) => api('POST', `/v1/jobs/${id}/cancel`).catch(() => undefined)));
  await until('the jobs to stop', async () => ((await api('GET', '/v1/jobs?state=running,admitted')).jobs.length === 0 ? true : undefined), 20_000).catch(() => undefined);
  for (const c of children.reverse()) {
    c.kill('SIGTERM');
    await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
  }
  rmSync(dir, { recursive: true, force: true });
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
};
const floor = quantile(series[0]?.ms ?? [], 0.5);
const tsxMedian = new Map(series.filter((s) => s.path === 'tsx (before)').map((s) => [s.label, quantile(s.ms, 0.5)]));
const rows = [['command', 'path', 'median ms', 'p90 ms', '× node -e 0', 'tsx ÷ this', 'CPU ms (mean)']];
for (const s of series) {
  const med = quantile(s.ms, 0.5);
  const tsx = tsxMedian.get(s.label);
  const cpu = s.cpuMs.reduce((a, b) => a + b, 0) / s.cpuMs.length;
  rows.push([s.label, s.path, med.toFixed(0), quantile(s.ms, 0.9).toFixed(0), (med / floor).toFixed(2), tsx === undefined ? '' : (tsx / med).toFixed(1), Number.isNaN(cpu) ? '-' : cpu.toFixed(0)]);
}
const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
console.log(`CLI start-up, ${RUNS} runs each, interleaved (server with 1 agent and 20 jobs); load average ${loadBefore} before, ${loadavg().map((l) => l.toFixed(1)).join(' ')} after${dropped ? `; ${dropped} compiled runs dropped (src/ changed meanwhile)` : ''}`);
for (const r of rows) console.log(r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '));
