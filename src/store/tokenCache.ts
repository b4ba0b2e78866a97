/**
 * Known tokens by hash: every API call and heartbeat authenticates, and with 1,250 agents that
 * was 625 token reads a second. Any token write of this server (a token added, revoked, a node
 * credential issued or reset) empties the cache, so on one server a revocation holds at once (a
 * read under way across the write is not kept). Another server's writes are found by `current`,
 * which reads the tokens changed since its last check (migration 014) at most every `checkMs`
 * and forgets them, so another server's revocation holds here within `checkMs` (plus one read).
 * Unknown tokens are never cached (each is read, as before). Entries still expire after `ttlMs`
 * (10 minutes, less up to a quarter: cacheSpread.ts).
 * Token writers clear before and after writing.
 */
import { spreadReadAt } from './cacheSpread.ts';
import { ChangeCheck } from './changeCheck.ts';

/** Reads the hashes of the tokens changed since a watermark (null: none yet), and the next watermark. */
type ChangedTokens = (since: number | null) => Promise<{ readonly next: number; readonly hashes: readonly string[] }>;

export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; at: number }>();
  /** Counts clears: a value read before a clear may be stale, and is not kept. */
  private generation = 0;
  private readonly checks: ChangeCheck<string>;

  constructor(
    private readonly ttlMs = 600_000,
    private readonly maxEntries = 100_000,
    checkMs = 250,
  ) {
    this.checks = new ChangeCheck(checkMs, {
      some: (hashes) => {
        this.generation++; // a read begun before this check may have read a changed token
        for (const h of hashes) this.entries.delete(h);
      },
      all: () => this.clear(),
    });
  }

  /**
   * Forgets the tokens changed since the last check (`changed` reads their hashes and the next
   * watermark), when that check began more than `checkMs` before `at`; concurrent callers share
   * one check. A check that fails, or the first, forgets everything.
   */
  current(changed: ChangedTokens, at: number = performance.now()): Promise<void> {
    return this.checks.run(at, async (since) => {
      const { next, hashes } = await changed(since);
      return { next, keys: hashes };
    });
  }

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
    this.entries.set(hash, { value, at: spreadReadAt(now, this.ttlMs) });
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
