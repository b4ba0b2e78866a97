/**
 * Bearer tokens: the server stores only their SHA-256; each maps to a role (admin, tenant,
 * agent: the agents' shared bootstrap token, or node: one node's own credential) and, for
 * tenants, the tenant it acts for, for nodes the node. A token may expire and may be revoked;
 * either is a 401 that says so. See docs/security.md, "Tokens and identities".
 */
import { hash, randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { QueueConfig, Role, Store, TokenOwner } from '../store/store.ts';

/** A token's SHA-256 in hex. Every request hashes its token: the one-shot `hash` is a quarter of `createHash`'s cost. */
export const hashToken = (token: string): string => hash('sha256', token);

export const newToken = (prefix: string): string => `${prefix}_${randomBytes(18).toString('base64url')}`;

export interface Principal extends TokenOwner {
  /** Display name for the audit log. */
  readonly name: string;
  /** The token's public id. */
  readonly tokenId?: string;
}

/** How often a token's last use is written (at most): once a minute, not once a request. */
const TOUCH_EVERY_MS = 60_000;

/** Resolves the Authorization header, or throws 401 (unknown, expired or revoked token). */
export async function authenticate(store: Store, header: string | undefined, now: number = Date.now()): Promise<Principal> {
  if (!header) throw new ApiError('unauthorized', 'missing Authorization: Bearer <token>');
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new ApiError('unauthorized', 'Authorization header must be "Bearer <token>"');
  const hash = hashToken(m[1] as string);
  const t = await store.findToken(hash);
  if (!t) throw new ApiError('unauthorized', 'unknown token');
  if (t.revokedAt !== null) throw new ApiError('unauthorized', `token ${t.id} revoked at ${new Date(t.revokedAt).toISOString()}`);
  if (t.expiresAt !== null && t.expiresAt <= now) throw new ApiError('unauthorized', `token ${t.id} expired at ${new Date(t.expiresAt).toISOString()}`);
  if (t.lastUsedAt === null || now - t.lastUsedAt >= TOUCH_EVERY_MS) await store.touchToken(hash, now);
  const name = t.role === 'tenant' ? `tenant:${t.tenant}` : t.role === 'node' ? `node:${t.node}` : t.role;
  return { role: t.role, tenant: t.tenant, node: t.node, name, tokenId: t.id };
}

/**
 * Whether the principal may act for a node: its own node token, or the bootstrap (agent) token
 * for a node that has no credential yet (registered before node credentials existed). Throws
 * 403 naming both nodes otherwise.
 */
export async function requireNode(store: Store, p: Principal, nodeId: string): Promise<void> {
  if (p.role === 'node') {
    if (p.node !== nodeId) throw new ApiError('forbidden', `this token is node ${p.node}'s: it cannot act for node ${nodeId}`);
    return;
  }
  requireRole(p, 'agent', 'node');
  if (await store.nodeHasCredential(nodeId)) {
    throw new ApiError('forbidden', `node ${nodeId} has its own credential: the bootstrap token cannot act for it (its agent sends the node token from its data directory)`);
  }
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
