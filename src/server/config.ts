/**
 * The cluster config file (YAML): tokens, tenants and queues with quotas. Applied to the store
 * at startup (upserts: the file adds and updates, never deletes).
 *
 *   adminToken: …            # or TIDE_ADMIN_TOKEN
 *   agentToken: …            # or TIDE_AGENT_TOKEN
 *   tenants:
 *     - name: research
 *       tokens: [research-token]
 *   queues:
 *     - name: default
 *       gpuQuota: 8          # nominal GPUs; omit for unlimited
 *       borrowingLimit: 4    # GPUs it may borrow beyond quota; omit for unlimited
 *       tenants: [research]  # who may submit to it (Kueue's LocalQueue → ClusterQueue)
 *
 * A queue without `tenants`: one named like a tenant (other than `default`) is that tenant's
 * alone; any other (`default`, the queue of `tide up`, included) is shared by all tenants.
 * `tenants: []` closes a queue to every tenant.
 */
import { readFileSync } from 'node:fs';
import { parseYamlStrict } from '../api/strictParse.ts';
import { UserError } from '../util/errors.ts';
import type { QueueConfig } from '../store/store.ts';

export interface ClusterConfig {
  readonly adminToken: string | null;
  readonly agentToken: string | null;
  readonly tenants: readonly { readonly name: string; readonly tokens: readonly string[] }[];
  readonly queues: readonly QueueConfig[];
}

export const EMPTY_CONFIG: ClusterConfig = { adminToken: null, agentToken: null, tenants: [], queues: [] };

const TENANT_NAME = /^[a-z0-9][-a-z0-9_]{0,62}$/;
/** A key as the user can find it in an error: quoted unless it is a plain name ("", " x" or "a: b" stay readable). */
const keyName = (k: string): string => (/^[A-Za-z_][\w-]*$/.test(k) ? k : JSON.stringify(k));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a config document; throws a UserError naming every bad field. */
export function parseConfig(text: string, file: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parseYamlStrict(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return EMPTY_CONFIG;
  const errors: string[] = [];
  if (!isObj(doc)) throw new UserError(`${file}: must be a map with adminToken, agentToken, tenants, queues`);
  const str = (v: unknown, path: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v.length < 8) errors.push(`${path}: must be a string of at least 8 characters`);
    return typeof v === 'string' ? v : null;
  };
  const optInt = (v: unknown, path: string): number | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) errors.push(`${path}: must be a non-negative integer up to 2^53`);
    return typeof v === 'number' ? v : null;
  };
  for (const k of Object.keys(doc)) if (!['adminToken', 'agentToken', 'tenants', 'queues'].includes(k)) errors.push(`${keyName(k)}: unknown field`);
  // One token, one principal: a token listed twice would belong to whichever is applied last
  // (a tenant's token could become the admin's, or another tenant's).
  const owners = new Map<unknown, string>();
  const claim = (tok: unknown, path: string): void => {
    if (typeof tok !== 'string') return;
    const first = owners.get(tok);
    if (first !== undefined) errors.push(`${path}: the same token as ${first}`);
    else owners.set(tok, path);
  };
  claim(doc['adminToken'], 'adminToken');
  claim(doc['agentToken'], 'agentToken');
  const tenants: { name: string; tokens: string[] }[] = [];
  const tIn = doc['tenants'] ?? [];
  if (!Array.isArray(tIn)) errors.push('tenants: must be a list');
  else
    tIn.forEach((t: unknown, i) => {
      if (!isObj(t) || typeof t['name'] !== 'string' || !TENANT_NAME.test(t['name'])) {
        errors.push(`tenants[${i}].name: required, lowercase letters, digits, - and _`);
        return;
      }
      const tokens = t['tokens'] ?? [];
      if (!Array.isArray(tokens)) errors.push(`tenants[${i}].tokens: must be a list`);
      else tokens.forEach((tok: unknown, j) => claim(str(tok, `tenants[${i}].tokens[${j}]`), `tenants[${i}].tokens[${j}]`));
      tenants.push({ name: t['name'], tokens: Array.isArray(tokens) ? tokens.filter((x): x is string => typeof x === 'string') : [] });
    });
  const queues: QueueConfig[] = [];
  const qIn = doc['queues'] ?? [];
  if (!Array.isArray(qIn)) errors.push('queues: must be a list');
  else
    qIn.forEach((q: unknown, i) => {
      if (!isObj(q) || typeof q['name'] !== 'string' || !/^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/.test(q['name'])) {
        errors.push(`queues[${i}].name: required`);
        return;
      }
      for (const k of Object.keys(q)) if (!['name', 'gpuQuota', 'borrowingLimit', 'tenants'].includes(k)) errors.push(`queues[${i}].${keyName(k)}: unknown field`);
      if (queues.some((x) => x.name === q['name'])) errors.push(`queues[${i}].name: queue "${q['name']}" is defined twice`);
      const tenantsIn = q['tenants'];
      let bound: string[] | undefined;
      if (tenantsIn !== undefined && tenantsIn !== null) {
        if (!Array.isArray(tenantsIn)) errors.push(`queues[${i}].tenants: must be a list of tenant names`);
        else {
          tenantsIn.forEach((t: unknown, j) => {
            if (typeof t !== 'string' || !TENANT_NAME.test(t)) errors.push(`queues[${i}].tenants[${j}]: must be a tenant name (lowercase letters, digits, - and _)`);
          });
          bound = [...new Set(tenantsIn.filter((t): t is string => typeof t === 'string'))];
        }
      }
      queues.push({ name: q['name'], gpuQuota: optInt(q['gpuQuota'], `queues[${i}].gpuQuota`), borrowingLimit: optInt(q['borrowingLimit'], `queues[${i}].borrowingLimit`), ...(bound ? { tenants: bound } : {}) });
    });
  const adminToken = str(doc['adminToken'], 'adminToken');
  const agentToken = str(doc['agentToken'], 'agentToken');
  if (errors.length) throw new UserError(`${file}: ${errors.join('; ')}`);
  return { adminToken, agentToken, tenants, queues };
}

export function loadConfig(file: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}
