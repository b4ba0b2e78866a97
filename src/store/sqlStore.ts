/**
 * The Store on SQL: one implementation for every SqlDb adapter (SQLite file, SQLite in memory,
 * PostgreSQL). Lifecycle rules come from store/lifecycle.ts; every method is one transaction.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { taskCount, jobGpuMilli, type JobSpec } from '../api/spec.ts';
import { TERMINAL_JOB_STATES, type EnergyReport, type GpuTelemetry, type Job, type JobArray, type JobEvent, type NodeInfo, type Task, type TaskAssignment, type TaskAttempt, type TaskReport, type TaskState } from '../api/types.ts';
import { deleteIdleGpus, selectIdleGpus, upsertIdleGpus } from './idleGpus.ts';
import { judgeJob, runIdOf } from './lifecycle.ts';
import { OPEN_JOBS_Q, OpenJobsMirror, type InsertedJob, type ReasonTaken, type VersionRange } from './openJobs.ts';
import { ActiveTasksMirror, activeTaskOf } from './activeTasks.ts';
import { NodeTasksView, type NodeTasks } from './nodeTasksView.ts';
import { Q, OPEN_JOBS_IN, readVersionWatermark } from './queries.ts';
import { RunInfoCache, type ChangedJob, type RunInfo, type RunRow } from './runInfoCache.ts';
import { asleepNodes, setNodePower } from './nodePower.ts';
import type { EnergyPrices } from '../core/energy/pricing.ts';
import { getHistory, historySummaries, putHistory } from './serviceHistory.ts';
import { applyEnergy, applyServed, deleteBudget, listBudgets, nodeEnergy, putBudget, usageGroups, type Budget, type BudgetPeriod, type NodeEnergy, type ServedReport, type UsageGroup, type UsageQuery } from './usage.ts';
import { rollUp } from './usageRollup.ts';
import { addStateCount, arrayFromRows, attemptFromRow, eventFromRow, jobFromRow, NodeInfoCache, parseSpec, taskFromRow, useByNode, type ArrayRow, type AttemptRow, type EventRow, type JobRow, type NodeRow, type StateCount, type TaskRow } from './rows.ts';
import { PostgresDb, SqliteDb, type Param, type SqlDb } from './sqlDb.ts';
import type { WalCheckpoints } from './walCheckpoints.ts';
import type { ServiceHistorySummary } from '../api/serviceHistory.ts';
import { countingDb, SqlStats } from './sqlStats.ts';
import { HeartbeatWrites, type EnergyWrite, type HeartbeatWrite } from './heartbeatWrites.ts';
import { TokenCache } from './tokenCache.ts';
import { TokenUses, withUse } from './tokenUses.ts';
import { ReadCache } from './readCache.ts';
import { GroupCommit, type Outcome } from './groupCommit.ts';
import { InTurn } from '../util/inTurn.ts';
import type { ActiveTask, AppliedPlan, BootstrapResult, EventFilter, FinishedCursor, FinishedRun, IdleGpuKey, IdleGpuRecord, JobEventInput, JobFilter, LeaseRenewal, ModelQuota, NodePowerState, NodeRegistration, QueueConfig, ReplicaRecord, Role, ServiceDecisionRecord, ServiceRecord, Store, StoreSnapshot, SubmitResult, TokenInfo, TokenOwner, UsageBucket } from './store.ts';

/** How long the node list may be answered again while nothing but heartbeats changed; until the second, while it is read again in the background. */
const NODE_LIST_MS = 1000;
const NODE_LIST_STALE_MS = 3000;
const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
export const SCHEDULER_LEASE = 'scheduler';
/** Base of the rendezvous ports handed to gang tasks (MASTER_PORT and peers). */
const PEER_PORT_BASE = 29500;

interface EventInput {
  type: string;
  jobId?: number | string | null;
  nodeId?: string | null;
  tenant?: string | null;
  message: string;
}

export class SqlStore implements Store {
  /** The open jobs between snapshots, updated from the jobs changed since (store/openJobs.ts). */
  private readonly openJobs = new OpenJobsMirror();
  /** The active tasks between reads, updated from the tasks changed since (store/activeTasks.ts). */
  private readonly activeTasks = new ActiveTasksMirror();
  /** Every node's state and active tasks, for quiet heartbeats (store/nodeTasksView.ts). */
  readonly nodeTasks = new NodeTasksView();
  /** Nodes as built, while their rows and use are unchanged (rows.ts). */
  private readonly nodeInfos = new NodeInfoCache();
  /** How GET /v1/nodes and the others were answered (listNodes): the kept list, the kept list with the tasks' use brought up to date, or a list read before answering; and the lists read in the background. */
  readonly nodeListCounts = { kept: 0, used: 0, read: 0, background: 0 };
  /** Per job attempt, what heartbeat answers need of the job (store/runInfoCache.ts). */
  private readonly runInfo = new RunInfoCache();
  /** What the store asked of the database (sqlStats.ts), for benchmarks. */
  readonly sqlStats = new SqlStats();
  private readonly db: SqlDb;
  /** Quiet heartbeats' writes, committed together (store/heartbeatWrites.ts). */
  readonly heartbeatWrites: HeartbeatWrites;
  /** Known tokens by hash, for a few seconds (store/tokenCache.ts). */
  private readonly tokens = new TokenCache<TokenOwner & TokenInfo>();
  /** Tokens' last uses, written together (store/tokenUses.ts). */
  private readonly tokenUses = new TokenUses((uses) => this.writeTokenUses(uses), tokenId);
  /** Read on nearly every request; kept 1 s, or until this server changes them (store/readCache.ts). */
  private readonly queues = new ReadCache<QueueConfig[]>();
  private readonly tenants = new ReadCache<string[]>();
  private readonly nodesVersions = new ReadCache<string>();
  /** Bumped by every write of this server that changes a node's row other than its heartbeat (the node list's cache, below). */
  private nodesEpoch = 0;
  /**
   * The kept node list (listNodes): read at `at` under `epoch`; its use from `tasks`, read at
   * `tasksAt` when this server's task writes numbered `taskWrites`.
   */
  private nodeList: { at: number; epoch: number; tasks: readonly ActiveTask[]; taskWrites: number; tasksAt: number; list: NodeInfo[] } | null = null;
  /** This server's writes that may change tasks, counted (tasksWrite; a node write changes nodesEpoch, which the kept list checks too). */
  private taskWrites = 0;
  /** Told of each node list read in the background (observeNodeLists). */
  private readonly nodeListObservers: ((list: readonly NodeInfo[]) => void)[] = [];
  /** The node list's read in the background (listNodes), one at a time. */
  private nodeListBuild: Promise<unknown> | null = null;
  /** Snapshots one at a time (snapshot). */
  private readonly snapshots = new InTurn();
  /** Concurrent submissions, committed together (store/groupCommit.ts). */
  readonly submits = new GroupCommit<SubmitRequest, SubmitResult>((items) => this.submitBatch(items), ARRAY_CHUNK);

  /** Lease renewals, many nodes to a transaction that goes ahead of the queued ones (renewNodeLease). */
  private readonly renewals = new GroupCommit<{ readonly node: string; readonly at: number }, LeaseRenewal>((items) => this.renewTogether(items), 2000);

  /** SQLite's COMMITs and its checkpoints on their own thread (store/walCheckpoints.ts), for benchmarks; null on PostgreSQL. */
  readonly sqliteWrites: { readonly commits: SqliteDb['commits']; readonly checkpoints: WalCheckpoints | null } | null;

  constructor(db: SqlDb) {
    this.db = countingDb(db, this.sqlStats);
    this.sqliteWrites = db instanceof SqliteDb ? { commits: db.commits, checkpoints: db.checkpoints } : null;
    this.heartbeatWrites = new HeartbeatWrites(
      (rows, energy) => this.writeHeartbeats(rows, energy),
      async (e) => void (await this.recordEnergy(e.node, e.report, e.at, e.prices)),
    );
  }

  get dialect(): 'sqlite' | 'postgres' {
    return this.db.dialect;
  }

  async migrate(): Promise<void> {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    await this.db.tx(async (db) => {
      // Two servers starting at once on PostgreSQL: the advisory lock makes one wait.
      if (db.dialect === 'postgres') await db.exec('SELECT pg_advisory_xact_lock(727274)');
      await db.exec(Q.createMigrations);
      const done = new Set((await db.all<{ version: number }>(Q.appliedMigrations)).map((r) => Number(r.version)));
      for (const f of files) {
        const version = Number(f.split('_')[0]);
        if (done.has(version)) continue;
        // NNN_name.sqlite.sql / NNN_name.postgres.sql: one migration written once per dialect.
        const only = /\.(sqlite|postgres)\.sql$/.exec(f)?.[1];
        if (only !== undefined && only !== db.dialect) continue;
        const serial = db.dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
        await db.exec(readFileSync(join(MIGRATIONS_DIR, f), 'utf8').replaceAll('{{serial}}', serial));
        await db.run(Q.recordMigration, [version, Date.now()]);
      }
    });
  }

  async close(): Promise<void> {
    await this.nodeListBuild;
    await this.heartbeatWrites.flush();
    await this.tokenUses.flush();
    await this.db.close();
  }

  async ensureTenant(name: string, now: number): Promise<void> {
    this.tenants.invalidate();
    await this.db.run(Q.ensureTenant, [name, now]);
    this.tenants.invalidate();
  }
  async listTenants(): Promise<string[]> {
    return [...(await this.tenants.get(async () => (await this.db.all<{ name: string }>(Q.listTenants)).map((r) => r.name)))];
  }
  /** A write to tokens: the token cache is emptied before and after it. */
  private async tokenWrite<T>(fn: () => Promise<T>): Promise<T> {
    this.tokens.clear();
    try {
      return await fn();
    } finally {
      this.tokens.clear();
    }
  }
  async putToken(hash: string, owner: TokenOwner, now: number, expiresAt: number | null = null): Promise<void> {
    await this.tokenWrite(() => this.db.run(Q.putToken, [hash, owner.role, owner.tenant, now, tokenId(hash), owner.node ?? null, expiresAt]));
  }
  async findToken(hash: string): Promise<(TokenOwner & TokenInfo) | null> {
    await this.tokens.current((since) => this.changedTokens(since));
    const at = Date.now();
    const hit = this.tokens.get(hash, at);
    if (hit) return hit;
    const generation = this.tokens.readGeneration;
    const r = await this.db.get<TokenRow>(Q.findToken, [hash]);
    if (!r) return null;
    const t = withUse(tokenFromRow(r), this.tokenUses.of(hash));
    this.tokens.set(hash, t, at, generation);
    return t;
  }
  /** The jobs changed since a watermark (null: none yet, only the watermark is read), and the next watermark. */
  private async changedJobs(since: number | null): Promise<{ next: number; rows: ChangedJob[] }> {
    const next = await readVersionWatermark(this.db, 'jobs');
    const rows = since === null ? [] : await this.db.all<ChangedJob>(Q.jobsChangedSince, [since]);
    return { next, rows };
  }
  /**
   * The tokens changed since a watermark (null: none yet, only the watermark is read), and the next
   * watermark. Every request waits for this check (every 250 ms): it goes ahead of queued work, or
   * a burst's queue would hold every request, a lease renewal's too.
   */
  private async changedTokens(since: number | null): Promise<{ next: number; hashes: string[] }> {
    return this.db.tx(async (db) => {
      const next = await readVersionWatermark(db, 'tokens');
      const hashes = since === null ? [] : (await db.all<{ hash: string }>(Q.tokensChangedSince, [since])).map((r) => r.hash);
      return { next, hashes };
    }, { urgent: true });
  }
  async touchToken(hash: string, now: number): Promise<void> {
    this.tokenUses.add(hash, now);
    this.tokens.update(hash, (t) => (t.lastUsedAt !== null && t.lastUsedAt > now - 60_000 ? t : { ...t, lastUsedAt: now }));
  }
  /** Waiting last uses, 100 to a statement (tokenUses.ts). */
  private async writeTokenUses(uses: readonly (readonly [string, number])[]): Promise<void> {
    for (let i = 0; i < uses.length; i += 100) {
      const part = uses.slice(i, i + 100);
      await this.db.run(Q.touchTokens(part.length), part.flat());
    }
  }
  async listTokens(): Promise<TokenInfo[]> {
    const waiting = this.tokenUses.waitingById();
    return (await this.db.all<TokenRow>(Q.listTokens)).map((r) => withUse(tokenFromRow(r), waiting.get(r.id)));
  }
  async revokeToken(id: string, now: number): Promise<TokenInfo | null> {
    return this.tokenWrite(() =>
      this.db.tx(async (db) => {
        await db.run(Q.revokeToken, [id, now]);
        const r = await db.get<TokenRow>(Q.tokenById, [id]);
        return r ? withUse(tokenFromRow(r), this.tokenUses.waitingById().get(r.id)) : null;
      }),
    );
  }
  async revokeRoleExcept(role: Role, keepHashes: readonly string[], now: number): Promise<string[]> {
    return (await this.tokenWrite(() => this.db.all<{ id: string }>(Q.revokeRoleExcept(keepHashes.length), [role, now, ...keepHashes]))).map((r) => r.id);
  }
  async nodeHasCredential(nodeId: string): Promise<boolean> {
    return (await this.db.get<{ id: string }>(Q.liveNodeCredential, [nodeId])) !== undefined;
  }
  async resetNodeCredential(nodeId: string, now: number): Promise<string[]> {
    return this.tokenWrite(() =>
      this.db.tx(async (db) => {
        const ids = (await db.all<{ id: string }>(Q.resetNodeCredential, [nodeId, now])).map((r) => r.id);
        if (ids.length) await this.event(db, now, { type: 'node:credential-reset', nodeId, message: `credential ${ids.join(', ')} revoked: the node's next bootstrap registration gets a new one` });
        return ids;
      }),
    );
  }
  async putQueue(q: QueueConfig, now: number): Promise<void> {
    this.queues.invalidate();
    await this.db.run(Q.putQueue, [q.name, q.gpuQuota, q.borrowingLimit, now, q.tenants === undefined ? null : JSON.stringify(q.tenants), q.cohort ?? null, modelQuotasColumn(q)]);
    this.queues.invalidate();
  }
  async listQueues(): Promise<QueueConfig[]> {
    return [...(await this.queues.get(async () => (await this.db.all<QueueRow>(Q.listQueues)).map(queueFromRow)))];
  }

  submit(tenant: string, spec: JobSpec, clientKey: string | null, now: number, beforeCreate?: () => void): Promise<SubmitResult> {
    return this.submits.run({ tenant, spec, clientKey, now, ...(beforeCreate ? { beforeCreate } : {}) });
  }

  /**
   * Submissions that came together, in one transaction (store/groupCommit.ts): their client keys
   * read at once and their jobs, tasks and events in shared statements (`submitTogether`). Where
   * a service is among them, two share a client key, or a shared statement fails (another server
   * won a key), each goes behind a savepoint instead, so that one refused (its `beforeCreate`
   * throws) or lost to a race undoes only its own rows. One alone runs as it always did.
   */
  private async submitBatch(items: readonly SubmitRequest[]): Promise<Outcome<SubmitResult>[]> {
    if (items.length === 1) {
      const s = items[0] as SubmitRequest;
      try {
        return [{ ok: await this.insertingTx((db, made) => this.submitIn(db, s, made)) }];
      } catch (e) {
        return [await this.raced(this.db, s, e)];
      }
    }
    if (!items.some((s) => s.spec.service) && keysDistinct(items)) {
      try {
        return await this.insertingTx((db, made) => this.submitTogether(db, items, made));
      } catch {
        // One by one below: each failure then undoes only its own rows.
      }
    }
    return this.db.tx(async (db) => {
      const out: Outcome<SubmitResult>[] = [];
      for (const s of items) {
        // Statements, not scripts: SQLite keeps them prepared.
        await db.run(Q.savepoint);
        try {
          out.push({ ok: await this.submitIn(db, s) });
          await db.run(Q.releaseSavepoint);
        } catch (e) {
          await db.run(Q.rollbackToSavepoint);
          await db.run(Q.releaseSavepoint);
          out.push(await this.raced(db, s, e));
        }
      }
      return out;
    });
  }

