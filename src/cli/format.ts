/** Human output for the cluster commands: Slurm-like columns, durations, short GPU lists. */
import { arrayIndexOf, elementsOf } from '../api/arrayWords.ts';
import type { Job, JobEvent, JobProgressReport, NodeInfo, QueueInfo, ServiceStatus, Task, TaskAttempt } from '../api/types.ts';

/** Slurm's compact state codes. */
export const STATE_CODE: Record<string, string> = { pending: 'PD', admitted: 'CF', running: 'R', preempted: 'PR', succeeded: 'CD', failed: 'F', cancelled: 'CA', timeout: 'TO' };

export function duration(ms: number): string {
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return d > 0 ? `${d}-${hh}:${mm}:${ss}` : s >= 3600 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * Columns padded to their widest cell plus two spaces, no borders (the layout cli-table3 gave
 * these tables, without loading it: ~10 ms of each command's start). Widths count code points;
 * a line break in a cell becomes a space, so a row stays one line.
 */
export function plainTable(head: string[], rows: (string | number)[][]): string {
  const lines = [head, ...rows.map((r) => r.map((c) => String(c).replace(/\r?\n/g, ' ')))];
  const width = (s: string): number => [...s].length;
  const widths = head.map((_, c) => Math.max(...lines.map((r) => width(r[c] ?? ''))));
  return lines.map((r) => r.map((cell, c) => cell + ' '.repeat((widths[c] ?? 0) - width(cell) + 2)).join('').trimEnd()).join('\n');
}

/** A job's running time over all its attempts (ms): the earlier ones' and the current (or last) one's. */
export function jobRunMs(j: Job, now: number): number {
  return (j.runSeconds ?? 0) * 1000 + (j.startedAt ? Math.max(0, (j.finishedAt ?? now) - j.startedAt) : 0);
}

/** "40/100, ckpt 30", "40", or "-" when the job never reported progress. */
export function progressText(p: JobProgressReport | null | undefined): string {
  if (!p) return '-';
  return `${p.step}${p.totalSteps !== null ? `/${p.totalSteps}` : ''}${p.checkpointStep !== null ? `, ckpt ${p.checkpointStep}` : ''}`;
}

export function jobsTable(jobs: readonly Job[], now: number, expandArrays = false): string {
  // The power limit of capped jobs (their own or the powercap stage's), as a column only when one is.
  const capped = jobs.some((j) => j.powerCapWatts !== undefined && (j.state === 'running' || j.state === 'admitted'));
  const rows = expandArrays ? jobs.map((j) => ({ j, id: j.id, name: j.name })) : pendingArraysTogether(jobs);
  return plainTable(
    ['JOBID', 'NAME', 'QUEUE', 'USER', 'ST', 'TIME', 'GPUS', ...(capped ? ['POWER'] : []), 'PROGRESS', 'NODES/REASON', 'BORROWED'],
    rows.map(({ j, id, name }) => [
      id,
      name.length > 24 ? `${name.slice(0, 23)}…` : name,
      j.queue,
      j.tenant,
      STATE_CODE[j.state] ?? j.state,
      duration(jobRunMs(j, now)),
      j.gpus,
      ...(capped ? [j.powerCapWatts !== undefined && (j.state === 'running' || j.state === 'admitted') ? `${j.powerCapWatts}W` : ''] : []),
      progressText(j.progress),
      j.state === 'pending' || j.state === 'preempted' ? `(${shortReason(j.reason)})` : j.reason && j.state !== 'running' && j.state !== 'admitted' ? j.reason : '',
      // Runs on GPUs its queue borrows from its cohort (a service's idle ones): reclaimed first.
      j.borrowed ? 'yes' : '',
    ]),
  );
}

/**
 * squeue's way with arrays: an array's waiting rest (one job of several elements) and adjacent
 * pending jobs of one array that wait for the same reason are one row, `ARRAY_[5-999]` named
 * `name-[5-999]` (Slurm's ArrayJobId_[indexes]); every other job is a row of its own.
 */
export function pendingArraysTogether(jobs: readonly Job[]): { j: Job; id: string; name: string }[] {
  const out: { j: Job; id: string; name: string }[] = [];
  for (let i = 0; i < jobs.length; ) {
    const j = jobs[i] as Job;
    let end = i + 1;
    if (j.state === 'pending' && j.arrayId) {
      while (end < jobs.length && jobs[end]?.state === 'pending' && jobs[end]?.arrayId === j.arrayId && jobs[end]?.reason === j.reason) end++;
    }
    if (end - i === 1 && (j.arrayCount ?? 1) === 1) out.push({ j, id: j.id, name: j.name });
    else {
      const indexes = jobs.slice(i, end).flatMap((e) => Array.from({ length: e.arrayCount ?? 1 }, (_, k) => (arrayIndexOf(e) ?? 0) + k));
      const ranges = indexRanges(indexes);
      const suffix = `-${elementsOf(j)}`;
      const base = j.name.endsWith(suffix) ? j.name.slice(0, -suffix.length) : j.name;
      out.push({ j, id: `${j.arrayId}_[${ranges}]`, name: `${base}-[${ranges}]` });
    }
    i = end;
  }
  return out;
}

/** "0-3,7,9-10" for [3, 0, 1, 2, 7, 9, 10]. */
export function indexRanges(indexes: readonly number[]): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let k = i;
    while (k + 1 < sorted.length && (sorted[k + 1] as number) === (sorted[k] as number) + 1) k++;
    parts.push(k === i ? String(sorted[i]) : `${sorted[i]}-${sorted[k]}`);
    i = k + 1;
  }
  return parts.join(',');
}

