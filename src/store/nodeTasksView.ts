/**
 * What a quiet heartbeat needs of its node (whether the node is known and lost, and its active
 * tasks), kept in memory for every node and brought up to date by one shared read instead of one
 * read per heartbeat: 625 reads a second at 1,250 agents, the largest cost of a steady state on
 * PostgreSQL (each a round trip and a pooled connection held while the API's requests wait).
 *
 * The view answers for a node only when its last read began after this server's last change to
 * that node's tasks (`changed({ node })`: a heartbeat's own writes and the nodes of the gang
 * peers it stopped, a plan's binds on it), to tasks anywhere (`changed()`: preemptions, cancels,
 * time limits) and to nodes (`changed({ nodes: true })`: registrations, expiry, a lost node's
 * return), so this server's binds, stops, starts and ends are never missed. Otherwise the caller
 * waits for a read, which concurrent heartbeats share. A write holds back only the answers of the
 * nodes it touched: while array tasks start and end a node reports every few milliseconds, and a
 * view held back by every report was never current (on PostgreSQL 1,341 heartbeats read their
 * node alone in one run's array phase, 268 ms each, waiting for a pooled connection). Another
 * server's changes are read in the background once the view is `maxAgeMs` old (answers meanwhile
 * come from the view as it is), and waited for once it is four times that: another server's
 * change is seen within a second at most.
 *
 * The staleness bound matters for one case: another server writes the node off (no heartbeat for
 * the expiry time) and, within that second, the node's agent heartbeats here and is told to keep its
 * runs. That agent had no answer for longer than its own fence (half the expiry: agent/agent.ts),
 * so it has stopped those runs already and reports them ended: its heartbeat is not quiet, and
 * takes the full path. A direct read had the same race, over a shorter window.
 *
 * Tasks are found changed as store/activeTasks.ts finds them (the `version` column and a
 * watermark); the nodes' states are read whole (one row per node) when they may have changed.
 */
import { ACTIVE_TASKS_Q } from './activeTasks.ts';
import { readVersionWatermark } from './queries.ts';
import type { TaskRow } from './rows.ts';
import type { SqlDb } from './sqlDb.ts';

const ACTIVE = new Set(['assigned', 'running', 'stopping']);
const NODE_STATES = 'SELECT id, state, address FROM nodes';

/** A node as a quiet heartbeat sees it: its state and its active tasks by job, then index. */
export interface NodeTasks {
  readonly state: string;
  /** Where its agent registered from (for its tasks' peers). */
  readonly address: string;
  readonly tasks: readonly TaskRow[];
}

export class NodeTasksView {
  /** Active tasks by node, then `job/index`. */
  private readonly byNode = new Map<string, Map<string, TaskRow>>();
  /** The node each active task is on, by `job/index`. */
  private readonly nodeOf = new Map<string, string>();
  /** Each node's tasks in order, made on first use after a change. */
  private readonly lists = new Map<string, readonly TaskRow[]>();
  private states = new Map<string, { readonly state: string; readonly address: string }>();
  private watermark: number | null = null;
  /**
   * This server's changes, numbered: the last change to tasks anywhere, to each node's tasks
   * (emptied by a change anywhere, which covers them), and to nodes' states. A read that began at
   * number n saw every change numbered n or less.
   */
  private changes = 0;
  private anyTaskChange = 0;
  private readonly nodeTaskChange = new Map<string, number>();
  private nodeStateChange = 0;
  /** The change number the data held now was read at, and when (clock) its tasks and its nodes were read. */
  private tasksSeen = -1;
  private nodesSeen = -1;
  private tasksReadAt = -Infinity;
  private nodesReadAt = -Infinity;
  private inFlight: { run: Promise<void>; at: number } | null = null;
  /** What the view cost (a benchmark's counts): shared reads, answers, answers that waited for a read and how long in all. */
  readonly counts = { reads: 0, answers: 0, waited: 0, waitMs: 0 };

