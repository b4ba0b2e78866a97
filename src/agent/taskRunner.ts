/**
 * Runs task processes so that they outlive the agent: each task is started detached (its own
 * process group) under a small shell wrapper that records the exit code in a file, with stdout
 * and stderr going straight to log files. The agent's state for a run lives in a directory, so a
 * restarted agent adopts the runs it finds there (alive: watched by pid; finished: exit file).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskAssignment, TaskReport } from '../api/types.ts';

/**
 * The wrapper: runs "$@" in the background, survives SIGTERM itself (the whole process group
 * gets the signal, so the task sees it directly), waits for the task and writes its exit status
 * atomically. Killed with SIGKILL it writes nothing, and the agent reports 137.
 */
const WRAPPER = `"$@" &
child=$!
trap ':' TERM INT HUP
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "$rc" > "$TIDE_EXIT_FILE.tmp" && mv "$TIDE_EXIT_FILE.tmp" "$TIDE_EXIT_FILE"
exit "$rc"`;

/** $0 of every wrapper, so a pid can be recognised as a Tide task (not a reused pid). */
const WRAPPER_NAME = 'tide-task';

export interface Run {
  readonly runId: string;
  readonly assignment: TaskAssignment;
  readonly pid: number;
  exitCode: number | null;
  exited: boolean;
  stopRequestedAt: number | null;
  killed: boolean;
}

export interface RunnerPaths {
  /** Per-run state: <stateDir>/<runId>/{assignment.json,pid,exit}. */
  readonly stateDir: string;
  /** Logs: <logDir>/job-<id>/task-<index>.{out,err}, appended across attempts. */
  readonly logDir: string;
  /** Checkpoints: <checkpointRoot>/<assignment.checkpointDir>. */
  readonly checkpointRoot: string;
}

