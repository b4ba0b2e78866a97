/**
 * Which processes belong to a task run, whatever they did to escape its process group (setsid,
 * double fork, nohup): Slurm's proctrack. Two ways, the first that works here:
 *
 * - **cgroup**: each run gets its own cgroup (cgroup v2, or v1's `pids` hierarchy), which the task
 *   wrapper joins before it starts the command; every descendant is born in it and cannot leave
 *   without root. Needs a writable cgroup filesystem (root, or a delegated subtree).
 * - **environ**: every process started by the run inherits `TIDE_PROCTRACK=SCOPE/RUN_ID` (the
 *   scope is the agent's own, so two agents on one host never touch each other's runs); the
 *   tracker scans /proc for it. A process that clears its environment escapes this one, so it
 *   is the fallback.
 *
 * The agent signals a run's tracked processes when it stops the run, and kills those still alive
 * when the run's main process has ended: when a task ends, nothing it started lives on.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcTracker {
  /** "cgroup v2 …", "cgroup v1 pids …" or "environ". */
  readonly kind: string;
  /** Prepares tracking for a run: the cgroup.procs file the wrapper must join, if any, and variables the run must carry. */
  prepare(runId: string): { readonly procsFile: string | null; readonly env: Readonly<Record<string, string>> };
  /** Live pids of the run (not including zombies it cannot reap). */
  pids(runId: string): number[];
  /** Sends a signal to every process of the run; returns how many it reached. */
  signal(runId: string, sig: NodeJS.Signals): number;
  /** Forgets the run (removes its cgroup once empty). */
  release(runId: string): void;
}

const readLines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  } catch {
    return [];
  }
};

function signalPids(pids: readonly number[], sig: NodeJS.Signals): number {
  let reached = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
      reached++;
    } catch {
      // Gone already.
    }
  }
  return reached;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Scans /proc for processes whose environment carries TIDE_PROCTRACK=<scope>/<runId>. */
export function environTracker(scope: string): ProcTracker {
  const mark = (runId: string): string => `${scope}/${runId}`;
  const scan = (runId: string): number[] => {
    const needle = Buffer.from(`\0TIDE_PROCTRACK=${mark(runId)}\0`);
    const first = Buffer.from(`TIDE_PROCTRACK=${mark(runId)}\0`);
    const found: number[] = [];
    let entries: string[];
    try {
      entries = readdirSync('/proc');
    } catch {
      return found;
    }
    for (const e of entries) {
      const pid = Number(e);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      try {
        const env = readFileSync(`/proc/${pid}/environ`);
        if ((env.indexOf(needle) >= 0 || env.subarray(0, first.length).equals(first)) && !isZombie(pid)) found.push(pid);
      } catch {
        // Not ours to read, or gone.
      }
    }
    return found;
  };
  return {
    kind: 'environ',
    prepare: (runId) => ({ procsFile: null, env: { TIDE_PROCTRACK: mark(runId) } }),
    pids: scan,
    signal: (runId, sig) => signalPids(scan(runId), sig),
    release: () => {},
  };
}

/** A tracker on a cgroup directory `base` (v1 pids or v2), or null when it cannot be used here. */
export function cgroupTracker(base: string, kind: string): ProcTracker | null {
  try {
    mkdirSync(base, { recursive: true });
    const probe = join(base, `probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
  } catch {
    return null;
  }
  const dir = (runId: string): string => join(base, runId.replace(/[^A-Za-z0-9_.-]/g, '_'));
  const pids = (runId: string): number[] => readLines(join(dir(runId), 'cgroup.procs')).map(Number).filter((p) => Number.isInteger(p) && p > 0 && !isZombie(p));
  return {
    kind: `${kind} ${base}`,
    prepare(runId) {
      try {
        mkdirSync(dir(runId), { recursive: true });
        return { procsFile: join(dir(runId), 'cgroup.procs'), env: {} };
      } catch {
        return { procsFile: null, env: {} };
      }
    },
    pids,
    signal: (runId, sig) => signalPids(pids(runId), sig),
    release(runId) {
      try {
        rmdirSync(dir(runId));
      } catch {
        // Still has processes (zombies not yet reaped) or already gone.
      }
    },
  };
}

/** Both at once: the cgroup catches what clears its environment; the scan covers runs adopted from before. */
function union(a: ProcTracker, b: ProcTracker): ProcTracker {
  const pids = (runId: string): number[] => [...new Set([...a.pids(runId), ...b.pids(runId)])];
  return {
    kind: `${a.kind} + ${b.kind}`,
    prepare: (runId) => {
      const x = a.prepare(runId);
      const y = b.prepare(runId);
      return { procsFile: x.procsFile ?? y.procsFile, env: { ...x.env, ...y.env } };
    },
    pids,
    signal: (runId, sig) => signalPids(pids(runId), sig),
    release: (runId) => {
      a.release(runId);
      b.release(runId);
    },
  };
}

/**
 * The best tracker this machine allows. `scope` names the agent (a hash of its data directory):
 * each agent has its own cgroup subtree and marker, so two agents on one host, whatever their
 * node names and run ids, never see each other's runs.
 */
export function defaultTracker(scope: string): ProcTracker {
  const safe = scope.replace(/[^A-Za-z0-9_.-]/g, '_');
  const leaf = join('tide', safe);
  const environ = environTracker(safe);
  if (process.platform !== 'linux') return environ;
  const v2root = readLines('/proc/self/mountinfo').some((l) => / \/sys\/fs\/cgroup .* - cgroup2 /.test(l));
  const candidates: [string, string][] = [
    ...(v2root ? ([[join('/sys/fs/cgroup', leaf), 'cgroup v2']] as [string, string][]) : []),
    [join('/sys/fs/cgroup/pids', leaf), 'cgroup v1 pids'],
    [join('/sys/fs/cgroup/unified', leaf), 'cgroup v2'],
  ];
  for (const [base, kind] of candidates) {
    const t = cgroupTracker(base, kind);
    if (t) return union(t, environ);
  }
  return environ;
}