  /**
   * Submissions (no service among them) in shared statements: each one's client keys are read
   * with the others', and the new jobs of all go in ARRAY_CHUNK to a statement. A refused one
   * (`beforeCreate` throws) is left out. Throws where a statement fails, undoing them all.
   */
  private async submitTogether(db: SqlDb, items: readonly SubmitRequest[], made: InsertedJob[] | null): Promise<Outcome<SubmitResult>[]> {
    const found = await this.submittedUnderAll(db, items);
    const out: Outcome<SubmitResult>[] = [];
    const fresh: { s: SubmitRequest; hash: string | null; at: number }[] = [];
    items.forEach((s, k) => {
      const f = found[k];
      if (f) {
        out[k] = { ok: f };
        return;
      }
      try {
        s.beforeCreate?.();
      } catch (e) {
        out[k] = { error: e };
        return;
      }
      fresh.push({ s, hash: s.clientKey === null ? null : specHash(s.spec), at: k });
    });
    const jobs = await insertSubmissions(db, fresh, made);
    fresh.forEach((f, j) => (out[f.at] = { ok: { jobs: jobs[j] ?? [], created: true, conflict: false } }));
    return out;
  }

  /**
   * A transaction whose only writes to jobs are the inserts it notes in `made` (submissions
   * without a service: `made` stays empty otherwise); once it commits, the open-jobs mirror takes
   * those jobs in without reading them back (OpenJobsMirror tookInserts), and the versions the
   * transaction gave are skipped by the mirror's next read: on SQLite (one writer) the range
   * between the watermarks before and after, when `made` has a row at each of its versions; on
   * PostgreSQL the transaction's id, which every row it wrote carries.
   */
  private async insertingTx<T>(fn: (db: SqlDb, made: InsertedJob[]) => Promise<T>): Promise<T> {
    const made: InsertedJob[] = [];
    let range: VersionRange | null = null;
    const result = await this.db.tx(async (db) => {
      if (db.dialect === 'postgres') {
        const out = await fn(db, made);
        const x = made[0]?.version;
        if (x !== undefined && made.every((m) => m.version === x)) range = { from: x, to: x + 1 };
        return out;
      }
      const from = await readVersionWatermark(db, 'jobs');
      const out = await fn(db, made);
      const to = await readVersionWatermark(db, 'jobs');
      const versions = new Set(made.map((m) => m.version));
      if (to > from && versions.size === to - from && made.every((m) => m.version >= from && m.version < to)) range = { from, to };
      return out;
    });
    if (made.length) this.openJobs.tookInserts(made, range);
    return result;
  }

  /** A submission's error: when it lost a race for its client key, the winner's jobs instead. */
  private async raced(db: SqlDb, s: SubmitRequest, e: unknown): Promise<Outcome<SubmitResult>> {
    if (s.clientKey !== null && isUniqueViolation(e)) {
      const found = await this.submittedUnder(db, s);
      if (found) return { ok: found };
    }
    return { error: e };
  }

  /** One submission, in the caller's transaction. */
  private async submitIn(db: SqlDb, s: SubmitRequest, made: InsertedJob[] | null = null): Promise<SubmitResult> {
    const { tenant, spec, clientKey, now } = s;
    const found = await this.submittedUnder(db, s);
    if (found) return found;
    s.beforeCreate?.();
    const hash = clientKey === null ? null : specHash(spec);
    if (!spec.service) return { jobs: (await insertSubmissions(db, [{ s, hash }], made))[0] ?? [], created: true, conflict: false };
    // A service (never an array) runs no task itself: it is running from now until cancelled, and its controller adds its replicas.
    const row = await db.get<JobRow>(Q.insertJobs(db.dialect, 1), [tenant, spec.name, spec.queue, spec.priority, spec.kind, 0, 0, spec.preemptible ? 1 : 0, JSON.stringify(spec), clientKey, now, hash, null, null, 1]);
    if (!row) throw new Error('insert returned no row');
    await this.startService(db, row, spec.service.minReplicas, spec.service.maxReplicas, now);
    // Read again: starting it changed the row (the insert's answer has no spec).
    const started = await db.get<JobRow>(Q.jobById, [row.id]);
    const jobs = [started ? jobFromRow(started) : jobFromRow(row, spec)];
    return { jobs, created: true, conflict: false };
  }

  /**
   * The jobs the tenant already submitted under the client key, or null: also the first element
   * of an array written before migration 019 (`key#0`), so that a key reused across such an array
   * and a single job is a conflict too (clientKeysOf). Read 500 keys at a time.
   */
  private async submittedUnder(db: SqlDb, s: SubmitRequest): Promise<SubmitResult | null> {
    return (await this.submittedUnderAll(db, [s]))[0] ?? null;
  }

  /** `submittedUnder` for several submissions: their keys read together, 500 to a statement per tenant. */
  private async submittedUnderAll(db: SqlDb, items: readonly SubmitRequest[]): Promise<(SubmitResult | null)[]> {
    const keysOf = new Map<string, Set<string>>();
    for (const s of items) {
      if (s.clientKey === null) continue;
      let keys = keysOf.get(s.tenant);
      if (!keys) keysOf.set(s.tenant, (keys = new Set()));
      for (const k of clientKeysOf(s)) keys.add(k);
    }
    const byKey = new Map<string, JobRow>(); // by tenant and key
    for (const [tenant, keys] of keysOf) {
      const all = [...keys];
      for (let i = 0; i < all.length; i += 500) {
        const chunk = all.slice(i, i + 500);
        for (const r of await db.all<JobRow>(Q.jobsByClientKeys(db.dialect, chunk.length), [tenant, ...chunk])) if (r.client_key !== null) byKey.set(`${tenant}\n${r.client_key}`, r);
      }
    }
    return items.map((s) => (s.clientKey === null ? null : submissionUnder(s, (k) => byKey.get(`${s.tenant}\n${k}`))));
  }

