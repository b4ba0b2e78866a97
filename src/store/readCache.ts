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

  constructor(private readonly ttlMs = 1000) {}

  async get(read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    if (this.value !== undefined && now - this.at < this.ttlMs && now >= this.at) return this.value;
    const generation = this.generation;
    const v = await read();
    if (generation === this.generation) {
      this.value = v;
      this.at = now;
    }
    return v;
  }

  invalidate(): void {
    this.generation++;
    this.value = undefined;
  }
}
