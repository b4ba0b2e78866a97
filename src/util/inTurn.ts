/**
 * Runs work one at a time, in the order it was asked for: each run starts once every run asked
 * for before it has settled (a failure does not stop the line). For mirrors whose deltas must be
 * applied in order, and for snapshots that must not interleave.
 */
export class InTurn {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }
}
