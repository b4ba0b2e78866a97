/**
 * GPU discovery and telemetry: real GPUs through nvidia-smi when it is present, otherwise
 * simulated devices from a spec like "8xH100" or "4xA100,2xT4" (telemetry then follows the
 * tasks the agent runs, so dashboards and metrics have something true to show).
 *
 * What "busy" means. nvidia-smi's utilization.gpu is the share of the last sample period (1/6 s
 * to 1 s) in which a kernel ran, and memory.used the device memory allocated: a process that
 * holds a GPU but launches nothing reads 0 % (and a few hundred MiB once it has a CUDA context,
 * more if it keeps a model loaded). A simulated GPU cannot see kernels, so it takes a task's own
 * word: a task computes while it writes its progress file (TIDE_PROGRESS_FILE, as
 * examples/workload/trainer.mjs does twice a second), and for SIMULATED_WORK_WINDOW_MS after.
 * A task that holds a GPU and reports nothing (`sleep 600`) reads 0 % and 0 MiB, idle (see
 * docs/idle.md).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { GpuInfo, GpuTelemetry } from '../api/types.ts';
import { UserError } from '../util/errors.ts';

const run = promisify(execFile);
export const NVIDIA_SMI_QUERY = ['--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,power.draw,power.limit', '--format=csv,noheader,nounits'];
/**
 * The same with the driver's total-energy counter (mJ since the driver loaded; Volta and newer).
 * Many nvidia-smi versions refuse the field ("not a valid field to query": NVML has the counter,
 * the CLI not always) and GPUs without it print [N/A]: the agent then integrates power.draw
 * (agent/energyMeter.ts).
 */
export const NVIDIA_SMI_ENERGY_QUERY = ['--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,power.draw,power.limit,total_energy_consumption', '--format=csv,noheader,nounits'];

const MODEL_MEMORY_MIB: Record<string, number> = { H200: 143_360, H100: 81_920, A100: 81_920, A10: 24_576, L40S: 46_080, L4: 23_034, V100: 32_768, T4: 15_360 };
const MODEL_POWER_WATTS: Record<string, number> = { H200: 700, H100: 700, A100: 400, A10: 150, L40S: 350, L4: 72, V100: 300, T4: 70 };

/** Parses "8xH100" / "4xA100,2xT4" into GPUs; throws a UserError naming the bad part. */
export function parseGpuSpec(spec: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  if (spec.trim() === '' || spec.trim() === '0') return gpus;
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*x\s*([A-Za-z0-9][-A-Za-z0-9_.]*)\s*$/.exec(part);
    if (!m) throw new UserError(`--gpus: "${part}" is not COUNTxMODEL (e.g. 8xH100)`);
    const count = Number(m[1]);
    if (count > 64) throw new UserError(`--gpus: at most 64 GPUs per model on one node, got ${count}`);
    const model = m[2] as string;
    for (let i = 0; i < count; i++) {
      const index = gpus.length;
      gpus.push({ index, model, memoryMib: MODEL_MEMORY_MIB[model] ?? 40_960, uuid: `GPU-sim-${model}-${index}` });
    }
  }
  return gpus;
}

/** A telemetry sample with the energy counter, where the GPU has one (not sent as telemetry). */
export interface GpuSample extends GpuTelemetry {
  readonly energyMj?: number;
}

export interface SmiRow extends GpuInfo, GpuSample {
  readonly powerLimitWatts: number;
}

/** One line of the nvidia-smi query (see NVIDIA_SMI_QUERY). Returns null for a line it cannot read. */
export function parseSmiLine(line: string): SmiRow | null {
  const f = line.split(',').map((s) => s.trim());
  if (f.length < 8) return null;
  // Readings are clamped to what the server accepts (a heartbeat with one reading out of range
  // is refused whole, and a node that cannot heartbeat is lost): "[N/A]" and garbage read as 0.
  const num = (s: string | undefined, max = 2 ** 30): number => {
    const n = Number(s);
    return Number.isFinite(n) ? Math.min(max, Math.max(0, n)) : 0;
  };
  const index = Number(f[0]);
  if (!Number.isInteger(index)) return null;
  // "NVIDIA H100 80GB HBM3" → "H100": the model name users write in specs.
  const name = (f[2] ?? '').replace(/^NVIDIA\s+/i, '').replace(/^Tesla\s+/i, '');
  const model = name.split(/[\s-]/)[0] || name;
  const energy = f[8] !== undefined && /^\d+(\.\d+)?$/.test(f[8]) ? Number(f[8]) : undefined;
  return {
    index,
    uuid: f[1] ?? '',
    model,
    memoryMib: num(f[3]),
    memoryUsedMib: num(f[4]),
    utilization: num(f[5], 100),
    powerWatts: num(f[6], 100_000),
    powerLimitWatts: num(f[7]),
    ...(energy !== undefined ? { energyMj: energy } : {}),
  };
}

/** How long after its last progress write a task still reads as computing on a simulated GPU (ms). */
export const SIMULATED_WORK_WINDOW_MS = 10_000;

export interface GpuSource {
  readonly simulated: boolean;
  readonly gpus: readonly GpuInfo[];
  /** busyMilli: milli-GPU per device held by the agent's tasks that compute now (used by simulated telemetry). */
  sample(busyMilli: readonly number[], nowMs: number): Promise<GpuSample[]>;
}

/** Real GPUs if nvidia-smi answers, else null. */
export async function discoverNvidia(smi = 'nvidia-smi'): Promise<GpuSource | null> {
  let fields = NVIDIA_SMI_ENERGY_QUERY;
  const query = async (): Promise<SmiRow[]> => {
    const { stdout } = await run(smi, fields, { timeout: 10_000 });
    return stdout.split('\n').map(parseSmiLine).filter((r): r is SmiRow => r !== null);
  };
  let rows: SmiRow[];
  try {
    rows = await query();
  } catch {
    // An nvidia-smi that does not know the energy field refuses the whole query: ask without it.
    fields = NVIDIA_SMI_QUERY;
    try {
      rows = await query();
    } catch {
      return null;
    }
  }
  if (rows.length === 0) return null;
  return {
    simulated: false,
    gpus: rows.map((r) => ({ index: r.index, model: r.model, memoryMib: r.memoryMib, uuid: r.uuid })),
    async sample() {
      try {
        return (await query()).map((r) => ({ index: r.index, utilization: r.utilization, memoryUsedMib: r.memoryUsedMib, powerWatts: r.powerWatts, ...(r.energyMj !== undefined ? { energyMj: r.energyMj } : {}) }));
      } catch {
        return [];
      }
    },
  };
}

export function simulatedGpus(spec: string): GpuSource {
  const gpus = parseGpuSpec(spec);
  return {
    simulated: true,
    gpus,
    async sample(busyMilli, nowMs) {
      return gpus.map((g) => {
        const busy = (busyMilli[g.index] ?? 0) / 1000;
        // A steady, plausible load: 85-99 % of the share a task holds, varying with time.
        const wobble = ((Math.floor(nowMs / 1000) * 7 + g.index * 13) % 15) / 100;
        // utilization.gpu counts the time any kernel runs, so even a small computing share reads well above idle.
        const utilization = busy > 0 ? Math.max(10, Math.round(Math.min(1, busy) * (0.85 + wobble) * 100)) : 0;
        const max = MODEL_POWER_WATTS[g.model] ?? 300;
        return { index: g.index, utilization, memoryUsedMib: Math.round(g.memoryMib * Math.min(1, busy) * 0.9), powerWatts: Math.round(max * (0.1 + 0.85 * (utilization / 100))) };
      });
    },
  };
}
