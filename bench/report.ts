/**
 * How fast `tide report` answers over many usage records (docs/energy.md; target: < 2 s over
 * 1 million). Fills task_attempts (migration 009) with seeded records — 50 tenants, 20 queues,
 * 1,000 nodes, 4 GPU models, starts over 90 days, runs of 1 minute to a day, about half of the
 * jobs with a second attempt — folds the finished ones into the hourly and daily rollups (as the
 * server does every 10 minutes), then starts a real server on that database and times GET
 * /v1/usage over HTTP: by tenant, queue and model over all time, this month, 30 days to the hour
 * and windows cut to the minute (rollups, partial hours at the edges, and the records since the
 * watermark), by job (the records themselves), and one tenant's month as a budget check reads it. Each is asked 3 times; the table shows the median, the
 * slowest and the median CPU time of this process (server and client), which on a loaded
 * machine says more than the wall time.
 *
 *   npm run bench:report                        # 1,000,000 records, SQLite
 *   npm run bench:report -- --records 200000    # fewer
 *   npm run bench:report -- --postgres          # a throwaway PostgreSQL (initdb)
 *   npm run bench:report -- --database-url postgres://…   # a schema of its own, dropped after
 *   npm run bench:report -- --out report-bench.json
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/core/rng.ts';
import { startServer } from '../src/server/server.ts';
import { PostgresDb, SqliteDb, type Param, type SqlDb } from '../src/store/sqlDb.ts';
import { SqlStore } from '../src/store/sqlStore.ts';
import { callJson } from '../src/util/httpJson.ts';
import { benchArgs, intFlag, usageError } from './args.ts';
import { benchDatabase } from './database.ts';

const SCRIPT = 'bench:report';
const { values } = benchArgs(SCRIPT, {
  records: { type: 'string', default: '1000000' },
  postgres: { type: 'boolean', default: false },
  'database-url': { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string', default: '1' },
});
const total = intFlag(SCRIPT, 'records', values.records, 1_000_000);
if (total < 1000) usageError(SCRIPT, `--records: at least 1000, got ${total}`);

const tty = process.stderr.isTTY;
const progress = (line: string): void => {
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
};
const say = (line: string): void => {
  if (tty) process.stderr.write('\r\x1b[K');
  console.error(line);
};

const database = await benchDatabase({ postgres: values.postgres, databaseUrl: values['database-url'] });
const databaseUrl = database.url;
const stopPostgres = database.stop;
const dir = mkdtempSync(join(tmpdir(), 'tide-report-bench-'));
const dialect = databaseUrl ? 'postgres' : 'sqlite';

const DAY = 86_400_000;
/** The records end by now (to the hour), as a live cluster's would. */
const now = Math.floor(Date.now() / 3_600_000) * 3_600_000;
const MODELS = ['H100', 'A100', 'L40S', 'T4'];
const WATTS: Record<string, number> = { H100: 550, A100: 320, L40S: 280, T4: 55 };

