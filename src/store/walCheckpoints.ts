/**
 * SQLite's write-ahead-log checkpoints, off the request thread.
 *
 * By default the connection that commits checkpoints the log once it holds 1,000 pages: inside
 * COMMIT it copies the pages into the database file and syncs the file. Measured in
 * `npm run bench:server -- --scale full`, COMMITs took 11 % of the request thread while jobs were
 * submitted (up to 112 ms each), and no request, timer or accept ran meanwhile.
 *
 * Here the main connection never checkpoints (`wal_autocheckpoint = 0`). A worker thread with a
 * connection of its own runs PASSIVE checkpoints (which never wait for a reader or the writer)
 * after commits, while the main connection goes on. A passive checkpoint beside a stream of writes
 * never lets the log start over, though: the writer restarts the log only when every frame in it
 * has been copied. So once the log holds QUIET_AFTER_FRAMES, the connection is handed to the
 * checkpointer for one quiet pass, as to a transaction: statements wait for it, but the event loop
 * does not; with no write beside it the pass copies everything, and the next write restarts the log.
 *
 * The worker starts after the connection's first START_AFTER_COMMITS commits (a short-lived
 * database, a test's, never needs it). If it cannot start or a checkpoint fails, the connection
 * checkpoints as SQLite does by default again.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Frames (pages) in the log at which the connection is handed over for a quiet pass: 16 MB of 4-KB pages. */
export const QUIET_AFTER_FRAMES = 4096;
/** Commits before the worker starts. */
const START_AFTER_COMMITS = 64;
/**
 * When a pass beside writes starts: after a commit, once BUSY_PASS_EVERY_MS have passed since the
 * last while the log grows fast (that pass found BUSY_FRAMES or more added), else once
 * PASS_AFTER_COMMITS commits or IDLE_PASS_EVERY_MS have: a steady trickle of small commits (quiet
 * heartbeats' every 100 ms) then costs a sync of the database file about once a second, not one each.
 */
const BUSY_PASS_EVERY_MS = 50;
const IDLE_PASS_EVERY_MS = 1000;
const PASS_AFTER_COMMITS = 16;
const BUSY_FRAMES = 256;
/** SQLite's own threshold, restored if the worker fails. */
const DEFAULT_AUTOCHECKPOINT = 1000;

export interface WalCheckpointOptions {
  /** QUIET_AFTER_FRAMES, for tests. */
  readonly quietAfterFrames?: number;
  /** better-sqlite3's entry point; another path only to test a worker that cannot start. */
  readonly module?: string;
}

/** What one checkpoint reports (PRAGMA wal_checkpoint): frames in the log, and frames copied so far. */
interface Pass {
  readonly log: number;
  readonly checkpointed: number;
}

/** The worker: a connection of its own, a PASSIVE checkpoint per message, its result answered. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    parentPort.postMessage({ seq: m, log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ seq: m, error: String(e && e.message) });
  }
});
`;

export class WalCheckpoints {
  private worker: Worker | null = null;
  private commits = 0;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (p: Pass) => void; reject: (e: Error) => void }>();
  /** A background pass under way (one at a time: passes after it would find nothing new). */
  private background: Promise<void> | null = null;
  private quietDue = false;
  private failed = false;
  private closing = false;
  /** Frames the log held at the last pass's end, 0 before any. */
  private lastLog = 0;
  /** When the last pass beside writes ended (performance clock), and whether it found the log growing fast. */
  private lastPassAt = -Infinity;
  private busy = true;
  private commitsSincePass = 0;
  /** Passes run beside writes, quiet passes and how long the connection waited for them (ms), and failures (for benchmarks and tests). */
  readonly counts = { background: 0, quiet: 0, quietMs: 0, failures: 0 };

  constructor(
    private readonly path: string,
    /** Sets the main connection's wal_autocheckpoint. */
    private readonly setAutocheckpoint: (pages: number) => void,
    /** Hands the connection over for a quiet pass (the caller's turn-taking, as for a transaction). */
    private readonly whileIdle: (fn: () => Promise<void>) => Promise<void>,
    private readonly options: WalCheckpointOptions = {},
  ) {}

  /** Tells of a commit on the main connection: starts the worker in time, and a pass if none is under way. */
  committed(): void {
    if (this.failed) return;
    if (this.worker === null) {
      if (++this.commits < START_AFTER_COMMITS) return;
      this.start();
    }
    this.commitsSincePass++;
    if (this.background !== null || this.quietDue) return;
    const since = performance.now() - this.lastPassAt;
    if (this.busy ? since < BUSY_PASS_EVERY_MS : since < IDLE_PASS_EVERY_MS && this.commitsSincePass < PASS_AFTER_COMMITS) return;
    this.commitsSincePass = 0;
    this.background = this.pass(false).finally(() => (this.background = null));
  }

  /** Stops the worker (waits for a pass under way); the main connection checkpoints by default again. */
  async close(): Promise<void> {
    const w = this.worker;
    if (w === null) return;
    await this.background?.catch(() => {});
    this.closing = true;
    this.worker = null;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.ref();
    w.postMessage('close');
    await exited;
  }

  private start(): void {
    try {
      const w = new Worker(WORKER, { eval: true, workerData: { module: this.options.module ?? createRequire(import.meta.url).resolve('better-sqlite3'), path: this.path } });
      w.on('message', (m: { seq: number; log?: number; checkpointed?: number; error?: string }) => {
        const p = this.waiting.get(m.seq);
        this.waiting.delete(m.seq);
        // Let go between passes, but never once close() holds it for the exit it waits for.
        if (this.waiting.size === 0 && !this.closing) w.unref();
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve({ log: m.log ?? 0, checkpointed: m.checkpointed ?? 0 });
      });
      w.on('error', (e) => this.fail(e));
      // A worker that exits while passes wait (it failed to open the database) fails them.
      w.on('exit', () => {
        if (!this.closing) this.fail(new Error('the checkpoint thread exited'));
      });
      w.unref();
      this.worker = w;
      this.setAutocheckpoint(0);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** One pass; a quiet one when it leaves the log at QUIET_AFTER_FRAMES or more. */
  private async pass(quiet: boolean): Promise<void> {
    const w = this.worker;
    if (w === null || this.failed) return;
    const seq = ++this.seq;
    const began = performance.now();
    const done = new Promise<Pass>((resolve, reject) => this.waiting.set(seq, { resolve, reject }));
    // Held while a pass is awaited (someone waits for it), let go between passes.
    w.ref();
    w.postMessage(seq);
    let p: Pass;
    try {
      p = await done;
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    // Frames added since the last pass (the log may have started over meanwhile).
    const added = p.log >= this.lastLog ? p.log - this.lastLog : p.log;
    this.lastLog = p.log;
    if (quiet) {
      this.counts.quiet++;
      this.counts.quietMs += performance.now() - began;
    } else {
      this.counts.background++;
      this.lastPassAt = performance.now();
      this.busy = added >= BUSY_FRAMES;
    }
    if (!quiet && p.log >= (this.options.quietAfterFrames ?? QUIET_AFTER_FRAMES) && !this.quietDue) {
      this.quietDue = true;
      void this.whileIdle(() => this.pass(true)).finally(() => (this.quietDue = false));
    }
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.counts.failures++;
    const w = this.worker;
    this.worker = null;
    this.closing = true;
    void w?.terminate();
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
    this.setAutocheckpoint(DEFAULT_AUTOCHECKPOINT);
  }
}
