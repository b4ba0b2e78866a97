/**
 * What a service's replica is: a job of one task made from the service's task group, with the
 * port it serves on (TIDE_SERVICE_PORT) and the service it belongs to (TIDE_SERVICE_ID); and
 * where the server may reach it: only the host of the node it runs on (the agent's registered
 * address, which the server checked came from that host) at the replica's port, at the paths the
 * service's spec declared. Never another host, never a path the schema did not accept.
 */
import type { JobSpec } from '../../api/spec.ts';
import { HTTP_PATH_PATTERN } from '../../api/specSchema.ts';
import type { Job } from '../../api/types.ts';

/** Ports handed to replicas by default, one per open replica across the cluster (below the gang rendezvous ports at 29500). */
export const REPLICA_PORTS = { first: 20000, last: 29499 } as const;

/** A range of ports [first, last]. */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}


const PATH = new RegExp(HTTP_PATH_PATTERN);

/** The port a replica's spec was given (TIDE_SERVICE_PORT), or null. */
export function portOf(spec: JobSpec): number | null {
  const v = Number(spec.groups[0]?.env['TIDE_SERVICE_PORT']);
  return Number.isInteger(v) && v > 0 ? v : null;
}

/** The lowest replica port of `range` no open replica holds, or null when all are taken. */
export function freePort(taken: ReadonlySet<number>, range: PortRange = REPLICA_PORTS): number | null {
  for (let p = range.first; p <= range.last; p++) if (!taken.has(p)) return p;
  return null;
}

/** The part of a service's name its replicas' names begin with (room is left for `-ORDINAL`). */
export const replicaBase = (serviceName: string): string => serviceName.slice(0, 56);

/** The lowest ordinal (name suffix) no open replica of the service uses. */
export function freeOrdinal(names: readonly string[], base: string): number {
  const used = new Set(names.map((n) => (n.startsWith(`${base}-`) ? Number(n.slice(base.length + 1)) : NaN)));
  let i = 0;
  while (used.has(i)) i++;
  return i;
}

/** The replica job of `service` with ordinal `ordinal`, serving on `port`. */
export function replicaSpec(service: Job, ordinal: number, port: number): JobSpec {
  const s = service.spec;
  const group = s.groups[0];
  if (!group) throw new Error(`service ${service.id} has no task group`);
  return {
    name: `${replicaBase(s.name)}-${ordinal}`,
    queue: s.queue,
    priority: s.priority,
    kind: 'service',
    preemptible: false,
    checkpoint: false,
    array: 1,
    groups: [{ ...group, replicas: 1, env: { ...group.env, TIDE_SERVICE_PORT: String(port), TIDE_SERVICE_ID: service.id } }],
    gracePeriodSeconds: s.gracePeriodSeconds,
    ...(s.gpuSpeeds ? { gpuSpeeds: s.gpuSpeeds } : {}),
    replicaOf: service.id,
  };
}

/** The host of a node's registered agent address (http://IP:PORT), IPv6 in brackets; null when it is not a URL. */
export function nodeHost(address: string): string | null {
  try {
    const url = new URL(address);
    return url.hostname === '' ? null : url.hostname;
  } catch {
    return null;
  }
}

/**
 * The URL of `path` on a replica running on the node at `nodeAddress`, at the replica's own port
 * (the one Tide gave it); null when any part is missing or not what the schema allows (so nothing
 * but the node's host, at a port Tide handed to this replica, is ever fetched).
 */
export function replicaUrl(nodeAddress: string | null, replica: JobSpec, path: string): string | null {
  if (nodeAddress === null || !PATH.test(path)) return null;
  const host = nodeHost(nodeAddress);
  const port = portOf(replica);
  if (host === null || port === null) return null;
  return `http://${host}:${port}${path}`;
}