export function logFile(logDir: string, jobId: string, index: number, stream: 'stdout' | 'stderr'): string {
  return join(logDir, `job-${jobId}`, `task-${index}.${stream === 'stdout' ? 'out' : 'err'}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie or a reused pid is not our task.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(WRAPPER_NAME);
  } catch {
    return true;
  }
}

export class TaskRunner {
  readonly runs = new Map<string, Run>();

  constructor(
    private readonly paths: RunnerPaths,
    private readonly baseEnv: Readonly<Record<string, string>>,
    private readonly gpuMemoryMib: (index: number) => number,
  ) {
    mkdirSync(paths.stateDir, { recursive: true });
    mkdirSync(paths.logDir, { recursive: true });
  }

  /** Adopts the runs a previous agent left: returns how many are still alive. */
  adopt(): number {
    let aliveCount = 0;
    for (const runId of readdirSync(this.paths.stateDir)) {
      const dir = join(this.paths.stateDir, runId);
      try {
        const assignment = JSON.parse(readFileSync(join(dir, 'assignment.json'), 'utf8')) as TaskAssignment;
        const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
        const run: Run = { runId, assignment, pid, exitCode: null, exited: false, stopRequestedAt: null, killed: false };
        this.runs.set(runId, run);
        this.poll(run);
        if (!run.exited) aliveCount++;
      } catch {
        rmSync(dir, { recursive: true, force: true }); // a run that never fully started
      }
    }
    return aliveCount;
  }

  /** The environment a task sees: its GPUs, its place in the gang, its checkpoint directory. */
  taskEnv(a: TaskAssignment, nodeName: string): Record<string, string> {
    const env: Record<string, string> = {
      ...a.env,
      CUDA_VISIBLE_DEVICES: a.gpus.join(','),
      TIDE_JOB_ID: a.jobId,
      TIDE_JOB_NAME: a.jobName,
      TIDE_TASK_INDEX: String(a.taskIndex),
      TIDE_GANG_SIZE: String(a.gangSize),
      TIDE_ATTEMPT: String(a.attempt),
      TIDE_RUN_ID: a.runId,
      TIDE_NODE: nodeName,
      TIDE_PEERS: a.peers.join(','),
      // The names PyTorch's launcher reads.
      WORLD_SIZE: String(a.gangSize),
      RANK: String(a.taskIndex),
    };
    const master = a.peers[0];
    if (master) {
      const colon = master.lastIndexOf(':');
      env['MASTER_ADDR'] = master.slice(0, colon);
      env['MASTER_PORT'] = master.slice(colon + 1);
    }
    if (a.checkpointDir !== null) {
      const dir = join(this.paths.checkpointRoot, a.checkpointDir);
      mkdirSync(dir, { recursive: true });
      env['TIDE_CHECKPOINT_DIR'] = dir;
    }
    if (a.gpus.length === 1 && a.gpuMilli > 0 && a.gpuMilli < 1000) {
      // A fraction of one GPU: CUDA MPS enforces the compute share and the memory cap.
      env['CUDA_MPS_ACTIVE_THREAD_PERCENTAGE'] = String(Math.max(1, Math.round(a.gpuMilli / 10)));
      env['CUDA_MPS_PINNED_DEVICE_MEM_LIMIT'] = `0=${Math.floor((this.gpuMemoryMib(a.gpus[0] as number) * a.gpuMilli) / 1000)}M`;
    }
    return env;
  }

  start(a: TaskAssignment, nodeName: string): Run {
    const dir = join(this.paths.stateDir, a.runId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'assignment.json'), JSON.stringify(a));
    const outPath = logFile(this.paths.logDir, a.jobId, a.taskIndex, 'stdout');
    mkdirSync(join(this.paths.logDir, `job-${a.jobId}`), { recursive: true });
    const out = openSync(outPath, 'a');
    const err = openSync(logFile(this.paths.logDir, a.jobId, a.taskIndex, 'stderr'), 'a');
    let pid: number;
    try {
      const child = spawn('/bin/sh', ['-c', WRAPPER, WRAPPER_NAME, ...a.command], {
        detached: true,
        stdio: ['ignore', out, err],
        env: { ...this.baseEnv, ...this.taskEnv(a, nodeName), TIDE_EXIT_FILE: join(dir, 'exit') },
      });
      child.on('error', () => {});
      child.unref();
      pid = child.pid ?? -1;
    } finally {
      closeSync(out);
      closeSync(err);
    }
    writeFileSync(join(dir, 'pid'), String(pid));
    const run: Run = { runId: a.runId, assignment: a, pid, exitCode: null, exited: pid < 0, stopRequestedAt: null, killed: false };
    if (pid < 0) run.exitCode = 127;
    this.runs.set(a.runId, run);
    return run;
  }

  /** SIGTERM now to the task's process group; SIGKILL once the grace period has passed (see tick). */
  stop(run: Run, nowMs: number): void {
    if (run.exited || run.stopRequestedAt !== null) return;
    run.stopRequestedAt = nowMs;
    signal(run.pid, 'SIGTERM');
  }

  /** Checks every run: exit files, dead processes, overdue SIGKILLs. */
  tick(nowMs: number): void {
    for (const run of this.runs.values()) {
      if (run.exited) continue;
      this.poll(run);
      if (!run.exited && run.stopRequestedAt !== null && !run.killed && nowMs - run.stopRequestedAt >= run.assignment.gracePeriodSeconds * 1000) {
        run.killed = true;
        signal(run.pid, 'SIGKILL');
      }
    }
  }

  private poll(run: Run): void {
    const exitPath = join(this.paths.stateDir, run.runId, 'exit');
    if (existsSync(exitPath)) {
      const code = Number(readFileSync(exitPath, 'utf8').trim());
      run.exitCode = Number.isInteger(code) ? code : null;
      run.exited = true;
      return;
    }
    if (!alive(run.pid)) {
      // Re-check: the wrapper writes the file just before it exits.
      if (existsSync(exitPath)) return this.poll(run);
      run.exited = true;
      run.exitCode = 137;
    }
  }

  /** Forgets a finished run whose end the server has recorded (logs stay). */
  forget(runId: string): void {
    this.runs.delete(runId);
    rmSync(join(this.paths.stateDir, runId), { recursive: true, force: true });
  }

  reports(): TaskReport[] {
    return [...this.runs.values()].map((r) => ({ runId: r.runId, state: r.exited ? 'exited' : 'running', pid: r.pid, exitCode: r.exitCode }));
  }

  /** Milli-GPU held per device by live runs. */
  busyMilli(gpuCount: number): number[] {
    const busy = new Array<number>(gpuCount).fill(0);
    for (const r of this.runs.values()) {
      if (r.exited) continue;
      for (const g of r.assignment.gpus) busy[g] = (busy[g] ?? 0) + (r.assignment.gpuMilli || 1000);
    }
    return busy;
  }

  /** SIGKILLs every live run (used when a test tears an agent down for good). */
  killAll(): void {
    for (const r of this.runs.values()) if (!r.exited) signal(r.pid, 'SIGKILL');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}
