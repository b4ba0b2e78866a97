/** The API's shapes (src/api/types.ts) with the fields other work adds read as optional. */
import type { Job as ApiJob, JobArray, JobEvent, NodeInfo, QueueInfo as ApiQueueInfo, Task, TelemetryPoint } from '../../src/api/types.ts';

export type { JobArray, JobEvent, NodeInfo, Task, TelemetryPoint };

export type Job = ApiJob & { readonly attempts?: readonly unknown[] };

export type QueueInfo = ApiQueueInfo & {
  readonly cohort?: string | null;
  readonly nominalQuota?: Readonly<Record<string, number>> | number | null;
  readonly lendingLimit?: number | Readonly<Record<string, number>> | null;
  readonly borrowed?: number | Readonly<Record<string, number>> | null;
  readonly lent?: number | Readonly<Record<string, number>> | null;
  readonly usedByModel?: Readonly<Record<string, number>>;
};

export interface Session {
  readonly role: 'admin' | 'tenant';
  readonly tenant: string | null;
  readonly name: string;
}

export interface Placement {
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMilli: number;
  readonly state: string;
  readonly mine: boolean;
  readonly job?: string;
  readonly name?: string;
  readonly tenant?: string;
  readonly queue?: string;
  readonly task?: number;
}


/** The states a list can filter by (a newer server may have more; a job shows whatever state it has). */
export const JOB_STATES = ['pending', 'admitted', 'running', 'preempted', 'succeeded', 'failed', 'cancelled'] as const;
export const JOB_KINDS = ['training', 'inference', 'batch'] as const;
export const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'timeout']);
