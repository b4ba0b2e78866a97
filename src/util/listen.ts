/**
 * Listen addresses for `tide server`, `tide agent` and `tide up`: the `--listen HOST[:PORT]`
 * syntax (IPv6 in brackets when a port follows: `[::1]:8470`), and what kind of address a host
 * is, for the warnings the CLI prints when a port is open beyond this machine.
 */
import { isIP } from 'node:net';
import { UserError } from './errors.ts';

export interface ListenAddress {
  /** Absent for ":PORT". */
  readonly host?: string;
  /** Absent for "HOST". */
  readonly port?: number;
}

export function parsePort(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UserError(`${flag}: port must be 0-65535, got '${value}'`);
  return n;
}

/** "HOST", "HOST:PORT", ":PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address ("::", "fd00::5"). */
export function parseListen(flag: string, value: string): ListenAddress {
  const v = value.trim();
  const bad = (why: string): never => {
    throw new UserError(`${flag}: ${why}, got '${value}' (expected HOST, HOST:PORT, :PORT or [IPv6]:PORT)`);
  };
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(v);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2];
    if (isIP(host) !== 6) bad('brackets hold an IPv6 address');
  } else if (isIP(v) === 6) {
    host = v;
  } else {
    const colon = v.lastIndexOf(':');
    host = colon < 0 ? v : v.slice(0, colon);
    port = colon < 0 ? undefined : v.slice(colon + 1);
    if (host.includes(':')) bad('an IPv6 address with a port goes in brackets');
  }
  if (host !== '' && !/^[A-Za-z0-9][-A-Za-z0-9.]*$/.test(host) && isIP(host) === 0) bad('not a host name or IP address');
  if (host === '' && port === undefined) bad('empty');
  return { ...(host !== '' ? { host } : {}), ...(port !== undefined ? { port: parsePort(flag, port) } : {}) };
}

/** 0.0.0.0 or :: (every interface). */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '::0';
}

/** localhost, 127.0.0.0/8 or ::1: reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A host as it goes in a URL: IPv6 in brackets. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * The one-line warning for a port open beyond this machine over plain HTTP, or null for a
 * loopback address. `what` names the port ("the API", "the agent's log endpoint").
 */
export function exposureWarning(what: string, host: string): string | null {
  if (isLoopback(host)) return null;
  const where = isWildcard(host) ? `every interface (${host})` : host;
  return `warning: ${what} listens on ${where} over plain HTTP: tokens cross the network in clear; keep it on a private network or behind a TLS proxy (docs/security.md)`;
}
