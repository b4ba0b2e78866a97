/**
 * Runs task processes so that they outlive the agent: each task is started detached (its own
 * process group) under a small shell wrapper that records the exit code in a file, with stdout
 * and stderr going straight to log files. The agent's state for a run lives in a directory, so a
 * restarted agent adopts the runs it finds there (alive: watched by pid; finished: exit file).
 *
 * Starting never throws: a run that cannot start (an assignment that makes no sense on this
 * node, a log or checkpoint directory that cannot be made, spawn failing with E2BIG, EMFILE …)
 * becomes a run that has already exited with reason 'start-failed', exit code 127 (ENOENT) or
 * 126 (anything else) and a message saying why, so the agent reports it like any other end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { TaskAssignment, TaskProgress, TaskReport } from '../api/types.ts';
import { MAX_ARRAY } from '../api/spec.ts';
import { environTracker, type ProcTracker } from './procTrack.ts';

/** What the wrapper's watchdog needs (see WRAPPER); null while the node lease is not known. */
export interface Watchdog {
  readonly aliveFile: string;
  readonly fenceAfterMs: number;
  readonly killAfterMs: number;
}

/**
 * The wrapper: joins the run's cgroup (when the agent tracks runs by cgroup), runs "$@" in the
 * background, survives SIGTERM itself (the whole process group gets the signal, so the task sees
 * it directly), waits for the task, writes its exit status atomically, and then SIGKILLs what is
 * left of its process group: when a task ends, nothing it started lives on. Killed with SIGKILL
 * it writes nothing, and the agent reports 137. Its own variables are unset before the task runs.
 *
 * With TIDE_ALIVE_FILE it also runs a watchdog for the case the agent cannot fence (it died or
 * hangs): the agent rewrites that file at every successful heartbeat; when it has not changed for
 * TIDE_FENCE_AFTER_CS hundredths of a second (measured on /proc/uptime, read without a fork),
 * the watchdog marks the run fenced, SIGTERMs the process group and SIGKILLs it
 * TIDE_FENCE_KILL_S seconds later, before the server's node lease runs out.
 */
const WRAPPER = `exit_file=$TIDE_EXIT_FILE cg=$TIDE_CGROUP_PROCS alive_file=$TIDE_ALIVE_FILE fence_cs=$TIDE_FENCE_AFTER_CS kill_s=$TIDE_FENCE_KILL_S count=$TIDE_ARRAY_COUNT
unset TIDE_EXIT_FILE TIDE_CGROUP_PROCS TIDE_ALIVE_FILE TIDE_FENCE_AFTER_CS TIDE_FENCE_KILL_S TIDE_ARRAY_COUNT
[ -z "$cg" ] || echo $$ > "$cg" 2>/dev/null
if [ -n "$count" ]; then
  (
    first=$TIDE_ARRAY_INDEX; i=0; pids=
    while [ $i -lt "$count" ]; do TIDE_ARRAY_INDEX=$((first + i)) "$@" & pids="$pids $!"; i=$((i + 1)); done
    failed=0; rc=0; i=0
    for p in $pids; do
      wait "$p"; r=$?
      if [ $r -ne 0 ]; then failed=$((failed + 1)); rc=$r; echo "tide: array element $((first + i)) exited $r" >&2; fi
      i=$((i + 1))
    done
    echo "$failed" > "$exit_file.failed"
    exit $rc
  ) &
else
  "$@" &
fi
child=$!
trap ':' TERM INT HUP
dog=
if [ -n "$alive_file" ]; then
  (
    trap '' TERM INT HUP
    last=; since=
    while sleep 0.5; do
      read -r up _ < /proc/uptime; cs=\${up%.*}\${up#*.}
      now=; read -r now < "$alive_file" 2>/dev/null
      if [ -z "$since" ] || [ "$now" != "$last" ]; then last=$now; since=$cs; fi
      if [ $((cs - since)) -ge "$fence_cs" ]; then
        : > "$exit_file.fenced"; kill -TERM -$$ 2>/dev/null; sleep "$kill_s"; kill -KILL -$$ 2>/dev/null; exit 0
      fi
    done
  ) </dev/null >/dev/null 2>&1 &
  dog=$!
fi
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
[ -z "$dog" ] || kill -KILL "$dog" 2>/dev/null
echo "$rc" > "$exit_file.tmp" && mv "$exit_file.tmp" "$exit_file"
kill -KILL -$$ 2>/dev/null
exit "$rc"`;

