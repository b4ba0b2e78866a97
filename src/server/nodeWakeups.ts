/**
 * Tells agents at once that their node has new work, as Slurm's controller launches a job by RPC
 * to slurmd and a kubelet watches its pods, so that a bound task starts (and a stopped one stops)
 * without waiting for the agent's next heartbeat.
 *
 * Each node has a counter, moved on when the loop binds a task to it or stops one of its tasks.
 * An agent's wait (POST /v1/agent/wait) names the counter it last saw (heartbeat answers carry it
 * as `wakeSeq`) and is answered as soon as the counter is past it, or at its timeout. A wake is
 * only a hint to heartbeat now: the heartbeat still carries the desired tasks, so a lost wake
 * costs at most one heartbeat interval. Counters live in this server's memory and start at 0: a
 * wait that names a counter ahead of this server's (the agent saw another server, or this one
 * before a restart) is answered at once.
 */

export interface WakeAnswer {
  /** The node's counter now: the agent's next wait names it. */
  readonly seq: number;
  /** True when the counter moved past the one the wait named: heartbeat now. */
  readonly woke: boolean;
}

interface Waiter {
  readonly timer: NodeJS.Timeout;
  readonly resolve: (a: WakeAnswer) => void;
}

/** Waits one node may hold at once: a newer one answers the oldest (an agent needs one; a restart leaves one behind until it times out). */
export const MAX_WAITS_PER_NODE = 4;

export class NodeWakeups {
  private readonly seqs = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter[]>();
  private closed = false;

  /** The node's counter (0 until its first wake). */
  seq(node: string): number {
    return this.seqs.get(node) ?? 0;
  }

  /** Waits held now, over all nodes (for tests and metrics). */
  get waiting(): number {
    let n = 0;
    for (const list of this.waiters.values()) n += list.length;
    return n;
  }

  /** Moves each node's counter on and answers its waits. */
  wake(nodes: Iterable<string>): void {
    for (const node of new Set(nodes)) {
      const seq = this.seq(node) + 1;
      this.seqs.set(node, seq);
      const list = this.waiters.get(node);
      if (!list) continue;
      this.waiters.delete(node);
      for (const w of list) this.answer(w, { seq, woke: true });
    }
  }

  /** Answered when the node's counter is past `after`, or with woke false after `timeoutMs`. */
  wait(node: string, after: number, timeoutMs: number): Promise<WakeAnswer> {
    const seq = this.seq(node);
    if (seq !== after || this.closed) return Promise.resolve({ seq, woke: seq !== after });
    return new Promise((resolve) => {
      const list = this.waiters.get(node) ?? [];
      this.waiters.set(node, list);
      if (list.length >= MAX_WAITS_PER_NODE) this.answer(list.shift() as Waiter, { seq, woke: false });
      const w: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const now = this.waiters.get(node);
          const i = now?.indexOf(w) ?? -1;
          if (now && i >= 0) now.splice(i, 1);
          if (now?.length === 0) this.waiters.delete(node);
          resolve({ seq: this.seq(node), woke: false });
        }, timeoutMs),
      };
      list.push(w);
    });
  }

  /** Answers every wait (woke false) and answers later ones at once: the server is closing. */
  close(): void {
    this.closed = true;
    for (const [node, list] of this.waiters) for (const w of list) this.answer(w, { seq: this.seq(node), woke: false });
    this.waiters.clear();
  }

  private answer(w: Waiter, a: WakeAnswer): void {
    clearTimeout(w.timer);
    w.resolve(a);
  }
}