/** Fills task_attempts with `total` seeded records, in transactions of 50,000 rows. */
async function fill(db: SqlDb): Promise<number> {
  const rng = Rng.fromSeed(Number(values.seed));
  const cols = ['job_id', 'idx', 'attempt', 'node_id', 'gpus', 'gpu_milli', 'bound_at', 'started_at', 'finished_at', 'exit_code', 'end_reason', 'tenant', 'queue', 'gpu_model', 'energy_j', 'idle_j', 'kwh', 'energy_yuan', 'co2_g'];
  const perStatement = db.dialect === 'sqlite' ? 1000 : 2000;
  const rowSql = (i: number): string => `(${cols.map((_, c) => `$${i * cols.length + c + 1}`).join(', ')})`;
  const statement = (rows: number): string => `INSERT INTO task_attempts (${cols.join(', ')}) VALUES ${Array.from({ length: rows }, (_, i) => rowSql(i)).join(', ')}`;
  const full = statement(perStatement);
  const start = performance.now();
  let made = 0;
  let job = 0;
  while (made < total) {
    await db.tx(async (tx) => {
      for (let inTx = 0; inTx < 50_000 && made < total; ) {
        const params: Param[] = [];
        let rows = 0;
        while (rows < perStatement && made < total) {
          job++;
          const attempts = rng.float() < 0.5 ? 2 : 1;
          const gpus = [1, 1, 2, 4, 8, 0.5][Math.floor(rng.float() * 6)] as number;
          const model = MODELS[Math.floor(rng.float() * MODELS.length)] as string;
          let startedAt = now - Math.floor(rng.float() * 90 * DAY);
          for (let a = 0; a < attempts && rows < perStatement && made < total; a++) {
            const seconds = 60 + Math.floor(rng.float() * 86_400);
            const finishedAt = Math.min(now, startedAt + seconds * 1000);
            const energy = WATTS[model] as number * gpus * ((finishedAt - startedAt) / 1000) * (0.6 + 0.4 * rng.float());
            params.push(job, 0, a, `n${job % 1000}`, '[0]', Math.round(gpus * 1000), startedAt - 1000, startedAt, finishedAt, a + 1 < attempts ? 143 : 0, a + 1 < attempts ? 'stopped' : 'exited', `t${job % 50}`, `q${job % 20}`, model, energy, energy * 0.05, (energy * 1.56) / 3.6e6, (energy * 1.56 * 0.65) / 3.6e6, (energy * 1.56 * 536.6) / 3.6e6);
            startedAt = finishedAt + 60_000;
            rows++;
            made++;
          }
        }
        await tx.run(rows === perStatement ? full : statement(rows), params);
        inTx += rows;
      }
    });
    progress(`filling: ${made.toLocaleString('en')} / ${total.toLocaleString('en')} records`);
  }
  say(`filled ${made.toLocaleString('en')} records into ${dialect} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  return made;
}

const db: SqlDb = databaseUrl ? new PostgresDb(databaseUrl) : new SqliteDb(join(dir, 'tide.db'));
const store = new SqlStore(db);
await store.migrate();
await fill(db);
if (db.dialect === 'postgres') await db.exec('ANALYZE task_attempts');
// What the server does every 10 minutes as records finish: here all at once.
const rollStart = performance.now();
const folded = await store.rollUpUsage(now, 8);
const rollupS = (performance.now() - rollStart) / 1000;
say(`rolled ${folded.toLocaleString('en')} finished records up into hourly and daily sums in ${rollupS.toFixed(1)} s`);
await db.close();

const ADMIN = 'bench-report-admin';
const server = await startServer({ dataDir: dir, ...(databaseUrl ? { databaseUrl } : {}), port: 0, adminToken: ADMIN, agentToken: 'bench-report-agent', tickMs: 3_600_000, config: { adminToken: null, agentToken: null, tenants: [{ name: 't7', tokens: ['bench-report-t7'] }], queues: [] } });

const monthStart = new Date(now + 8 * 3_600_000);
const month = Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth(), 1) - 8 * 3_600_000;
const QUERIES: readonly { name: string; path: string; token?: string }[] = [
  { name: 'by tenant, all time', path: '/v1/usage?by=tenant&from=0' },
  { name: 'by queue, all time', path: '/v1/usage?by=queue&from=0' },
  { name: 'by model, all time', path: '/v1/usage?by=model&from=0' },
  { name: 'by tenant, this month (rollups + records)', path: `/v1/usage?by=tenant&from=${month}&to=${now}` },
  { name: 'by tenant, last 30 days to the hour', path: `/v1/usage?by=tenant&from=${now - 30 * DAY}&to=${now}` },
  { name: 'by tenant, 30 days cut to the minute', path: `/v1/usage?by=tenant&from=${now - 30 * DAY - 17 * 60_000}&to=${now - 43 * 60_000}` },
  { name: 'by queue, 7 days cut to the minute, ending 3 days ago', path: `/v1/usage?by=queue&from=${now - 10 * DAY + 7 * 60_000}&to=${now - 3 * DAY - 29 * 60_000}` },
  { name: 'by model, 20 minutes inside one hour', path: `/v1/usage?by=model&from=${now - 5 * DAY + 20 * 60_000}&to=${now - 5 * DAY + 40 * 60_000}` },
  { name: 'by job, last 7 days (first 1000; records)', path: `/v1/usage?by=job&from=${now - 7 * DAY}&to=${now}&limit=1000` },
  { name: 'by job, all time (first 1000; records)', path: '/v1/usage?by=job&from=0&limit=1000' },
  { name: 'by node, 30 days cut to the minute (records)', path: `/v1/usage?by=node&from=${now - 30 * DAY - 17 * 60_000}&to=${now - 43 * 60_000}` },
  { name: 'one tenant, this month (as budgets read it)', path: `/v1/usage?by=tenant&from=${month}&to=${now}`, token: 'bench-report-t7' },
];
const results: { name: string; medianS: number; maxS: number; cpuS: number; rows: number; records: number }[] = [];
try {
  for (const q of QUERIES) {
    const times: number[] = [];
    const cpus: number[] = [];
    let rows = 0;
    let records = 0;
    for (let i = 0; i < 3; i++) {
      progress(`${q.name}: run ${i + 1}/3`);
      const t = performance.now();
      // The server runs in this process: its CPU time (and the client's) while the answer is made.
      const c = process.cpuUsage();
      const r = await callJson(server.url, 'GET', q.path, { token: q.token ?? ADMIN, timeoutMs: 600_000 });
      const u = process.cpuUsage(c);
      cpus.push((u.user + u.system) / 1e6);
      times.push((performance.now() - t) / 1000);
      if (r.status !== 200) throw new Error(`${q.path}: ${r.status} ${r.text.slice(0, 300)}`);
      const body = r.json as { rows: unknown[]; totals: { records: number } };
      rows = body.rows.length;
      records = body.totals.records;
    }
    times.sort((a, b) => a - b);
    cpus.sort((a, b) => a - b);
    results.push({ name: q.name, medianS: times[1] as number, maxS: times[2] as number, cpuS: cpus[1] as number, rows, records });
    say(`${q.name}: median ${(times[1] as number).toFixed(3)} s, slowest ${(times[2] as number).toFixed(3)} s, CPU ${(cpus[1] as number).toFixed(3)} s (${rows} rows, ${records.toLocaleString('en')} records started in the window)`);
  }
} finally {
  await server.close();
  await stopPostgres();
  rmSync(dir, { recursive: true, force: true });
}

const width = Math.max(...results.map((r) => r.name.length));
console.log(`\nGET /v1/usage over ${total.toLocaleString('en')} usage records (${dialect}; hourly and daily rollup of them: ${rollupS.toFixed(1)} s, once; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}); target < 2 s\n`);
console.log(`${'query'.padEnd(width)}  median s  slowest s  CPU s  rows  records started in window`);
for (const r of results) console.log(`${r.name.padEnd(width)}  ${r.medianS.toFixed(3).padStart(8)}  ${r.maxS.toFixed(3).padStart(9)}  ${r.cpuS.toFixed(3).padStart(5)}  ${String(r.rows).padStart(4)}  ${r.records.toLocaleString('en').padStart(24)}`);
if (values.out) writeFileSync(values.out, `${JSON.stringify({ records: total, dialect, rollupSeconds: rollupS, loadAverage: loadavg(), queries: results }, null, 2)}\n`);
