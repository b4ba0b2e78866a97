/**
 * Relative training speed per GPU model (H100 = 1), so that the live core can prefer faster
 * GPUs as the simulator's does. The built-in table is a rough guide from public figures; a
 * cluster sets its own in the config's `gpuSpeeds`, and a job in its spec's `gpuSpeeds`.
 * A speed of 0 means the job cannot run there; a model nobody names gets 1.
 */
export const DEFAULT_GPU_SPEEDS: Readonly<Record<string, number>> = {
  // MLPerf Training v4.0 (June 2024): H200 about 1.1-1.2x H100 on LLM training (same Hopper compute, 1.4x HBM bandwidth).
  H200: 1.15,
  // The reference.
  H100: 1,
  // MLPerf Training v3.0 (2023): H100 SXM about 2.2-2.5x A100 SXM per GPU on BERT, ResNet-50 and GPT-3.
  A100: 0.45,
  // NVIDIA L40S datasheet: 362 dense FP16 tensor TFLOPS (H100 SXM: 989) and 864 GB/s memory; about a third of H100 in training.
  L40S: 0.35,
  // NVIDIA A10 datasheet: 125 dense FP16 tensor TFLOPS, 600 GB/s; about an eighth of H100.
  A10: 0.12,
  // NVIDIA and Lambda training benchmarks: A100 about 3x V100 (mixed precision).
  V100: 0.15,
  // NVIDIA P100 datasheet: 21 FP16 TFLOPS without tensor cores; about half of V100 in training.
  P100: 0.07,
  // NVIDIA T4 datasheet: 65 FP16 tensor TFLOPS at 70 W, 320 GB/s; about a third of V100 in training.
  T4: 0.05,
};

/**
 * A model's speed in a table: its own entry, else that of a table key that appears in the name
 * as a word ("NVIDIA H100 80GB HBM3" → H100, "Tesla V100-SXM2-32GB" → V100; A10 does not match
 * A100). Undefined when neither.
 */
export function speedIn(table: Readonly<Record<string, number>> | undefined, model: string): number | undefined {
  if (!table) return undefined;
  if (Object.hasOwn(table, model)) return table[model];
  let found: number | undefined;
  let longest = 0;
  for (const [key, speed] of Object.entries(table)) {
    if (key.length <= longest) continue;
    const at = model.toUpperCase().indexOf(key.toUpperCase());
    if (at < 0) continue;
    const before = model[at - 1];
    const after = model[at + key.length];
    if ((before === undefined || !/[A-Za-z0-9]/.test(before)) && (after === undefined || !/[A-Za-z0-9]/.test(after))) {
      found = speed;
      longest = key.length;
    }
  }
  return found;
}

/** A job's speed on a model: its own `gpuSpeeds`, else the cluster's, else the built-in table, else 1. */
export function gpuSpeed(model: string, cluster: Readonly<Record<string, number>> | undefined, job?: Readonly<Record<string, number>>): number {
  return speedIn(job, model) ?? speedIn(cluster, model) ?? speedIn(DEFAULT_GPU_SPEEDS, model) ?? 1;
}
