/**
 * The task processes' own ledger, the soak's ground truth: each task appends a `start` line
 * (run, job, attempt, task index, node, GPUs, GPU milli, its pid, a timestamp) and, when it ends
 * on its own or by SIGTERM, an `end` line. A task killed with SIGKILL writes no end; the soak
 * probes its pid instead (`probe`), so every run has a span it was certainly alive for:
 * [start, end] or [start, the last probe that found it]. Two spans that overlap prove two
 * processes were alive at once; the checks below report only what is so proven.
 */
import { openSync, readSync, closeSync, readFileSync, fstatSync } from 'node:fs';

export interface LedgerRun {
  readonly runId: string;
  readonly jobId: string;
  readonly attempt: number;
  readonly task: number;
  readonly node: string;
  readonly gpus: readonly number[];
  readonly milli: number;
  readonly pid: number;
  readonly start: number;
  end: number | null;
  rc: number | null;
  /** The latest moment the process was seen alive (start, a probe, or its end line). */
  aliveUntil: number;
  /** Seen gone by a probe (SIGKILLed, or its end line is still to be read). */
  gone: boolean;
}

export interface Violation {
  readonly kind: string;
  readonly key: string;
  readonly message: string;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The shell command of a soak task: the ledger lines around `work`. A checkpointing task writes
 * its end line on SIGTERM too (its work saved each step) and exits 143.
 */
export function ledgerCommand(ledger: string, milli: number, work: string, checkpointing = false): string {
  const now = '$(date +%s%3N)';
  const end = (rc: string): string => `echo "end $TIDE_RUN_ID ${now} ${rc}" >> "$L"`;
  return [
    `L=${q(ledger)}`,
    `echo "start $TIDE_RUN_ID $TIDE_JOB_ID $TIDE_ATTEMPT $TIDE_TASK_INDEX $TIDE_NODE \${CUDA_VISIBLE_DEVICES:--} ${milli} $$ ${now}" >> "$L"`,
    ...(checkpointing ? [`trap '${end('143').replace(/'/g, `'\\''`)}; exit 143' TERM`] : []),
    work,
    'rc=$?',
    end('$rc'),
    'exit $rc',
  ].join('; ');
}

/** Work that advances `steps` steps of 0.5 s, saving each in TIDE_CHECKPOINT_DIR and resuming from it. */
export function checkpointWork(steps: number): string {
  return `f="$TIDE_CHECKPOINT_DIR/step-$TIDE_TASK_INDEX"; i=$(cat "$f" 2>/dev/null || echo 0); while [ "$i" -lt ${steps} ]; do sleep 0.5 & wait $!; i=$((i+1)); echo "$i" > "$f"; done`;
}

export class Ledger {
  readonly runs = new Map<string, LedgerRun>();
  private offset = 0;
  private partial = '';
  malformed = 0;

  constructor(readonly file: string) {}

  /** Reads the lines appended since the last call. */
  read(): void {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch (e) {
      // Gone only once the run has been torn down; a missing ledger mid-run shows as missing runs.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    } finally {
      closeSync(fd);
    }
  }

  private line(line: string): void {
    const f = line.trim().split(' ');
    if (f[0] === 'start' && f.length === 10) {
      const [, runId, jobId, attempt, task, node, gpus, milli, pid, at] = f as [string, string, string, string, string, string, string, string, string, string];
      const start = Number(at);
      this.runs.set(runId, {
        runId, jobId, attempt: Number(attempt), task: Number(task), node,
        gpus: gpus === '-' ? [] : gpus.split(',').map(Number), milli: Number(milli), pid: Number(pid),
        start, end: null, rc: null, aliveUntil: start, gone: false,
      });
    } else if (f[0] === 'end' && f.length === 4) {
      const run = this.runs.get(f[1] as string);
      if (!run) return void this.malformed++;
      run.end = Number(f[2]);
      run.rc = Number(f[3]);
      run.aliveUntil = Math.max(run.aliveUntil, run.end);
    } else if (line.trim() !== '') this.malformed++;
  }

  /** Runs not known to have ended: started, no end line, not seen gone. */
  open(): LedgerRun[] {
    return [...this.runs.values()].filter((r) => r.end === null && !r.gone);
  }

  /**
   * Probes the open runs' processes (Linux /proc): a run whose pid still carries its
   * TIDE_RUN_ID is alive now; one that does not is gone. The time is read before the probe, so
   * `aliveUntil` never claims more than was seen.
   */
  probe(): void {
    for (const run of this.open()) {
      const before = Date.now();
      let alive: boolean;
      try {
        alive = readFileSync(`/proc/${run.pid}/environ`, 'latin1').split('\0').includes(`TIDE_RUN_ID=${run.runId}`);
      } catch {
        alive = false;
      }
      if (alive) run.aliveUntil = Math.max(run.aliveUntil, before);
      else run.gone = true;
    }
  }
}

/** Whether two runs were certainly alive at the same moment. */
export const overlap = (a: LedgerRun, b: LedgerRun): boolean => a.start < b.aliveUntil && b.start < a.aliveUntil;

const iso = (ms: number): string => new Date(ms).toISOString().slice(11, 23);
const where = (r: LedgerRun): string => `${r.runId} (attempt ${r.attempt}, task ${r.task}, ${r.node} GPU ${r.gpus.join(',') || '-'}, ${iso(r.start)}–${iso(r.aliveUntil)})`;

/**
 * What the ledger proves went wrong: a job running twice at once (two runs of one job from
 * different attempts, or two runs of one task, alive together), and a GPU given out beyond its
 * capacity (the milli of runs alive together on one GPU above 1000).
 */
export function ledgerViolations(runs: Iterable<LedgerRun>): Violation[] {
  const out: Violation[] = [];
  const byJob = new Map<string, LedgerRun[]>();
  const bySlot = new Map<string, LedgerRun[]>();
  for (const r of runs) {
    byJob.set(r.jobId, [...(byJob.get(r.jobId) ?? []), r]);
    for (const g of r.gpus) bySlot.set(`${r.node}/${g}`, [...(bySlot.get(`${r.node}/${g}`) ?? []), r]);
  }
  for (const [job, list] of byJob) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i] as LedgerRun;
        const b = list[j] as LedgerRun;
        if ((a.attempt !== b.attempt || a.task === b.task) && overlap(a, b)) {
          out.push({ kind: 'double-run', key: `double-run ${[a.runId, b.runId].sort().join(' ')}`, message: `job ${job} ran twice at once: ${where(a)} and ${where(b)}` });
        }
      }
    }
  }
  for (const [slot, list] of bySlot) {
    for (const r of list) {
      // The most held at r's start: the runs alive at that moment (r included).
      const holders = list.filter((s) => s.start <= r.start && r.start < Math.max(s.aliveUntil, s === r ? r.start + 1 : 0));
      const milli = holders.reduce((sum, s) => sum + s.milli, 0);
      if (milli > 1000) {
        out.push({ kind: 'gpu-shared', key: `gpu-shared ${slot} ${r.runId}`, message: `GPU ${slot} over capacity (${milli} milli) at ${iso(r.start)}: ${holders.map(where).join(' and ')}` });
      }
    }
  }
  return out;
}