  constructor(
    private readonly maxAgeMs = 250,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * This server changed tasks: those on `node` alone, or (no node) anywhere; with `nodes`, a
   * node's state too. The next answer for the nodes concerned reads first.
   */
  changed(what: { readonly node?: string; readonly nodes?: boolean } = {}): void {
    this.changes++;
    if (what.node === undefined) {
      this.anyTaskChange = this.changes;
      this.nodeTaskChange.clear();
    } else this.nodeTaskChange.set(what.node, this.changes);
    if (what.nodes) this.nodeStateChange = this.changes;
  }

  /**
   * The node's state and active tasks, read after this server's last change to them and at most
   * four times `maxAgeMs` before the call (a read that took longer than that still answers: a
   * read of the node alone would be no newer, and on a loaded PostgreSQL the heartbeats that fell
   * back to it made 500-600 such reads a run, 0.3-0.6 s each); null for a node the database does
   * not have; undefined where the view cannot answer (a read failed, or changes kept coming: the
   * caller reads the node itself).
   */
  async of(db: SqlDb, nodeId: string): Promise<NodeTasks | null | undefined> {
    this.counts.answers++;
    const current = this.current(nodeId);
    // Past `maxAgeMs`: read again, and answer from the view meanwhile.
    if (current && !this.inFlight && this.clock() - this.oldestRead() > this.maxAgeMs) this.read(db, this.needed(nodeId)).catch(() => {});
    if (!current) {
      const began = this.clock();
      this.counts.waited++;
      try {
        await this.read(db, this.needed(nodeId));
        if (!this.current(nodeId, began)) await this.read(db, this.needed(nodeId));
      } catch {
        return undefined;
      } finally {
        this.counts.waitMs += this.clock() - began;
      }
      if (!this.current(nodeId, began)) return undefined;
    }
    const node = this.states.get(nodeId);
    if (node === undefined) return null;
    return { state: node.state, address: node.address, tasks: this.listOf(nodeId) };
  }

  /** Forget everything: the next answer reads every active task and node. */
  reset(): void {
    this.byNode.clear();
    this.nodeOf.clear();
    this.lists.clear();
    this.states = new Map();
    this.watermark = null;
    this.tasksSeen = this.nodesSeen = -1;
    this.tasksReadAt = this.nodesReadAt = -Infinity;
  }

  /** The change number a read must have begun at to answer for `nodeId`. */
  private needed(nodeId: string): number {
    return Math.max(this.anyTaskChange, this.nodeStateChange, this.nodeTaskChange.get(nodeId) ?? 0);
  }

  /** When (clock) the older of the view's two parts, its tasks and its nodes' states, was read. */
  private oldestRead(): number {
    return Math.min(this.tasksReadAt, this.nodesReadAt);
  }

  /**
   * Read after this server's last change to the node, and at most four times `maxAgeMs` before
   * `at`: an answer for it may come from the view. (A read sets tasksSeen whenever it sets
   * nodesSeen, so tasksSeen covers the nodes' states too once nodesSeen does.)
   */
  private current(nodeId: string, at = this.clock()): boolean {
    return this.tasksSeen >= this.needed(nodeId) && this.nodesSeen >= this.nodeStateChange && at - this.oldestRead() <= 4 * this.maxAgeMs && this.clock() >= this.tasksReadAt;
  }

  /** One read at a time; a caller whose changes the read under way began after shares it. */
  private read(db: SqlDb, needed: number): Promise<void> {
    const f = this.inFlight;
    if (f && f.at >= needed) return f.run;
    const entry = { run: Promise.resolve(), at: this.changes };
    entry.run = (f ? f.run.catch(() => {}) : Promise.resolve()).then(() => this.readNow(db));
    this.inFlight = entry;
    const clear = (): void => {
      if (this.inFlight === entry) this.inFlight = null;
    };
    entry.run.then(clear, clear);
    return entry.run;
  }

  private async readNow(db: SqlDb): Promise<void> {
    const seen = this.changes;
    const at = this.clock();
    this.counts.reads++;
    try {
      const next = await readVersionWatermark(db, 'tasks');
      const rows = this.watermark === null ? await db.all<TaskRow>(ACTIVE_TASKS_Q.all) : await db.all<TaskRow>(ACTIVE_TASKS_Q.changed, [this.watermark]);
      const readNodes = this.nodesSeen < this.nodeStateChange || at - this.nodesReadAt > this.maxAgeMs / 2;
      const states = readNodes ? await db.all<{ id: string; state: string; address: string }>(NODE_STATES) : null;
      for (const r of rows) this.apply(r);
      this.watermark = next;
      if (states) {
        this.states = new Map(states.map((s) => [s.id, { state: s.state, address: s.address }]));
        this.nodesSeen = seen;
        this.nodesReadAt = at;
      }
      this.tasksSeen = seen;
      this.tasksReadAt = at;
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  private apply(r: TaskRow): void {
    const key = `${r.job_id}/${r.idx}`;
    const was = this.nodeOf.get(key);
    if (was !== undefined) {
      this.byNode.get(was)?.delete(key);
      this.lists.delete(was);
      this.nodeOf.delete(key);
    }
    if (!ACTIVE.has(r.state) || r.node_id === null) return;
    let tasks = this.byNode.get(r.node_id);
    if (!tasks) this.byNode.set(r.node_id, (tasks = new Map()));
    tasks.set(key, r);
    this.nodeOf.set(key, r.node_id);
    this.lists.delete(r.node_id);
  }

  private listOf(nodeId: string): readonly TaskRow[] {
    let list = this.lists.get(nodeId);
    if (!list) {
      list = [...(this.byNode.get(nodeId)?.values() ?? [])].sort((a, b) => Number(a.job_id) - Number(b.job_id) || Number(a.idx) - Number(b.idx));
      this.lists.set(nodeId, list);
    }
    return list;
  }
}
