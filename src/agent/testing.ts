/** Helpers for tests of the agent: what /proc says about a task's processes. */
import { readdirSync, readFileSync } from 'node:fs';

/** Whether some process of the group still lives (a zombie has exited: init reaps it when it will). */
export function groupAlive(pgid: number): boolean {
  return readdirSync('/proc').some((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return Number(fields[2]) === pgid && fields[0] !== 'Z';
    } catch {
      return false;
    }
  });
}