  async getJob(id: string): Promise<Job | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    const r = await this.db.get<JobRow>(Q.jobById, [Number(id)]);
    return r ? jobFromRow(r) : null;
  }

  async listJobs(f: JobFilter): Promise<Job[]> {
    const where: string[] = [];
    const params: Param[] = [];
    const add = (clause: string, ...values: Param[]): void => {
      let text = clause;
      for (const v of values) {
        params.push(v);
        text = text.replace('?', `$${params.length}`);
      }
      where.push(text);
    };
    if (f.tenant !== undefined) add('tenant = ?', f.tenant);
    if (f.queue !== undefined) add('queue = ?', f.queue);
    if (f.kind !== undefined) add('kind = ?', f.kind);
    if (f.arrayId !== undefined) add('array_id = ?', /^\d{1,15}$/.test(f.arrayId) ? Number(f.arrayId) : -1);
    if (f.afterId !== undefined) add('id > ?', f.afterId);
    if (f.beforeId !== undefined) add('id < ?', f.beforeId);
    if (f.states && f.states.length > 0) add(`state IN (${f.states.map(() => '?').join(', ')})`, ...f.states);
    params.push(Math.min(f.limit ?? 1000, 10_000));
    const sql = `${Q.listJobsBase}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id${f.order === 'desc' ? ' DESC' : ''} LIMIT $${params.length}`;
    return (await this.db.all<JobRow>(sql, params)).map((r) => jobFromRow(r));
  }

  async listTasks(jobId: string): Promise<Task[]> {
    if (!/^\d{1,15}$/.test(jobId)) return [];
    return (await this.db.all<TaskRow>(Q.tasksOfJob, [Number(jobId)])).map(taskFromRow);
  }

  /** Jobs in `state` with an id above `afterId`: one index range (for benchmarks, which poll it). */
  async countJobs(state: string, afterId: number): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(Q.countJobsAfter, [state, afterId]))?.n ?? 0);
  }

  async jobStateCounts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of await this.db.all<StateCount>(Q.jobStateCounts)) addStateCount(out, r);
    return out;
  }

  async getArray(id: string): Promise<JobArray | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    const [row, counts] = await Promise.all([this.db.get<ArrayRow>(Q.arrayById, [Number(id)]), this.db.all<StateCount & { first: number | string }>(Q.arrayCounts, [Number(id)])]);
    return row ? arrayFromRows(row, counts) : null;
  }

  async getArrayElement(id: string, index: number): Promise<Job | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    const array = await this.db.get<ArrayRow>(Q.arrayById, [Number(id)]);
    const row = array ? await this.db.get<JobRow>(Q.arrayElement, [Number(id), elementName(array.name, index), index]) : undefined;
    return row ? jobFromRow(row) : null;
  }

  async cancelArray(id: string, by: string, now: number, only?: ReadonlySet<number>): Promise<{ cancelled: number; nodes: string[] } | null> {
    const array = /^\d{1,15}$/.test(id) ? await this.db.get<ArrayRow>(Q.arrayById, [Number(id)]) : undefined;
    if (!array) return null;
    let cancelled = 0;
    const nodes = new Set<string>();
    const reason = `its array ${id} was cancelled by ${by}`;
    // A chunk to a transaction, the request thread let go between them, so that cancelling an
    // array of 10,000 never holds SQLite's one connection long.
    for (let after = 0; ; ) {
      const page = await this.db.all<JobRow>(Q.arrayOpenJobs, [Number(id), after, ARRAY_CANCEL_CHUNK]);
      const last = page.at(-1);
      if (last === undefined) break;
      after = Number(last.id);
      await this.tasksWrite(async (db) => {
        /** The elements each job to cancel stands for. */
        const elements = new Map<number, number>();
        for (const r of page) {
          const job = jobFromRow(r);
          const first = job.arrayIndex ?? 0;
          const n = job.arrayCount ?? 1;
          let named = 0;
          for (let i = first; only && i < first + n; i++) if (only.has(i)) named++;
          // A waiting rest is split where the named elements start and stop; a range placed
          // together (one process group) is cancelled only when every element of it is named.
          if (!only || named === n) elements.set(Number(r.id), n);
          else if (named > 0 && r.state === 'pending') for (const [jobId, k] of await splitRest(db, r, only, now)) elements.set(jobId, k);
        }
        const ids = [...elements.keys()];
        if (ids.length === 0) return;
        for (const r of await db.all<{ node_id: string }>(Q.activeNodesOfJobs(ids.length), ids)) nodes.add(r.node_id);
        // The pending ones (most of a waiting array) in three statements, as cancelIn would one by
        // one (five statements each: 3.6 s for 10,000); the others (placed, running) one by one.
        const gone = await db.all<{ id: number | string; tenant: string }>(Q.cancelPendingJobs(ids.length), [reason, now, ...ids]);
        const goneIds = new Set(gone.map((r) => Number(r.id)));
        if (goneIds.size) {
          await db.run(Q.stopPendingTasksOf(goneIds.size), [now, ...goneIds]);
          await this.writeEvents(db, now, gone.map((r) => ({ type: 'job:cancelled', jobId: Number(r.id), tenant: r.tenant, message: reason })));
        }
        for (const jobId of goneIds) cancelled += elements.get(jobId) ?? 1;
        for (const jobId of ids) {
          if (goneIds.has(jobId)) continue;
          const job = await db.get<JobRow>(Q.jobById, [jobId]);
          if (job && (await this.cancelIn(db, job, reason, now))) cancelled++;
        }
      });
      await turnOfTheLoop();
    }
    return { cancelled, nodes: [...nodes] };
  }

  async cancel(id: string, by: string, now: number): Promise<Job | null> {
    return this.tasksWrite(async (db) => {
      const job = await db.get<JobRow>(Q.jobById, [Number(id)]);
      if (!job || !(await this.cancelIn(db, job, `cancelled by ${by}`, now))) return null;
      // A service ends with its replicas.
      for (const r of await db.all<{ id: number }>(Q.openReplicaIds, [job.id])) {
        const replica = await db.get<JobRow>(Q.jobById, [r.id]);
        if (replica) await this.cancelIn(db, replica, `its service ${job.id} was cancelled by ${by}`, now);
      }
      const after = await db.get<JobRow>(Q.jobById, [job.id]);
      return after ? jobFromRow(after) : null;
    });
  }

  /** Ends an unfinished job `cancelled` with `reason`: its tasks are asked to stop. False when it had finished. */
  private async cancelIn(db: SqlDb, job: JobRow, reason: string, now: number): Promise<boolean> {
    if (TERMINAL_JOB_STATES.includes(job.state as Job['state'])) return false;
    await db.run(Q.setJobState, [job.id, 'cancelled', reason, now]);
    await db.run(Q.setJobFinished, [job.id, now]);
    await db.run(Q.stopActiveTasks, [job.id]);
    await db.run(Q.stopPendingTasks, [job.id, now]);
    await this.event(db, now, { type: 'job:cancelled', jobId: job.id, tenant: job.tenant, message: reason });
    return true;
  }

  async preempt(id: string, reason: string, now: number): Promise<Job | null> {
    return this.tasksWrite(async (db) => {
      const ok = await this.preemptIn(db, Number(id), reason, now);
      if (!ok) return null;
      await this.settle(db, [Number(id)], now);
      const after = await db.get<JobRow>(Q.jobById, [Number(id)]);
      return after ? jobFromRow(after) : null;
    });
  }

  private async preemptIn(db: SqlDb, id: number, reason: string, now: number): Promise<boolean> {
    const job = await db.get<JobRow>(Q.jobById, [id]);
    // A job stopping at its time limit ends `timeout`; a preemption must not requeue it.
    if (!job || (job.state !== 'admitted' && job.state !== 'running') || job.timed_out_at !== null) return false;
    // A service itself runs nothing: it is never requeued (its replicas are jobs of their own).
    if (job.kind === 'service' && job.service_id === null) return false;
    await db.run(Q.setJobState, [id, 'preempted', reason, now]);
    await db.run(Q.stopActiveTasks, [id]);
    await this.event(db, now, { type: 'job:preempted', jobId: id, tenant: job.tenant, message: reason });
    return true;
  }

  async timeOut(id: string, reason: string, now: number): Promise<Job | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    return this.tasksWrite(async (db) => {
      if (db.dialect === 'postgres') await db.get('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [Number(id)]);
      const job = await db.get<JobRow>(Q.jobById, [Number(id)]);
      if (!job || (await db.run(Q.markTimedOut, [job.id, now, reason])) === 0) return null;
      if (job.state === 'pending') {
        // Requeued with its limit already spent: it ends here, never to run again.
        await db.run(Q.setJobState, [job.id, 'timeout', reason, now]);
        await db.run(Q.setJobFinished, [job.id, now]);
        await db.run(Q.stopPendingTasks, [job.id, now]);
        await this.event(db, now, { type: 'job:timeout', jobId: job.id, tenant: job.tenant, message: reason });
      } else {
        await db.run(Q.stopActiveTasks, [job.id]);
        const spec = JSON.parse(job.spec) as JobSpec;
        await this.event(db, now, { type: 'job:time-limit', jobId: job.id, tenant: job.tenant, message: `${reason}: stopping its tasks (SIGTERM, SIGKILL after ${spec.gracePeriodSeconds} s)` });
        await this.settle(db, [job.id], now);
      }
      const after = await db.get<JobRow>(Q.jobById, [job.id]);
      return after ? jobFromRow(after) : null;
    });
  }

  async listIdleGpus(filter: { readonly tenant?: string; readonly jobId?: string } = {}): Promise<IdleGpuRecord[]> {
    return selectIdleGpus(this.db, filter);
  }

  async saveIdleGpus(upsert: readonly IdleGpuRecord[], remove: readonly IdleGpuKey[], events: readonly JobEventInput[], now: number): Promise<void> {
    if (upsert.length === 0 && remove.length === 0 && events.length === 0) return;
    await this.db.tx(async (db) => {
      await deleteIdleGpus(db, remove);
      await upsertIdleGpus(db, upsert);
      await this.writeEvents(db, now, events);
    });
  }

  async reclaimIdle(id: string, reason: string, now: number): Promise<Job | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    return this.tasksWrite(async (db) => {
      if (db.dialect === 'postgres') await db.get('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [Number(id)]);
      const job = await db.get<JobRow>(Q.jobById, [Number(id)]);
      if (!job || (job.state !== 'admitted' && job.state !== 'running')) return null;
      const spec = JSON.parse(job.spec) as JobSpec;
      await db.run(Q.setJobState, [job.id, 'cancelled', reason, now]);
      await db.run(Q.setJobFinished, [job.id, now]);
      await db.run(Q.stopActiveTasks, [job.id]);
      await db.run(Q.stopPendingTasks, [job.id, now]);
      await this.event(db, now, { type: 'job:idle-reclaimed', jobId: job.id, tenant: job.tenant, message: `${reason}: stopping its tasks (SIGTERM, SIGKILL after ${spec.gracePeriodSeconds} s)` });
      const after = await db.get<JobRow>(Q.jobById, [job.id]);
      return after ? jobFromRow(after) : null;
    });
  }

  async listAttempts(jobId: string): Promise<TaskAttempt[]> {
    if (!/^\d{1,15}$/.test(jobId)) return [];
    return (await this.db.all<AttemptRow>(Q.attemptsOfJob, [Number(jobId)])).map(attemptFromRow);
  }

  /**
   * Snapshots one at a time (the loop's, /metrics', the services'): a catch-up waits its turn at
   * the open-jobs mirror, and the mirror's read in a snapshot's transaction must not wait behind
   * another snapshot's catch-up, which needs the connection that transaction holds.
   */
  snapshot(): Promise<StoreSnapshot> {
    return this.snapshots.run(() => this.snapshotNow());
  }

  private async snapshotNow(): Promise<StoreSnapshot> {
    // The idle monitor reads the nodes' telemetry in it (server/idle/): what was answered, as other readers do.
    await this.heartbeatWrites.flush();
    // On SQLite the jobs changed since the last snapshot are read first in pages, the one
    // connection let go between them; the transaction then reads what changed meanwhile.
    if (this.db.dialect === 'sqlite') await this.openJobs.catchUp(this.db);
    return this.db.tx(async (db) => {
      const active = await this.activeTasks.refresh(db);
      const nodes = await this.nodesIn(db, active);
      const openJobs = await this.openJobs.refresh(db);
      const queues = (await db.all<QueueRow>(Q.listQueues)).map((r) => {
        const { tenants: _, ...q } = queueFromRow(r);
        return q;
      });
      return { nodes, activeTasks: active, openJobs, queues };
    });
  }

  /**
   * Applies a plan in one transaction, fenced by the scheduler lease. Pending reasons past the
   * first REASON_CHUNK follow in transactions of their own, each fenced again, with the request
   * thread let go between them: the cycle after a burst gives 100,000 jobs a reason, and
   * writing them in the plan's transaction held SQLite's one connection (and the thread) for
   * over a second while every read waited.
   */
  async applyPlan(plan: AppliedPlan, now: number, leaseHolder?: string): Promise<boolean> {
    const first = plan.pending.slice(0, REASON_CHUNK);
    const later = plan.pending.slice(REASON_CHUNK);
    const written: ReasonTaken[] = [];
    let range: VersionRange | null = null;
    const applied = await this.applyPlanTx({ ...plan, binds: plan.binds.slice(0, APPLY_CHUNK) }, now, leaseHolder, async (db) => {
      range = await this.writeReasons(db, first, written, false);
    });
    if (applied) await this.openJobs.tookReasons(written, range);
    // The other binds APPLY_CHUNK to a transaction, each checked as the first (the job still
    // pending in the attempt planned, its GPUs free, the lease held): a deposed leader stops.
    for (let i = APPLY_CHUNK; applied && i < plan.binds.length; i += APPLY_CHUNK) {
      await turnOfTheLoop();
      const part: AppliedPlan = { binds: plan.binds.slice(i, i + APPLY_CHUNK), preemptions: [], pending: [] };
      if (!(await this.applyPlanTx(part, now, leaseHolder, async () => {}))) break;
    }
    for (let i = 0; applied && i < later.length; i += REASON_CHUNK) {
      await turnOfTheLoop();
      const batch = later.slice(i, i + REASON_CHUNK);
      const more: ReasonTaken[] = [];
      const took = await this.db.tx(async (db) => ((await this.holdsLease(db, now, leaseHolder)) ? { range: await this.writeReasons(db, batch, more, true) } : null));
      if (!took) break;
      await this.openJobs.tookReasons(more, took.range);
    }
    return applied;
  }

  /**
   * Writes a plan's pending reasons. Those of jobs the open-jobs mirror holds are written at
   * the version it holds them at (setPlanReasons), with new versions of this transaction's own:
   * on SQLite a range above every version (one writer), on PostgreSQL the transaction's id.
   * Adds them to `written`; answers the range when the mirror may skip it (store/openJobs.ts
   * tookReasons): every row in it was written here, over a job the mirror holds. On PostgreSQL
   * that is only so when the transaction wrote nothing else to jobs (`alone`): a plan's binds
   * share its transaction id.
   */
  private async writeReasons(db: SqlDb, batch: AppliedPlan['pending'], written: ReasonTaken[], alone: boolean): Promise<VersionRange | null> {
    if (batch.length === 0) return null;
    const known: { p: AppliedPlan['pending'][number]; seen: number }[] = [];
    const unknown: AppliedPlan['pending'][number][] = [];
    for (const p of batch) {
      const seen = this.openJobs.versionOf(p.jobId);
      if (seen === undefined) unknown.push(p);
      else known.push({ p, seen });
    }
    // First, so that a SQLite range below holds none of them.
    if (unknown.length) await db.run(Q.setPendingReasons(unknown.length), unknown.flatMap((p) => [Number(p.jobId), p.reason, p.estimatedStart]));
    if (known.length === 0) return null;
    const base = db.dialect === 'sqlite' ? await readVersionWatermark(db, 'jobs') : Number((await db.get<{ x: number | string }>(Q.currentTransaction))?.x);
    const versionAt = (i: number): number => (db.dialect === 'sqlite' ? base + i : base);
    const rows = await db.all<{ id: number | string }>(Q.setPlanReasons(known.length), known.flatMap(({ p, seen }, i) => [Number(p.jobId), p.reason, p.estimatedStart, seen, versionAt(i)]));
    const done = new Set(rows.map((r) => String(r.id)));
    let last = -1;
    known.forEach(({ p, seen }, i) => {
      if (!done.has(p.jobId)) return; // changed since the mirror read it (or no longer pending): read again
      written.push({ id: p.jobId, seen, version: versionAt(i), reason: p.reason, estimatedStart: p.estimatedStart });
      last = i;
    });
    if (last < 0) return null;
    // On SQLite the range ends at the last version written: later writes take MAX(version) + 1,
    // so a version given to a row that was not written, past that, may yet be another job's.
    if (db.dialect === 'sqlite') return { from: base, to: base + last + 1 };
    return alone && unknown.length === 0 ? { from: base, to: base + 1 } : null;
  }

  /** Whether `leaseHolder` (if any) holds the scheduler lease at `now`; on PostgreSQL the lease row stays locked to the transaction's end. */
  private async holdsLease(db: SqlDb, now: number, leaseHolder?: string): Promise<boolean> {
    if (leaseHolder === undefined) return true;
    const sql = db.dialect === 'postgres' ? Q.leaseHolderForUpdate : Q.leaseHolder;
    const lease = await db.get<{ holder: string; expires_at: number }>(sql, [SCHEDULER_LEASE]);
    return lease !== undefined && lease.holder === leaseHolder && lease.expires_at >= now;
  }

  /** The plan's binds, preemptions and power changes, then `more` (its first pending reasons), in one transaction. */
  private async applyPlanTx(plan: AppliedPlan, now: number, leaseHolder: string | undefined, more: (db: SqlDb) => Promise<void>): Promise<boolean> {
    // Binds change the tasks of the nodes they bind on alone; a preemption stops a job's tasks wherever they are.
    const on = plan.preemptions.length ? undefined : new Set(plan.binds.flatMap((b) => b.tasks.map((t) => t.node)));
    /** The bound single tasks' run info, as their binds wrote it: the heartbeat answers' cache gets it once the binds are in. */
    const seeds: { id: number; attempt: number; row: RunRow }[] = [];
    /** The specs of the array elements its binds made (takeElements), for the open-jobs mirror. */
    const madeSpecs = new Map<string, JobSpec>();
    const applied = await this.tasksWrite(async (db) => {
      if (!(await this.holdsLease(db, now, leaseHolder))) return false;
      for (const p of plan.preemptions) {
        // An immediate reclaim stops the job with no grace period (the agent sends SIGKILL at once after SIGTERM).
        if (p.reclaim === 'immediate') {
          await db.run(Q.setStopGrace, [Number(p.jobId), 0]);
          this.runInfo.clear();
        }
        if (await this.preemptIn(db, Number(p.jobId), p.reason, now)) await this.settle(db, [Number(p.jobId)], now);
        else if (p.reclaim === 'immediate') await db.run(Q.setStopGrace, [Number(p.jobId), null]);
      }
      // GPUs held per node (by tasks still active, including ones told to stop just above):
      // a bind onto a GPU that is not free yet waits for a later cycle. This keeps any
      // scheduler, including one that preempts and re-places in one plan, from handing out a
      // GPU whose previous process has not exited.
      // Read for every node a GPU is bound on, 500 nodes to a statement (a node per statement
      // was ~1,250 reads for an array spread over the cluster); CPU-only tasks need none.
      const held = new Map<string, number[]>();
      const gpuNodes = [...new Set(plan.binds.flatMap((b) => b.tasks.filter((t) => t.gpus.length > 0).map((t) => t.node)))];
      for (let i = 0; i < gpuNodes.length; i += SETTLE_CHUNK) {
        const part = gpuNodes.slice(i, i + SETTLE_CHUNK);
        for (const n of part) held.set(n, []);
        for (const t of await db.all<TaskRow>(Q.activeTasksOnNodes(part.length), part)) {
          const gpus = held.get(t.node_id ?? '');
          if (!gpus) continue;
          const list = JSON.parse(t.gpus) as number[];
          for (const g of list) gpus[g] = (gpus[g] ?? 0) + t.gpu_milli / list.length;
        }
      }
      const heldOn = (node: string): number[] => {
        let gpus = held.get(node);
        if (!gpus) held.set(node, (gpus = []));
        return gpus;
      };
      // The GPU model of a task's first GPU, for its usage record (null: a CPU-only task).
      const models = new Map<string, { index: number; model: string }[]>();
      const modelOf = async (node: string, gpus: readonly number[]): Promise<string | null> => {
        if (gpus.length === 0) return null;
        let list = models.get(node);
        if (!list) {
          const row = await db.get<{ gpus: string }>('SELECT gpus FROM nodes WHERE id = $1', [node]);
          list = row ? (JSON.parse(row.gpus) as { index: number; model: string }[]) : [];
          models.set(node, list);
        }
        return list.find((g) => g.index === gpus[0])?.model ?? null;
      };
      // A suspended or waking node takes no task (the consolidate stage keeps binds off them; this holds whatever the plan).
      const asleep = plan.binds.length ? await asleepNodes(db) : new Set<string>();
      // Binds whose job is still pending in the attempt planned (read together), then checked
      // one by one against the GPUs held; the chosen are written BIND_CHUNK to a statement.
      const states = new Map<number, { state: string; attempt: number; count: number }>();
      const planned = [...new Set(plan.binds.map((b) => Number(b.jobId)))];
      for (let i = 0; i < planned.length; i += SETTLE_CHUNK) {
        const part = planned.slice(i, i + SETTLE_CHUNK);
        for (const r of await db.all<JobState>(Q.jobStatesOf(part.length), part)) states.set(Number(r.id), { state: r.state, attempt: Number(r.attempt), count: Number(r.array_count ?? 1) });
      }
      const chosen: (typeof plan.binds)[number][] = [];
      binds: for (const b of await takeElements(db, plan.binds, states, now, madeSpecs)) {
        const id = Number(b.jobId);
        const st = states.get(id);
        if (!st || st.state !== 'pending' || st.attempt !== b.attempt) continue;
        for (const t of b.tasks) {
          if (asleep.has(t.node)) {
            await db.run(Q.setPendingReasons(1), [id, `waiting-for-node-power-up: node ${t.node} is powered down`, null]);
            continue binds;
          }
          const gpus = heldOn(t.node);
          for (const g of t.gpus) {
            if ((gpus[g] ?? 0) + t.gpuMilli / t.gpus.length > 1000) {
              await db.run(Q.setPendingReasons(1), [id, `waiting-for-resources: GPU ${g} of ${t.node} is still held by a stopping task`, null]);
              continue binds;
            }
          }
        }
        for (const t of b.tasks) {
          const gpus = heldOn(t.node);
          for (const g of t.gpus) gpus[g] = (gpus[g] ?? 0) + t.gpuMilli / t.gpus.length;
        }
        st.state = 'admitted'; // a second bind of the job in one plan is not chosen
        chosen.push(b);
      }
      const admitted: EventInput[] = [];
      for (let i = 0; i < chosen.length; i += BIND_CHUNK) {
        const part = chosen.slice(i, i + BIND_CHUNK);
        // An earlier attempt's cap does not carry over to one the plan gives none (null); undefined keeps it.
        const params: Param[] = part.flatMap((b) => [Number(b.jobId), b.attempt, b.powerCapWatts === undefined ? 1 : 0, b.powerCapWatts == null ? null : Math.round(b.powerCapWatts)]);
        const admittedRows = new Map<number, RunRow & { tenant: string }>();
        for (const r of await db.all<RunRow & { id: number | string; tenant: string }>(Q.admitJobs(part.length), [...params, now])) admittedRows.set(Number(r.id), r);
        const tasks: { id: number; t: (typeof part)[number]['tasks'][number] }[] = [];
        for (const b of part) {
          const id = Number(b.jobId);
          const row = admittedRows.get(id);
          if (row === undefined) continue;
          const tenant = row.tenant;
          if (Number(row.task_count) === 1) seeds.push({ id, attempt: b.attempt, row: { name: row.name, task_count: 1, stop_grace_ms: row.stop_grace_ms, power_cap_watts: row.power_cap_watts, array_index: row.array_index, array_count: row.array_count } });
          for (const t of b.tasks) tasks.push({ id, t });
          const where = b.tasks.map((t) => `${t.index}→${t.node}${t.gpus.length ? `[${t.gpus.join(',')}]` : ''}`);
          const cap = b.powerCapWatts != null ? `, power cap ${Math.round(b.powerCapWatts)} W per GPU` : '';
          admitted.push({ type: 'job:admitted', jobId: id, tenant, message: `placed ${where.join(' ')}${cap}` });
        }
        for (let k = 0; k < tasks.length; k += BIND_CHUNK) {
          const some = tasks.slice(k, k + BIND_CHUNK);
          await db.run(Q.bindTasks(some.length), some.flatMap(({ id, t }) => [id, t.index, t.node, JSON.stringify(t.gpus)]));
          const models: Param[] = [];
          for (const { id, t } of some) models.push(id, t.index, await modelOf(t.node, t.gpus));
          await db.run(Q.insertAttempts(some.length), [...models, now]);
        }
      }
      await this.writeEvents(db, now, admitted);
      if (plan.borrowed) {
        for (const [ids, flag] of [[plan.borrowed.on, 1], [plan.borrowed.off, 0]] as const) {
          for (let i = 0; i < ids.length; i += 500) {
            const part = ids.slice(i, i + 500).map(Number);
            if (part.length) await db.run(Q.setBorrowed(part.length), [flag, ...part]);
          }
        }
      }
      await more(db);
      return true;
    }, on);
    if (applied) {
      this.openJobs.tellSpecs(madeSpecs);
      for (const { id, attempt, row } of seeds) {
        const spec = this.openJobs.specOf(String(id)) ?? madeSpecs.get(String(id));
        if (spec) this.runInfo.seed(id, attempt, { row, spec, peers: [] }, now);
      }
    }
    return applied;
  }

  async registerNode(n: NodeRegistration, now: number): Promise<void> {
    await this.nodesWrite(() => this.db.tx((db) => this.upsertNode(db, n, now)));
  }

  async bootstrapNode(n: NodeRegistration, tokenHash: string, now: number): Promise<BootstrapResult> {
    try {
      return await this.nodesWrite(() => this.db.tx(async (db) => {
        if (await db.get<{ id: string }>(Q.liveNodeCredential, [n.id])) return 'has-credential';
        if (await db.get<TokenRow>(Q.findToken, [tokenHash])) return 'token-taken';
        await db.run(Q.insertToken, [tokenHash, 'node', null, now, tokenId(tokenHash), n.id, null]);
        await this.upsertNode(db, n, now);
        await this.event(db, now, { type: 'node:credential', nodeId: n.id, message: `credential ${tokenId(tokenHash)} issued at bootstrap` });
        return 'registered' as const;
      }));
    } catch (e) {
      // Two bootstrap registrations of one node raced: the unique index let one through.
      if (isUniqueViolation(e)) return (await this.nodeHasCredential(n.id)) ? 'has-credential' : 'token-taken';
      throw e;
    }
  }

  private async upsertNode(db: SqlDb, n: NodeRegistration, now: number): Promise<void> {
    this.runInfo.clear(); // peers' addresses may change
    const before = await db.get<NodeRow>(Q.nodeById, [n.id]);
    await db.run(Q.upsertNode, [n.id, n.address, n.cpuMilli, n.memoryMib, JSON.stringify(n.gpus), n.simulated ? 1 : 0, now]);
    const what = `${n.gpus.length} GPUs${n.gpus.length ? ` (${[...new Set(n.gpus.map((g) => g.model))].join(', ')})` : ''}${n.simulated ? ', simulated' : ''} at ${n.address}`;
    await this.event(db, now, { type: before ? 'node:reregistered' : 'node:registered', nodeId: n.id, message: what });
  }

  /**
   * Records an agent's reports. A task's start is recorded before its end even when both come in
   * one report (a task that ran between two heartbeats): started_at from the agent's startedAt
   * (never after now), task:started, and the job's move to running, then the end. A task that
   * could not start fails its job with the agent's reason; a fenced one is stopped (its job
   * requeued, as for a lost node). Fields of a report are checked here too: a bad one is ignored,
   * never the cause of a failed heartbeat.
   */
  async heartbeat(nodeId: string, telemetry: readonly GpuTelemetry[], reportsIn: readonly TaskReport[], now: number, energy?: { readonly report: EnergyReport; readonly prices: EnergyPrices }): Promise<TaskAssignment[] | null> {
    const reports = reportsIn.filter((r) => typeof r === 'object' && r !== null && typeof r.runId === 'string' && (r.state === 'running' || r.state === 'exited'));
    // Outside any transaction (SQLite has one connection): other servers' writes to jobs and nodes.
    await this.runInfo.current((since) => this.changedJobs(since), () => this.nodesVersion());
    const quiet = await this.quietHeartbeat(nodeId, telemetry, reports, now, energy);
    if (quiet !== undefined) return quiet;
    this.heartbeatWrites.drop(nodeId);
    let revived = false;
    const changedNodes = new Set([nodeId]);
    const answer = await this.tasksWrite(async (db) => {
      const node = await db.get<NodeRow>(Q.nodeById, [nodeId]);
      if (!node) return null;
      revived = node.state === 'lost';
      const active = await db.all<TaskRow>(Q.activeTasksOnNode, [nodeId]);
      const byRun = new Map(active.map((t) => [runIdOf(t.job_id, t.idx, t.attempt), t]));
      // Written together before the answer is read (writeEvents): the starts', the jobs that
      // started running, then the ends' and the jobs' other moves.
      const events: EventInput[] = [];
      const endEvents: EventInput[] = [];
      // Processes of written-off tasks may still hold the node's GPUs: a lost node comes back
      // only once its agent has stopped them, so no GPU is handed out twice.
      const strays = reports.filter((r) => r.state === 'running' && !byRun.has(r.runId)).length;
      if (node.state === 'lost' && strays === 0) events.push({ type: 'node:returned', nodeId, message: 'heartbeats resumed' });
      await db.run(Q.heartbeatNode, [nodeId, now, JSON.stringify(telemetry), strays > 0 ? 1 : 0]);
      const touched = new Set<number>();
      // Starts first (an old attempt or someone else's task is not in byRun: not in the desired
      // set, so the agent stops it), written together (a node woken for an array's tasks starts hundreds).
      const starts = new Map<string, TaskStart>();
      for (const r of reports) {
        const t = byRun.get(r.runId);
        if (!t || t.state !== 'assigned' || r.reason === 'start-failed') continue;
        const pid = intOrNull(r.pid);
        const at = typeof r.startedAt === 'number' && Number.isFinite(r.startedAt) ? Math.max(0, Math.min(now, Math.floor(r.startedAt))) : now;
        if (!starts.has(r.runId)) events.push({ type: 'task:started', jobId: t.job_id, nodeId, message: `task ${t.idx} pid ${pid ?? '?'}` });
        starts.set(r.runId, { t, pid, at });
        touched.add(t.job_id);
      }
      const started = new Set(touched);
      const failures = new Map<number, string>();
      const ends = new Map<string, TaskEnd>();
      for (const r of reports) {
        const t = byRun.get(r.runId);
        if (!t || r.state !== 'exited' || ends.has(r.runId)) continue;
        const code = intOrNull(r.exitCode);
        // eslint-disable-next-line no-control-regex
        const why = typeof r.message === 'string' ? r.message.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 500) : 'no reason given';
        let state: 'stopped' | 'succeeded' | 'failed' = t.state === 'stopping' ? 'stopped' : code === 0 ? 'succeeded' : 'failed';
        let message = `task ${t.idx} exit ${code ?? 'signal'}`;
        if (r.reason === 'start-failed') {
          message = `task ${t.idx} could not start: ${why}`;
          if (state === 'succeeded') state = 'failed';
          if (state === 'failed' && !failures.has(t.job_id)) failures.set(t.job_id, message);
        } else if (r.reason === 'fenced') {
          state = 'stopped';
          message = `task ${t.idx} stopped by its agent (fenced: ${why})`;
        }
        if (r.failedElements) message += ` (${r.failedElements} of its elements exited non-zero)`;
        ends.set(r.runId, { t, state, code, reason: r.reason ?? (t.state === 'stopping' ? 'stopped' : 'exited'), ...(r.failedElements ? { failedElements: r.failedElements } : {}) });
        endEvents.push({ type: `task:${state}`, jobId: t.job_id, nodeId, message });
        touched.add(t.job_id);
      }
      // A task the agent no longer knows (it was started, then vanished without an exit report) failed.
      const reported = new Set(reports.map((r) => r.runId));
      for (const t of active) {
        const runId = runIdOf(t.job_id, t.idx, t.attempt);
        if ((t.state === 'running' || t.state === 'stopping') && !reported.has(runId) && !touched.has(t.job_id)) {
          const state = t.state === 'stopping' ? 'stopped' : 'failed';
          ends.set(runId, { t, state, code: null, reason: 'vanished' });
          endEvents.push({ type: `task:${state}`, jobId: t.job_id, nodeId, message: `task ${t.idx} vanished from its agent` });
          touched.add(t.job_id);
        }
      }
      // The jobs are settled once, after the starts and the ends: a job whose tasks start and end
      // in this one report (short array tasks, most of all) goes straight from admitted to its
      // end, its job:running event noted where the starts put it (settle's `through`). Settled
      // after the starts as well, every started job was locked, read and written twice, and on
      // PostgreSQL each job row written is a new copy of it with an entry in every index of jobs.
      await writeStartsAndEnds(db, starts, ends, now);
      for (const r of reports) {
        const t = byRun.get(r.runId);
        if (t && t.idx === 0 && r.progress !== undefined) await this.recordProgress(db, t.job_id, r.progress, now);
      }
      const running: EventInput[] = [];
      const endedHere = new Set([...ends.values()].map((e) => `${Number(e.t.job_id)}/${Number(e.t.idx)}`));
      const admitted = new Set<number>();
      await this.settle(db, [...touched], now, failures, endEvents, changedNodes, { started, endedHere, events: running, admitted });
      await writeJobStarts(db, [...starts.values()].filter((s) => admitted.has(Number(s.t.job_id))));
      await this.writeEvents(db, now, [...events, ...running, ...endEvents]);
      // Measured energy after the reports (a run's start is recorded first): cumulative counters, applied once.
      if (energy) await applyEnergy(db, nodeId, energy.report, now, energy.prices);
      return this.assignmentsFor(db, nodeId, node.address, now, touched.size === 0 ? active : undefined);
    }, changedNodes);
    // A lost node may have come back: the nodes' version changed.
    if (revived) this.nodesChanging();
    return answer;
  }

  /**
   * A heartbeat that changes no task (every task it reports is running as the store knows it,
   * none started, ended, vanished or reports progress; the node is not lost) writes only the
   * node's last heartbeat and telemetry, and its energy counters if it carries them: it is
   * answered from one read, outside a transaction, and its writes go out with other quiet
   * heartbeats' (heartbeatWrites.ts). Without counters it is answered at once. With counters the
   * answer must wait until they are in the database (the agent retires ended runs on it): when
   * the answer tells the agent something (a run to start or to stop) they are applied in a
   * transaction of their own, so the news goes out at once as on the full path; otherwise they
   * wait for the shared transaction (at most its window), and the answer is read again after it,
   * so a task bound meanwhile is not held back to the next heartbeat. Undefined: not quiet, the
   * caller runs the full heartbeat; null: no such node.
   */
  private async quietHeartbeat(nodeId: string, telemetry: readonly GpuTelemetry[], reports: readonly TaskReport[], now: number, energy?: { readonly report: EnergyReport; readonly prices: EnergyPrices }): Promise<TaskAssignment[] | null | undefined> {
    const node = await this.nodeTasksOf(nodeId);
    if (node === null) return null;
    if (node.state === 'lost') return undefined;
    const active = node.tasks;
    if (!changesNoTask(active, reports)) return undefined;
    const write = { node: nodeId, at: now, telemetry: JSON.stringify(telemetry) };
    const answer = await this.assignmentsFor(this.db, nodeId, node.address, now, active);
    if (!energy) {
      this.heartbeatWrites.add(write);
      return answer;
    }
    if (tellsAgentSomething(answer, reports)) {
      this.heartbeatWrites.add(write);
      await this.recordEnergy(nodeId, energy.report, now, energy.prices);
      return answer;
    }
    await this.heartbeatWrites.addEnergy(write, { node: nodeId, at: now, report: energy.report, prices: energy.prices });
    return this.assignmentsFor(this.db, nodeId, node.address, now);
  }

  /** A node's state and active tasks from the shared view, or read for it alone where the view cannot say. */
  private async nodeTasksOf(nodeId: string): Promise<NodeTasks | null> {
    const seen = await this.nodeTasks.of(this.db, nodeId);
    if (seen) return seen;
    // Not in the view: unknown, or registered at another server since the view's last read.
    const rows = await this.db.all<TaskRow & { node_state: string; node_address: string }>(Q.nodeWithActiveTasks, [nodeId]);
    const first = rows[0];
    return first ? { state: first.node_state, address: first.node_address, tasks: rows.filter((r) => r.job_id !== null) } : null;
  }

  /** Quiet heartbeats' writes and energy counters in one transaction (store/heartbeatWrites.ts). */
  private async writeHeartbeats(rows: readonly HeartbeatWrite[], energy: readonly EnergyWrite[]): Promise<void> {
    await this.db.tx(async (db) => {
      await takeSharedNodeWrites(db);
      for (let i = 0; i < rows.length; i += 200) {
        const batch = rows.slice(i, i + 200);
        await db.run(Q.heartbeatNodes(batch.length), batch.flatMap((r) => [r.node, r.at, r.telemetry]));
      }
      // In arrival order: a node's reports are cumulative, and one not newer than the last applied changes nothing.
      for (const e of energy) await applyEnergy(db, e.node, e.report, e.at, e.prices);
    }, { asyncCommit: true });
  }

  /**
   * Task 0's progress report becomes the job's (a report from any other task, or for a run this
   * node does not hold, never gets here). checkpointAt is when checkpointStep first took its
   * current value. A malformed report is ignored, as the agent schema would have refused it.
   */
  private async recordProgress(db: SqlDb, jobId: number, p: unknown, now: number): Promise<void> {
    const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
    const count = (v: unknown): number | null | undefined => (v === undefined || v === null ? null : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
    const step = count(o['step']);
    const total = count(o['totalSteps']);
    const ckpt = count(o['checkpointStep']);
    if (step === null || step === undefined || total === undefined || ckpt === undefined) return;
    const job = await db.get<JobRow>(Q.jobById, [jobId]);
    if (!job) return;
    const ckptAt = ckpt === null ? null : job.progress_checkpoint_step === ckpt && job.progress_checkpoint_at !== null ? job.progress_checkpoint_at : now;
    await db.run(Q.setJobProgress, [jobId, step, total, ckpt, ckptAt, now]);
  }

  /** The jobs' specs: from the open-jobs mirror where it has them (specs never change), the rest read 500 to a statement; a job deleted meanwhile has none. */
  private async specsOf(db: SqlDb, ids: readonly number[]): Promise<Map<number, JobSpec>> {
    const specs = new Map<number, JobSpec>();
    const unknown: number[] = [];
    for (const id of ids) {
      const spec = this.openJobs.specOf(String(id));
      if (spec) specs.set(id, spec);
      else unknown.push(id);
    }
    for (let i = 0; i < unknown.length; i += 500) {
      const part = unknown.slice(i, i + 500);
      for (const r of await db.all<{ id: number | string; spec: string }>(OPEN_JOBS_Q.specs(part.length), part)) specs.set(Number(r.id), JSON.parse(r.spec) as JobSpec);
    }
    return specs;
  }

  /** `address`: the node's (its single tasks' peer); `known`: the node's active tasks when the caller read them and changed none since. */
  private async assignmentsFor(db: SqlDb, nodeId: string, address: string, now: number, known?: readonly TaskRow[]): Promise<TaskAssignment[]> {
    const active = known ?? (await db.all<TaskRow>(Q.activeTasksOnNode, [nodeId]));
    const jobs = new Map<number, RunInfo>();
    const generation = this.runInfo.readGeneration;
    // The jobs not cached are read together (a node given an array's tasks gets hundreds at once):
    // the few columns an attempt may change, the spec only where the open-jobs mirror has none,
    // and the peers' addresses only for gangs (a single task's peer is itself, on this node).
    // What the cache holds is taken once: an entry forgotten while the others are read (a check,
    // a reclaim's clear) must not leave its task out of the answer, which would have the agent
    // stop a task that is to run.
    const cached = new Map<number, RunInfo>();
    const missing = new Set<number>();
    for (const t of active) {
      const id = Number(t.job_id);
      if (cached.has(id) || missing.has(id)) continue;
      const info = this.runInfo.get(t.job_id, t.attempt, now);
      if (info) cached.set(id, info);
      else missing.add(id);
    }
    const uncached = [...missing];
    const ownHost = hostOf(address);
    for (let c = 0; c < uncached.length; c += SETTLE_CHUNK) {
      const part = uncached.slice(c, c + SETTLE_CHUNK);
      const rows = await db.all<RunRow & { id: number | string }>(Q.runRowsOf(part.length), part);
      const specs = await this.specsOf(db, rows.map((r) => Number(r.id)));
      const gangs = rows.filter((r) => Number(r.task_count) > 1).map((r) => Number(r.id));
      const peersOf = new Map<number, string[]>();
      if (gangs.length) {
        for (const a of await db.all<{ job_id: number; idx: number; address: string }>(Q.nodeAddressesOfJobs(gangs.length), gangs)) {
          const id = Number(a.job_id);
          const peers = peersOf.get(id) ?? [];
          peersOf.set(id, peers);
          peers.push(`${hostOf(a.address)}:${peerPort(id, Number(a.idx))}`);
        }
      }
      for (const r of rows) {
        const id = Number(r.id);
        const spec = specs.get(id);
        if (!spec) continue; // deleted between the reads
        const peers = Number(r.task_count) > 1 ? (peersOf.get(id) ?? []) : [];
        jobs.set(id, { row: { name: r.name, task_count: Number(r.task_count), stop_grace_ms: r.stop_grace_ms, power_cap_watts: r.power_cap_watts, array_index: r.array_index, array_count: r.array_count }, spec, peers });
      }
    }
    const out: TaskAssignment[] = [];
    for (const t of active) {
      let job = cached.get(Number(t.job_id));
      if (!job) {
        job = jobs.get(Number(t.job_id));
        if (!job) continue; // deleted between the reads
        this.runInfo.set(t.job_id, t.attempt, job, now, generation);
      }
      const group = groupOf(job.spec, t.idx);
      const peers = job.row.task_count > 1 ? job.peers : ownHost ? [`${ownHost}:${peerPort(Number(t.job_id), 0)}`] : [];
      out.push({
        runId: runIdOf(t.job_id, t.idx, t.attempt),
        jobId: String(t.job_id),
        jobName: job.row.name,
        taskIndex: t.idx,
        // The tasks bound in this attempt: fewer than task_count for an elastic gang below full size.
        gangSize: peers.length || job.row.task_count,
        attempt: t.attempt,
        action: t.state === 'stopping' ? 'stop' : 'run',
        command: group?.command ?? ['/bin/false'],
        env: {
          ...(group?.env ?? {}),
          ...elementEnv(job.row, job.spec),
        },
        gpus: JSON.parse(t.gpus) as number[],
        gpuMilli: group?.gpuMilli ?? 0,
        memoryMib: t.memory_mib,
        peers,
        checkpointDir: job.spec.checkpoint ? `job-${t.job_id}` : null,
        gracePeriodSeconds: job.row.stop_grace_ms !== null && job.row.stop_grace_ms !== undefined ? Number(job.row.stop_grace_ms) / 1000 : job.spec.gracePeriodSeconds,
        ...(job.spec.powerCapWatts !== undefined ? { powerCapWatts: job.spec.powerCapWatts } : job.row.power_cap_watts != null ? { powerCapWatts: Number(job.row.power_cap_watts) } : {}),
        ...(Number(job.row.array_count ?? 1) > 1 ? { arrayCount: Number(job.row.array_count) } : {}),
      });
    }
    return out;
  }

  /**
   * Re-judges jobs after their tasks changed: finishes, fails or requeues them; `failures` says
   * why a job failed, when known. The jobs and their tasks are read SETTLE_CHUNK at a time.
   * `nodesChanged` gets the nodes of the tasks it stopped or requeued (a gang's peers). With
   * `through` (a heartbeat's starts and ends), a job still admitted that started tasks in it
   * (`started`) is also judged as it stood between the starts and the ends (the tasks that ended
   * in it, `endedHere` by `job/index`, running): if it was running then, its `job:running` goes
   * to `through.events`. Only where it stands now is written. The jobs it leaves admitted go to
   * `through.admitted`.
   */
  private async settle(db: SqlDb, jobIds: readonly number[], now: number, failures?: ReadonlyMap<number, string>, events?: EventInput[], nodesChanged?: Set<string>, through?: { readonly started: ReadonlySet<number>; readonly endedHere: ReadonlySet<string>; readonly events: EventInput[]; readonly admitted: Set<number> }): Promise<void> {
    const note = async (e: EventInput): Promise<void> => (events ? void events.push(e) : this.event(db, now, e));
    const ids = [...new Set(jobIds)];
    for (let c = 0; c < ids.length; c += SETTLE_CHUNK) {
      const part = ids.slice(c, c + SETTLE_CHUNK);
      // PostgreSQL runs transactions side by side (READ COMMITTED): two heartbeats that each end
      // one task of a gang would each see the other's task running and leave the job running for
      // ever. Locking the job rows (in id order, so two settles never deadlock) makes the second
      // wait for the first, then read its tasks.
      if (db.dialect === 'postgres') await db.all(Q.lockJobs(part.length), [...part].sort((a, b) => a - b));
      const jobs = new Map((await db.all<JobState>(Q.jobStatesOf(part.length), part)).map((r) => [Number(r.id), r]));
      const tasksOf = new Map<number, TaskRow[]>();
      for (const t of await db.all<TaskRow>(Q.tasksOfJobs(part.length), part)) {
        const list = tasksOf.get(Number(t.job_id));
        if (list) list.push(t);
        else tasksOf.set(Number(t.job_id), [t]);
      }
      const moves = new Map<string, { state: Job['state']; reason: string | null; ids: number[] }>();
      for (const id of part) {
        const job = jobs.get(id);
        if (!job) continue;
        const tasks = tasksOf.get(id) ?? [];
        const verdict = judgeJob(job.state as Job['state'], tasks.map((t) => t.state as Task['state']), job.timed_out_at !== null);
        let noted = false;
        if (through && job.state === 'admitted' && through.started.has(id)) {
          const between = tasks.map((t) => (through.endedHere.has(`${Number(t.job_id)}/${Number(t.idx)}`) ? 'running' : (t.state as Task['state'])));
          if (judgeJob('admitted', between, job.timed_out_at !== null).state === 'running') {
            through.events.push({ type: 'job:running', jobId: id, tenant: job.tenant, message: 'running' });
            noted = verdict.state === 'running';
          }
        }
        if (nodesChanged && (verdict.stopActive || verdict.requeue)) for (const t of tasks) if (t.node_id !== null) nodesChanged.add(t.node_id);
        if (verdict.stopActive) await db.run(Q.stopActiveTasks, [id]);
        if (verdict.requeue) {
          await db.run(Q.requeueJob, [id, verdict.reason, now]);
          await db.run(Q.requeueTasks, [id, job.attempt + 1]);
          await note({ type: 'job:requeued', jobId: id, tenant: job.tenant, message: `attempt ${job.attempt + 1}` });
          continue;
        }
        if (verdict.state === 'admitted') through?.admitted.add(id);
        if (verdict.state === job.state) continue;
        const reason = (verdict.state === 'failed' ? failures?.get(id) : verdict.state === 'timeout' ? job.reason : undefined) ?? verdict.reason;
        const key = JSON.stringify([verdict.state, reason]);
        const move = moves.get(key);
        if (move) move.ids.push(id);
        else moves.set(key, { state: verdict.state, reason, ids: [id] });
        if (!noted) await note({ type: `job:${verdict.state}`, jobId: id, tenant: job.tenant, message: reason ?? verdict.state });
      }
      // One statement per new state and reason (an array's tasks start and end together).
      for (const { state, reason, ids: moved } of moves.values()) await db.run(Q.setJobsState(moved.length, TERMINAL_JOB_STATES.includes(state)), [state, reason, now, ...moved]);
    }
  }

  renewNodeLease(nodeId: string, now: number): Promise<LeaseRenewal> {
    return this.renewals.run({ node: nodeId, at: now });
  }

  private async renewTogether(items: readonly { readonly node: string; readonly at: number }[]): Promise<Outcome<LeaseRenewal>[]> {
    const latest = new Map<string, number>();
    for (const r of items) latest.set(r.node, Math.max(r.at, latest.get(r.node) ?? r.at));
    const renewed = new Set<string>();
    const known = new Set<string>();
    await this.db.tx(async (db) => {
      await takeSharedNodeWrites(db);
      const rows = [...latest];
      for (let i = 0; i < rows.length; i += 200) {
        const part = rows.slice(i, i + 200);
        for (const r of await db.all<{ id: string }>(Q.renewNodes(part.length), part.flat())) renewed.add(r.id);
      }
      const rest = [...latest.keys()].filter((id) => !renewed.has(id));
      for (let i = 0; i < rest.length; i += 200) {
        const part = rest.slice(i, i + 200);
        for (const r of await db.all<{ id: string }>(Q.nodeIdsIn(part.length), part)) known.add(r.id);
      }
    }, { urgent: true });
    return items.map((r) => ({ ok: renewed.has(r.node) ? 'renewed' : known.has(r.node) ? 'lost' : 'unknown' }));
  }

  async expireNodes(deadlineMs: number, now: number): Promise<string[]> {
    // Whole ms, as the columns hold them: PostgreSQL refuses a fraction for a BIGINT (the loop's
    // deadline takes off the thread's held time, which is fractional).
    const deadline = Math.floor(deadlineMs);
    await this.heartbeatWrites.flush();
    // The loop calls this every cycle and it seldom finds a node: the nodes' caches (their
    // version, the node list, the quiet heartbeats' view) are emptied only when it does. Emptied
    // every cycle, a tenth of the node lists were read in full before answering, and hundreds of
    // quiet heartbeats a minute waited for every node's state to be read again (8-20 ms on
    // average on PostgreSQL).
    let changing = false;
    try {
      return await this.db.tx(async (db) => {
        // On PostgreSQL the silent nodes are locked as they are read, and a node whose row another
        // transaction holds is passed over: it is having a heartbeat written. Waiting for it had
        // deadlocked with the quiet heartbeats' shared UPDATE nodes … FROM (VALUES …).
        const silent = await db.all<{ id: string }>(db.dialect === 'postgres' ? Q.silentNodesLocked : Q.silentNodes, [deadline]);
        if (silent.length > 0) {
          changing = true;
          this.nodesChanging();
        }
        for (const { id } of silent) {
          await db.run(Q.markNodeLost, [id]);
          const jobs = (await db.all<{ job_id: number }>(Q.jobsOnNode, [id])).map((r) => r.job_id);
          await db.run(Q.attemptsLostOnNode, [id, now]);
          await db.run(Q.stopTasksOnNode, [id, now]);
          await this.event(db, now, { type: 'node:lost', nodeId: id, message: `no heartbeat since ${new Date(deadline).toISOString()}; ${jobs.length} jobs requeued` });
          for (const j of jobs) {
            const job = await db.get<JobRow>(Q.jobById, [j]);
            // A job stopping at its time limit is not requeued: settle ends it `timeout`.
            if (job && (job.state === 'admitted' || job.state === 'running') && job.timed_out_at === null) {
              await db.run(Q.setJobState, [j, 'preempted', `node ${id} lost`, now]);
              await db.run(Q.stopActiveTasks, [j]);
              await this.event(db, now, { type: 'job:preempted', jobId: j, tenant: job.tenant, nodeId: id, message: `node ${id} lost` });
            }
          }
          await this.settle(db, jobs, now);
        }
        return silent.map((s) => s.id);
      });
    } finally {
      if (changing) this.nodesChanging();
    }
  }

  /** The nodes with what their active tasks use (`active`: every active task; absent with `only`: that node's are read). */
  private async nodesIn(db: SqlDb, active?: readonly ActiveTask[], only?: string): Promise<NodeInfo[]> {
    const rows = only === undefined ? await db.all<NodeRow>(Q.listNodes) : await db.all<NodeRow>(Q.nodeById, [only]);
    const tasks = active ?? (only === undefined ? await this.activeTasks.refresh(db) : (await db.all<TaskRow>(Q.activeTasksOnNode, [only])).map(activeTaskOf));
    const used = useByNode(tasks);
    return rows.map((r) => this.nodeInfos.of(r, used.get(r.id)));
  }

  async setNodeDrained(id: string, drained: boolean, now: number): Promise<boolean> {
    return this.nodesWrite(() =>
      this.db.tx(async (db) => {
        const changed = await db.run(Q.setNodeSchedulable, [id, drained ? 'drained' : 'ready']);
        if (changed > 0) await this.event(db, now, { type: drained ? 'node:drained' : 'node:ready', nodeId: id, message: drained ? 'no new tasks will be placed here' : 'accepting tasks' });
        return changed > 0;
      }),
    );
  }

  setNodePower(id: string, to: NodePowerState, now: number, message: string): Promise<boolean> {
    // A node's state changes: the node list is read afresh.
    return this.nodesWrite(() => this.db.tx((db) => setNodePower(db, id, to, now, message)));
  }

  async nodesVersion(): Promise<string> {
    return this.nodesVersions.get(async () => {
      const r = await this.db.get<{ n: number | string; r: number | string; l: number | string }>(Q.nodesVersion, []);
      return r ? `${r.n}/${r.r}/${r.l}` : '';
    });
  }

  async countOpenJobs(tenant: string): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(Q.countOpenJobs, [tenant]))?.n ?? 0);
  }

  /** Runs a write that may change the nodes' version (a registration, a node lost or back), emptying its cache before and after. */
  private async nodesWrite<T>(fn: () => Promise<T>): Promise<T> {
    this.nodesChanging();
    try {
      return await fn();
    } finally {
      this.nodesChanging();
    }
  }

  /** Empties what is kept of the nodes (called before and after a write to them, so that no read begun during it is kept). */
  private nodesChanging(): void {
    this.nodesVersions.invalidate();
    this.nodesEpoch++;
    this.nodeTasks.changed({ nodes: true });
  }

  /**
   * A transaction that may change tasks (their state, node or attempt): the quiet heartbeats'
   * view of the nodes (nodeTasksView.ts) reads again before it next answers. Counted before and
   * after, so that no read begun while the transaction ran is taken as seeing it. With `on`, the
   * transaction changes the tasks of the nodes in `on` alone, which it may add to as it goes (a
   * heartbeat's node and the gang peers its reports stopped; the nodes a plan binds on).
   */
  private async tasksWrite<T>(fn: (db: SqlDb) => Promise<T>, on?: ReadonlySet<string>): Promise<T> {
    const mark = (): void => {
      this.taskWrites++;
      if (!on) this.nodeTasks.changed();
      else for (const node of on) this.nodeTasks.changed({ node });
    };
    mark();
    try {
      return await this.db.tx(fn);
    } finally {
      mark();
    }
  }

  /**
   * Every node with what its active tasks use. The same array is answered again (callers must
   * not change it) while no task became active or stopped being so, no node registered, was
   * drained, lost or came back on this server. Past 1 s it is read again: in the background while
   * it is under 3 s old (the caller gets the kept one), else before answering. So a node's
   * telemetry and last heartbeat in it may be up to 3 s old (a heartbeat's period and a half), as
   * may another server's change of a node. With 1,250 nodes the list is 1.5 MB of JSON; it was
   * read, built and serialised for every GET /v1/nodes (the API serialises an array once: app.ts),
   * and a reader that came when it expired waited for all that (p99 139-177 ms on PostgreSQL).
   * When only the active tasks changed, the kept list is answered with their use brought up to
   * date (no node row read; the nodes whose use is unchanged stay the same objects): while tasks
   * started and ended every few seconds, two GET /v1/nodes in three read the whole list first.
   */
  async listNodes(): Promise<NodeInfo[]> {
    const c = this.nodeList;
    const now = Date.now();
    if (c && now - c.at < NODE_LIST_STALE_MS && now >= c.at && c.epoch === this.nodesEpoch) {
      // The kept tasks are taken as they are while this server wrote none since they were read
      // and they are under a second old (another server's changes show within the list's 3 s):
      // on PostgreSQL the check was two statements on the read pool, which held a kept list's
      // answer 100-240 ms at p99 while PostgreSQL was busy. Otherwise they are read: on SQLite in
      // a transaction, as every refresh (a statement outside one waits for the open transaction,
      // which may itself wait for this refresh); on PostgreSQL on the read pool (a transaction
      // waited for one of the connections the heartbeats' and the cycle's writes hold).
      const checked = c.taskWrites === this.taskWrites && now - c.tasksAt < NODE_LIST_MS && now >= c.tasksAt;
      const taskWrites = this.taskWrites;
      const tasks = checked ? c.tasks : await (this.db.dialect === 'sqlite' ? this.db.tx((db) => this.activeTasks.refresh(db)) : this.activeTasks.refresh(this.db));
      const k = this.nodeList;
      if (k !== c && k !== null && k.epoch === this.nodesEpoch) {
        // Read meanwhile (in the background): at least as new as what this call began with.
        this.nodeListCounts.kept++;
        return k.list;
      }
      if (k === c && c.epoch === this.nodesEpoch) {
        let kept = c;
        if (tasks === c.tasks) this.nodeListCounts.kept++;
        else {
          const used = useByNode(tasks);
          const list = c.list.map((n) => this.nodeInfos.withUse(n, used.get(n.id)));
          kept = { ...c, tasks, list: list.every((n, i) => n === c.list[i]) ? c.list : list };
          this.nodeListCounts.used++;
        }
        if (!checked) kept = { ...kept, taskWrites, tasksAt: now };
        this.nodeList = kept;
        if (now - c.at >= NODE_LIST_MS && !this.nodeListBuild) {
          this.nodeListCounts.background++;
          this.nodeListBuild = this.buildNodeList()
            .then((list) => {
              for (const fn of this.nodeListObservers) fn(list);
            })
            .catch(() => undefined)
            .finally(() => (this.nodeListBuild = null));
        }
        return kept.list;
      }
    }
    this.nodeListCounts.read++;
    return this.buildNodeList();
  }

  observeNodeLists(fn: (list: readonly NodeInfo[]) => void): void {
    this.nodeListObservers.push(fn);
  }

  private async buildNodeList(): Promise<NodeInfo[]> {
    await this.heartbeatWrites.flush();
    const epoch = this.nodesEpoch;
    const taskWrites = this.taskWrites;
    const at = Date.now();
    return this.db.tx(async (db) => {
      const tasks = await this.activeTasks.refresh(db);
      const list = await this.nodesIn(db, tasks);
      if (!this.nodeList || at >= this.nodeList.at) this.nodeList = { at, epoch, tasks, taskWrites, tasksAt: at, list };
      return list;
    });
  }

  async getNode(id: string): Promise<NodeInfo | null> {
    await this.heartbeatWrites.flush();
    // One node's row and tasks, not every node's: registrations of 1,250 agents read it each.
    return (await this.db.tx((db) => this.nodesIn(db, undefined, id)))[0] ?? null;
  }

  async listEvents(f: EventFilter): Promise<JobEvent[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (f.jobId !== undefined) {
      params.push(Number(f.jobId));
      where.push(`job_id = $${params.length}`);
    }
    if (f.tenant !== undefined) {
      params.push(f.tenant);
      where.push(`tenant = $${params.length}`);
    }
    if (f.afterId !== undefined) {
      params.push(f.afterId);
      where.push(`id > $${params.length}`);
    }
    if (f.beforeId !== undefined) {
      params.push(f.beforeId);
      where.push(`id < $${params.length}`);
    }
    params.push(Math.min(f.limit ?? 1000, 10_000));
    const sql = `${Q.listEventsBase}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id${f.order === 'desc' ? ' DESC' : ''} LIMIT $${params.length}`;
    return (await this.db.all<EventRow>(sql, params)).map(eventFromRow);
  }

  /**
   * Reads outside a transaction (on SQLite they go ahead of queued writes): a finished job and its
   * tasks no longer change. In a transaction they waited behind a burst's writes, in the cycle's time.
   */
  async finishedRuns(after: FinishedCursor | null, limit: number): Promise<FinishedRun[]> {
    const db = this.db;
    const rows = after === null ? (await db.all<JobRow>(Q.finishedLatest, [limit])).reverse() : await db.all<JobRow>(Q.finishedAfter, [after.finishedAt, Number(after.id), limit]);
    // The rows come without their specs: those of jobs that closed lately are in memory (a cycle
    // after 4,000 array tasks ended read and parsed 4,000 of them again).
    const specs = await this.specsOf(db, rows.map((r) => Number(r.id)));
    const first = new Map<number, FirstTaskRow>();
    for (let i = 0; i < rows.length; i += 500) {
      const ids = rows.slice(i, i + 500).map((r) => Number(r.id));
      for (const t of await db.all<FirstTaskRow>(Q.firstTasksOf(ids.length), ids)) first.set(Number(t.job_id), t);
    }
    /** The GPUs of the nodes seen, parsed once each. */
    const nodeGpus = new Map<string, { index: number; model: string }[]>();
    const out: FinishedRun[] = [];
    for (const r of rows) {
      const spec = specs.get(Number(r.id));
      if (!spec) continue; // deleted between the reads
      const job = jobFromRow(r, spec);
      const t = first.get(Number(r.id));
      const last = t && t.started_at !== null && t.finished_at !== null ? Math.max(0, Number(t.finished_at) - Number(t.started_at)) / 1000 : 0;
      const gpu = t ? (JSON.parse(t.gpus) as number[])[0] : undefined;
      let gpus: { index: number; model: string }[] | undefined;
      if (gpu !== undefined && t?.node_gpus) {
        gpus = nodeGpus.get(t.node_gpus);
        if (!gpus) nodeGpus.set(t.node_gpus, (gpus = JSON.parse(t.node_gpus) as { index: number; model: string }[]));
      }
      const model = gpus?.find((g) => g.index === gpu)?.model ?? null;
      out.push({ id: job.id, spec: job.spec, finishedAt: Number(r.finished_at), runSeconds: job.runSeconds + last, model });
    }
    return out;
  }

  async usageByHour(sinceMs: number): Promise<UsageBucket[]> {
    const rows = await this.db.all<{ tenant: string; hour: number | string; gpu: number | string; cpu: number | string; mem: number | string }>(Q.usageByHour, [sinceMs]);
    return rows.map((r) => ({ tenant: r.tenant, hour: Number(r.hour), gpuSeconds: Number(r.gpu), cpuSeconds: Number(r.cpu), memoryMibSeconds: Number(r.mem) }));
  }

  async recentSpecs(limit: number): Promise<JobSpec[]> {
    return (await this.db.all<{ spec: string }>(Q.recentSpecs, [limit])).map((r) => JSON.parse(r.spec) as JobSpec);
  }

  /** A new service: running from now (it runs no task itself), with `min` replicas wanted. */
  private async startService(db: SqlDb, row: JobRow, min: number, max: number, now: number): Promise<void> {
    await db.run(Q.setJobState, [row.id, 'running', `service: ${min} replica(s) wanted`, now]);
    await db.run(Q.setJobStarted, [row.id, now]);
    await db.run(Q.insertService, [row.id, min, max, min, 0, now]);
  }

  async listServices(ids?: readonly string[]): Promise<ServiceRecord[]> {
    const where = ids === undefined ? " WHERE j.state = 'running'" : ids.length === 0 ? ' WHERE 1 = 0' : ` WHERE j.id IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`;
    const params = (ids ?? []).filter((i) => /^\d{1,15}$/.test(i)).map(Number);
    if (ids !== undefined && params.length !== ids.length) return [];
    return this.db.tx(async (db) => {
      const rows = await db.all<ServiceRow>(`${Q.serviceRows}${where} ORDER BY s.job_id`, params);
      const out: ServiceRecord[] = [];
      for (const r of rows) {
        const job = await db.get<JobRow>(Q.jobById, [r.job_id]);
        if (!job) continue;
        out.push({
          job: jobFromRow(job),
          minReplicas: Number(r.min_replicas),
          maxReplicas: Number(r.max_replicas),
          desired: Number(r.desired),
          keepMilli: Number(r.keep_milli),
          urgent: Number(r.urgent) === 1,
          reason: r.reason,
          decidedAt: r.decided_at === null ? null : Number(r.decided_at),
        });
      }
      return out;
    });
  }

  async listReplicas(serviceIds: readonly string[]): Promise<ReplicaRecord[]> {
    const ids = serviceIds.filter((i) => /^\d{1,15}$/.test(i)).map(Number);
    if (ids.length === 0) return [];
    return this.db.tx(async (db) => {
      const rows = await db.all<JobRow>(Q.replicasOf(ids.length), ids);
      const tasks = new Map<number, { state: string; node_id: string | null; started_at: number | null; address: string | null }>();
      for (let i = 0; i < rows.length; i += 500) {
        const part = rows.slice(i, i + 500).map((r) => Number(r.id));
        for (const t of await db.all<{ job_id: number; state: string; node_id: string | null; started_at: number | null; address: string | null }>(Q.replicaTasks(part.length), part)) tasks.set(Number(t.job_id), t);
      }
      return rows.map((r) => {
        const t = tasks.get(Number(r.id));
        const active = t !== undefined && (t.state === 'assigned' || t.state === 'running' || t.state === 'stopping');
        return {
          job: jobFromRow(r),
          ready: r.state === 'running' && r.ready_attempt !== null && Number(r.ready_attempt) === Number(r.attempt) && t?.state === 'running',
          taskState: (t?.state ?? null) as TaskState | null,
          node: active ? (t?.node_id ?? null) : null,
          nodeAddress: active ? (t?.address ?? null) : null,
          startedAt: t?.started_at === null || t?.started_at === undefined ? null : Number(t.started_at),
        };
      });
    });
  }

  async addReplica(serviceId: string, spec: JobSpec, now: number): Promise<Job | null> {
    if (!/^\d{1,15}$/.test(serviceId)) return null;
    return this.db.tx(async (db) => {
      if (db.dialect === 'postgres') await db.get('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [Number(serviceId)]);
      const service = await db.get<JobRow>(Q.jobById, [Number(serviceId)]);
      if (!service || service.state !== 'running' || service.kind !== 'service' || service.service_id !== null) return null;
      const row = await db.get<JobRow>(Q.insertReplica, [service.tenant, spec.name, service.queue, spec.priority, spec.kind, jobGpuMilli(spec), taskCount(spec), JSON.stringify(spec), now, service.id]);
      if (!row) throw new Error('insert returned no row');
      await insertTasksOf(db, row.id, spec);
      await this.event(db, now, { type: 'job:submitted', jobId: row.id, tenant: service.tenant, message: `replica of service ${service.id} in queue ${service.queue}` });
      return jobFromRow(row);
    });
  }

  async stopReplica(replicaId: string, reason: string, now: number): Promise<boolean> {
    if (!/^\d{1,15}$/.test(replicaId)) return false;
    return this.tasksWrite(async (db) => {
      const job = await db.get<JobRow>(Q.jobById, [Number(replicaId)]);
      return job !== undefined && job.service_id !== null && (await this.cancelIn(db, job, reason, now));
    });
  }

  async markReplicaReady(replicaId: string, attempt: number): Promise<boolean> {
    if (!/^\d{1,15}$/.test(replicaId)) return false;
    return (await this.db.run(Q.markReady, [Number(replicaId), attempt])) > 0;
  }

  async decideService(serviceId: string, d: ServiceDecisionRecord, now: number, event?: { readonly type: string; readonly message: string }): Promise<void> {
    await this.db.tx(async (db) => {
      await db.run(Q.setServiceDecision, [Number(serviceId), d.desired, Math.round(d.keepMilli), d.urgent ? 1 : 0, d.reason.slice(0, 500), now]);
      if (event) await this.event(db, now, { type: event.type, jobId: Number(serviceId), message: event.message });
    });
  }

  async setServiceBounds(serviceId: string, min: number, max: number, by: string, now: number): Promise<ServiceRecord | null> {
    const changed = await this.db.tx(async (db) => {
      const job = await db.get<JobRow>(Q.jobById, [Number(serviceId)]);
      if (!job || job.state !== 'running' || job.kind !== 'service' || job.service_id !== null) return false;
      await db.run(Q.setServiceBounds, [job.id, min, max, now]);
      await this.event(db, now, { type: 'service:bounds', jobId: job.id, message: `replicas between ${min} and ${max}, set by ${by}` });
      return true;
    });
    return changed ? ((await this.listServices([serviceId]))[0] ?? null) : null;
  }

  async putServiceHistory(serviceId: string, points: readonly (readonly [number, number])[], by: string, now: number): Promise<ServiceHistorySummary | null> {
    if (!/^\d{1,15}$/.test(serviceId) || points.length === 0) return null;
    return this.db.tx(async (db) => {
      const job = await db.get<JobRow>(Q.jobById, [Number(serviceId)]);
      if (!job || job.state !== 'running' || job.kind !== 'service' || job.service_id !== null) return null;
      const summary = await putHistory(db, job.id, points, by, now);
      const span = (summary.toSeconds - summary.fromSeconds) / 3600;
      await this.event(db, now, { type: 'service:history', jobId: job.id, message: `rate history imported by ${by}: ${summary.points} points over ${span.toFixed(1)} h (revision ${summary.revision})` });
      return summary;
    });
  }

  async serviceHistorySummaries(serviceIds: readonly string[]): Promise<ReadonlyMap<string, ServiceHistorySummary>> {
    return historySummaries(this.db, serviceIds.filter((i) => /^\d{1,15}$/.test(i)).map(Number));
  }

  async serviceHistory(serviceId: string): Promise<{ summary: ServiceHistorySummary; points: [number, number][] } | null> {
    return /^\d{1,15}$/.test(serviceId) ? getHistory(this.db, Number(serviceId)) : null;
  }

  async setBorrowed(jobIds: readonly string[], borrowed: boolean): Promise<void> {
    const ids = jobIds.filter((i) => /^\d{1,15}$/.test(i)).map(Number);
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      await this.db.run(Q.setBorrowed(part.length), [borrowed ? 1 : 0, ...part]);
    }
  }

  async addEvent(e: { readonly type: string; readonly jobId?: string | null; readonly nodeId?: string | null; readonly message: string }, now: number): Promise<void> {
    await this.event(this.db, now, { type: e.type, jobId: e.jobId ?? null, nodeId: e.nodeId ?? null, message: e.message });
  }

  recordEnergy(nodeId: string, report: EnergyReport, now: number, prices: EnergyPrices): Promise<boolean> {
    return this.db.tx((db) => applyEnergy(db, nodeId, report, now, prices));
  }

  usage(q: UsageQuery): Promise<UsageGroup[]> {
    return usageGroups(this.db, q);
  }

  recordServed(reports: readonly ServedReport[]): Promise<number> {
    if (reports.length === 0) return Promise.resolve(0);
    return this.db.tx(async (db) => {
      let applied = 0;
      for (const r of reports) if (await applyServed(db, r)) applied++;
      return applied;
    });
  }

  nodeEnergy(): Promise<NodeEnergy[]> {
    return nodeEnergy(this.db);
  }

  rollUpUsage(now: number, utcOffsetHours: number): Promise<number> {
    return rollUp(this.db, now, utcOffsetHours);
  }

  putBudget(b: Budget, now: number): Promise<void> {
    return putBudget(this.db, b, now);
  }

  deleteBudget(tenant: string, period: BudgetPeriod): Promise<boolean> {
    return deleteBudget(this.db, tenant, period);
  }

  listBudgets(tenant?: string): Promise<Budget[]> {
    return listBudgets(this.db, tenant);
  }

  /**
   * Ahead of queued writes (urgent): each scheduling cycle begins and ends with this one-row
   * write, and behind a burst's submissions (a 10,000-element array is one transaction) it had
   * waited seconds for its turn, the cluster idle meanwhile.
   */
  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.db.tx(async (db) => {
      await db.run(Q.acquireLease, [name, holder, now + ttlMs, now]);
      const r = await db.get<{ holder: string }>(Q.leaseHolder, [name]);
      return r?.holder === holder;
    }, { urgent: true });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.run(Q.releaseLease, [name, holder]);
  }

  private async event(db: SqlDb, now: number, e: EventInput): Promise<void> {
    await this.writeEvents(db, now, [e]);
  }

  /**
   * Events gathered in a transaction, in the order given: the tenants they lack read in one
   * statement, then EVENT_CHUNK rows to an insert (a heartbeat that starts or ends many tasks
   * wrote two statements per event before).
   */
  private async writeEvents(db: SqlDb, now: number, events: readonly EventInput[]): Promise<void> {
    const jobOf = (e: EventInput): number | null => (e.jobId === undefined || e.jobId === null ? null : Number(e.jobId));
    const lacking = [...new Set(events.filter((e) => (e.tenant ?? null) === null && jobOf(e) !== null).map((e) => jobOf(e) as number))];
    const tenants = new Map<number, string>();
    for (let i = 0; i < lacking.length; i += EVENT_CHUNK) {
      const part = lacking.slice(i, i + EVENT_CHUNK);
      for (const r of await db.all<{ id: number; tenant: string }>(Q.tenantsOfJobs(part.length), part)) tenants.set(Number(r.id), r.tenant);
    }
    for (let i = 0; i < events.length; i += EVENT_CHUNK) {
      const part = events.slice(i, i + EVENT_CHUNK);
      const params: Param[] = [];
      for (const e of part) {
        const job = jobOf(e);
        params.push(now, e.type, job, e.nodeId ?? null, e.tenant ?? (job === null ? null : (tenants.get(job) ?? null)), e.message);
      }
      await db.run(part.length === 1 ? Q.insertEvent : Q.insertEvents(part.length), params);
    }
  }
}

