/**
 * `consolidate`: power down nodes that stay empty, and wake them when work needs them — Slurm's
 * power saving (SuspendTime: how long a node stays idle before it is suspended; ResumeTimeout:
 * how long a resumed node takes before it can run work).
 *
 * The scheduler still sees every node (so its choice of GPU model and node is its own); after it
 * plans, this stage
 * 1. moves a task bound to a suspended or waking node onto an empty powered node of the same
 *    shape (same GPUs, at least the CPU and memory) when there is one, so no node is woken while
 *    an equal one idles;
 * 2. otherwise withholds the bind (whole: a gang stays all or nothing) and gives the job the
 *    reason `waiting-for-node-power-up` with the time its nodes are ready: it waits for an equal
 *    node already waking that no other job waits for, or resumes the one it was bound to; the
 *    scheduler binds it again then (its wake-up is asked for). A job the scheduler was moving
 *    keeps running where it is instead, when nothing else in the plan goes to its nodes;
 * 3. suspends each schedulable node that has been empty for `suspendSeconds`, keeping
 *    `spareNodes` empty nodes powered.
 * Power changes ride on the plan (`nodePower`): the simulator's accounting reads them, the live
 * server runs the cluster's suspend and resume programs (server/power/nodePower.ts). Where the
 * snapshot's nodes say their power (`NodeState.power`, live), that is the truth: a suspend the
 * cluster refused or a resume it has not finished is seen as it is, not as this stage asked.
 *
 * Work is packed rather than spread by the placement policy (fragmentation-aware placement keeps
 * whole nodes free); this stage does not move running jobs to empty more nodes.
 */
import type { NodeSpec } from '../../model.ts';
import type { NodeState, PendingReason, SchedulerSnapshot } from '../scheduler.ts';
import { nextWake, type EnergyPlan, type NodePowerChange, type PowerCappedBind, type SchedulingStage } from './stage.ts';

export interface ConsolidateOptions {
  /** Seconds a powered node stays empty before it is suspended (Slurm's SuspendTime; default 600). */
  readonly suspendSeconds?: number;
  /** Seconds from resume until the node runs work (Slurm's ResumeTimeout; default 300). */
  readonly resumeSeconds?: number;
  /** Empty powered nodes kept on whatever happens (default 0). */
  readonly spareNodes?: number;
}

export const CONSOLIDATE_DEFAULTS = { suspendSeconds: 600, resumeSeconds: 300, spareNodes: 0 } as const;

const sameShape = (a: NodeSpec, b: NodeSpec): boolean => a.gpus.length === b.gpus.length && a.gpus.every((m, i) => b.gpus[i] === m) && b.cpuMilli >= a.cpuMilli && b.memoryMib >= a.memoryMib;