function shortReason(r: string | null): string {
  if (!r) return 'None';
  return r.length > 60 ? `${r.slice(0, 59)}…` : r;
}

/** "n1[0-3],n2[5]" style placement of a job's tasks. */
export function placementOf(tasks: readonly Task[]): string {
  const byNode = new Map<string, number[]>();
  for (const t of tasks) {
    if (!t.node || !['assigned', 'running', 'stopping'].includes(t.state)) continue;
    byNode.set(t.node, [...(byNode.get(t.node) ?? []), ...t.gpus]);
  }
  return [...byNode].map(([n, g]) => (g.length ? `${n}[${[...g].sort((a, b) => a - b).join(',')}]` : n)).join(',');
}

/** Every run of a job's tasks, earlier attempts included. */
export function attemptsTable(attempts: readonly TaskAttempt[], now: number): string {
  return plainTable(
    ['ATTEMPT', 'TASK', 'NODE', 'GPUS', 'STARTED', 'TIME', 'EXIT', 'END'],
    attempts.map((a) => [
      a.attempt,
      a.taskIndex,
      a.node,
      a.gpus.join(',') || '-',
      a.startedAt ? new Date(a.startedAt).toISOString() : '-',
      a.startedAt ? duration((a.finishedAt ?? now) - a.startedAt) : '-',
      a.exitCode ?? '-',
      a.endReason ?? (a.finishedAt ? '-' : 'running'),
    ]),
  );
}

/** A node's state as sinfo names it, with Slurm's power-saving suffixes: `idle~` suspended, `idle#` resuming (docs/energy.md). */
export function sinfoState(n: Pick<NodeInfo, 'state' | 'gpuUsedMilli' | 'gpus'>): string {
  if (n.state === 'suspended') return 'idle~';
  if (n.state === 'resuming') return 'idle#';
  if (n.state === 'lost') return 'down';
  if (n.state === 'drained') return 'drain';
  const used = n.gpuUsedMilli.reduce((a, b) => a + b, 0) / 1000;
  return used === 0 ? 'idle' : used >= n.gpus.length ? 'alloc' : 'mix';
}

export function nodesTable(nodes: readonly NodeInfo[]): string {
  return plainTable(
    ['NODE', 'STATE', 'GPUS', 'ALLOC', 'IDLE', 'CPU', 'MEMORY', 'UTIL', 'POWER'],
    nodes.map((n) => {
      const used = n.gpuUsedMilli.reduce((a, b) => a + b, 0) / 1000;
      const state = sinfoState(n);
      const models = [...new Set(n.gpus.map((g) => g.model))].map((m) => `${n.gpus.filter((g) => g.model === m).length}x${m}`).join(',');
      const util = n.telemetry.length ? `${Math.round(n.telemetry.reduce((a, t) => a + t.utilization, 0) / n.telemetry.length)}%` : '-';
      const power = n.telemetry.length ? `${Math.round(n.telemetry.reduce((a, t) => a + t.powerWatts, 0))}W` : '-';
      return [n.id, state, `${models || '0'}${n.simulated ? ' (sim)' : ''}`, used, n.gpus.length - used, `${n.cpuUsedMilli / 1000}/${n.cpuMilli / 1000}`, `${Math.round(n.memoryUsedMib / 1024)}/${Math.round(n.memoryMib / 1024)}Gi`, util, power];
    }),
  );
}

