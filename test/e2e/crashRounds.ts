/**
 * The kill -9 experiment, shared by the e2e test (a few rounds) and the soak script (many):
 * jobs are submitted with client keys while the server is SIGKILLed at a random moment; it is
 * restarted on the same data, the client retries what it could not confirm, and at the end
 * every key must name exactly one job, every job must succeed with its first attempt, and the
 * task processes' own ledger must show no GPU used by two tasks at once.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, freePort, sleep, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';

export interface CrashReport {
  rounds: number;
  jobs: number;
  acceptedBeforeKill: number;
  retried: number;
  tasksInLedger: number;
  /** The longest time the server was down (kill to ready): past half the node lease, agents fence their tasks. */
  longestOutageMs: number;
  problems: string[];
}

/** A small seeded generator (the test's own; reproducible rounds). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export async function crashRounds(opts: { rounds: number; jobsPerRound: number; seed: number; gpus?: string; databaseUrl?: string; log?: (s: string) => void }): Promise<CrashReport> {
  const log = opts.log ?? (() => {});
  const rnd = lcg(opts.seed);
  const dir = tempDir('crash');
  const ledger = join(dir, 'ledger.txt');
  writeFileSync(ledger, '');
  const config = writeConfig(dir);
  const port = await freePort();
  const serverDir = join(dir, 'server');
  // Long enough that a restart on a loaded CI machine stays under half of it (the agents' fence).
  const nodeLeaseMs = 30_000;
  let longestOutageMs = 0;
  let server: ServerHandle = await startServerProcess({ dataDir: serverDir, port, config, nodeLeaseMs, ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) });
  const agent: Proc = startAgentProcess({ servers: [server.url], name: 'crash-node', gpus: opts.gpus ?? '8xH100', dataDir: join(dir, 'agent'), checkpointRoot: join(dir, 'ckpt') });
  const api = new Api(server.url);
  const problems: string[] = [];
  let accepted = 0;
  let retried = 0;
  const keys: string[] = [];
  const spec = (i: number) => ({
    name: `crash-${i}`,
    tasks: [{ gpus: 1 + (i % 2), cpu: 1, memory: '1Gi', command: `echo "$TIDE_NODE $CUDA_VISIBLE_DEVICES $TIDE_RUN_ID start" >> ${ledger}; sleep 0.${2 + (i % 4)}; echo "$TIDE_NODE $CUDA_VISIBLE_DEVICES $TIDE_RUN_ID end" >> ${ledger}` }],
  });
  try {
    await waitFor('agent registered', async () => ((await api.req('GET', '/v1/nodes')).json.nodes?.length === 1 ? true : undefined));
    for (let round = 0; round < opts.rounds; round++) {
      const unconfirmed: string[] = [];
      const roundKeys = Array.from({ length: opts.jobsPerRound }, (_, i) => `r${round}-j${i}`);
      keys.push(...roundKeys);
      const killAfter = 100 + Math.floor(rnd() * 900);
      let next = 0;
      const submitter = async (): Promise<void> => {
        while (next < roundKeys.length) {
          const i = next++;
          const key = roundKeys[i] as string;
          try {
            await api.submit(spec(keys.length - roundKeys.length + i), key);
            accepted++;
          } catch {
            unconfirmed.push(key);
          }
        }
      };
      const submitting = Promise.all(Array.from({ length: 6 }, submitter));
      await sleep(killAfter);
      await server.proc.kill9();
      const killedAt = Date.now();
      await submitting;
      log(`round ${round}: killed after ${killAfter} ms, ${unconfirmed.length} submissions unconfirmed`);
      server = await startServerProcess({ dataDir: serverDir, port, config, nodeLeaseMs, ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) });
      longestOutageMs = Math.max(longestOutageMs, Date.now() - killedAt);
      for (const key of unconfirmed) {
        const i = keys.indexOf(key);
        await api.submit(spec(i), key);
        retried++;
      }
    }
    // Drain: every job finishes.
    await waitFor(
      'all jobs finished',
      async () => {
        const jobs = await api.allJobs();
        return jobs.length >= keys.length && jobs.every((j) => ['succeeded', 'failed', 'cancelled', 'timeout'].includes(j.state)) ? true : undefined;
      },
      120_000 + keys.length * 300,
      250,
    );
    const jobs = await api.allJobs();
    const byKey = new Map<string, number>();
    for (const j of jobs) byKey.set(j.clientKey, (byKey.get(j.clientKey) ?? 0) + 1);
    for (const k of keys) if (byKey.get(k) !== 1) problems.push(`key ${k}: ${byKey.get(k) ?? 0} jobs`);
    if (jobs.length !== keys.length) problems.push(`${jobs.length} jobs for ${keys.length} keys`);
    for (const j of jobs) {
      if (j.state !== 'succeeded') problems.push(`job ${j.id} ${j.state}: ${j.reason}`);
      if (j.attempt !== 0) {
        const events: { type: string; message: string }[] = (await api.req('GET', `/v1/jobs/${j.id}`)).json.events ?? [];
        problems.push(`job ${j.id} was requeued (attempt ${j.attempt}; the server was down for up to ${longestOutageMs} ms, the node lease is ${nodeLeaseMs} ms): ${events.map((e) => `${e.type} ${e.message}`).join('; ')}`);
      }
    }
    // The processes' own ledger: no two runs on one GPU at the same time, each run once.
    const lines = readFileSync(ledger, 'utf8').trim().split('\n').filter(Boolean);
    const holder = new Map<string, string>();
    const started = new Set<string>();
    for (const line of lines) {
      const [node, gpus, runId, what] = line.split(' ');
      for (const g of (gpus ?? '').split(',')) {
        const slot = `${node}/${g}`;
        if (what === 'start') {
          const other = holder.get(slot);
          if (other) problems.push(`GPU ${slot} given to ${runId} while ${other} held it`);
          holder.set(slot, runId ?? '');
        } else if (holder.get(slot) === runId) holder.delete(slot);
      }
      if (what === 'start') {
        if (started.has(runId ?? '')) problems.push(`run ${runId} started twice`);
        started.add(runId ?? '');
      }
    }
    if (started.size !== keys.length) problems.push(`${started.size} runs in the ledger for ${keys.length} jobs`);
    return { rounds: opts.rounds, jobs: keys.length, acceptedBeforeKill: accepted, retried, tasksInLedger: started.size, longestOutageMs, problems };
  } finally {
    await agent.stop();
    await server.proc.stop();
  }
}
