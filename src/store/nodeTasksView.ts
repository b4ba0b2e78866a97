/**
 * What a quiet heartbeat needs of its node (whether the node is known and lost, and its active
 * tasks), kept in memory for every node and brought up to date by one shared read instead of one
 * read per heartbeat: 625 reads a second at 1,250 agents, the largest cost of a steady state on
 * PostgreSQL (each a round trip and a pooled connection held while the API's requests wait).
 *
 * The view answers only when its last read began after this server's last change to tasks
 * (`changed`), so this server's binds, stops, starts and ends are never missed, and after its last
 * change to nodes (`changed({ nodes: true })`): registrations, expiry, a lost node's return.
 * Otherwise the caller waits for a read, which concurrent heartbeats share. Another server's
 * changes are read in the background once the view is `maxAgeMs` old (answers meanwhile come
 * from the view as it is), and waited for once it is four times that: another server's change
 * is seen within a second at most.
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
const NODE_STATES = 'SELECT id, state FROM nodes';

/** A node as a quiet heartbeat sees it: its state and its active tasks by job, then index. */
export interface NodeTasks {
  readonly state: string;
  readonly tasks: readonly TaskRow[];
}

export class NodeTasksView {
  /** Active tasks by node, then `job/index`. */
  private readonly byNode = new Map<string, Map<string, TaskRow>>();
  /** The node each active task is on, by `job/index`. */
  private readonly nodeOf = new Map<string, string>();
  /** Each node's tasks in order, made on first use after a change. */
  private readonly lists = new Map<string, readonly TaskRow[]>();
  private states = new Map<string, string>();
  private watermark: number | null = null;
  /** This server's changes, counted: a read that began at the current count saw them all. */
  private taskChanges = 0;
  private nodeChanges = 0;
  /** The change counts the data held now was read after, and when (clock) its tasks and its nodes were read. */
  private tasksSeen = -1;
  private nodesSeen = -1;
  private tasksReadAt = -Infinity;
  private nodesReadAt = -Infinity;
  private inFlight: { run: Promise<void>; tasks: number; nodes: number } | null = null;
  /** What the view cost (a benchmark's counts): shared reads, answers, answers that waited for a read and how long in all. */
  readonly counts = { reads: 0, answers: 0, waited: 0, waitMs: 0 };

  constructor(
    private readonly maxAgeMs = 250,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** This server changed tasks (or, with `nodes`, a node's state): the next answer reads first. */
  changed(what: { readonly nodes?: boolean } = {}): void {
    this.taskChanges++;
    if (what.nodes) this.nodeChanges++;
  }

  /**
   * The node's state and active tasks, read after this server's last change and at most four
   * times `maxAgeMs` ago; null for a node the database does not have; undefined where the view cannot answer
   * (a read failed: the caller reads the node itself).
   */
  async of(db: SqlDb, nodeId: string): Promise<NodeTasks | null | undefined> {
    this.counts.answers++;
    if (this.current() && !this.fresh() && !this.inFlight) this.read(db).catch(() => {}); // read again, answer meanwhile
    if (!this.current()) {
      const began = this.clock();
      this.counts.waited++;
      try {
        await this.read(db);
        if (!this.current()) await this.read(db);
      } catch {
        return undefined;
      } finally {
        this.counts.waitMs += this.clock() - began;
      }
    }
    if (!this.current()) return undefined;
    const state = this.states.get(nodeId);
    if (state === undefined) return null;
    return { state, tasks: this.listOf(nodeId) };
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

  /** Read after this server's last change, and at most `maxAgeMs` ago. */
  private fresh(): boolean {
    return this.current() && this.clock() - Math.min(this.tasksReadAt, this.nodesReadAt) <= this.maxAgeMs;
  }

  /** Read after this server's last change, and at most four times `maxAgeMs` ago: an answer may come from it. */
  private current(): boolean {
    const now = this.clock();
    const oldest = Math.min(this.tasksReadAt, this.nodesReadAt);
    return this.tasksSeen === this.taskChanges && this.nodesSeen === this.nodeChanges && now - oldest <= 4 * this.maxAgeMs && now >= this.tasksReadAt;
  }

  /** One read at a time; callers that would read what the one under way reads share it. */
  private read(db: SqlDb): Promise<void> {
    const f = this.inFlight;
    if (f && f.tasks === this.taskChanges && f.nodes === this.nodeChanges) return f.run;
    const entry = { run: Promise.resolve(), tasks: this.taskChanges, nodes: this.nodeChanges };
    entry.run = (f ? f.run.catch(() => {}) : Promise.resolve()).then(() => this.readNow(db));
    this.inFlight = entry;
    const clear = (): void => {
      if (this.inFlight === entry) this.inFlight = null;
    };
    entry.run.then(clear, clear);
    return entry.run;
  }

  private async readNow(db: SqlDb): Promise<void> {
    const tasks = this.taskChanges;
    const nodes = this.nodeChanges;
    const at = this.clock();
    this.counts.reads++;
    try {
      const next = await readVersionWatermark(db, 'tasks');
      const rows = this.watermark === null ? await db.all<TaskRow>(ACTIVE_TASKS_Q.all) : await db.all<TaskRow>(ACTIVE_TASKS_Q.changed, [this.watermark]);
      const readNodes = this.nodesSeen !== nodes || at - this.nodesReadAt > this.maxAgeMs / 2;
      const states = readNodes ? await db.all<{ id: string; state: string }>(NODE_STATES) : null;
      for (const r of rows) this.apply(r);
      this.watermark = next;
      if (states) {
        this.states = new Map(states.map((s) => [s.id, s.state]));
        this.nodesSeen = nodes;
        this.nodesReadAt = at;
      }
      this.tasksSeen = tasks;
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
