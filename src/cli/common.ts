/**
 * What every command that talks to a server shares: the connection flags (`--server`, `--token`,
 * `--data-dir`, `-o table|json`), reading `-o`, and printing.
 */
import type { Command } from 'commander';
import { UserError } from '../util/errors.ts';
import type { ClientOptions } from './client.ts';

export type Output = 'table' | 'json';

export interface Common extends ClientOptions {
  output?: string;
}

export function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL(s), comma-separated (default: TIDE_SERVER or .tide/client.json)')
    .option('--token <token>', 'API token (default: TIDE_TOKEN or .tide/client.json; admin commands: TIDE_ADMIN_TOKEN or .tide/credentials.json)')
    .option('--data-dir <dir>', 'where `tide up` wrote client.json and credentials.json', '.tide')
    .option('-o, --output <format>', 'table or json', 'table');
}

export function outputOf(o: Common): Output {
  if (o.output !== 'table' && o.output !== 'json') throw new UserError(`-o: must be table or json, got '${o.output}'`);
  return o.output;
}

export const print = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

export const json = (v: unknown): void => print(JSON.stringify(v, null, 2));
