/**
 * Control-plane benchmark: HTTP submissions per second into a real server (SQLite by default,
 * PostgreSQL with --database-url), then the scheduling loop's cycle time (snapshot → jobs core →
 * apply) with 10,000 pending jobs on a 128-node, 1,024-GPU cluster: once full (every job gets a
 * pending reason) and once with free capacity (binds applied).
 *
 *   npm run bench:server [-- --jobs 10000 --concurrency 16 --database-url postgres://…]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from '../src/server/server.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' },
    nodes: { type: 'string', default: '128' },
    'database-url': { type: 'string' },
  },
});
const JOBS = Number(values.jobs);
const CONCURRENCY = Number(values.concurrency);
const NODES = Number(values.nodes);
const dir = mkdtempSync(join(tmpdir(), 'tide-bench-'));
const ADMIN = 'bench-admin-token';

const server = await startServer({
  dataDir: dir,
  ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
  port: 0,
  adminToken: ADMIN,
  agentToken: 'bench-agent-token',
  tickMs: 3_600_000, // the benchmark drives cycles itself
  log: (line) => console.error(line),
});
const store = server.store;
const now = Date.now();
for (let n = 0; n < NODES; n++) {
  await store.registerNode(
    { id: `node-${String(n).padStart(4, '0')}`, address: 'http://127.0.0.1:1', cpuMilli: 128_000, memoryMib: 1024 * 1024, gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, model: n % 2 ? 'A100' : 'H100', memoryMib: 81920, uuid: `u-${n}-${i}` })), simulated: true },
    now,
  );
}

// 1. Submissions over HTTP, from a separate process (the server keeps running its loop).
const loadScript = join(dirname(fileURLToPath(import.meta.url)), 'serverLoad.ts');
const child = spawn(process.execPath, ['--import', 'tsx', loadScript, server.url, ADMIN, String(JOBS), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] });
let loadOut = '';
child.stdout.on('data', (d: Buffer) => (loadOut += d.toString()));
const status = await new Promise<number | null>((r) => child.on('exit', r));
if (status !== 0) throw new Error(`load generator failed: ${loadOut}`);
const submitSeconds = Number(loadOut.trim());

// The nodes' agents would have kept heartbeating meanwhile.
for (const n of await store.listNodes()) await store.heartbeat(n.id, [], [], Date.now());
const cycles: number[] = [];
for (let c = 0; c < 5; c++) {
  const start = performance.now();
  await server.loop.tick(); // renews the lease, then snapshot → core → apply
  cycles.push((performance.now() - start) / 1000);
}
const counts = await store.jobStateCounts();
const report = {
  database: store.dialect,
  jobs: JOBS,
  concurrency: CONCURRENCY,
  cluster: `${NODES} nodes x 8 GPUs`,
  submissionsPerSecond: Math.round(JOBS / submitSeconds),
  firstCycleSecondsWithBinds: Number(cycles[0]?.toFixed(3)),
  steadyCycleSeconds: Number((cycles.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, cycles.length - 1)).toFixed(3)),
  admitted: counts['admitted'] ?? 0,
  pending: counts['pending'] ?? 0,
};
console.log(JSON.stringify(report, null, 2));
await server.close();
rmSync(dir, { recursive: true, force: true });
