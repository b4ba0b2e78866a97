/**
 * Known tokens by hash, kept a few seconds: every API call and heartbeat authenticates, and with
 * 1,250 agents that was 625 token reads a second. Any token write of this server (a token added,
 * revoked, a node credential issued or reset) empties the cache, so on one server a revocation
 * holds at once (a read under way across the write is not kept); another server sharing the
 * database sees it within `ttlMs`. Unknown tokens are never cached (each is read, as before).
 * Token writers clear before and after writing.
 */
export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; at: number }>();
  /** Counts clears: a value read before a clear may be stale, and is not kept. */
  private generation = 0;

  constructor(
    private readonly ttlMs = 5000,
    private readonly maxEntries = 100_000,
  ) {}

  get(hash: string, now: number): T | undefined {
    const e = this.entries.get(hash);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs || now < e.at) {
      this.entries.delete(hash);
      return undefined;
    }
    return e.value;
  }

  /** The generation to pass to `set` for a read that starts now. */
  get readGeneration(): number {
    return this.generation;
  }

  /** Keeps a value read from the database, unless a clear came since the read began (`readGeneration`). */
  set(hash: string, value: T, now: number, readGeneration: number): void {
    if (readGeneration !== this.generation) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(hash, { value, at: now });
  }

  /** Replaces a cached token's value (its last use moved), keeping when it was read. */
  update(hash: string, fn: (value: T) => T): void {
    const e = this.entries.get(hash);
    if (e) e.value = fn(e.value);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
