/**
 * Bearer tokens: the server stores only their SHA-256; each maps to a role (admin, tenant or
 * agent) and, for tenants, the tenant it acts for.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Role, Store, TokenOwner } from '../store/store.ts';

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
