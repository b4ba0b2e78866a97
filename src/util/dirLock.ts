/**
 * An exclusive lock on a data directory, so that a second `tide up`, `tide server` (SQLite) or
 * `tide agent` on the same directory refuses to start instead of overwriting the first one's
 * files and re-registering its node.
 *
 * The lock is a file, `DIR/LOCK_NAME`, created with O_EXCL and holding the owner's pid, command
 * and start time. A lock whose process is gone (kill -9, a crash, a reboot) is stale and is taken
 * over; a lock whose pid now belongs to a process that is not a Tide one (pid reuse) is stale too.
 * It is released when the process exits, however it exits short of SIGKILL.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from './errors.ts';

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** What holds it, for the message: "tide up (http://127.0.0.1:8470)". */
  readonly what: string;
  readonly since: string;
}

export interface DirLock {
  readonly file: string;
  /** Adds to what the lock file says about its holder (e.g. the URL once the server listens). */
  describe(what: string): void;
  release(): void;
}

/** Exit code of a lock refusal: the "conflict" code of the cluster commands. */
export const LOCKED_EXIT_CODE = 5;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A live pid that is no Node process was reused after the holder died.
  try {
    return /node|tide/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true;
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' ? { pid: o.pid, host: String(o.host ?? ''), what: String(o.what ?? 'tide'), since: String(o.since ?? '') } : null;
  } catch {
    return null;
  }
}

function writeOwner(file: string, owner: LockOwner): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  writeSync(fd, JSON.stringify(owner));
  closeSync(fd);
  renameSync(tmp, file);
}

/**
 * Takes the lock on `dir` for this process, or throws a UserError naming the process that holds
 * it. `name` distinguishes locks that may coexist in one directory (the server's and the agent's).
 */
export function lockDataDir(dir: string, name: string, what: string): DirLock {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  const owner: LockOwner = { pid: process.pid, host: hostname(), what, since: new Date().toISOString() };
  for (let tries = 0; ; tries++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, JSON.stringify(owner));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 3) throw e;
    }
    const holder = readOwner(file);
    if (holder && holder.pid !== process.pid && holder.host === owner.host && alive(holder.pid)) {
      throw new UserError(`${dir} is in use by ${holder.what}, pid ${holder.pid}, since ${holder.since}: stop it first, or use another --data-dir (lock file ${file})`, LOCKED_EXIT_CODE);
    }
    if (holder && holder.host !== owner.host && holder.host !== '') {
      throw new UserError(`${dir} is locked by ${holder.what} on host ${holder.host} (pid ${holder.pid}); if that host is down, delete ${file}`, LOCKED_EXIT_CODE);
    }
    // Stale (its process is gone) or unreadable: remove it and try again.
    try {
      unlinkSync(file);
    } catch {
      // Another starter removed it first; the O_EXCL create decides between us.
    }
  }
  let current = owner;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (readOwner(file)?.pid === process.pid) {
      try {
        unlinkSync(file);
      } catch {
        // Already gone.
      }
    }
  };
  process.on('exit', release);
  return {
    file,
    describe(more: string): void {
      current = { ...current, what: more };
      writeOwner(file, current);
    },
    release,
  };
}