/**
 * Whether a heartbeat's reports change none of the node's active tasks (read just before), as
 * the full heartbeat would judge them: no start of an assigned task, no exit, no progress of a
 * task 0, and every running or stopping task reported. A report of a run the node does not hold
 * changes nothing (the answer leaves it out, so the agent stops it).
 */
function changesNoTask(active: readonly TaskRow[], reports: readonly TaskReport[]): boolean {
  const byRun = new Map<string, TaskRow>();
  for (const t of active) byRun.set(runIdOf(t.job_id, t.idx, t.attempt), t);
  const reported = new Set<string>();
  for (const r of reports) {
    reported.add(r.runId);
    const t = byRun.get(r.runId);
    if (!t) continue;
    if (r.state === 'exited' || t.state === 'assigned' || (t.idx === 0 && r.progress !== undefined)) return false;
  }
  for (const t of active) if ((t.state === 'running' || t.state === 'stopping') && !reported.has(runIdOf(t.job_id, t.idx, t.attempt))) return false;
  return true;
}

/** Whether an answer asks the agent to start a run it does not report running, or to stop one. */
function tellsAgentSomething(answer: readonly TaskAssignment[], reports: readonly TaskReport[]): boolean {
  const running = new Set<string>();
  for (const r of reports) if (r.state === 'running') running.add(r.runId);
  return answer.some((a) => a.action === 'stop' || !running.has(a.runId));
}

