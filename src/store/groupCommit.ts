/**
 * Group commit: concurrent requests of one kind (submissions) go to the database together, in
 * one transaction, instead of one transaction each. A request waits for the current batch's
 * transaction (or, when none is under way, for the end of this turn of the event loop, so that
 * requests parsed together go together); each request's outcome is its own (the store writes
 * them in shared statements, or where that fails each behind a savepoint, so that one request's
 * error undoes only its own writes).
 */
export type Outcome<O> = { readonly ok: O } | { readonly error: unknown };

export class GroupCommit<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private draining = false;
  /** Batches committed, and the requests in them (for benchmarks). */
  batches = 0;
  requests = 0;

  constructor(
    /** Runs the items in one transaction; one outcome per item, in order. */
    private readonly commit: (items: readonly I[]) => Promise<readonly Outcome<O>[]>,
    private readonly maxBatch = 32,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.batches++;
      this.requests += batch.length;
      try {
        const outcomes = await this.commit(batch.map((b) => b.item));
        batch.forEach((b, i) => {
          const o = outcomes[i];
          if (o === undefined) b.reject(new Error('group commit: no outcome for a request'));
          else if ('ok' in o) b.resolve(o.ok);
          else b.reject(o.error);
        });
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.draining = false;
  }
}
