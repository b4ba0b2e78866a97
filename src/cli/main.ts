/**
 * The `tide` command. Each subcommand lives in its own module and only parses arguments and
 * calls the library; errors a user can fix print one line and exit 2, never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../util/errors.ts';
import { registerBenchJobs } from './benchJobs.ts';
import { registerBenchPlacement } from './benchPlacement.ts';
import { registerClusterCommands } from './cluster.ts';
import { registerServeCommands } from './serve.ts';
import { registerSim } from './sim.ts';

export function buildProgram(): Command {
  const program = new Command('tide').description('Tide: a GPU compute scheduler for AI clusters').version('0.1.0');
  program.exitOverride();
  const bench = program.command('bench').description('Benchmarks on real traces');
  registerBenchPlacement(bench);
  registerBenchJobs(bench);
  registerServeCommands(program);
  registerClusterCommands(program);
  registerSim(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UserError) {
      console.error(`tide: ${e.message}`);
      return e.exitCode;
    }
    console.error(e);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