/** What a submission carries into its batch. */
interface SubmitRequest {
  readonly tenant: string;
  readonly spec: JobSpec;
  readonly clientKey: string | null;
  readonly now: number;
  readonly beforeCreate?: () => void;
}

/** An array element's TIDE_ARRAY_INDEX: its row's (migration 019), or its spec's (rows written before). */
function elementEnv(row: RunRow, spec: JobSpec): Record<string, string> {
  const index = row.array_index ?? (spec as { arrayIndex?: number }).arrayIndex;
  return index === null || index === undefined ? {} : { TIDE_ARRAY_INDEX: String(index) };
}

function groupOf(spec: JobSpec, index: number): JobSpec['groups'][number] | undefined {
  let i = index;
  for (const g of spec.groups) {
    if (i < g.replicas) return g;
    i -= g.replicas;
  }
  return undefined;
}

/** A report's pid or exit code as the store keeps it: an integer, else null. */
function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
}

/** The port a gang's task `idx` of job `id` listens on for its peers (TaskAssignment.peers). */
function peerPort(id: number, idx: number): number {
  return PEER_PORT_BASE + (id % 5000) * 4 + idx;
}

function hostOf(address: string): string {
  try {
    return new URL(address).hostname;
  } catch {
    return address;
  }
}

/** SHA-256 of the spec as canonical JSON (object keys sorted), so key order never matters. */
function specHash(spec: JobSpec): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(spec))).digest('hex');
}

