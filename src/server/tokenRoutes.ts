/**
 * Admin routes for the token lifecycle (docs/security.md, "Tokens and identities"):
 *
 *   GET    /v1/tokens                  every token: id, role, tenant or node, created, expires,
 *                                      revoked, last used (never the secret or its hash)
 *   POST   /v1/tokens                  {role: 'tenant', tenant, expiresInDays?} → the secret, once
 *   DELETE /v1/tokens/:id              revoke (rotation: issue a new one, then revoke the old)
 *   DELETE /v1/nodes/:id/credential    revoke a node's credential, so that a re-imaged node can
 *                                      join again with the bootstrap (agent) token
 *
 * Registered from buildApp (app.ts) with one line.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api/errors.ts';
import type { FieldError } from '../api/spec.ts';
import { answers, RESPONSES, TokenRequestSchema } from '../api/apiSchemas.ts';
import { checkSchema } from '../api/schemaCheck.ts';
import type { Store, TokenInfo } from '../store/store.ts';
import { authenticate, hashToken, newToken, requireRole } from './auth.ts';
import { nameParam, refuse } from './query.ts';

const DAY_MS = 86_400_000;
/** The longest expiry a token may be given: 100 years. */
const MAX_DAYS = 36_500;
const TOKEN_ID = /^[0-9a-f]{12}$/;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => JSON.stringify(typeof v === 'string' && v.length > 40 ? `${v.slice(0, 40)}…` : v) ?? String(v);

/**
 * `expiresInDays` of a body: absent or null → never expires; else a number of days (fractions
 * allowed) in (0, 36500], turned into an expiry time. A bad value is added to `problems`.
 */
export function expiryOf(body: Record<string, unknown>, now: number, problems: FieldError[]): number | null {
  const v = body['expiresInDays'];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_DAYS) {
    problems.push({ path: 'expiresInDays', message: `must be a number of days above 0 and at most ${MAX_DAYS}, or null (never), got ${show(v)}` });
    return null;
  }
  return now + Math.round(v * DAY_MS);
}


const info = (t: TokenInfo): TokenInfo => ({ id: t.id, role: t.role, tenant: t.tenant, node: t.node, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt, lastUsedAt: t.lastUsedAt });

export function registerTokenRoutes(app: FastifyInstance, o: { readonly store: Store; readonly clock: () => number }): void {
  const { store, clock } = o;
  const admin = async (authorization: string | undefined) => {
    const p = await authenticate(store, authorization, clock());
    requireRole(p, 'admin');
    return p;
  };

  app.get('/v1/tokens', {
    schema: {
      description: 'Admin: every token (admin, agent bootstrap, tenant, node) with its id, owner, creation, expiry, revocation and last use; never a secret or a hash',
      tags: ['access'],
      response: answers(200, RESPONSES.tokens),
    },
  }, async (req) => {
    await admin(req.headers.authorization);
    return { tokens: (await store.listTokens()).map(info) };
  });

  app.post('/v1/tokens', {
    schema: {
      description: "Admin: issue a tenant token. The secret is in the answer only (the server keeps its SHA-256). expiresInDays: absent or null for a token that never expires. Rotation: issue a new token, move the clients to it, then DELETE the old one.",
      tags: ['access'],
      body: TokenRequestSchema,
      response: answers(201, RESPONSES.tokenIssued),
    },
  }, async (req, reply) => {
    await admin(req.headers.authorization);
    const now = clock();
    const b = req.body ?? {};
    const problems: FieldError[] = checkSchema(TokenRequestSchema, b);
    if (!isObj(b)) refuse(problems);
    const body = b as Record<string, unknown>;
    const tenant = body['tenant'];
    if (typeof tenant === 'string' && !problems.some((p) => p.path === 'tenant') && !(await store.listTenants()).includes(tenant)) problems.push({ path: 'tenant', message: `no tenant ${tenant} (create it with POST /v1/tenants)` });
    const expiresAt = problems.some((p) => p.path === 'expiresInDays') ? null : expiryOf(body, now, problems);
    refuse(problems);
    const secret = newToken(`tide_${tenant as string}`);
    const hash = hashToken(secret);
    await store.putToken(hash, { role: 'tenant', tenant: tenant as string }, now, expiresAt);
    const made = (await store.findToken(hash)) as TokenInfo;
    void reply.status(201);
    return { secret, token: info(made) };
  });

  app.delete('/v1/tokens/:id', {
    schema: {
      description: 'Admin: revoke a token by its id (GET /v1/tokens): every later request with it is a 401 "token … revoked". Revoking a revoked token changes nothing. The admin token cannot be revoked here (change it in the server flags or config). Revoking a node token is DELETE /v1/nodes/{id}/credential.',
      tags: ['access'],
      params: { type: 'object', properties: { id: { type: 'string' } } },
      response: answers(200, RESPONSES.tokenRevoked),
    },
  }, async (req) => {
    const p = await admin(req.headers.authorization);
    const id = (req.params as { id?: unknown }).id;
    if (typeof id !== 'string' || !TOKEN_ID.test(id)) refuse([{ path: 'id', message: `must be a token id (12 hex digits, see GET /v1/tokens), got ${show(id)}` }]);
    const all = await store.listTokens();
    const found = all.find((t) => t.id === id);
    if (!found) throw new ApiError('not_found', `no token ${id as string}`);
    if (found.role === 'admin') throw new ApiError('conflict', `token ${id as string} is an admin token: the server's flags or config set it (replace it there and restart: the old one is then revoked)`);
    if (found.id === p.tokenId) throw new ApiError('conflict', 'a token cannot revoke itself');
    return { token: info((await store.revokeToken(id as string, clock())) as TokenInfo) };
  });

  app.delete('/v1/nodes/:id/credential', {
    schema: {
      description: "Admin: revoke a node's credential (its node token). Its agent's next requests are 401s; the node's next registration with the bootstrap (agent) token gets a new credential: how a re-imaged node, or one whose data directory was lost, joins again.",
      tags: ['cluster'],
      params: { type: 'object', properties: { id: { type: 'string' } } },
      response: answers(200, RESPONSES.credentialRevoked),
    },
  }, async (req) => {
    await admin(req.headers.authorization);
    const node = nameParam(req.params, 'id', 'a node name');
    const revoked = await store.resetNodeCredential(node, clock());
    if (revoked.length === 0) throw new ApiError('not_found', `node ${node} has no credential`);
    return { node, revoked };
  });
}
