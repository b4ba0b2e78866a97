/**
 * Admin commands for tokens and node credentials (docs/security.md, "Tokens and identities"):
 *
 *   tide token list                                  id, role, owner, created, expires, revoked, last used
 *   tide token create --tenant NAME [--expires-in-days N]   prints the secret (once)
 *   tide token revoke ID…                            rotation: create a new one, then revoke the old
 *   tide node reset-credential NAME                  a re-imaged node may join again with the bootstrap token
 *
 * Like the other admin commands (cluster.ts) they find the admin token themselves: --token,
 * TIDE_TOKEN, TIDE_ADMIN_TOKEN, then DATA_DIR/credentials.json (client.ts). `-o json` for scripts.
 */
import type { Command } from 'commander';
import { UserError } from '../util/errors.ts';
import { ApiClient, resolveConnection } from './client.ts';
import { connectionOptions, json, outputOf, print, type Common } from './common.ts';
import { plainTable } from './format.ts';


interface TokenInfo {
  id: string;
  role: string;
  tenant: string | null;
  node: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}


const admin = (o: Common): ApiClient => new ApiClient(resolveConnection(o, 'admin'));
const when = (ms: number | null, none: string): string => (ms === null ? none : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/** A token's state now: active, expired or revoked. */
function stateOf(t: TokenInfo, now: number): string {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt !== null && t.expiresAt <= now) return 'expired';
  return 'active';
}

export function tokensTable(tokens: readonly TokenInfo[], now: number): string {
  return plainTable(
    ['ID', 'ROLE', 'OWNER', 'STATE', 'CREATED', 'EXPIRES', 'REVOKED', 'LAST USED'],
    tokens.map((t) => [t.id, t.role === 'agent' ? 'agent (bootstrap)' : t.role, t.tenant ?? t.node ?? '-', stateOf(t, now), when(t.createdAt, '-'), when(t.expiresAt, 'never'), when(t.revokedAt, '-'), when(t.lastUsedAt, '-')]),
  );
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('Admin: API tokens: list, create, revoke (rotate: create, then revoke the old)');
  connectionOptions(token.command('list'))
    .description('List every token: id, role, tenant or node, state, created, expires, revoked, last used (never a secret)')
    .action(async (o: Common) => {
      const out = outputOf(o) === 'json';
      const r = await admin(o).request<{ tokens: TokenInfo[] }>('GET', '/v1/tokens');
      if (out) return json(r.body.tokens);
      print(r.body.tokens.length ? tokensTable(r.body.tokens, Date.now()) : 'No tokens.');
    });

  connectionOptions(token.command('create'))
    .description("Issue a tenant token and print its secret (shown once: the server keeps only its hash)")
    .requiredOption('--tenant <name>', 'the tenant it acts for')
    .option('--expires-in-days <days>', 'expire after this many days (default: never)')
    .action(async (o: Common & { tenant: string; expiresInDays?: string }) => {
      const out = outputOf(o) === 'json';
      let expiresInDays: number | undefined;
      if (o.expiresInDays !== undefined) {
        expiresInDays = Number(o.expiresInDays);
        if (!/^\d+(\.\d+)?$/.test(o.expiresInDays) || !(expiresInDays > 0)) throw new UserError(`--expires-in-days: must be a number of days above 0, got '${o.expiresInDays}'`);
      }
      const body = { role: 'tenant', tenant: o.tenant, ...(expiresInDays !== undefined ? { expiresInDays } : {}) };
      const r = await admin(o).request<{ secret: string; token: TokenInfo }>('POST', '/v1/tokens', JSON.stringify(body));
      if (out) return json(r.body);
      const t = r.body.token;
      process.stderr.write(`Token ${t.id} for tenant ${t.tenant ?? ''}, expires ${when(t.expiresAt, 'never')}. Its secret (shown once) is on stdout.\n`);
      print(r.body.secret);
    });

  connectionOptions(token.command('revoke').argument('<ids...>', 'token ids (from `tide token list`)'))
    .description('Revoke tokens: every later request with one is refused (401 "token … revoked")')
    .action(async (ids: string[], o: Common) => {
      const out = outputOf(o) === 'json';
      const api = admin(o);
      const done: TokenInfo[] = [];
      for (const id of ids) {
        if (!/^[0-9a-f]{12}$/.test(id)) throw new UserError(`token id must be 12 hex digits (see \`tide token list\`), got '${id}'`);
        done.push((await api.request<{ token: TokenInfo }>('DELETE', `/v1/tokens/${id}`)).body.token);
      }
      if (out) return json(done);
      for (const t of done) print(`Revoked token ${t.id} (${t.role} ${t.tenant ?? t.node ?? ''})`.replace(/ \)$/, ')'));
    });

  const node = program.command('node').description("Admin: a node's credential");
  connectionOptions(node.command('reset-credential').argument('<name>', 'node name'))
    .description("Revoke a node's credential: its next registration with the bootstrap (agent) token gets a new one (a re-imaged node, or one whose agent data directory was lost)")
    .action(async (name: string, o: Common) => {
      const out = outputOf(o) === 'json';
      const r = await admin(o).request<{ node: string; revoked: string[] }>('DELETE', `/v1/nodes/${encodeURIComponent(name)}/credential`);
      if (out) return json(r.body);
      print(`Node ${r.body.node}: credential ${r.body.revoked.join(', ')} revoked; its agent may register again with the bootstrap (agent) token`);
    });
}
