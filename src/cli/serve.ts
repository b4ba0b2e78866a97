/**
 * The long-running commands: `tide server` (API + scheduling loop), `tide agent` (one GPU node)
 * and `tide up` (both in one process with a local data directory: the quickstart).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { RunningServer } from '../server/server.ts';
import { jobSchedulerNames } from '../core/scheduling/policies/index.ts';
import { UserError } from '../util/errors.ts';
import { lockDataDir } from '../util/dirLock.ts';
import { exposureWarning, isWildcard, parseListen, parsePort } from '../util/listen.ts';
import { parsePositiveInt } from './args.ts';
import { CLIENT_FILE } from './client.ts';

/** Lock files in a data directory: one server (or `tide up`) and one agent at a time. */
const SERVER_LOCK = 'server.lock';
const AGENT_LOCK = 'agent.lock';
/** The API's port unless --listen or --port says otherwise. */
const DEFAULT_PORT = 8470;

const log = (line: string): void => {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
};

/** The API's address from --listen HOST[:PORT], --host and --port (each given once); 127.0.0.1:8470 by default. */
function serverAddress(f: { listen?: string; host?: string; port?: string }): { host: string; port: number } {
  const l = f.listen === undefined ? {} : parseListen('--listen', f.listen);
  if (l.host !== undefined && f.host !== undefined) throw new UserError(`--listen ${f.listen} and --host ${f.host}: give the address once`);
  if (l.port !== undefined && f.port !== undefined) throw new UserError(`--listen ${f.listen} and --port ${f.port}: give the port once`);
  const host = l.host ?? (f.host === undefined ? '127.0.0.1' : (parseListen('--host', f.host).host ?? '127.0.0.1'));
  if (f.host !== undefined && parseListen('--host', f.host).port !== undefined) throw new UserError(`--host: an address without a port (use --port or --listen HOST:PORT), got '${f.host}'`);
  return { host, port: l.port ?? (f.port === undefined ? DEFAULT_PORT : parsePort('--port', f.port)) };
}

/** The agent's --listen host as an IP address (localhost is 127.0.0.1); its port, if given. */
function agentListen(value: string): { host: string; port?: number } {
  const l = parseListen('--listen', value);
  const host = l.host === undefined || l.host === 'localhost' ? '127.0.0.1' : l.host;
  if (isIP(host) === 0) throw new UserError(`--listen: the agent needs an IP address (it also connects to the server from it), got '${host}'`);
  return { host, ...(l.port !== undefined ? { port: l.port } : {}) };
}

/** `FROM-TO`: ports from 1024 to 65535, FROM ≤ TO, or a UserError naming the flag. */
export function parsePortRange(flag: string, v: string): { first: number; last: number } {
  const m = /^(\d{4,5})-(\d{4,5})$/.exec(v.trim());
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1024 || last > 65_535 || first > last) throw new UserError(`${flag}: must be FROM-TO, ports from 1024 to 65535 with FROM ≤ TO, got '${v}'`);
  return { first, last };
}

/** A number above 0, or a UserError naming the flag. */
function parsePositiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UserError(`${flag}: must be a number above 0, got '${v}'`);
  return n;
}

