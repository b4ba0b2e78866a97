/**
 * Group commit for quiet heartbeats. Most heartbeats change no task: all they write is the
 * node's last heartbeat and telemetry. With 1,250 agents heartbeating every 2 s that was 625
 * write transactions a second on SQLite's one connection. Instead a quiet heartbeat's write
 * waits here, at most `windowMs`, to go out with the others' in one transaction (one statement
 * per 200 nodes). Only the latest heartbeat of a node is kept.
 *
 * Nothing depends on the last heartbeat and telemetry being durable when the agent gets its
 * answer: a lost write leaves the node's last heartbeat `windowMs` older, far inside the node
 * lease. Such a heartbeat is answered at once. A heartbeat that does change something goes
 * through its own transaction and drops the node's waiting write.
 *
 * Energy counters are different (docs/energy.md): the agent retires an ended run once a server
 * has answered a heartbeat that carried its last joules, so an answer must mean they are in the
 * database. A quiet heartbeat with counters therefore waits for the transaction that applies
 * them with the others' (`addEnergy`), still one transaction per window for every node. Every
 * report is kept, in order (they are cumulative and applied once by sequence number, so an
 * older one after a newer changes nothing); a full heartbeat does not drop them. If the shared
 * transaction fails, each report is tried again in a transaction of its own, so one that cannot
 * be applied fails only its own heartbeat (its agent sends the counters again).
 *
 * Readers of this server that show heartbeats (a node, the node list, expiry, the snapshot the
 * idle monitor reads) flush first, so they read what was answered; the node list may then be
 * kept up to 1 s while only heartbeats change (SqlStore.listNodes).
 */
import type { EnergyReport } from '../api/types.ts';
import type { EnergyPrices } from '../core/energy/pricing.ts';

export interface HeartbeatWrite {
  readonly node: string;
  readonly at: number;
  /** The telemetry as the nodes table keeps it (JSON). */
  readonly telemetry: string;
}

/** A heartbeat's energy counters, applied at its time `at`. */
export interface EnergyWrite {
  readonly node: string;
  readonly at: number;
  readonly report: EnergyReport;
  readonly prices: EnergyPrices;
}

/** Writes the heartbeats and applies the reports, in one transaction. */
export type WriteBatch = (rows: readonly HeartbeatWrite[], energy: readonly EnergyWrite[]) => Promise<void>;
/** Applies one report in a transaction of its own (after the shared one failed). */
export type WriteEnergy = (e: EnergyWrite) => Promise<void>;

interface Waiting {
  readonly write: EnergyWrite;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class HeartbeatWrites {
  private pending = new Map<string, HeartbeatWrite>();
  private energy: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  /** Writes that failed (the database was unavailable): their heartbeats are simply older. */
  failures = 0;
  /** Heartbeats written, and the transactions that wrote them. */
  written = 0;
  flushes = 0;
  /** Energy reports applied with the others, and those applied alone after a shared transaction failed. */
  energyBatched = 0;
  energyAlone = 0;

  constructor(
    private readonly write: WriteBatch,
    private readonly writeEnergy: WriteEnergy,
    private readonly windowMs = 100,
  ) {}

  add(row: HeartbeatWrite): void {
    this.pending.set(row.node, row);
    this.arm();
  }

  /** A quiet heartbeat with energy counters: resolves once they are in the database, rejects if they could not be applied. */
  addEnergy(row: HeartbeatWrite, energy: EnergyWrite): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.set(row.node, row);
      this.energy.push({ write: energy, resolve, reject });
      this.arm();
      // Someone waits for this write: the window's timer keeps the process alive.
      this.timer?.ref();
    });
  }

  /** Forgets a node's waiting heartbeat (a heartbeat that wrote in its own transaction came after it); its energy reports stay. */
  drop(node: string): void {
    this.pending.delete(node);
  }

  /** Writes what waits (and waits for a write under way); resolves once it is in the database. */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size === 0 && this.energy.length === 0) return this.inFlight;
    const rows = [...this.pending.values()];
    const energy = this.energy;
    this.pending = new Map();
    this.energy = [];
    this.inFlight = this.inFlight.then(() => this.commit(rows, energy));
    return this.inFlight;
  }

  private arm(): void {
    if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  private async commit(rows: readonly HeartbeatWrite[], energy: readonly Waiting[]): Promise<void> {
    try {
      await this.write(rows, energy.map((w) => w.write));
      this.written += rows.length;
      this.flushes++;
      this.energyBatched += energy.length;
      for (const w of energy) w.resolve();
      return;
    } catch {
      this.failures++;
    }
    // The shared transaction failed: the heartbeats' times are only older, but each report is
    // tried alone so that one bad report (or a deadlock) does not fail every node's answer.
    for (const w of energy) {
      try {
        await this.writeEnergy(w.write);
        this.energyAlone++;
        w.resolve();
      } catch (e) {
        w.reject(e);
      }
    }
  }
}
