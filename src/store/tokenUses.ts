/**
 * Tokens' last uses, written together. A token's use is recorded at most once a minute, yet
 * agents whose tokens were first used together (1,250 registered at once) come due together:
 * 1,250 single-row writes within two seconds, every minute, each holding a pooled connection
 * while the API's reads wait. Uses wait here up to `windowMs` and go out 100 to a statement.
 * This server's reads see a waiting use at once (`of`, `waitingById`). A write that fails is dropped:
 * a last use is informational, and the token's next use records it again.
 */
const MINUTE_MS = 60_000;

export class TokenUses {
  /** The use waiting to be written, by token hash. */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** Uses written (for tests and benchmarks). */
  written = 0;

  constructor(
    private readonly write: (uses: readonly (readonly [string, number])[]) => Promise<void>,
    /** A token's public id from its hash. */
    private readonly idOf: (hash: string) => string,
    private readonly windowMs = 200,
  ) {}

  /** A use at `at`, unless one less than a minute before it is waiting already. */
  add(hash: string, at: number): void {
    const had = this.pending.get(hash);
    if (had !== undefined && at - had < MINUTE_MS) return;
    this.pending.set(hash, at);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  /** The use waiting for a token by its hash; every waiting use by public id (one map for a list). */
  of(hash: string): number | undefined {
    return this.pending.get(hash);
  }
  waitingById(): Map<string, number> {
    return new Map([...this.pending].map(([hash, at]) => [this.idOf(hash), at]));
  }

  /** Writes every waiting use (and waits for writes under way). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const uses = [...this.pending];
    this.pending.clear();
    this.writing = this.writing.then(async () => {
      if (uses.length === 0) return;
      try {
        await this.write(uses);
        this.written += uses.length;
      } catch {
        // Dropped: the next use of each token records it again.
      }
    });
    return this.writing;
  }
}

/** A token's last use with the one waiting here, whichever is later. */
export function withUse<T extends { readonly lastUsedAt: number | null }>(t: T, waiting: number | undefined): T {
  return waiting !== undefined && (t.lastUsedAt === null || waiting > t.lastUsedAt) ? { ...t, lastUsedAt: waiting } : t;
}