/** $0 of every wrapper, so a pid can be recognised as a Tide task (not a reused pid). */
const WRAPPER_NAME = 'tide-task';

export interface Run {
  readonly runId: string;
  readonly assignment: TaskAssignment;
  /** The wrapper's pid, which is also its process group; -1 when the run never started. */
  pid: number;
  /** When this agent started it (ms); for an adopted run, when its pid file was written. */
  startedAt: number | null;
  exitCode: number | null;
  exited: boolean;
  stopRequestedAt: number | null;
  /** When a run asked to stop gets SIGKILL: its grace period after the SIGTERM, or sooner when fenced. */
  killAt: number | null;
  killed: boolean;
  /** Why it ended other than by itself (see TaskReport.reason), and what went wrong. */
  reason: 'start-failed' | 'fenced' | null;
  message: string | null;
  /** The last good content of its progress file, and whether the server has yet to acknowledge it. */
  progress?: TaskProgress | null;
  progressUnsent?: boolean;
  /** mtime and size of the progress file when last read (a change is read again). */
  progressSeen?: string;
  /** The mtime (ms) of the last good progress file written since the run started: when it last showed work. */
  progressAt?: number;
  /** Of a range of array elements (TaskAssignment.arrayCount), once exited: how many exited non-zero. */
  failedElements?: number;
}

/** The most of a progress file the agent reads: a bigger file is ignored (and counted). */
export const MAX_PROGRESS_BYTES = 4096;

/**
 * Parses a progress file: JSON `{"step": n, "totalSteps"?: N, "checkpointStep"?: c}` with
 * non-negative safe integers; null for anything else (other keys are ignored).
 */
export function parseProgressFile(text: string): TaskProgress | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const count = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!count(o['step'])) return null;
  for (const k of ['totalSteps', 'checkpointStep']) if (o[k] !== undefined && o[k] !== null && !count(o[k])) return null;
  const opt = (k: 'totalSteps' | 'checkpointStep'): { [K in typeof k]?: number } => (typeof o[k] === 'number' ? { [k]: o[k] } : {});
  return { step: o['step'] as number, ...opt('totalSteps'), ...opt('checkpointStep') };
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

const RUN_ID = /^\d{1,15}\.\d{1,6}\.\d{1,9}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DIR_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/** Whether a run id is safe to use as a directory name (and is one the server could have made). */
export function validRunId(runId: unknown): runId is string {
  return typeof runId === 'string' && RUN_ID.test(runId);
}

/**
 * What is wrong with an assignment from the server, or null: the agent trusts no field it uses
 * in a path, a signal, an exec or an array index (GPUs must be this node's, 0 … gpuCount-1).
 */
