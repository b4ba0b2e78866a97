/** The autoscalers by name (the tidal benchmark's `--policies` and a service spec's `autoscaler`). */
import type { AutoscalerFactory } from '../autoscaler.ts';
import { reactive } from './reactive.ts';

const AUTOSCALERS: Readonly<Record<string, AutoscalerFactory>> = { reactive };

export function getAutoscaler(name: string): AutoscalerFactory | undefined {
  return Object.hasOwn(AUTOSCALERS, name) ? AUTOSCALERS[name] : undefined;
}

export const AUTOSCALER_NAMES: readonly string[] = Object.keys(AUTOSCALERS);
