/**
 * Group commit for quiet heartbeats. Most heartbeats change no task: all they write is the
 * node's last heartbeat and telemetry. With 1,250 agents heartbeating every 2 s that was 625
 * write transactions a second on SQLite's one connection. Instead a quiet heartbeat is answered
 * at once and its write waits here, at most `windowMs`, to go out with the others' in one
 * transaction (one statement per 200 nodes). Only the latest heartbeat of a node is kept.
 *
 * Nothing depends on such a write being durable when the agent gets its answer: a lost write
 * leaves the node's last heartbeat `windowMs` older, far inside the node lease. A heartbeat that
 * does change something goes through its own transaction and drops the node's waiting write.
 * Readers of this server that show heartbeats (a node, the node list, expiry) flush first, so
 * they read what was answered; the node list may then be kept up to 1 s while only heartbeats
 * change (SqlStore.listNodes).
 */
export interface HeartbeatWrite {
  readonly node: string;
  readonly at: number;
  /** The telemetry as the nodes table keeps it (JSON). */
  readonly telemetry: string;
}

export class HeartbeatWrites {
  private pending = new Map<string, HeartbeatWrite>();
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  /** Writes that failed (the database was unavailable): their heartbeats are simply older. */
  failures = 0;
  /** Heartbeats written, and the transactions that wrote them. */
  written = 0;
  flushes = 0;

  constructor(
    private readonly write: (rows: readonly HeartbeatWrite[]) => Promise<void>,
    private readonly windowMs = 100,
  ) {}

  add(row: HeartbeatWrite): void {
    this.pending.set(row.node, row);
    if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  /** Forgets a node's waiting write (a heartbeat that wrote in its own transaction came after it). */
  drop(node: string): void {
    this.pending.delete(node);
  }

  /** Writes what waits (and waits for a write under way); resolves once it is in the database. */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size === 0) return this.inFlight;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    this.inFlight = this.inFlight.then(async () => {
      try {
        await this.write(rows);
        this.written += rows.length;
        this.flushes++;
      } catch {
        this.failures++;
      }
    });
    return this.inFlight;
  }
}