export function assignmentProblem(a: TaskAssignment, gpuCount: number): string | null {
  const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (!validRunId(a.runId)) return 'runId is not JOB.TASK.ATTEMPT';
  if (typeof a.jobId !== 'string' || !isInt(a.taskIndex, 0, 1e6) || !a.runId.startsWith(`${a.jobId}.${a.taskIndex}.`)) return `jobId and taskIndex do not match runId ${a.runId}`;
  if (!Array.isArray(a.command) || a.command.length === 0 || !a.command.every((c) => typeof c === 'string' && !c.includes('\0'))) return 'command is not a non-empty list of strings without NUL';
  if (typeof a.env !== 'object' || a.env === null || Array.isArray(a.env)) return 'env is not a map';
  for (const [k, v] of Object.entries(a.env)) if (!ENV_NAME.test(k) || typeof v !== 'string' || v.includes('\0')) return `env.${k} is not a variable name with a string value`;
  if (!Array.isArray(a.gpus) || new Set(a.gpus).size !== a.gpus.length) return 'gpus is not a list of distinct GPU indices';
  for (const [i, g] of a.gpus.entries()) if (!isInt(g, 0, gpuCount - 1)) return `gpus[${i}] = ${JSON.stringify(g)} is not a GPU of this node (it has ${gpuCount})`;
  if (typeof a.gpuMilli !== 'number' || !(a.gpuMilli >= 0 && a.gpuMilli <= 1000)) return 'gpuMilli is not 0-1000';
  if (typeof a.gracePeriodSeconds !== 'number' || !(a.gracePeriodSeconds >= 0 && a.gracePeriodSeconds <= 86_400)) return 'gracePeriodSeconds is not 0-86400';
  if (a.checkpointDir !== null && (typeof a.checkpointDir !== 'string' || !DIR_NAME.test(a.checkpointDir) || a.checkpointDir === '..')) return 'checkpointDir is not a plain directory name';
  if (!Array.isArray(a.peers) || !a.peers.every((p) => typeof p === 'string')) return 'peers is not a list of host:port';
  if (!isInt(a.gangSize, 1, 1e6) || !isInt(a.attempt, 0, 1e9)) return 'gangSize or attempt is not a count';
  if (a.arrayCount !== undefined && (!isInt(a.arrayCount, 1, MAX_ARRAY) || !/^\d{1,9}$/.test(a.env['TIDE_ARRAY_INDEX'] ?? ''))) return `arrayCount is not 1-${MAX_ARRAY} elements from env.TIDE_ARRAY_INDEX`;
  return null;
}

