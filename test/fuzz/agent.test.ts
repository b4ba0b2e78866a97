/** Fuzzing the agent routes with a hostile agent: bad registrations and heartbeats (seeded). */
import { test } from 'node:test';
import { runTarget } from './targets.ts';

test("a hostile agent gets clean 4xx; no other node's task or job changes; /v1/nodes, /metrics and the loop keep working", async () => {
  await runTarget('agent', 150, 14);
});
