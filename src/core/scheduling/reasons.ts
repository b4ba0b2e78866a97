/**
 * The pending reasons a job scheduler may give, one code each (like Slurm's `Resources`,
 * `Priority`, `QOSMaxGRESPerUser`): the server stores `code: message`, `tide jobs` shows it,
 * and `tide_queue_pending_jobs{reason}` counts by code. docs/pending-reasons.md lists the same
 * set (a test keeps the two equal).
 */
export const PENDING_REASONS = {
  unschedulable: 'no schedulable node could run it even empty (the message names the GPUs, GPU model, CPU or memory); it does not hold back its queue',
  'over-quota': "starting it would take its queue past its GPU quota or borrowing limit (Slurm: QOSGrpGRES)",
  'waiting-for-resources': 'not enough free GPUs, CPU or memory now (Slurm: Resources)',
  'waiting-for-gang': 'only some of its tasks fit now; a gang starts whole (Slurm: Resources)',
  fragmentation: 'enough GPUs are free in all, but not on nodes in the shape its tasks need (Slurm: Resources)',
  'lower-priority': 'jobs before it in its queue go first (Slurm: Priority)',
  'reserved-for-another-job': 'the free GPUs are held for a job that has waited long (backfill reservation; Slurm: Resources)',
  'waiting-for-round': 'a round-based policy (gavel) decides at its next round',
  'waiting-for-node-power-up': 'the node it goes to is powered down to save energy and is waking up (Slurm: ConfiguringNodes / CF)',
  'deferred-to-cheaper-hours': 'a deferrable job held until a cheaper or lower-carbon hour that still meets its deadline',
  'budget-exhausted': "its tenant's usage in the budget's period has reached a limit (GPU-hours, kWh or yuan); given by the server's budget gate, not a job scheduler (Slurm: AssocGrpGRESMinutes)",
} as const;

/** Why a job is not running. */
export type PendingReasonCode = keyof typeof PENDING_REASONS;

/**
 * The message of a reason that names another job (`blockedBy`), for a reader who does not own
 * that job: the same reason with no job id in it (a tenant never learns another's job ids).
 */
export function anonymousMessage(code: PendingReasonCode, queue: string): string {
  if (code === 'reserved-for-another-job') return 'GPUs are held for an earlier job that has waited long';
  return `behind an earlier job in queue '${queue}'`;
}