/** Ends the process cleanly on SIGINT/SIGTERM. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = (): void => {
    if (closing) process.exit(1);
    closing = true;
    void close().finally(() => process.exit(0));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

interface ServerFlags {
  dataDir: string;
  databaseUrl?: string;
  listen?: string;
  host?: string;
  port?: string;
  config?: string;
  adminToken?: string;
  agentToken?: string;
  scheduler: string;
  schedulerOption: string[];
  placement: string;
  schedulerThread?: boolean;
  tickMs: string;
  nodeLeaseMs: string;
  leaseTtlMs: string;
  serverId?: string;
  serviceDecideMs: string;
  servicePorts: string;
  serviceReconcileMs: string;
  serviceTimeScale: string;
}

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data directory (SQLite database, credentials)', '.tide')
    .option('--database-url <url>', 'PostgreSQL URL (postgres://…) instead of SQLite; several servers may share it (HA)')
    .option('--listen <host[:port]>', 'address to serve the API on (default 127.0.0.1:8470: this machine only); 0.0.0.0 serves every interface')
    .option('--host <host>', 'the host part of --listen')
    .option('--port <n>', `the port part of --listen (default ${DEFAULT_PORT})`)
    .option('--config <file>', 'cluster config YAML: tokens, tenants, queues and quotas')
    .option('--admin-token <token>', 'admin token (default: TIDE_ADMIN_TOKEN, the config, or generated)')
    .option('--agent-token <token>', 'agent token (default: TIDE_AGENT_TOKEN, the config, or generated)')
    .option('--scheduler <name>', `job scheduler from the jobs core: ${jobSchedulerNames().join(', ')}`, 'tide')
    .option('--scheduler-option <key=value>', "an option of the scheduler, repeatable (e.g. quantumSeconds=60 for 'tide')", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--placement <name>', 'placement policy for tasks (tide, fgd, bestfit, …)', 'tide')
    .option('--scheduler-thread', 'plan each cycle on a worker thread of its own, so that a long cycle does not hold up API requests and heartbeats (the default)')
    .option('--no-scheduler-thread', 'plan each cycle on the request thread instead')
    .option('--tick-ms <ms>', 'scheduling loop period', '1000')
    .option('--node-lease-ms <ms>', 'a node silent this long is lost and its tasks requeued', '15000')
    .option('--lease-ttl-ms <ms>', 'scheduler leader lease (failover time on PostgreSQL)', '3000')
    .option('--server-id <id>', 'name of this server in the leader lease')
    .option('--service-decide-ms <ms>', "how often each service's autoscaler decides (docs/services.md)", '30000')
    .option('--service-reconcile-ms <ms>', "how often services' replicas are probed, replaced, added and stopped", '1000')
    .option('--service-time-scale <x>', "seconds of the autoscalers' clock per wall-clock second (a compressed replay, e.g. 144)", '1')
    .option('--service-ports <from-to>', "the ports handed to services' replicas ($TIDE_SERVICE_PORT), one per open replica", '20000-29499');
}

interface Credentials {
  adminToken: string;
  agentToken: string;
  tenantToken: string;
}

/** Tokens kept in DATA_DIR/credentials.json (mode 600), made on first start. */
function credentials(dataDir: string): Credentials {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'credentials.json');
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Credentials;
    } catch {
      throw new UserError(`${file}: not valid JSON; delete it to make new tokens`);
    }
  }
  const newToken = (prefix: string): string => `${prefix}_${randomBytes(18).toString('base64url')}`;
  const made = { adminToken: newToken('tide_admin'), agentToken: newToken('tide_agent'), tenantToken: newToken('tide_default') };
  writeFileSync(file, JSON.stringify(made, null, 2), { mode: 0o600 });
  return made;
}

async function startFromFlags(f: ServerFlags, creds: Credentials | null): Promise<RunningServer> {
  // Loaded here, not at the top: the other CLI commands start faster without fastify and the drivers.
  const { loadConfig, EMPTY_CONFIG } = await import('../server/config.ts');
  const { startServer } = await import('../server/server.ts');
  const { parseSchedulerOptions } = await import('../server/scheduling/coreAdapter.ts');
  const config = f.config ? loadConfig(f.config) : EMPTY_CONFIG;
  const dataDir = resolve(f.dataDir);
  const stored = creds ?? (f.adminToken ?? process.env['TIDE_ADMIN_TOKEN'] ?? config.adminToken ? null : credentials(dataDir));
  const adminToken = f.adminToken ?? process.env['TIDE_ADMIN_TOKEN'] ?? config.adminToken ?? stored?.adminToken;
  const agentToken = f.agentToken ?? process.env['TIDE_AGENT_TOKEN'] ?? config.agentToken ?? stored?.agentToken ?? credentials(dataDir).agentToken;
  if (!adminToken) throw new UserError('no admin token');
  const tenants = creds ? [...config.tenants.filter((t) => t.name !== 'default'), { name: 'default', tokens: [creds.tenantToken, ...(config.tenants.find((t) => t.name === 'default')?.tokens ?? [])] }] : config.tenants;
  return startServer({
    dataDir,
    ...(f.databaseUrl ? { databaseUrl: f.databaseUrl } : {}),
    ...serverAddress(f),
    adminToken,
    agentToken,
    config: { ...config, tenants },
    scheduler: f.scheduler,
    schedulerOptions: parseSchedulerOptions(f.schedulerOption),
    placement: f.placement,
    schedulerThread: f.schedulerThread !== false,
    tickMs: parsePositiveInt('--tick-ms', f.tickMs),
    nodeLeaseMs: parsePositiveInt('--node-lease-ms', f.nodeLeaseMs),
    leaseTtlMs: parsePositiveInt('--lease-ttl-ms', f.leaseTtlMs),
    ...(f.serverId ? { serverId: f.serverId } : {}),
    services: {
      decideMs: parsePositiveInt('--service-decide-ms', f.serviceDecideMs),
      reconcileMs: parsePositiveInt('--service-reconcile-ms', f.serviceReconcileMs),
      timeScale: parsePositiveNumber('--service-time-scale', f.serviceTimeScale),
      ports: parsePortRange('--service-ports', f.servicePorts),
    },
    log,
  });
}

