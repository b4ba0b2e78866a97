/** The autoscalers by name (the tidal benchmark's `--policies` and a service spec's `autoscaler`). */
import type { AutoscalerFactory } from '../autoscaler.ts';
import { oracle } from './oracle.ts';
import { reactive } from './reactive.ts';
import { staticPolicy } from './static.ts';
import { tide } from './tide.ts';
import { windowPolicy } from './window.ts';

const AUTOSCALERS: Readonly<Record<string, AutoscalerFactory>> = { static: staticPolicy, reactive, window: windowPolicy, tide, oracle };

export function getAutoscaler(name: string): AutoscalerFactory | undefined {
  return Object.hasOwn(AUTOSCALERS, name) ? AUTOSCALERS[name] : undefined;
}

export const AUTOSCALER_NAMES: readonly string[] = Object.keys(AUTOSCALERS);

/** Autoscalers that need what only a simulator has (the future rate): a live service cannot use them. */
export const SIMULATOR_ONLY_AUTOSCALERS: readonly string[] = ['oracle'];
