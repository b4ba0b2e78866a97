/**
 * The energy stages on the live server (docs/energy.md, "Live"): the cluster config's
 * `scheduling.energy` section (schema: api/configSchema.ts EnergyStagesConfigSchema), its live
 * defaults, and what it becomes — the stage choice the core adapter wraps the job scheduler with
 * (core/scheduling/stages/energyStages.ts: the same stages `tide bench energy` measures) and the
 * node power settings the server suspends and resumes nodes with (server/power/nodePower.ts).
 *
 * Live defaults: `powercap` and `timeshift` on, `consolidate` off.
 * - powercap: a job is capped only within the slowdown it allows (its `maxSlowdown`, else the
 *   cluster's 3 %; `maxSlowdown: 0` is never capped) and at full power while jobs wait for its
 *   GPU model; where the driver refuses `nvidia-smi -pl` the job runs uncapped (the agent logs why).
 * - timeshift: touches only jobs their owners marked `deferrable`, and never past their deadline.
 * - consolidate: powering nodes down needs the cluster's own power control (Slurm needs
 *   SuspendProgram and ResumeProgram for the same reason); without it a suspended node draws what
 *   it drew and only makes work wait for its wake-up, so it is on only where configured.
 */
import { CONSOLIDATE_DEFAULTS, type ConsolidateOptions } from '../../core/scheduling/stages/consolidate.ts';
import type { EnergyStageSettings } from '../../core/scheduling/stages/energyStages.ts';
import type { PowercapOptions } from '../../core/scheduling/stages/powercap.ts';
import type { TimeshiftOptions } from '../../core/scheduling/stages/timeshift.ts';
import type { PowerModel } from '../../core/energy/powerModel.ts';
import type { EnergyPrices } from '../../core/energy/pricing.ts';

export interface ConsolidateConfig extends ConsolidateOptions {
  /** A node not back this long after its resume is marked down (Slurm's ResumeTimeout). */
  readonly resumeTimeoutSeconds?: number;
  /** Slurm's SuspendProgram / ResumeProgram: a path, or [program, arguments…]; the node name is appended. */
  readonly suspendProgram?: string | readonly string[] | null;
  readonly resumeProgram?: string | readonly string[] | null;
  readonly programTimeoutSeconds?: number;
}

/** `scheduling.energy` as the config file gives it (true: the stage's defaults; false or null: off). */
export interface EnergyStagesConfig {
  readonly powercap?: boolean | null | Omit<PowercapOptions, 'power'>;
  readonly timeshift?: boolean | null | Omit<TimeshiftOptions, 'prices'>;
  readonly consolidate?: boolean | null | ConsolidateConfig;
}

export const LIVE_ENERGY_DEFAULTS = { powercap: true, timeshift: true, consolidate: false } as const;

/** How the server powers nodes down and up (consolidate on). */
export interface NodePowerSettings {
  readonly resumeSeconds: number;
  readonly resumeTimeoutSeconds: number;
  /** null: a dry run (the node is only marked). */
  readonly suspendProgram: readonly string[] | null;
  readonly resumeProgram: readonly string[] | null;
  readonly programTimeoutSeconds: number;
}

/** What the live server runs: the stages (for the core adapter) and, with consolidate, the node power settings. */
export interface LiveEnergy {
  readonly stages: EnergyStageSettings;
  readonly nodePower: NodePowerSettings | null;
}

const programOf = (p: string | readonly string[] | null | undefined): readonly string[] | null => (p === undefined || p === null ? null : typeof p === 'string' ? [p] : [...p]);
const on = <T extends object>(v: boolean | null | T | undefined, dflt: boolean): T | undefined => (v === undefined ? (dflt ? ({} as T) : undefined) : v === null || v === false ? undefined : v === true ? ({} as T) : v);

/** The resume timeout when none is given: twice the expected wake-up, at least Slurm's default (60 s). */
export const resumeTimeoutOf = (c: ConsolidateConfig): number => c.resumeTimeoutSeconds ?? Math.max(60, 2 * (c.resumeSeconds ?? CONSOLIDATE_DEFAULTS.resumeSeconds));

/** Problems the schema cannot see (pushed as `scheduling.energy.…: message`). */
export function checkEnergyStagesConfig(c: EnergyStagesConfig | null | undefined, errors: string[]): void {
  const k = c?.consolidate;
  if (typeof k !== 'object' || k === null) return;
  if (k.resumeTimeoutSeconds !== undefined && k.resumeTimeoutSeconds < (k.resumeSeconds ?? CONSOLIDATE_DEFAULTS.resumeSeconds))
    errors.push(`scheduling.energy.consolidate.resumeTimeoutSeconds: must be at least resumeSeconds (${k.resumeSeconds ?? CONSOLIDATE_DEFAULTS.resumeSeconds})`);
  if (programOf(k.suspendProgram) !== null && programOf(k.resumeProgram) === null) errors.push('scheduling.energy.consolidate.resumeProgram: required with a suspendProgram (a node powered down must be powered up again)');
}

/** The live stages from the config's section (absent: the live defaults). */
export function liveEnergy(c: EnergyStagesConfig | null | undefined, power: PowerModel, prices: EnergyPrices): LiveEnergy {
  const cap = on(c?.powercap, LIVE_ENERGY_DEFAULTS.powercap);
  const shift = on(c?.timeshift, LIVE_ENERGY_DEFAULTS.timeshift);
  const cons = on<ConsolidateConfig>(c?.consolidate, LIVE_ENERGY_DEFAULTS.consolidate);
  const consolidate: ConsolidateOptions | undefined = cons && {
    ...(cons.suspendSeconds !== undefined ? { suspendSeconds: cons.suspendSeconds } : {}),
    ...(cons.resumeSeconds !== undefined ? { resumeSeconds: cons.resumeSeconds } : {}),
    ...(cons.spareNodes !== undefined ? { spareNodes: cons.spareNodes } : {}),
  };
  return {
    stages: { power, prices, ...(cap ? { powercap: cap } : {}), ...(shift ? { timeshift: shift } : {}), ...(consolidate ? { consolidate } : {}) },
    nodePower: cons
      ? {
          resumeSeconds: cons.resumeSeconds ?? CONSOLIDATE_DEFAULTS.resumeSeconds,
          resumeTimeoutSeconds: resumeTimeoutOf(cons),
          suspendProgram: programOf(cons.suspendProgram),
          resumeProgram: programOf(cons.resumeProgram),
          programTimeoutSeconds: cons.programTimeoutSeconds ?? 60,
        }
      : null,
  };
}

/** The names of the stages that run, for the server's log line. */
export function stageNames(e: LiveEnergy): string {
  const names = [e.stages.timeshift ? 'timeshift' : '', e.stages.consolidate ? `consolidate (${e.nodePower?.suspendProgram ? 'suspend and resume programs' : 'dry run'})` : '', e.stages.powercap ? 'powercap' : ''].filter(Boolean);
  return names.length ? names.join(', ') : 'none';
}
