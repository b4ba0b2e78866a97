/**
 * Where a benchmark phase's machine time went, from Linux's /proc (null elsewhere): the whole
 * machine's busy and idle CPU time, and of the busy time the database's (every process named
 * `postgres`), the simulated agents' (one process) and this process's children that ended
 * (the submitters and readers). On a machine whose cores the server shares with its database,
 * agents and load, this says whether a slow phase was the server's work or a full machine; the
 * kernel's pressure stall totals say for how long some task waited for a core, or for a disk.
 *
 * A database process that ended within the phase (an autovacuum worker) takes its time with it:
 * the database's figure counts the processes alive at the phase's end.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS = 100;

export interface CpuSample {
  /** CPU seconds of all cores: busy (user, nice, system, interrupts, steal), idle, and idle while a disk read or write was waited for (I/O wait). */
  readonly busy: number;
  readonly idle: number;
  readonly ioWait: number;
  /** CPU seconds per database process id, so far. */
  readonly database: ReadonlyMap<number, number>;
  readonly agents: number;
  /** CPU seconds of this process's ended and reaped children. */
  readonly children: number;
  /** Pressure stall totals (seconds, /proc/pressure; 0 where the kernel has none): some task waited for a core, for a disk. */
  readonly cpuStall: number;
  readonly ioStall: number;
}

export interface MachineSplit {
  readonly cores: number;
  readonly busySeconds: number;
  /** Idle, I/O wait included. */
  readonly idleSeconds: number;
  readonly ioWaitSeconds: number;
  readonly databaseSeconds: number;
  readonly agentsSeconds: number;
  readonly childrenSeconds: number;
  /** Seconds in which some runnable task waited for a core, and some task for a disk (Linux's pressure stall information). */
  readonly cpuStallSeconds: number;
  readonly ioStallSeconds: number;
}

/** The fields after a /proc stat line's command name (which may hold spaces or parentheses). */
function statFields(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime (fields 14 and 15 of the line; 12th and 13th after the name) in seconds, or with `children` cutime + cstime. */
function processCpu(pid: number | 'self', children = false): number {
  const f = statFields(`/proc/${pid}/stat`);
  if (!f) return 0;
  return children ? (Number(f[13]) + Number(f[14])) / TICKS : (Number(f[11]) + Number(f[12])) / TICKS;
}

function databaseProcesses(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${name}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === 'postgres') out.set(Number(name), processCpu(Number(name)));
  }
  return out;
}

/** The `some` line's total of /proc/pressure/<what>, in seconds (0 where the kernel keeps none). */
function stallSeconds(what: 'cpu' | 'io'): number {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${what}`, 'utf8'));
    return m ? Number(m[1]) / 1e6 : 0;
  } catch {
    return 0;
  }
}

/** The machine's CPU times now, or null where /proc has none. */
export function sampleCpu(agentsPid: number | undefined): CpuSample | null {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  } catch {
    return null;
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return {
    busy: ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / TICKS,
    idle: ((idle ?? 0) + (iowait ?? 0)) / TICKS,
    ioWait: (iowait ?? 0) / TICKS,
    database: databaseProcesses(),
    agents: agentsPid === undefined ? 0 : processCpu(agentsPid),
    children: processCpu('self', true),
    cpuStall: stallSeconds('cpu'),
    ioStall: stallSeconds('io'),
  };
}

/** What happened between two samples. */
export function machineSplit(from: CpuSample, to: CpuSample): MachineSplit {
  let database = 0;
  for (const [pid, seconds] of to.database) database += seconds - (from.database.get(pid) ?? 0);
  return {
    cores: availableParallelism(),
    busySeconds: to.busy - from.busy,
    idleSeconds: to.idle - from.idle,
    ioWaitSeconds: to.ioWait - from.ioWait,
    databaseSeconds: database,
    agentsSeconds: to.agents - from.agents,
    childrenSeconds: to.children - from.children,
    cpuStallSeconds: to.cpuStall - from.cpuStall,
    ioStallSeconds: to.ioStall - from.ioStall,
  };
}
