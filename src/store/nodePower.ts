/**
 * The energy stages' facts in the store (migration 011): node power states, driven by
 * server/power/nodePower.ts, and a job's power cap. The node transitions are Slurm's power
 * saving's, each a guarded UPDATE, so that a node is never suspended while a task is active on
 * it and a state another writer changed first is left alone.
 */
import type { NodePowerState } from './store.ts';
import { ACTIVE_IN, Q } from './queries.ts';
import type { SqlDb } from './sqlDb.ts';

const TRANSITIONS: Readonly<Record<NodePowerState, string>> = {
  // Nothing active on it: a task bound in the same breath keeps the node up.
  suspended: `UPDATE nodes SET state = 'suspended', power_at = $2 WHERE id = $1 AND state = 'ready'
    AND NOT EXISTS (SELECT 1 FROM tasks WHERE node_id = $1 AND state IN ${ACTIVE_IN})`,
  resuming: "UPDATE nodes SET state = 'resuming', power_at = $2 WHERE id = $1 AND state = 'suspended'",
  ready: "UPDATE nodes SET state = 'ready', power_at = NULL WHERE id = $1 AND state IN ('suspended', 'resuming')",
  // A node that never came back is down (Slurm marks it DOWN); its next heartbeat makes it ready.
  lost: "UPDATE nodes SET state = 'lost', power_at = NULL WHERE id = $1 AND state = 'resuming'",
};

export async function setNodePower(db: SqlDb, id: string, to: NodePowerState, now: number, message: string): Promise<boolean> {
  const sql = TRANSITIONS[to];
  const changed = (await db.run(sql, sql.includes('$2') ? [id, now] : [id])) > 0;
  if (changed) await db.run(Q.insertEvent, [now, `node:${to}`, null, id, null, message]);
  return changed;
}

/** The nodes powered down or waking (no task may be bound there): one read per applied plan, usually empty. */
export async function asleepNodes(db: SqlDb): Promise<Set<string>> {
  return new Set((await db.all<{ id: string }>("SELECT id FROM nodes WHERE state IN ('suspended', 'resuming')")).map((r) => r.id));
}
