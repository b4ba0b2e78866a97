/**
 * Slurm's power saving on the live server: carries out the consolidate stage's power changes
 * (a plan's `nodePower`) and follows each node until it is back (docs/energy.md, "Live").
 *
 * - Suspend: the store marks the node `suspended` (only while no task is active on it, so a
 *   running task is never powered off and no accepted job is touched), then the suspend program
 *   runs with the node's name (Slurm's SuspendProgram), in the background. A program that fails
 *   (non-zero exit, or killed at its timeout) puts the node back in service: its agent still
 *   heartbeats if the node is up, and a node that is off after all is lost after the node lease
 *   like any silent node. Without a program the suspend is a dry run: the node is only marked.
 * - Resume: the node becomes `resuming` and the resume program runs; jobs that need it wait with
 *   `waiting-for-node-power-up`. It is `ready` again at the first heartbeat after the resume (with
 *   no resume program, a dry run: once `resumeSeconds` have passed as well). A resume program that
 *   fails, or a node not back within `resumeTimeoutSeconds`, marks the node down (`lost`, as
 *   Slurm marks it DOWN); a later heartbeat makes it ready as for any lost node.
 * - With consolidate off, a node left suspended or resuming (by an earlier configuration) is
 *   handed back to service.
 *
 * Programs run detached from the loop: a slow or hanging one holds up nothing but its node.
 */
import { execFile } from 'node:child_process';
import client from 'prom-client';
import type { AppliedPlan, NodePowerState, Store, StoreSnapshot } from '../../store/store.ts';
import type { NodePowerSettings } from '../scheduling/energyStages.ts';

export interface NodePowerOptions {
  readonly log: (line: string) => void;
  /** Told when a node's power state changed outside a cycle (a program ended): plan again soon. */
  readonly onChange?: () => void;
  /** Told each action and how it ended (metrics). */
  readonly onAction?: (action: 'suspend' | 'resume', result: 'ok' | 'dry-run' | 'failed' | 'timeout') => void;
  readonly clock: () => number;
}

type Change = NonNullable<AppliedPlan['nodePower']>[number];

export class NodePower {
  /** Programs running, per node (one at a time per node). */
  private readonly busy = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Pick<Store, 'setNodePower'>,
    /** null: consolidate is off. */
    private readonly settings: NodePowerSettings | null,
    private readonly o: NodePowerOptions,
  ) {}

  /** Before a plan: resuming nodes that are back become ready, those past the timeout down; with consolidate off, asleep nodes are handed back. */
  async check(snap: Pick<StoreSnapshot, 'nodes'>, now: number): Promise<void> {
    let changed = false;
    for (const n of snap.nodes) {
      if (n.state !== 'suspended' && n.state !== 'resuming') continue;
      const s = this.settings;
      if (!s) {
        changed = (await this.set(n.id, 'ready', now, 'consolidation is off: back in service')) || changed;
        continue;
      }
      if (n.state !== 'resuming') continue;
      const since = n.powerAt ?? 0;
      const waited = (now - since) / 1000;
      const heard = n.lastHeartbeat > since;
      const dryRun = s.resumeProgram === null;
      if (heard && (!dryRun || waited >= s.resumeSeconds)) changed = (await this.set(n.id, 'ready', now, `back after ${waited.toFixed(1)} s${dryRun ? ' (dry run)' : ''}`)) || changed;
      else if (waited >= s.resumeTimeoutSeconds) changed = (await this.set(n.id, 'lost', now, `did not come back within ${s.resumeTimeoutSeconds} s of its resume (ResumeTimeout): marked down`)) || changed;
    }
    // The snapshot being planned predates the change: plan again soon.
    if (changed) this.o.onChange?.();
  }

  /** After an applied plan: suspend and resume its nodes. */
  async apply(changes: readonly Change[], now: number): Promise<void> {
    const s = this.settings;
    if (!s) return;
    for (const c of changes) {
      if (this.busy.has(c.node)) continue;
      const off = c.state === 'off';
      const program = off ? s.suspendProgram : s.resumeProgram;
      const what = program ? program.join(' ') : 'dry run';
      if (!(await this.set(c.node, off ? 'suspended' : 'resuming', now, off ? `empty: suspended (${what})` : `work needs it: resuming (${what})`))) continue;
      if (!program) {
        this.o.onAction?.(off ? 'suspend' : 'resume', 'dry-run');
        continue;
      }
      this.run(c.node, off, program, s.programTimeoutSeconds);
    }
  }

  /** Resolves when no program is running (tests; shutdown). */
  async settled(): Promise<void> {
    while (this.busy.size) await Promise.all([...this.busy.values()]);
  }

  private run(node: string, off: boolean, program: readonly string[], timeoutSeconds: number): void {
    const action = off ? 'suspend' : 'resume';
    const done = new Promise<{ ok: boolean; why: string; timedOut: boolean }>((resolve) => {
      execFile(program[0] as string, [...program.slice(1), node], { timeout: timeoutSeconds * 1000, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, _out, stderr) => {
        if (!err) return resolve({ ok: true, why: '', timedOut: false });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const timedOut = e.killed === true;
        const why = timedOut ? `still running after ${timeoutSeconds} s: killed` : typeof e.code === 'number' ? `exit ${e.code}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : ''}` : e.message;
        resolve({ ok: false, why, timedOut });
      });
    });
    const task = done.then(async (r) => {
      this.o.onAction?.(action, r.ok ? 'ok' : r.timedOut ? 'timeout' : 'failed');
      if (r.ok) return;
      this.o.log(`node ${node}: ${action} program failed (${r.why})`);
      const now = this.o.clock();
      // A failed suspend: the node is presumed up (a silent one is lost after the node lease). A failed resume: down.
      const changed = off ? await this.set(node, 'ready', now, `suspend program failed (${r.why}): back in service`) : await this.set(node, 'lost', now, `resume program failed (${r.why}): marked down`);
      if (changed) this.o.onChange?.();
    });
    const tracked = task
      .catch((e: unknown) => this.o.log(`node ${node}: ${action}: ${(e as Error).message}`))
      .finally(() => this.busy.delete(node));
    this.busy.set(node, tracked);
  }

  private async set(node: string, to: NodePowerState, now: number, message: string): Promise<boolean> {
    const changed = await this.store.setNodePower(node, to, now, message);
    if (changed) this.o.log(`node ${node}: ${to}: ${message}`);
    return changed;
  }
}


/** `tide_node_power_actions_total{action, result}`: suspends and resumes and how they ended (ok, dry-run, failed, timeout). */
export function nodePowerMetrics(registry: client.Registry): NonNullable<NodePowerOptions['onAction']> {
  const c = new client.Counter({ name: 'tide_node_power_actions_total', help: 'Node suspends and resumes (power saving) by how they ended', labelNames: ['action', 'result'], registers: [registry] });
  return (action, result) => c.inc({ action, result });
}