interface TokenRow {
  id: string;
  role: Role;
  tenant: string | null;
  node_id: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** A token's public id: the first 12 hex digits of its SHA-256. */
export const tokenId = (hash: string): string => hash.slice(0, 12);

const tokenFromRow = (r: TokenRow): TokenOwner & TokenInfo => ({
  id: r.id,
  role: r.role,
  tenant: r.tenant,
  node: r.node_id,
  createdAt: Number(r.created_at),
  expiresAt: r.expires_at === null ? null : Number(r.expires_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
});

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

interface QueueRow {
  name: string;
  gpu_quota: number | null;
  borrowing_limit: number | null;
  tenants: string | null;
  cohort: string | null;
  model_quotas: string | null;
}

interface ServiceRow {
  job_id: number;
  min_replicas: number;
  max_replicas: number;
  desired: number;
  keep_milli: number;
  urgent: number;
  reason: string | null;
  decided_at: number | null;
}

interface FirstTaskRow {
  job_id: number;
  gpus: string;
  started_at: number | null;
  finished_at: number | null;
  node_gpus: string | null;
}

/** The per-model quotas of a queue as the model_quotas column keeps them (JSON), or null. */
function modelQuotasColumn(q: QueueConfig): string | null {
  const m = { ...(q.nominalQuota ? { nominal: q.nominalQuota } : {}), ...(q.borrowingLimits ? { borrowing: q.borrowingLimits } : {}), ...(q.lendingLimits ? { lending: q.lendingLimits } : {}) };
  return Object.keys(m).length ? JSON.stringify(m) : null;
}

function queueFromRow(r: QueueRow): QueueConfig {
  const m = r.model_quotas === null ? {} : (JSON.parse(r.model_quotas) as { nominal?: ModelQuota; borrowing?: ModelQuota; lending?: ModelQuota });
  return {
    name: r.name,
    gpuQuota: r.gpu_quota === null ? null : Number(r.gpu_quota),
    borrowingLimit: r.borrowing_limit === null ? null : Number(r.borrowing_limit),
    ...(r.tenants === null ? {} : { tenants: JSON.parse(r.tenants) as string[] }),
    ...(r.cohort === null ? {} : { cohort: r.cohort }),
    ...(m.nominal ? { nominalQuota: m.nominal } : {}),
    ...(m.borrowing ? { borrowingLimits: m.borrowing } : {}),
    ...(m.lending ? { lendingLimits: m.lending } : {}),
  };
}

/** Jobs read together when settle re-judges them, and when a plan's binds are checked (applyPlan). */
const SETTLE_CHUNK = 500;
/** A job's row as Q.jobStatesOf reads it. */
type JobState = Pick<JobRow, 'id' | 'tenant' | 'state' | 'reason' | 'attempt' | 'timed_out_at' | 'array_count'>;

/**
 * On PostgreSQL, the quiet heartbeats' and the lease renewals' shared writes to many node rows
 * take turns: each locks its rows in the order of its plan (the VALUES' order where it finds the
 * nodes by their index, the table's where it scans it), and two of them under way at once, each
 * holding a row the other wants, deadlocked; PostgreSQL aborted one (renewals failed in four
 * full-size benchmark runs). The turn is a transaction-level advisory lock, let go at commit.
 */
async function takeSharedNodeWrites(db: SqlDb): Promise<void> {
  if (db.dialect === 'postgres') await db.get(Q.sharedNodeWrites);
}

/** A task's start as a heartbeat records it. */
interface TaskStart {
  readonly t: TaskRow;
  readonly pid: number | null;
  readonly at: number;
}

/** A task's end as a heartbeat records it. */
interface TaskEnd {
  readonly t: TaskRow;
  readonly state: 'stopped' | 'succeeded' | 'failed';
  readonly code: number | null;
  readonly reason: string;
  /** Of a range of array elements: how many exited non-zero (the job's array_failed). */
  readonly failedElements?: number;
}

/**
 * Records a heartbeat's task starts (their jobs': writeJobStarts), then its ends (by run id),
 * BIND_CHUNK to a statement. A task that started and ended since the last heartbeat (short array
 * tasks, most of all) is written once, with both (tasksRan), not started and then ended: on
 * PostgreSQL that was two new copies of each task and attempt row, four of the heaviest statements
 * of the benchmark's array phase.
 */
async function writeStartsAndEnds(db: SqlDb, starts: ReadonlyMap<string, TaskStart>, ends: ReadonlyMap<string, TaskEnd>, now: number): Promise<void> {
  const ran: (TaskStart & { end: TaskEnd })[] = [];
  const startedOnly: TaskStart[] = [];
  for (const [runId, start] of starts) {
    const end = ends.get(runId);
    if (end) ran.push({ ...start, end });
    else startedOnly.push(start);
  }
  for (let i = 0; i < startedOnly.length; i += BIND_CHUNK) {
    const part = startedOnly.slice(i, i + BIND_CHUNK);
    await db.run(Q.tasksStarted(part.length), part.flatMap((s) => [s.t.job_id, s.t.idx, s.pid, s.at]));
    await db.run(Q.attemptsStarted(part.length), part.flatMap((s) => [s.t.job_id, s.t.idx, s.t.attempt, s.at]));
  }
  for (let i = 0; i < ran.length; i += BIND_CHUNK) {
    const part = ran.slice(i, i + BIND_CHUNK);
    await db.run(Q.tasksRan(part.length), [...part.flatMap((s) => [s.t.job_id, s.t.idx, s.pid, s.at, s.end.state, s.end.code]), now]);
    await db.run(Q.attemptsRan(part.length), [...part.flatMap((s) => [s.t.job_id, s.t.idx, s.t.attempt, s.at, s.end.code, s.end.reason]), now]);
  }
  await writeEnds(db, [...ends].filter(([runId]) => !starts.has(runId)).map(([, e]) => e), now);
  for (const e of ends.values()) if (e.failedElements) await db.run(Q.setArrayFailed, [e.t.job_id, e.failedElements]);
}

/**
 * The started tasks' jobs' starts, after settle, for the jobs it left admitted (a gang not all
 * started): a job settle moved took its start with its state (setJobsState), one it requeued
 * starts again in its next attempt, and a running one has its start. Sent for every started job
 * and matched by none of them, a burst's statements were 0.7-0.9 s of PostgreSQL's time in the
 * benchmark's array phase.
 */
async function writeJobStarts(db: SqlDb, starts: readonly TaskStart[]): Promise<void> {
  const firstStart = new Map<number, number>();
  for (const s of starts) firstStart.set(Number(s.t.job_id), Math.min(firstStart.get(Number(s.t.job_id)) ?? Infinity, s.at));
  const rows = [...firstStart];
  for (let i = 0; i < rows.length; i += BIND_CHUNK) {
    const part = rows.slice(i, i + BIND_CHUNK);
    await db.run(Q.jobsStarted(part.length), part.flat());
  }
}

/** Records tasks' ends and their attempts', BIND_CHUNK to a statement. */
async function writeEnds(db: SqlDb, ends: readonly TaskEnd[], now: number): Promise<void> {
  for (let i = 0; i < ends.length; i += BIND_CHUNK) {
    const part = ends.slice(i, i + BIND_CHUNK);
    await db.run(Q.tasksExited(part.length), [...part.flatMap((e) => [e.t.job_id, e.t.idx, e.state, e.code]), now]);
    await db.run(Q.attemptsEnded(part.length), [...part.flatMap((e) => [e.t.job_id, e.t.idx, e.t.attempt, e.code, e.reason]), now]);
  }
}

/**
 * Binds (and tasks) per multi-row statement of a plan's writes (applyPlan), and starts and ends
 * per statement of a heartbeat's. At 100, a plan of 4,000 binds was 160 statements, each a round
 * trip through a loaded event loop on PostgreSQL; activeTasks.test.ts checks SQLite's plans of
 * these statements at 500 rows.
 */
const BIND_CHUNK = 500;
/** Pending reasons per statement, and per transaction after the plan's first (applyPlan). */
const REASON_CHUNK = 500;
/**
 * Binds per transaction of a plan (applyPlan). A burst's plan of 80,000 binds in one transaction
 * held SQLite's one connection, and with it the request thread, 3-5 s: heartbeats and lease
 * renewals waited it out. In parts, they go between them.
 */
export const APPLY_CHUNK = 5_000;

/** Rows per multi-row insert of events written together (store.writeEvents). */
const EVENT_CHUNK = 500;

/** An array's unfinished elements cancelled to a transaction (cancelArray). */
const ARRAY_CANCEL_CHUNK = 200;

/** Rows per multi-row insert of jobs (submissions', or those a bind or a cancel splits off an array's rest; a fixed size keeps the statements prepared). */
const ARRAY_CHUNK = 100;

/**
 * Submissions' jobs (one each: an array's is one over all its elements, migration 019), their
 * tasks and their `job:submitted` events, ARRAY_CHUNK rows to a statement across submissions:
 * 1,000 single jobs submitted together are 30 statements, not 3,000. Jobs by submission.
 */
async function insertSubmissions(db: SqlDb, subs: readonly { readonly s: SubmitRequest; readonly hash: string | null }[], made: InsertedJob[] | null = null): Promise<Job[][]> {
  const out = subs.map((): Job[] => []);
  // Each array's own row first: its job names it.
  const arrayIds = new Map<number, number>();
  for (const [k, { s }] of subs.entries()) {
    if (s.spec.array === 1) continue;
    const row = await db.get<{ id: number | string }>(Q.insertArray, [s.tenant, s.spec.name, s.spec.queue, s.spec.array, s.now]);
    if (!row) throw new Error('insert returned no array row');
    arrayIds.set(k, Number(row.id));
  }
  for (let first = 0; first < subs.length; first += ARRAY_CHUNK) {
    const part = subs.slice(first, first + ARRAY_CHUNK);
    const params: Param[] = [];
    // The inserted rows come back without their specs: these are (a spec never changes).
    const specs: JobSpec[] = [];
    part.forEach(({ s, hash }, j) => {
      const { spec } = s;
      const arrayId = arrayIds.get(first + j) ?? null;
      // An array is one job over all its elements, waiting together (migration 019).
      const job = arrayId === null ? spec : arrayTemplate(spec);
      specs.push(job);
      const name = arrayId === null ? spec.name : rangeName(spec.name, 0, spec.array);
      params.push(s.tenant, name, spec.queue, spec.priority, spec.kind, jobGpuMilli(spec), taskCount(spec), spec.preemptible ? 1 : 0, JSON.stringify(job), s.clientKey, s.now, hash, arrayId, arrayId === null ? null : 0, spec.array);
    });
    // Ids are handed out in row order; RETURNING's order is not promised.
    const rows = (await db.all<JobRow & { version?: number }>(Q.insertJobs(db.dialect, part.length), params)).sort((a, b) => a.id - b.id);
    if (rows.length !== part.length) throw new Error(`insert returned ${rows.length} rows for ${part.length} jobs`);
    const tasks: Param[] = [];
    const events: Param[] = [];
    rows.forEach((row, j) => {
      const { s } = part[j] as (typeof part)[number];
      taskRows(row.id, s.spec, tasks);
      const what = s.spec.array === 1 ? `${taskCount(s.spec)} tasks` : `${s.spec.array} elements of ${taskCount(s.spec)} tasks`;
      events.push(s.now, 'job:submitted', row.id, null, s.tenant, `${row.name} in queue ${s.spec.queue}, ${what}`);
      const job = jobFromRow(row, specs[j]);
      (out[first + j] as Job[]).push(job);
      // The mirror's own object: the answer's may be changed on its way out.
      if (made && row.version !== undefined) made.push({ job: { ...job }, version: Number(row.version) });
    });
    await insertTasks(db, tasks);
    await db.run(Q.insertEvents(part.length), events);
  }
  return out;
}

/**
 * The spec of element i of an array whose job's spec is `template` (`name-i`, arrayIndex i, of the
 * array's job type: its run times teach the history of its siblings, not one type of its own each).
 */
function elementSpec(template: JobSpec, i: number): JobSpec {
  return { ...template, name: elementName(template.name, i), arrayIndex: i } as JobSpec;
}

/** The spec of an array's job, every element's but for its index (its row's array_index and array_count say which elements). */
function arrayTemplate(spec: JobSpec): JobSpec {
  return { ...spec, array: 1, jobType: spec.jobType ?? spec.name };
}

/**
 * A plan's binds with those of an array's waiting rest (a pending job of array_count > 1) given
 * to its elements, taken off the rest's front in the binds' order. Where an element is one
 * CPU-only task, the binds on one node are one job, a range of elements whose one task runs them
 * all (TaskAssignment.arrayCount) and holds their CPU and memory together: a burst's 10,000
 * short tasks are then tens of jobs, not 10,000 (Slurm keeps a pending array as one record).
 * Any other element is a job of its own. Each is a pending job inserted with its tasks, then
 * bound as any job; the rest's row shrinks to what is left, or is itself the last of them when
 * every element is taken. Binds past the rest's count are dropped. The new jobs' states are added
 * to `states`, their specs to `madeSpecs`.
 */
async function takeElements<B extends AppliedPlan['binds'][number]>(db: SqlDb, binds: readonly B[], states: Map<number, { state: string; attempt: number; count: number }>, now: number, madeSpecs: Map<string, JobSpec>): Promise<readonly B[]> {
  /** Per rest, its binds' indices, one per element (a bind of `units` elements that many times). */
  const byRest = new Map<number, number[]>();
  binds.forEach((b, k) => {
    const id = Number(b.jobId);
    const st = states.get(id);
    if (!st || st.count <= 1 || st.state !== 'pending' || st.attempt !== b.attempt) return;
    const list = byRest.get(id) ?? [];
    byRest.set(id, list);
    for (let u = 0; u < (b.units ?? 1); u++) list.push(k);
  });
  if (byRest.size === 0) return binds;
  const out: (B | null)[] = [...binds];
  /** The binds `ks` (one per element) become `bind` alone, of the job that now stands for those elements. */
  const give = (ks: readonly number[], bind: B): void => {
    for (const k of ks) out[k] = null;
    out[ks[0] as number] = withoutUnits(bind);
  };
  for (const [id, all] of byRest) {
    const row = await db.get<JobRow>(Q.jobById, [id]);
    if (!row || row.array_id == null || row.array_index == null) continue;
    const template = parseSpec(row.spec);
    const first = Number(row.array_index);
    const count = Number(row.array_count);
    const ks = all.slice(0, count);
    const kept = new Set(ks);
    for (const k of all.slice(count)) if (!kept.has(k)) out[k] = null;
    const ranged = rangeTask(template) !== undefined;
    let groups: number[][] = ks.map((k) => [k]);
    if (ranged) {
      const byNode = new Map<string, number[]>();
      for (const k of ks) {
        const node = (binds[k] as B).tasks[0]?.node ?? '';
        const list = byNode.get(node) ?? [];
        byNode.set(node, list);
        list.push(k);
      }
      groups = [...byNode.values()];
    }
    const left = count - ks.length;
    /** Each group's elements lo … lo + ks.length - 1; the last is the rest's own row when nothing is left. */
    const parts: { lo: number; ks: number[] }[] = [];
    let lo = first;
    for (const g of groups) {
      parts.push({ lo, ks: g });
      lo += g.length;
    }
    const own = left === 0 ? parts.pop() : undefined;
    const specOf = (p: { lo: number; ks: number[] }): JobSpec => (p.ks.length === 1 ? elementSpec(template, p.lo) : template);
    for (let c = 0; c < parts.length; c += ARRAY_CHUNK) {
      const chunk = parts.slice(c, c + ARRAY_CHUNK);
      const params: Param[] = [];
      for (const p of chunk) params.push(row.tenant, rangeName(template.name, p.lo, p.ks.length), row.queue, row.priority, row.kind, row.gpu_milli, row.task_count, row.preemptible, JSON.stringify(specOf(p)), null, row.created_at, null, row.array_id, p.lo, p.ks.length);
      const ids = (await db.all<{ id: number }>(Q.insertJobs(db.dialect, chunk.length), params)).map((r) => Number(r.id)).sort((a, b) => a - b);
      const tasks: Param[] = [];
      ids.forEach((jobId, j) => {
        const p = chunk[j] as (typeof chunk)[number];
        madeSpecs.set(String(jobId), specOf(p));
        elementTaskRows(jobId, template, p.ks.length, tasks);
        states.set(jobId, { state: 'pending', attempt: 0, count: p.ks.length });
        give(p.ks, { ...(binds[p.ks[0] as number] as B), jobId: String(jobId), attempt: 0 });
      });
      await insertTasks(db, tasks);
    }
    if (own) {
      await setRest(db, id, template, own.lo, own.ks.length, own.ks.length, now);
      states.set(id, { state: 'pending', attempt: Number(row.attempt), count: own.ks.length });
      give(own.ks, binds[own.ks[0] as number] as B);
    } else {
      await setRest(db, id, template, first + ks.length, left, 1, now);
      states.set(id, { state: 'taken', attempt: Number(row.attempt), count: left });
    }
  }
  return out.filter((b): b is B => b !== null);
}

/**
 * Makes the pending job `id` of an array (spec `template`) stand for elements lo … lo + n - 1,
 * its task sized for `held` of them where an element is one CPU-only task: 1 for a rest that
 * waits (a requeued range's task held all its elements'), n for one bound as a range now.
 */
async function setRest(db: SqlDb, id: number, template: JobSpec, lo: number, n: number, held: number, now: number): Promise<void> {
  await db.run(Q.setArrayRange, [id, lo, n, rangeName(template.name, lo, n), now]);
  const g = rangeTask(template);
  if (g) await db.run(Q.setPendingTaskSize, [id, g.cpuMilli * held, g.memoryMib * held]);
}

/** An array element's one task where it is one CPU-only task (its elements can run as a range), else undefined. */
function rangeTask(template: JobSpec): JobSpec['groups'][number] | undefined {
  const g = template.groups[0];
  return template.groups.length === 1 && g !== undefined && g.replicas === 1 && g.gpuCount === 0 ? g : undefined;
}

/** A bind as one job's (the elements it placed are that job's now). */
function withoutUnits<B extends AppliedPlan['binds'][number]>(b: B): B {
  if (b.units === undefined) return b;
  const { units: _, ...rest } = b;
  return rest as B;
}

/**
 * Appends the task rows of a job of `n` elements of an array whose job's spec is `template`
 * (taskRows' layout): one element's, or for a range of CPU-only elements (one task each) one
 * task that holds the CPU and memory of all n.
 */
function elementTaskRows(jobId: number, template: JobSpec, n: number, out: Param[]): void {
  const g = rangeTask(template);
  if (n === 1 || !g) taskRows(jobId, template, out);
  else out.push(jobId, 0, g.name, 0, g.cpuMilli * n, g.memoryMib * n);
}

/**
 * Splits an array's waiting rest (a pending job of array_count > 1) where `only` starts or stops
 * covering its elements: the first run keeps the row, each other is a pending job of its own
 * (with its tasks). Answers the jobs of the runs `only` covers, each with its element count.
 */
async function splitRest(db: SqlDb, row: JobRow, only: ReadonlySet<number>, now: number): Promise<Map<number, number>> {
  const template = parseSpec(row.spec);
  const first = Number(row.array_index);
  const end = first + Number(row.array_count);
  const runs: { lo: number; n: number; covered: boolean }[] = [];
  for (let i = first; i < end; i++) {
    const covered = only.has(i);
    const run = runs.at(-1);
    if (run && run.covered === covered) run.n++;
    else runs.push({ lo: i, n: 1, covered });
  }
  const out = new Map<number, number>();
  if (runs.length === 1) {
    if ((runs[0] as (typeof runs)[number]).covered) out.set(Number(row.id), end - first);
    return out;
  }
  const [head, ...others] = runs as [(typeof runs)[number], ...typeof runs];
  await setRest(db, Number(row.id), template, head.lo, head.n, 1, now);
  if (head.covered) out.set(Number(row.id), head.n);
  for (let c = 0; c < others.length; c += ARRAY_CHUNK) {
    const part = others.slice(c, c + ARRAY_CHUNK);
    const params: Param[] = [];
    for (const r of part) {
      const spec = r.n === 1 ? elementSpec(template, r.lo) : template;
      params.push(row.tenant, rangeName(template.name, r.lo, r.n), row.queue, row.priority, row.kind, row.gpu_milli, row.task_count, row.preemptible, JSON.stringify(spec), null, row.created_at, null, row.array_id ?? null, r.lo, r.n);
    }
    const ids = (await db.all<{ id: number }>(Q.insertJobs(db.dialect, part.length), params)).map((r) => Number(r.id)).sort((a, b) => a - b);
    const tasks: Param[] = [];
    ids.forEach((jobId, k) => {
      taskRows(jobId, template, tasks);
      const r = part[k] as (typeof part)[number];
      if (r.covered) out.set(jobId, r.n);
    });
    await insertTasks(db, tasks);
  }
  return out;
}

/** The name of the job that stands for elements first … first + n - 1 of the array `name`: `name-[5-999]`, or `name-5` for one. */
const rangeName = (name: string, first: number, n: number): string => (n === 1 ? elementName(name, first) : `${name}-[${first}-${first + n - 1}]`);

/** Element i of the array `name` is named `name-i` (getArrayElement finds rows written before migration 019 by it). */
const elementName = (name: string, i: number): string => `${name}-${i}`;

/** Appends a new job's task rows (Q.insertTasks' six parameters each, indices across its groups) to `out`. */
function taskRows(jobId: number, spec: JobSpec, out: Param[]): void {
  let idx = 0;
  for (const g of spec.groups) for (let r = 0; r < g.replicas; r++) out.push(jobId, idx++, g.name, g.gpuCount * g.gpuMilli, g.cpuMilli, g.memoryMib);
}

/** Task rows made by taskRows, pending, one statement for up to 100 of them. */
async function insertTasks(db: SqlDb, rows: readonly Param[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 600) await db.run(Q.insertTasks(Math.min(100, (rows.length - i) / 6)), rows.slice(i, i + 600));
}

/** A new job's tasks, pending. */
async function insertTasksOf(db: SqlDb, jobId: number, spec: JobSpec): Promise<void> {
  const rows: Param[] = [];
  taskRows(jobId, spec, rows);
  await insertTasks(db, rows);
}

/** Opens the store a URL names: postgres://…, sqlite:PATH, or memory: (SQLite in memory). */
export async function openStore(url: string): Promise<Store> {
  let db: SqlDb;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) db = new PostgresDb(url);
  else if (url === 'memory:') db = new SqliteDb(':memory:');
  else if (url.startsWith('sqlite:')) db = new SqliteDb(url.slice('sqlite:'.length));
  else throw new Error(`unknown database URL ${JSON.stringify(url)}: use postgres://…, sqlite:PATH or memory:`);
  const store = new SqlStore(db);
  await store.migrate();
  return store;
}

export { OPEN_JOBS_IN };

/** Whether no client key (in either form) is used by two of these submissions of one tenant. */
function keysDistinct(items: readonly SubmitRequest[]): boolean {
  const seen = new Set<string>();
  for (const s of items) {
    if (s.clientKey === null) continue;
    for (const k of clientKeysOf(s)) {
      const key = `${s.tenant}\n${k}`;
      if (seen.has(key)) return false;
      seen.add(key);
    }
  }
  return true;
}

/**
 * A submission's client keys: its own, then `key#0`, which an array's first element had before
 * migration 019 (one row per element, `key#i`), so that a key reused across such an array and a
 * single job is a conflict too.
 */
function clientKeysOf(s: SubmitRequest): string[] {
  return [s.clientKey as string, `${s.clientKey}#0`];
}

/** The jobs a keyed submission already made (`rowOf` finds a job by client key), or null where it made none. */
function submissionUnder(s: SubmitRequest, rowOf: (key: string) => JobRow | undefined): SubmitResult | null {
  const [key, older] = clientKeysOf(s) as [string, string];
  const row = rowOf(key) ?? rowOf(older);
  if (!row) return null;
  const sameKind = row.client_key === key || (s.spec.array > 1 && row.array_id != null);
  const conflict = !sameKind || (row.spec_hash != null && row.spec_hash !== specHash(s.spec));
  return { jobs: [jobFromRow(row)], created: false, conflict };
}
