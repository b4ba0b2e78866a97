/**
 * Power caps the agent applies for its runs (a job's `powerCapWatts`): on real GPUs with
 * `nvidia-smi -i IDX -pl WATTS` (which needs root: where it is refused the run goes on uncapped
 * and the refusal is logged once per GPU), on simulated GPUs as a dry run (logged) that the
 * simulated power then honours. A GPU shared by runs with different caps gets the lowest; when
 * no capped run is left on it, its default limit (`power.default_limit`) is set back.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CappedRun {
  readonly gpus: readonly number[];
  readonly powerCapWatts?: number;
  readonly alive: boolean;
}

export class PowerCaps {
  /** The cap in force per GPU (W). */
  private readonly applied = new Map<number, number>();
  private readonly refused = new Set<number>();

  constructor(
    private readonly simulated: boolean,
    private readonly log: (line: string) => void,
    private readonly smi = 'nvidia-smi',
  ) {}

  /** The cap in force on a GPU, if any. */
  capOf(index: number): number | undefined {
    return this.applied.get(index);
  }

  /** The lowest cap of the live runs on each GPU. */
  static wanted(runs: Iterable<CappedRun>): Map<number, number> {
    const out = new Map<number, number>();
    for (const r of runs) {
      if (!r.alive || r.powerCapWatts === undefined || !(r.powerCapWatts > 0)) continue;
      for (const g of r.gpus) out.set(g, Math.min(out.get(g) ?? Infinity, r.powerCapWatts));
    }
    return out;
  }

  /** Sets and lifts caps to match the live runs; real GPUs are changed in the background. */
  update(runs: Iterable<CappedRun>): void {
    const want = PowerCaps.wanted(runs);
    for (const [g, w] of want) {
      if (this.applied.get(g) === w) continue;
      this.applied.set(g, w);
      if (this.simulated) this.log(`power cap (dry run, simulated GPU ${g}): nvidia-smi -i ${g} -pl ${w}`);
      else void this.set(g, String(w));
    }
    for (const g of [...this.applied.keys()]) {
      if (want.has(g)) continue;
      this.applied.delete(g);
      if (this.simulated) this.log(`power cap lifted (dry run, simulated GPU ${g})`);
      else void this.restore(g);
    }
  }

  private async set(index: number, watts: string): Promise<void> {
    try {
      await run(this.smi, ['-i', String(index), '-pl', watts], { timeout: 10_000 });
      this.log(`GPU ${index}: power limit set to ${watts} W`);
    } catch (e) {
      if (this.refused.has(index)) return;
      this.refused.add(index);
      this.log(`GPU ${index}: could not set a ${watts} W power limit (${((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n')[0]}): running uncapped`);
    }
  }

  private async restore(index: number): Promise<void> {
    try {
      const { stdout } = await run(this.smi, ['-i', String(index), '--query-gpu=power.default_limit', '--format=csv,noheader,nounits'], { timeout: 10_000 });
      const watts = Number(stdout.trim());
      if (Number.isFinite(watts) && watts > 0) await this.set(index, String(watts));
    } catch {
      /* the cap stays until the driver resets it; logged when it was set */
    }
  }
}