export function consolidateStage(opts: ConsolidateOptions = {}): SchedulingStage {
  const suspend = opts.suspendSeconds ?? CONSOLIDATE_DEFAULTS.suspendSeconds;
  const resume = opts.resumeSeconds ?? CONSOLIDATE_DEFAULTS.resumeSeconds;
  const spare = opts.spareNodes ?? CONSOLIDATE_DEFAULTS.spareNodes;
  /** Per node: powered, and from when it runs work (resume); when it became empty (NaN: it is not). */
  const powered: boolean[] = [];
  const readyAt: number[] = [];
  const idleSince: number[] = [];
  let busy = new Int32Array(0);

  const add = (node: number, k: number): void => void (busy[node] = (busy[node] as number) + k);

  function grow(n: number): void {
    while (powered.length < n) {
      powered.push(true);
      readyAt.push(-Infinity);
      idleSince.push(NaN);
    }
    if (busy.length < n) busy = new Int32Array(n);
  }

  return {
    name: 'consolidate',
    after(snapshot: SchedulerSnapshot, plan: EnergyPlan): EnergyPlan {
      const now = snapshot.now;
      const nodes = snapshot.nodes;
      grow(nodes.length);
      for (let i = 0; i < nodes.length; i++) {
        const n = nodes[i] as NodeState;
        if (n.power === undefined) continue;
        const was = powered[i] as boolean;
        powered[i] = n.power !== 'off';
        // A wake-up that is due but not seen yet is expected any moment (a second from now).
        readyAt[i] = n.power === 'waking' ? Math.max(n.readyAt ?? now + resume, now + 1) : n.power === 'on' ? Math.min(readyAt[i] as number, now) : Infinity;
        if (!powered[i] || (!was && n.power === 'on')) idleSince[i] = NaN;
      }
      const usable = (i: number): boolean => (powered[i] as boolean) && (readyAt[i] as number) <= now;
      // Tasks per node once the plan is applied.
      busy.fill(0);
      const stopped = new Set<string>(plan.preemptions.map((p) => p.job));
      for (const r of snapshot.running) if (!stopped.has(r.spec.id)) for (const b of r.bindings) add(b.placement.node, 1);
      for (const b of plan.binds) for (const t of b.bindings) add(t.placement.node, 1);

      const changes: NodePowerChange[] = [];
      const reasons: PendingReason[] = [];
      /** Waking nodes a withheld bind of this cycle waits for (no other bind waits for the same one). */
      const claimed = new Set<number>();
      const waking = (i: number): boolean => (powered[i] as boolean) && (readyAt[i] as number) > now;
      const spec = (i: number): NodeSpec => (nodes[i] as { spec: NodeSpec }).spec;
      /** The first schedulable node, other than `from`, of the same shape that passes `ok`. */
      const sameShaped = (from: number, ok: (i: number) => boolean): number | undefined => {
        for (let i = 0; i < nodes.length; i++) if (i !== from && nodes[i]?.schedulable && ok(i) && sameShape(spec(from), spec(i))) return i;
        return undefined;
      };
      let binds: (PowerCappedBind | undefined)[] | undefined;
      const withheld: { k: number; waits: number[] }[] = [];
      plan.binds.forEach((b, k) => {
        const asleep = [...new Set(b.bindings.map((t) => t.placement.node).filter((n) => !usable(n)))];
        if (asleep.length === 0) return;
        binds ??= plan.binds.slice();
        // 1. An empty powered node of the same shape for each sleeping one: move the tasks there.
        const target = new Map<number, number>();
        for (const from of asleep) {
          const to = sameShaped(from, (i) => busy[i] === 0 && usable(i) && ![...target.values()].includes(i));
          if (to === undefined) break;
          target.set(from, to);
        }
        if (target.size === asleep.length) {
          for (const t of b.bindings) {
            const to = target.get(t.placement.node);
            if (to === undefined) continue;
            add(t.placement.node, -1);
            add(to, 1);
          }
          binds[k] = { ...b, bindings: b.bindings.map((t) => {
            const to = target.get(t.placement.node);
            return to === undefined ? t : { ...t, nodeId: spec(to).id, placement: { ...t.placement, node: to } };
          }) };
          return;
        }
        // 2. Otherwise wait: for the node itself if it is waking, else for an equal node already
        // waking that nobody waits for, else wake it.
        const waits: number[] = [];
        for (const from of asleep) {
          let n = waking(from) && !claimed.has(from) ? from : sameShaped(from, (i) => waking(i) && busy[i] === 0 && !claimed.has(i));
          if (n === undefined) {
            n = from;
            if (!powered[n]) {
              powered[n] = true;
              readyAt[n] = now + resume;
              idleSince[n] = NaN;
              changes.push({ node: n, state: 'on', readyAt: now + resume });
            }
          }
          claimed.add(n);
          waits.push(n);
        }
        for (const t of b.bindings) add(t.placement.node, -1);
        binds[k] = undefined;
        withheld.push({ k, waits });
      });

      // A move (preempted and bound again) whose new place is not ready keeps running where it is,
      // when no bind of the plan goes to its nodes (and no quotas could be touched by keeping it).
      const running = new Map(snapshot.running.map((r) => [r.spec.id as string, r]));
      const kept = new Set<string>();
      if (withheld.length > 0 && snapshot.queues.length === 0) {
        const target = new Set<number>();
        for (const b of binds ?? []) if (b) for (const t of b.bindings) target.add(t.placement.node);
        for (const w of withheld) {
          const job = plan.binds[w.k]?.job as string;
          const run = stopped.has(job) ? running.get(job) : undefined;
          if (!run || run.bindings.some((t) => target.has(t.placement.node))) continue;
          kept.add(job);
          for (const t of run.bindings) add(t.placement.node, 1);
        }
      }
      for (const w of withheld) {
        const job = plan.binds[w.k]?.job;
        if (job === undefined || kept.has(job)) continue;
        const ready = Math.max(now, ...w.waits.map((n) => readyAt[n] as number));
        const ids = w.waits.map((n) => spec(n).id).join(', ');
        reasons.push({ job, code: 'waiting-for-node-power-up', message: `node${w.waits.length > 1 ? 's' : ''} ${ids} ${w.waits.length > 1 ? 'are' : 'is'} powering up (ready in ${Math.ceil(ready - now)} s)`, estimatedStart: ready });
      }

      // 3. Suspend nodes empty for long enough, the longest-empty first, keeping `spare` powered.
      const candidates: number[] = [];
      let emptyPowered = 0;
      for (let i = 0; i < nodes.length; i++) {
        if (!(nodes[i] as { schedulable: boolean }).schedulable || !powered[i]) continue;
        if (busy[i] !== 0) {
          idleSince[i] = NaN;
          continue;
        }
        if (!usable(i)) continue;
        emptyPowered++;
        if (Number.isNaN(idleSince[i])) idleSince[i] = Math.max(now, readyAt[i] as number);
        if (now - (idleSince[i] as number) >= suspend) candidates.push(i);
      }
      candidates.sort((a, b) => (idleSince[a] as number) - (idleSince[b] as number) || a - b);
      for (const i of candidates) {
        if (emptyPowered <= spare) break;
        powered[i] = false;
        idleSince[i] = NaN;
        emptyPowered--;
        changes.push({ node: i, state: 'off', readyAt: Infinity });
      }

      // Next: a node's wake-up completes, or an empty node's suspend time comes.
      let wake: number | undefined;
      for (let i = 0; i < nodes.length; i++) {
        if (!powered[i]) continue;
        wake = nextWake(now, wake, readyAt[i], Number.isNaN(idleSince[i]) ? undefined : (idleSince[i] as number) + suspend);
      }
      wake = nextWake(now, wake, plan.wakeAt);
      if (!binds && changes.length === 0 && wake === plan.wakeAt) return plan;
      const pending = reasons.length === 0 ? plan.pending : [...plan.pending, ...reasons].sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0));
      return {
        ...plan,
        binds: binds ? binds.filter((b): b is PowerCappedBind => b !== undefined) : plan.binds,
        preemptions: kept.size === 0 ? plan.preemptions : plan.preemptions.filter((p) => !kept.has(p.job)),
        pending,
        ...(changes.length > 0 ? { nodePower: [...(plan.nodePower ?? []), ...changes] } : {}),
        ...(wake === undefined ? {} : { wakeAt: wake }),
      };
    },
  };
}
