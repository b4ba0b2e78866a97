/**
 * The `tide` command. Each subcommand lives in its own module and only parses arguments and
 * calls the library; errors a user can fix print one line and exit 2, never a stack trace.
 *
 * Command groups are loaded with import() only when their command runs (all of them for help
 * or an unknown command), so `tide jobs` never loads the server, the agent, the simulator or
 * their packages (fastify, better-sqlite3, pg, highs); in the compiled CLI each group is its own
 * chunk. With `-o json` an error is one JSON object on stderr: {"error": {code, message, fields?}}.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../util/errors.ts';
import { errorJson, wantsJson } from './errorOutput.ts';

type Register = (program: Command) => void;

/** The cluster verbs of cluster.ts (a test checks this list against what it registers). */
export const CLUSTER_COMMANDS = ['submit', 'jobs', 'job', 'array', 'logs', 'cancel', 'scale', 'preempt', 'nodes', 'drain', 'undrain', 'queues', 'queue', 'events', 'tenant'] as const;

/** Top-level command names → the module that registers them, in help order. */
export const COMMAND_GROUPS: readonly { readonly names: readonly string[]; readonly load: () => Promise<Register> }[] = [
  {
    names: ['bench'],
    load: async () => {
      const [placement, jobs, live, serviceLive, tidal, energy] = await Promise.all([import('./benchPlacement.ts'), import('./benchJobs.ts'), import('./benchLive.ts'), import('./benchServiceLive.ts'), import('./benchTidal.ts'), import('./benchEnergy.ts')]);
      return (program) => {
        const bench = program.command('bench').description('Benchmarks on real traces');
        placement.registerBenchPlacement(bench);
        jobs.registerBenchJobs(bench);
        live.registerBenchLive(bench);
        serviceLive.registerBenchServiceLive(bench);
        tidal.registerBenchTidal(bench);
        energy.registerBenchEnergy(bench);
      };
    },
  },
  { names: ['server', 'agent', 'up'], load: async () => (await import('./serve.ts')).registerServeCommands },
  { names: CLUSTER_COMMANDS, load: async () => (await import('./cluster.ts')).registerClusterCommands },
  { names: ['token', 'node'], load: async () => (await import('./tokens.ts')).registerTokenCommands },
  { names: ['usage', 'report', 'budget'], load: async () => (await import('./usage.ts')).registerUsageCommands },
  { names: ['sim'], load: async () => (await import('./sim.ts')).registerSim },
  { names: ['validate'], load: async () => (await import('./validate.ts')).registerValidate },
  { names: ['idle'], load: async () => (await import('./idle.ts')).registerIdle },
];

/** The program with the command groups `argv` needs: its command's group, or all of them. */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('tide').description('Tide: a GPU compute scheduler for AI clusters').version('0.1.0');
  program.exitOverride();
  // With -o json, commander's own usage errors come back as JSON from main(), not as its text
  // (set before the commands are added: they copy it).
  if (wantsJson(argv)) program.configureOutput({ writeErr: () => {} });
  const command = argv.find((a) => !a.startsWith('-'));
  const versionOnly = command === undefined && argv.some((a) => a === '-V' || a === '--version');
  const own = COMMAND_GROUPS.filter((g) => command !== undefined && g.names.includes(command));
  const groups = versionOnly ? [] : own.length ? own : COMMAND_GROUPS;
  for (const register of await Promise.all(groups.map((g) => g.load()))) register(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const json = wantsJson(argv);
  // A reader that stops early (`tide logs 7 | head`) ends the command quietly, as it would `cat`.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  try {
    await (await buildProgram(argv)).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      if (json) process.stderr.write(errorJson('invalid_request', e.message.replace(/^error: /, '')));
      return 2;
    }
    if (e instanceof UserError) {
      process.stderr.write(json ? errorJson(e) : `tide: ${e.message}\n`);
      return e.exitCode;
    }
    if (json) process.stderr.write(errorJson('internal', String((e as Error)?.message ?? e)));
    console.error(e);
    return 1;
  }
}
