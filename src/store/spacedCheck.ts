/**
 * A check of other servers' writes run at most every `everyMs` (store/tokenCache.ts,
 * store/runInfoCache.ts): a caller within `everyMs` of the last successful check's start goes on
 * at once, and concurrent callers share the check under way.
 */
export class SpacedCheck {
  private checkedAt = -Infinity;
  private running: Promise<void> | null = null;

  constructor(private readonly everyMs: number) {}

  /** Runs `check` (true: it succeeded, and the next is due `everyMs` after `at`) unless one is not due. */
  async run(at: number, check: () => Promise<boolean>): Promise<void> {
    if (at - this.checkedAt <= this.everyMs && at >= this.checkedAt) return;
    if (!this.running) {
      const run = check().then((ok) => {
        if (ok) this.checkedAt = at;
      });
      this.running = run;
      void run.finally(() => {
        if (this.running === run) this.running = null;
      });
    }
    await this.running;
  }
}
