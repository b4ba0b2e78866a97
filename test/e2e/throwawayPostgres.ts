/**
 * A throwaway PostgreSQL cluster for tests and the soak: `initdb` into a temp directory, started
 * with `pg_ctl` on a free port of 127.0.0.1 (trust auth, fsync off: nothing in it outlives the
 * run, but a crash of PostgreSQL itself loses no commit), stopped and removed by `stop()` — and on process exit, so a failing or interrupted run
 * does not leave a server behind. As root it runs as the `postgres` user (initdb refuses root).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './harness.ts';

export interface ThrowawayPostgres {
  /** postgres://tide@127.0.0.1:PORT/postgres (a superuser, trust auth). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** `pg_ctl restart -m immediate`: a crash-like restart on the same data and port. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): void;
}

/** The newest installed PostgreSQL's bin directory (Debian layout, or initdb on PATH), or why there is none. */
export function findPostgresBin(): { bin: string } | { missing: string } {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return { bin: join(root, versions[0], 'bin') };
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath) return { bin: onPath.slice(0, onPath.lastIndexOf('/')) };
  return { missing: 'no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH' };
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as the postgres user when we are root. Throws with its output on failure. */
function pgArgv(bin: string, tool: string, args: readonly string[]): string[] {
  return isRoot() ? ['runuser', '-u', 'postgres', '--', join(bin, tool), ...args] : [join(bin, tool), ...args];
}

function pgRun(bin: string, tool: string, args: readonly string[]): void {
  const argv = pgArgv(bin, tool, args);
  try {
    execFileSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(`${tool} failed: ${err.message}\n${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`, { cause: e });
  }
}

export async function startThrowawayPostgres(opts: { bin?: string } = {}): Promise<ThrowawayPostgres> {
  let bin = opts.bin;
  if (!bin) {
    const found = findPostgresBin();
    if ('missing' in found) throw new Error(found.missing);
    bin = found.bin;
  }
  const root = mkdtempSync(join(tmpdir(), 'tide-pg-'));
  const dataDir = join(root, 'data');
  if (isRoot()) {
    const ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(root, Number(ids), Number(gid));
  }
  const port = await freePort();
  const pgBin = bin;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stop);
    try {
      pgRun(pgBin, 'pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']);
    } catch {
      // not running (never started, or already gone)
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', stop);
  try {
    pgRun(bin, 'initdb', ['-D', dataDir, '-U', 'tide', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    // The socket goes in the cluster's own directory (the default one may not exist or be writable).
    // fsync and full-page writes guard against losing the OS (power), not a process: off. A commit
    // must still reach the kernel before it returns (synchronous_commit stays on), or a restart
    // with -m immediate would lose acknowledged transactions (the soak saw that).
    const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
    pgRun(bin, 'pg_ctl', ['start', '-D', dataDir, '-w', '-t', '60', '-l', join(root, 'server.log'), '-o', options]);
  } catch (e) {
    stop();
    throw e;
  }
  return {
    url: `postgres://tide@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    restart: () =>
      new Promise<void>((ok, fail) => {
        // Asynchronous: the caller's proxies and monitors keep running meanwhile.
        const argv = pgArgv(pgBin, 'pg_ctl', ['restart', '-D', dataDir, '-m', 'immediate', '-w', '-t', '60', '-l', join(root, 'server.log')]);
        execFile(argv[0] as string, argv.slice(1), { timeout: 60_000 }, (e, _out, err) => (e ? fail(new Error(`pg_ctl restart failed: ${e.message} ${err}`, { cause: e })) : ok()));
      }),
    stop,
  };
}
