/**
 * The energy stages as one switchboard: `withEnergyStages(scheduler, {powercap, consolidate,
 * timeshift})` runs any job scheduler with any of them, in the order timeshift (before: holds
 * deferrable jobs back) → the scheduler → consolidate (after: keeps binds off sleeping nodes,
 * suspends idle ones) → powercap (after: caps the binds that remain). The named profiles are the
 * ones `tide bench energy` compares.
 */
import type { PowerModel } from '../../energy/powerModel.ts';
import type { EnergyPrices } from '../../energy/pricing.ts';
import type { JobScheduler } from '../scheduler.ts';
import { consolidateStage, type ConsolidateOptions } from './consolidate.ts';
import { powercapStage, type PowercapOptions } from './powercap.ts';
import { withStages, type SchedulingStage } from './stage.ts';
import { timeshiftStage, type TimeshiftOptions } from './timeshift.ts';

export interface EnergyStageChoice {
  readonly powercap?: boolean | Omit<PowercapOptions, 'power'>;
  readonly consolidate?: boolean | ConsolidateOptions;
  readonly timeshift?: boolean | Omit<TimeshiftOptions, 'prices'>;
}

export interface EnergyStageSettings extends EnergyStageChoice {
  readonly power: PowerModel;
  readonly prices: EnergyPrices;
}

const optionsOf = <T extends object>(v: boolean | T | undefined): T | undefined => (v === undefined || v === false ? undefined : v === true ? ({} as T) : v);

/** The chosen stages, in the order they run. */
export function energyStages(s: EnergyStageSettings): SchedulingStage[] {
  const stages: SchedulingStage[] = [];
  const shift = optionsOf(s.timeshift);
  if (shift) stages.push(timeshiftStage({ ...shift, prices: s.prices }));
  const consolidate = optionsOf(s.consolidate);
  if (consolidate) stages.push(consolidateStage(consolidate));
  const cap = optionsOf(s.powercap);
  if (cap) stages.push(powercapStage({ ...cap, power: s.power }));
  return stages;
}

export function withEnergyStages(inner: JobScheduler, s: EnergyStageSettings): JobScheduler {
  return withStages(inner, energyStages(s));
}

/** The policies of `tide bench energy`: none of the stages, each alone, and all three (Tide's). */
export const ENERGY_PROFILES: Readonly<Record<string, EnergyStageChoice>> = {
  maxpower: {},
  powercap: { powercap: true },
  consolidate: { consolidate: true },
  timeshift: { timeshift: true },
  tide: { powercap: true, consolidate: true, timeshift: true },
};
