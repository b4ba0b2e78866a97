/**
 * Readers for Alibaba's GPU-sharing trace (cluster-trace-gpu-v2023, "openb"): node lists and
 * pod lists, into core nodes and tasks. Columns: see ../shared/traces/README.md.
 */
import { dirname, join } from 'node:path';
import { GPU_MILLI, nodeId, taskId, type NodeSpec, type TaskRequest } from '../core/model.ts';
import { inputError } from '../util/errors.ts';
import { intCell, readCsv } from './csv.ts';

/** More GPUs than any node has: a typo, refused before it allocates a device list. */
export const MAX_GPUS_PER_NODE = 1024;

/** Reads a node list (`sn,cpu_milli,memory_mib,gpu,model`). */
export function readOpenbNodes(file: string): NodeSpec[] {
  const table = readCsv(file, ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model']);
  return table.rows.map((row) => {
    const gpuCount = intCell(table, row, 'gpu', MAX_GPUS_PER_NODE);
    const model = row.get('model');
    if (gpuCount > 0 && model === '') throw inputError(file, row.line, 'model', 'a node with GPUs needs a GPU model');
    const sn = row.get('sn');
    if (sn === '') throw inputError(file, row.line, 'sn', 'empty node name');
    return {
      id: nodeId(sn),
      cpuMilli: intCell(table, row, 'cpu_milli'),
      memoryMib: intCell(table, row, 'memory_mib'),
      gpus: Array.from({ length: gpuCount }, () => model),
    };
  });
}

/**
 * Reads a pod list (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,…]`).
 * `knownModels`: GPU models of the cluster; a gpu_spec naming another model is an error.
 */
export function readOpenbPods(file: string, knownModels: ReadonlySet<string>): TaskRequest[] {
  const table = readCsv(file, ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli']);
  const hasSpec = table.header.includes('gpu_spec');
  return table.rows.map((row) => {
    const gpuCount = intCell(table, row, 'num_gpu');
    let gpuMilli = intCell(table, row, 'gpu_milli');
    if (gpuMilli > GPU_MILLI) throw inputError(file, row.line, 'gpu_milli', `${gpuMilli} is over ${GPU_MILLI} (one whole GPU)`);
    if (gpuCount > 1 && gpuMilli !== GPU_MILLI) {
      throw inputError(file, row.line, 'gpu_milli', `a pod of ${gpuCount} GPUs must ask for ${GPU_MILLI} per GPU, got ${gpuMilli}`);
    }
    if (gpuCount === 1 && gpuMilli === 0) throw inputError(file, row.line, 'gpu_milli', 'a GPU pod needs more than 0 milli');
    if (gpuCount === 0) gpuMilli = 0;
    const spec = hasSpec ? row.get('gpu_spec') : '';
    const allowedModels = spec === '' ? [] : [...new Set(spec.split('|').map((m) => m.trim()))];
    for (const m of allowedModels) {
      if (!knownModels.has(m)) {
        throw inputError(file, row.line, 'gpu_spec', `unknown GPU model '${m}' (the cluster has: ${[...knownModels].sort().join(', ')})`);
      }
    }
    return {
      id: taskId(row.get('name') || `line-${row.line}`),
      cpuMilli: intCell(table, row, 'cpu_milli'),
      memoryMib: intCell(table, row, 'memory_mib'),
      gpuCount,
      gpuMilli,
      allowedModels,
    };
  });
}

/** The node list the benchmark uses by default: beside the pod list. */
export function defaultNodesFile(podsFile: string): string {
  return join(dirname(podsFile), 'openb_node_list_gpu_node.csv');
}
