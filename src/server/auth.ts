/**
 * Bearer tokens: the server stores only their SHA-256; each maps to a role (admin, tenant or
 * agent) and, for tenants, the tenant it acts for.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { QueueConfig, Role, Store, TokenOwner } from '../store/store.ts';

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export const newToken = (prefix: string): string => `${prefix}_${randomBytes(18).toString('base64url')}`;

export interface Principal extends TokenOwner {
  /** Display name for the audit log. */
  readonly name: string;
}

/** Resolves the Authorization header, or throws 401. */
export async function authenticate(store: Store, header: string | undefined): Promise<Principal> {
  if (!header) throw new ApiError('unauthorized', 'missing Authorization: Bearer <token>');
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new ApiError('unauthorized', 'Authorization header must be "Bearer <token>"');
  const owner = await store.findToken(hashToken(m[1] as string));
  if (!owner) throw new ApiError('unauthorized', 'unknown token');
  return { ...owner, name: owner.role === 'tenant' ? `tenant:${owner.tenant}` : owner.role };
}

/** Throws 403 unless the principal has one of the roles. */
export function requireRole(p: Principal, ...roles: Role[]): void {
  if (!roles.includes(p.role)) throw new ApiError('forbidden', `this needs ${/^[aeiou]/.test(roles[0] ?? '') ? 'an' : 'a'} ${roles.join(' or ')} token; yours is ${p.role}`);
}

/**
 * Whether a tenant may submit to a queue (Kueue's LocalQueue → ClusterQueue binding). A queue
 * with `tenants` is open to those tenants only. Without it, a queue named like a tenant (other
 * than `default`) is that tenant's alone, and any other queue (`default`, the queue of
 * `tide up`, included) is shared by all tenants.
 */
export function queueOpenTo(queue: QueueConfig, tenant: string, tenantNames: readonly string[]): boolean {
  if (queue.tenants !== undefined) return queue.tenants.includes(tenant);
  if (queue.name !== 'default' && tenantNames.includes(queue.name)) return queue.name === tenant;
  return true;
}

/** The tenants a queue is open to, or null when it is shared by all. */
export function queueTenants(queue: QueueConfig, tenantNames: readonly string[]): readonly string[] | null {
  if (queue.tenants !== undefined) return queue.tenants;
  return queue.name !== 'default' && tenantNames.includes(queue.name) ? [queue.name] : null;
}
