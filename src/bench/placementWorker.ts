/** Worker thread of the placement benchmark: runs (policy, seed) jobs on the nodes and pods it was given. */
import { parentPort, workerData } from 'node:worker_threads';
import type { NodeSpec, TaskRequest } from '../core/model.ts';
import { runPlacementSeed } from './placementProtocol.ts';

const { nodes, pods } = (workerData as { init: { nodes: NodeSpec[]; pods: TaskRequest[] } }).init;

parentPort?.on('message', ({ index, job }: { index: number; job: { policy: string; seed: number } }) => {
  try {
    parentPort?.postMessage({ index, result: runPlacementSeed(nodes, pods, job.policy, job.seed) });
  } catch (e) {
    parentPort?.postMessage({ index, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
