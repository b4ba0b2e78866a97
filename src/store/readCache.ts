/**
 * A small value read from the database on nearly every request (the queue list, the tenant
 * list, the nodes' version), kept until this server changes it or `ttlMs` pass (another server
 * on the same PostgreSQL may have). At 1,000 submissions a second each read was 1,000 statements
 * a second. A read that began before an invalidation is not kept.
 */
export class ReadCache<T> {
  private value: T | undefined;
  private at = 0;
  private generation = 0;
  /**
   * The read under way, shared by every caller that misses meanwhile: when the value expired,
   * sixteen submissions at once made sixteen reads of the same aggregate (on PostgreSQL, 13
   * statements a second of 21 ms each: the submit phase's costliest). Not shared past an
   * invalidation.
   */
  private inFlight: { readonly generation: number; readonly read: Promise<T> } | null = null;

  constructor(private readonly ttlMs = 1000) {}

  async get(read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    if (this.value !== undefined && now - this.at < this.ttlMs && now >= this.at) return this.value;
    if (this.inFlight !== null && this.inFlight.generation === this.generation) return this.inFlight.read;
    const generation = this.generation;
    const p = read();
    const flight = { generation, read: p };
    this.inFlight = flight;
    try {
      const v = await p;
      if (generation === this.generation) {
        this.value = v;
        this.at = now;
      }
      return v;
    } finally {
      if (this.inFlight === flight) this.inFlight = null;
    }
  }

  invalidate(): void {
    this.generation++;
    this.value = undefined;
  }
}
