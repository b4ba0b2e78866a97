/**
 * A cache's check of other servers' writes (store/tokenCache.ts, store/runInfoCache.ts): it
 * reads the keys changed since where the last check left off (a version watermark) and has the
 * cache forget them; the first check, one that fails, or a read that says everything may have
 * changed, has it forget everything. A check runs at most every `everyMs`: a caller within
 * `everyMs` of the last successful check's start goes on at once, and concurrent callers share
 * the check under way.
 */
/** Reads the keys changed since a watermark (null: none yet), the next watermark, and whether to forget everything. */
export type ReadChanges<K> = (since: number | null) => Promise<{ readonly next: number; readonly keys: readonly K[]; readonly all?: boolean }>;

export class ChangeCheck<K> {
  private checkedAt = -Infinity;
  private running: Promise<void> | null = null;
  /** Where the last check left off (null: none yet, or it failed). */
  private watermark: number | null = null;

  constructor(
    private readonly everyMs: number,
    private readonly forget: { some(keys: readonly K[]): void; all(): void },
  ) {}

  /** Checks unless one began within `everyMs` of `at`. */
  async run(at: number, read: ReadChanges<K>): Promise<void> {
    if (at - this.checkedAt <= this.everyMs && at >= this.checkedAt) return;
    if (!this.running) {
      const run = this.check(read).then((ok) => {
        if (ok) this.checkedAt = at;
      });
      this.running = run;
      void run.finally(() => {
        if (this.running === run) this.running = null;
      });
    }
    await this.running;
  }

  private async check(read: ReadChanges<K>): Promise<boolean> {
    try {
      const { next, keys, all } = await read(this.watermark);
      if (this.watermark === null || all) this.forget.all();
      else if (keys.length > 0) this.forget.some(keys);
      this.watermark = next;
      return true;
    } catch {
      this.forget.all();
      this.watermark = null;
      return false;
    }
  }
}
