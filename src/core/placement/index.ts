/** The registry of placement policies, by the names users pass to --policies. */
import type { PolicyFactory } from '../policy.ts';
import { bestfit } from './bestfit.ts';
import { clustering } from './clustering.ts';
import { dotprod } from './dotprod.ts';
import { fgd } from './fgd.ts';
import { packing } from './packing.ts';
import { random } from './random.ts';
import { tide } from './tide.ts';

export const placementPolicies: Readonly<Record<string, PolicyFactory>> = {
  random,
  dotprod,
  clustering,
  packing,
  bestfit,
  fgd,
  tide,
};

export const DEFAULT_PLACEMENT_POLICY = 'tide';

export function placementPolicyNames(): string[] {
  return Object.keys(placementPolicies);
}

export function getPlacementPolicy(name: string): PolicyFactory | undefined {
  return Object.hasOwn(placementPolicies, name) ? placementPolicies[name] : undefined;
}
