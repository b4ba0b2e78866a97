/**
 * What a scale-up really costs live, per service: the time from the decision that asked for a
 * replica to that replica answering its readiness check — the controller's next reconcile, the
 * scheduler placing it (after a borrower's eviction where its GPU was lent), the agent's start of
 * the process, the model load and the probe — on the autoscaler's clock. The controller hands
 * the tracked 99th percentile to the autoscaler (`ServiceObservation.scaleUpSeconds`), whose lead
 * then covers it rather than the model load alone.
 *
 * The quantile is the nearest-rank one over the last `window` replicas (200): recent enough to
 * follow a cluster whose load changes, wide enough that p99 is not the single slowest start.
 */
export const SCALE_UP_QUANTILE = 0.99;

export class ScaleUpLatency {
  private readonly samples: number[] = [];
  private next = 0;
  private total = 0;

  constructor(private readonly window = 200) {
    if (!(window >= 1)) throw new RangeError(`window must be ≥ 1, got ${window}`);
  }

  /** Replicas measured so far (all, not only those in the window). */
  get count(): number {
    return this.total;
  }

  /** Adds one replica's decision → ready time (s); negative or non-finite samples are ignored. */
  add(seconds: number): void {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) return;
    if (this.samples.length < this.window) this.samples.push(seconds);
    else this.samples[this.next] = seconds;
    this.next = (this.next + 1) % this.window;
    this.total++;
  }

  /** The nearest-rank quantile q of the window (s), or null before the first sample. */
  quantile(q = SCALE_UP_QUANTILE): number | null {
    if (this.samples.length === 0) return null;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  }
}