/** An error as one line: "spawn E2BIG (argument list too long)", "mkdir ENOTDIR (not a directory)". */
export function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string' && typeof err.syscall === 'string') {
    const text = typeof err.errno === 'number' ? getSystemErrorMap().get(err.errno)?.[1] : undefined;
    return `${err.syscall} ${err.code}${text ? ` (${text})` : ''}`;
  }
  return err instanceof Error ? err.message : String(e);
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
    /** GPUs of this node: an assignment naming another index cannot start. */
    private readonly gpuCount = 64,
    /** Finds a run's processes outside its process group (setsid daemons). */
    readonly tracker: ProcTracker = environTracker(paths.stateDir.replace(/[^A-Za-z0-9_.-]/g, '_')),
    private readonly watchdog: () => Watchdog | null = () => null,
    /** The model of a GPU by index (TIDE_GPU_MODEL); undefined when unknown. */
    private readonly gpuModel: (index: number) => string | undefined = () => undefined,
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
        if (!Number.isInteger(pid) || pid <= 1 || assignment.runId !== runId || assignmentProblem(assignment, this.gpuCount)) throw new Error('not a run');
        const startedAt = Math.floor(statSync(join(dir, 'pid')).mtimeMs);
        const run: Run = { runId, assignment, pid, startedAt, exitCode: null, exited: false, stopRequestedAt: null, killAt: null, killed: false, reason: null, message: null };
        this.runs.set(runId, run);
        this.poll(run);
        if (!run.exited) aliveCount++;
      } catch {
        rmSync(dir, { recursive: true, force: true }); // a run that never fully started
      }
    }
    return aliveCount;
  }

  /** Progress files rejected (too big, not JSON, bad fields) since the agent started. */
  progressRejected = 0;

  /**
   * Where a task writes its progress (TIDE_PROGRESS_FILE): progress-<taskIndex>.json in its
   * checkpoint directory (kept across attempts), or in its run's state directory without one.
   */
  progressFile(a: TaskAssignment): string {
    const dir = a.checkpointDir !== null ? join(this.paths.checkpointRoot, a.checkpointDir) : join(this.paths.stateDir, a.runId);
    return join(dir, `progress-${a.taskIndex}.json`);
  }

  /**
   * Reads each run's progress file when its mtime or size changed: at most MAX_PROGRESS_BYTES;
   * a file that is bigger or malformed is ignored and counted (progressRejected), never thrown.
   * Returns the runs whose file was rejected this time.
   */
  readProgress(): Run[] {
    const rejected: Run[] = [];
    for (const run of this.runs.values()) {
      if (run.pid < 0) continue;
      const file = this.progressFile(run.assignment);
      let fd = -1;
      try {
        const st = statSync(file);
        const seen = `${st.mtimeMs}/${st.size}/${st.ino}`;
        if (seen === run.progressSeen) continue;
        run.progressSeen = seen;
        let parsed: TaskProgress | null = null;
        if (st.isFile() && st.size <= MAX_PROGRESS_BYTES) {
          fd = openSync(file, 'r');
          const buf = Buffer.alloc(MAX_PROGRESS_BYTES + 1);
          const n = readSync(fd, buf, 0, buf.length, 0);
          if (n <= MAX_PROGRESS_BYTES) parsed = parseProgressFile(buf.subarray(0, n).toString('utf8'));
        }
        if (parsed === null) {
          this.progressRejected++;
          rejected.push(run);
          continue;
        }
        run.progress = parsed;
        run.progressUnsent = true;
        // A file left by an earlier attempt (the checkpoint directory is kept) is not this run's work.
        if (run.startedAt === null || st.mtimeMs >= run.startedAt - 1000) run.progressAt = st.mtimeMs;
      } catch {
        /* no progress file (yet), or it vanished between stat and open */
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    }
    return rejected;
  }

  /** The server took these reports: their progress need not be sent again until it changes. */
  progressSent(reports: readonly TaskReport[]): void {
    for (const r of reports) {
      const run = this.runs.get(r.runId);
      if (run && r.progress !== undefined && run.progress === r.progress) run.progressUnsent = false;
    }
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
      TIDE_PROGRESS_FILE: this.progressFile(a),
      // A range of array elements: the wrapper runs this many, from TIDE_ARRAY_INDEX on, and unsets it.
      ...((a.arrayCount ?? 1) > 1 ? { TIDE_ARRAY_COUNT: String(a.arrayCount) } : {}),
      // The names PyTorch's launcher reads.
      WORLD_SIZE: String(a.gangSize),
      RANK: String(a.taskIndex),
    };
    const model = a.gpus.length > 0 ? this.gpuModel(a.gpus[0] as number) : undefined;
    if (model !== undefined) env['TIDE_GPU_MODEL'] = model;
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

  /**
   * Starts a run, or records why it could not start (never throws; see the file comment). The
   * run id must be valid (validRunId): it names the run's state directory.
   */
  start(a: TaskAssignment, nodeName: string): Run {
    const run: Run = { runId: a.runId, assignment: a, pid: -1, startedAt: null, exitCode: null, exited: false, stopRequestedAt: null, killAt: null, killed: false, reason: null, message: null };
    this.runs.set(a.runId, run);
    const fail = (message: string, code = 126): Run => {
      Object.assign(run, { exited: true, exitCode: code, reason: 'start-failed', message });
      return run;
    };
    const problem = assignmentProblem(a, this.gpuCount);
    if (problem) return fail(`invalid assignment: ${problem}`);
    const dir = join(this.paths.stateDir, a.runId);
    let step = `state directory ${dir}`;
    let out = -1;
    let err = -1;
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'assignment.json'), JSON.stringify(a));
      step = `log directory ${join(this.paths.logDir, `job-${a.jobId}`)}`;
      mkdirSync(join(this.paths.logDir, `job-${a.jobId}`), { recursive: true });
      out = openSync(logFile(this.paths.logDir, a.jobId, a.taskIndex, 'stdout'), 'a');
      err = openSync(logFile(this.paths.logDir, a.jobId, a.taskIndex, 'stderr'), 'a');
      step = `checkpoint directory ${a.checkpointDir === null ? '' : join(this.paths.checkpointRoot, a.checkpointDir)}`;
      const tracked = this.tracker.prepare(a.runId);
      const dog = this.watchdog();
      const env = {
        ...this.baseEnv,
        ...this.taskEnv(a, nodeName),
        TIDE_EXIT_FILE: join(dir, 'exit'),
        ...tracked.env,
        ...(tracked.procsFile ? { TIDE_CGROUP_PROCS: tracked.procsFile } : {}),
        ...(dog ? { TIDE_ALIVE_FILE: dog.aliveFile, TIDE_FENCE_AFTER_CS: String(Math.ceil(dog.fenceAfterMs / 10)), TIDE_FENCE_KILL_S: (dog.killAfterMs / 1000).toFixed(2) } : {}),
      };
      step = '';
      const child = spawn('/bin/sh', ['-c', WRAPPER, WRAPPER_NAME, ...a.command], { detached: true, stdio: ['ignore', out, err], env });
      // ENOENT, EACCES, EAGAIN, EMFILE and ENFILE come here (on the next tick) rather than as a throw.
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (run.pid < 0) fail(describeError(e), e.code === 'ENOENT' ? 127 : 126);
      });
      child.unref();
      if (child.pid === undefined) return fail('spawn failed');
      run.pid = child.pid;
      run.startedAt = Date.now();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
      return fail(`${step ? `${step}: ` : ''}${describeError(e)}`, code);
    } finally {
      if (out >= 0) closeSync(out);
      if (err >= 0) closeSync(err);
    }
    try {
      writeFileSync(join(dir, 'pid'), String(run.pid));
    } catch (e) {
      // A run whose pid is not on disk would be lost by a restarted agent: better not run it.
      signal(run.pid, 'SIGKILL');
      return fail(`state directory ${dir}: ${describeError(e)}`);
    }
    return run;
  }

  /**
   * SIGTERM now to the task's process group; SIGKILL once graceMs (default: the job's grace
   * period) has passed (see tick). Asking again can only bring the SIGKILL closer.
   */
  stop(run: Run, nowMs: number, graceMs = run.assignment.gracePeriodSeconds * 1000): void {
    if (run.exited) return;
    if (run.stopRequestedAt === null) {
      run.stopRequestedAt = nowMs;
      signal(run.pid, 'SIGTERM');
      this.tracker.signal(run.runId, 'SIGTERM');
    }
    run.killAt = Math.min(run.killAt ?? Infinity, nowMs + graceMs);
  }

  /**
   * Stops every live run because the agent lost the server (see Agent): SIGTERM now, SIGKILL
   * within killWithinMs (or the job's grace period if shorter); they are reported as 'fenced'.
   * Returns how many runs it stopped.
   */
  fence(nowMs: number, killWithinMs: number): number {
    let n = 0;
    for (const run of this.runs.values()) {
      if (run.exited) continue;
      run.reason = 'fenced';
      run.message = 'its agent lost the server for half the node lease';
      this.stop(run, nowMs, Math.min(run.assignment.gracePeriodSeconds * 1000, killWithinMs));
      n++;
    }
    return n;
  }

  /** Checks every run: exit files, dead processes, overdue SIGKILLs. Returns how many runs it found ended. */
  tick(nowMs: number): number {
    let ended = 0;
    for (const run of this.runs.values()) {
      if (run.exited) continue;
      this.poll(run);
      if (run.exited) ended++;
      if (!run.exited && run.killAt !== null && !run.killed && nowMs >= run.killAt) {
        run.killed = true;
        signal(run.pid, 'SIGKILL');
        this.tracker.signal(run.runId, 'SIGKILL');
      }
    }
    return ended;
  }

  /**
   * A run has ended when its wrapper is gone (the exit file alone proves nothing: the task can
   * write it, since TIDE_EXIT_FILE is in its environment). Its exit code is the file's, when that
   * is a status (0-255); none at all means it was killed (137); anything else is unknown (null).
   */
  private poll(run: Run): void {
    if (run.pid < 0 || alive(run.pid)) return; // never started (start() decided its end), or running
    run.exited = true;
    run.exitCode = 137;
    // What escaped the process group (setsid, double fork) dies with the task too.
    this.tracker.signal(run.runId, 'SIGKILL');
    this.tracker.release(run.runId);
    if (existsSync(join(this.paths.stateDir, run.runId, 'exit.fenced')) && run.reason === null) {
      run.reason = 'fenced';
      run.message = 'its agent was silent for half the node lease (the task wrapper fenced it)';
    }
    try {
      const code = Number(readFileSync(join(this.paths.stateDir, run.runId, 'exit'), 'utf8').trim());
      run.exitCode = Number.isInteger(code) && code >= 0 && code <= 255 ? code : null;
    } catch {
      /* no exit file: killed before the wrapper could write it */
    }
    const count = run.assignment.arrayCount ?? 1;
    if (count > 1) {
      // A range's elements that exited non-zero, as its wrapper counted them (none written: all, if it did not end well).
      let failed = run.exitCode === 0 ? 0 : count;
      try {
        const n = Number(readFileSync(join(this.paths.stateDir, run.runId, 'exit.failed'), 'utf8').trim());
        if (Number.isInteger(n) && n >= 0 && n <= count) failed = n;
      } catch {
        /* killed before its elements all ended */
      }
      run.failedElements = failed;
    }
  }

  /** Forgets a finished run whose end the server has recorded (logs stay). */
  forget(runId: string): void {
    this.runs.delete(runId);
    if (validRunId(runId)) rmSync(join(this.paths.stateDir, runId), { recursive: true, force: true });
  }

  reports(): TaskReport[] {
    return [...this.runs.values()].map((r) => ({
      runId: r.runId,
      state: r.exited ? 'exited' : 'running',
      pid: r.pid > 0 ? r.pid : null,
      exitCode: r.exitCode,
      ...(r.startedAt !== null ? { startedAt: r.startedAt } : {}),
      ...(r.reason !== null && r.exited ? { reason: r.reason, message: r.message ?? '' } : {}),
      ...(r.progressUnsent && r.progress ? { progress: r.progress } : {}),
      ...(r.exited && r.failedElements ? { failedElements: r.failedElements } : {}),
    }));
  }

  /** Milli-GPU held per device by live runs. */
  busyMilli(gpuCount: number): number[] {
    const busy = new Array<number>(gpuCount).fill(0);
    for (const r of this.runs.values()) {
      if (r.exited) continue;
      for (const g of r.assignment.gpus) if (g >= 0 && g < gpuCount) busy[g] = (busy[g] ?? 0) + (r.assignment.gpuMilli || 1000);
    }
    return busy;
  }

  /**
   * Milli-GPU per device held by runs that showed work within `windowMs` before `now`, that is
   * wrote a good progress file (TIDE_PROGRESS_FILE) since they started: the load simulated GPUs
   * show. A run that holds a GPU and reports no progress (`sleep 600`) computes nothing there.
   */
  computingMilli(gpuCount: number, now: number, windowMs: number): number[] {
    const busy = new Array<number>(gpuCount).fill(0);
    for (const r of this.runs.values()) {
      if (r.exited || r.progressAt === undefined || now - r.progressAt > windowMs) continue;
      for (const g of r.assignment.gpus) if (g >= 0 && g < gpuCount) busy[g] = (busy[g] ?? 0) + (r.assignment.gpuMilli || 1000);
    }
    return busy;
  }

  /** SIGKILLs every live run (used when a test tears an agent down for good). */
  killAll(): void {
    for (const r of this.runs.values()) {
      if (r.exited) continue;
      signal(r.pid, 'SIGKILL');
      this.tracker.signal(r.runId, 'SIGKILL');
    }
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