/** Per-model GPUs as `H100:8,A100:4` (`*` for any model). */
const perModel = (m: Readonly<Record<string, number>>): string =>
  Object.entries(m)
    .map(([k, v]) => `${k}:${Math.round(v * 1000) / 1000}`)
    .join(',');

export function queuesTable(queues: readonly QueueInfo[]): string {
  return plainTable(
    ['QUEUE', 'COHORT', 'QUOTA', 'USED', 'BORROWED', 'BORROW-LIMIT', 'LEND-LIMIT', 'PENDING', 'RUNNING', 'LENT'],
    queues.map((q) => {
      const used = q.usedGpuMilli / 1000;
      const borrowed = q.borrowedGpus ?? (q.gpuQuota === null ? 0 : Math.max(0, used - q.gpuQuota));
      const byModel = q.usedGpuMilliByModel ?? {};
      // With a per-model quota, use is shown for the same models.
      const usedText = q.nominalQuota ? perModel(Object.fromEntries(Object.keys(q.nominalQuota).map((m) => [m, (m === '*' ? q.usedGpuMilli : (byModel[m] ?? 0)) / 1000]))) : used;
      const unlimited = q.gpuQuota === null && !q.nominalQuota;
      const borrowLimit = q.borrowingLimits ? perModel(q.borrowingLimits) : (q.borrowingLimit ?? (unlimited ? '-' : 'unlimited'));
      const lendLimit = q.lendingLimits ? perModel(q.lendingLimits) : unlimited ? '-' : 'all';
      return [q.name, q.cohort ?? 'cluster', q.nominalQuota ? perModel(q.nominalQuota) : (q.gpuQuota ?? 'unlimited'), usedText, borrowed, borrowLimit, lendLimit, q.pending, q.running, q.lentGpus ?? 0];
    }),
  );
}

/** The events list in fixed-width columns, so that `tide events --all` can print page by page. */
export const EVENTS_HEADER = `${'TIME'.padEnd(24)}  ${'EVENT'.padEnd(16)}  ${'JOB'.padEnd(6)}  ${'NODE'.padEnd(12)}  MESSAGE`;

export function eventLine(e: JobEvent): string {
  return `${new Date(e.at).toISOString().padEnd(24)}  ${e.type.padEnd(16)}  ${(e.jobId ?? '-').padEnd(6)}  ${(e.nodeId ?? '-').padEnd(12)}  ${e.message}`;
}

/** A service's part of `tide job`: its bounds, its autoscaler's last decision and its replicas. */
export function serviceLines(s: ServiceStatus, now: number): string[] {
  const ready = s.replicas.filter((r) => r.ready).length;
  return [
    `  Service:   ${ready} ready of ${s.desiredReplicas} wanted (between ${s.minReplicas} and ${s.maxReplicas}); keeps ${s.keepGpus} GPU(s) from lending${s.urgent ? ' (urgent)' : ''}`,
    ...(s.reason ? [`  Autoscaler: ${s.reason}${s.decidedAt ? ` (${duration(now - s.decidedAt)} ago)` : ''}`] : []),
    ...(s.history ? [`  History:   ${s.history.points} points over ${((s.history.toSeconds - s.history.fromSeconds) / 3600).toFixed(1)} h before its start (imported ${duration(now - s.history.updatedAt)} ago)`] : []),
    '',
    'Replicas:',
    plainTable(['JOBID', 'STATE', 'ATTEMPT', 'NODE', 'URL', 'READY'], s.replicas.map((r) => [r.id, r.state, r.attempt, r.node ?? '-', r.url ?? '-', r.ready ? 'yes' : 'no'])),
  ];
}
