/**
 * How long this server's request thread was held, and so could not hear its agents.
 *
 * A node is written off after a lease of silence, but silence is measured by heartbeats the
 * server has taken in: while the thread is held (a long transaction, a collection), heartbeats
 * wait in their sockets. When the thread is let go, Node runs its due timers before it reads
 * the sockets, so the scheduling loop's tick could find every node silent and requeue the whole
 * cluster's work for the server's own stall (seen: an 18-s hold wrote off hundreds of nodes in a
 * burst of array tasks). Node expiry therefore adds the time the thread was held in the last
 * lease to the lease (Kubernetes' node lifecycle controller likewise stops evicting when it
 * cannot tell a node's silence from its own).
 *
 * A timer every TICK_MS notes how late it fires; lateness past TOLERANCE_MS is a hold.
 */
const TICK_MS = 100;
const TOLERANCE_MS = 50;

export class ThreadStalls {
  /** Holds (end time and length, ms on the performance clock), oldest first. */
  private readonly holds: { end: number; ms: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  constructor(private readonly keepMs: number) {}

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.timer = setInterval(() => this.note(performance.now()), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Records how late the tick at `now` is (exposed for tests). */
  note(now: number): void {
    const late = now - this.last - TICK_MS;
    this.last = now;
    if (late > TOLERANCE_MS) this.holds.push({ end: now, ms: late });
    while (this.holds.length > 0 && (this.holds[0]?.end ?? now) < now - this.keepMs) this.holds.shift();
  }

  /**
   * Ms the thread was held in the `windowMs` before `now`, counting a hold under way (the tick
   * not yet run, as when the loop's timer fires first after a hold).
   */
  heldWithin(windowMs: number, now = performance.now()): number {
    let held = 0;
    for (const h of this.holds) if (h.end >= now - windowMs) held += h.ms;
    if (this.timer !== null) held += Math.max(0, now - this.last - TICK_MS - TOLERANCE_MS);
    return Math.min(held, windowMs);
  }
}