export function registerServeCommands(program: Command): void {
  serverOptions(program.command('server'))
    .description('Run the API server and scheduling loop (SQLite in --data-dir, or PostgreSQL with --database-url)')
    .action(async (f: ServerFlags) => {
      // Two servers on one SQLite file would each think they lead; on PostgreSQL that is HA.
      const lock = f.databaseUrl ? null : lockDataDir(resolve(f.dataDir), SERVER_LOCK, 'tide server');
      const warning = exposureWarning('the API', serverAddress(f).host);
      if (warning) log(warning);
      const server = await startFromFlags(f, null);
      lock?.describe(`tide server (${server.url})`);
      const where = f.databaseUrl ? 'PostgreSQL' : `SQLite in ${join(resolve(f.dataDir), 'tide.db')}`;
      log(`tide server ${server.serverId} listening on ${server.url} (${where})`);
      onShutdown(() => server.close());
      await new Promise(() => {});
    });

  program
    .command('agent')
    .description('Run a node agent: register GPUs (nvidia-smi, else simulated), run tasks, heartbeat')
    .requiredOption('--server <urls>', 'server URL(s), comma-separated: the agent fails over between them')
    .option('--token <token>', "the server's agent (bootstrap) token (default: TIDE_AGENT_TOKEN); the node's own token is kept in --data-dir after its first registration")
    .option('--name <name>', 'node name (default: the hostname)')
    .option('--gpus <spec>', 'simulated GPUs when nvidia-smi finds none, e.g. 8xH100 or 4xA100,2xT4', '8xH100')
    .option('--simulate', 'use the simulated GPUs even if nvidia-smi finds real ones')
    .option('--data-dir <dir>', "task state, logs and the node's token (node-token.json)", '.tide/agent')
    .option('--checkpoint-root <dir>', 'where task checkpoint directories live (a shared filesystem across nodes)')
    .option('--cpus <n>', 'CPU cores to offer')
    .option('--memory-gib <n>', 'memory to offer, GiB')
    .option('--heartbeat-ms <ms>', 'heartbeat period', '2000')
    .option('--listen <ip[:port]>', "where the agent serves task logs to the server, and the address it connects from (default: the address it reaches the server from; 0.0.0.0 for every interface)")
    .option('--advertise <ip>', 'the address to register (default: the listen address, or the one it reaches the server from); the server accepts only the address the registration comes from')
    .action(async (f: { server: string; token?: string; name?: string; gpus: string; simulate?: boolean; dataDir: string; checkpointRoot?: string; cpus?: string; memoryGib?: string; heartbeatMs: string; listen?: string; advertise?: string }) => {
      const { Agent } = await import('../agent/agent.ts');
      const token = f.token ?? process.env['TIDE_AGENT_TOKEN'];
      if (!token) throw new UserError('--token (or TIDE_AGENT_TOKEN) is required: the agent token of the server');
      const listen = f.listen === undefined ? null : agentListen(f.listen);
      if (f.advertise !== undefined && isIP(f.advertise) === 0) throw new UserError(`--advertise: must be an IP address (the server compares it with the address the agent connects from), got '${f.advertise}'`);
      const warning = listen && exposureWarning("the agent's log endpoint", listen.host);
      if (warning) log(warning);
      // Two agents on one directory would adopt and kill each other's tasks.
      lockDataDir(resolve(f.dataDir), AGENT_LOCK, `tide agent ${f.name ?? ''}`.trim());
      const agent = new Agent({
        servers: f.server.split(',').map((s) => s.trim().replace(/\/$/, '')),
        token,
        ...(f.name ? { nodeName: f.name } : {}),
        gpus: f.gpus,
        forceSimulated: f.simulate === true,
        dataDir: f.dataDir,
        ...(f.checkpointRoot ? { checkpointRoot: f.checkpointRoot } : {}),
        ...(f.cpus ? { cpuMilli: parsePositiveInt('--cpus', f.cpus) * 1000 } : {}),
        ...(f.memoryGib ? { memoryMib: parsePositiveInt('--memory-gib', f.memoryGib) * 1024 } : {}),
        heartbeatMs: parsePositiveInt('--heartbeat-ms', f.heartbeatMs),
        ...(listen ? { listenHost: listen.host, ...(listen.port !== undefined ? { port: listen.port } : {}) } : {}),
        ...(f.advertise !== undefined ? { advertise: f.advertise } : {}),
        log,
      });
      await agent.start();
      log(`agent ${agent.nodeName}: ${agent.gpuCount} ${agent.simulated ? 'simulated' : 'real'} GPU(s), logs at ${agent.url || 'the address it reaches the server from, once it does'}`);
      onShutdown(() => agent.stop());
      await new Promise(() => {});
    });

  serverOptions(program.command('up'))
    .description('Run a server and one local agent in this process: a one-machine cluster')
    .option('--gpus <spec>', 'simulated GPUs when nvidia-smi finds none', '8xH100')
    .option('--name <name>', 'node name', 'local')
    .action(async (f: ServerFlags & { gpus: string; name: string }) => {
      const dataDir = resolve(f.dataDir);
      const lock = lockDataDir(dataDir, SERVER_LOCK, 'tide up');
      const creds = credentials(dataDir);
      const { host } = serverAddress(f);
      const warning = exposureWarning("the API and the local agent's log endpoint", host);
      if (warning) log(warning);
      const { Agent, NODE_TOKEN_FILE } = await import('../agent/agent.ts');
      const server = await startFromFlags({ ...f, tickMs: f.tickMs === '1000' ? '500' : f.tickMs }, creds);
      // tide up owns its data directory (locked): when its agent's node token is gone (the agent
      // directory deleted), the local node gets a new credential rather than a 409 at each beat.
      if (!f.databaseUrl && !existsSync(join(dataDir, 'agent', NODE_TOKEN_FILE))) await server.store.resetNodeCredential(f.name, Date.now());
      const agent = new Agent({
        servers: [server.url],
        token: f.agentToken ?? process.env['TIDE_AGENT_TOKEN'] ?? creds.agentToken,
        nodeName: f.name,
        gpus: f.gpus,
        dataDir: join(dataDir, 'agent'),
        checkpointRoot: join(dataDir, 'checkpoints'),
        heartbeatMs: 1000,
        // --listen applies to both: the local agent serves its logs on the same host (any port).
        ...(isIP(host) !== 0 || isWildcard(host) ? { listenHost: host } : {}),
        log,
      });
      await agent.start();
      lock.describe(`tide up (${server.url})`);
      writeFileSync(join(dataDir, CLIENT_FILE), JSON.stringify({ server: server.url, token: creds.tenantToken }, null, 2), { mode: 0o600 });
      const gpuLine = agent.simulated
        ? `No GPUs found (nvidia-smi did not answer): node '${agent.nodeName}' has ${agent.gpuCount} SIMULATED GPUs (${f.gpus}); tasks are real processes.`
        : `Node '${agent.nodeName}' has ${agent.gpuCount} GPU(s) found by nvidia-smi.`;
      process.stdout.write(
        [
          `Tide is up: ${server.url}  (dashboard /, API /v1, docs /openapi.json, metrics /metrics; state in ${dataDir})`,
          gpuLine,
          '',
          'In another terminal, from this directory:',
          '  npx tide submit examples/hello.yaml      # a one-GPU job',
          '  npx tide submit examples/train-gang.yaml # a 2-task gang that checkpoints',
          '  npx tide jobs --all',
          '  npx tide logs 1 --follow',
          '  npx tide nodes',
          `Tokens are in ${join(dataDir, 'credentials.json')}; the CLI reads ${join(dataDir, CLIENT_FILE)}. Ctrl-C stops; running tasks are re-adopted if it starts again within about half the node lease (else they are fenced and requeued from their checkpoints).`,
          '',
        ].join('\n'),
      );
      onShutdown(async () => {
        await agent.stop();
        await server.close();
      });
      await new Promise(() => {});
    });
}
