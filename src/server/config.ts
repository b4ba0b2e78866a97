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
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UserError } from '../util/errors.ts';
import type { QueueConfig } from '../store/store.ts';

export interface ClusterConfig {
  readonly adminToken: string | null;
  readonly agentToken: string | null;
  readonly tenants: readonly { readonly name: string; readonly tokens: readonly string[] }[];
  readonly queues: readonly QueueConfig[];
}

export const EMPTY_CONFIG: ClusterConfig = { adminToken: null, agentToken: null, tenants: [], queues: [] };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a config document; throws a UserError naming every bad field. */
export function parseConfig(text: string, file: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
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
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) errors.push(`${path}: must be a non-negative integer`);
    return typeof v === 'number' ? v : null;
  };
  for (const k of Object.keys(doc)) if (!['adminToken', 'agentToken', 'tenants', 'queues'].includes(k)) errors.push(`${k}: unknown field`);
  const tenants: { name: string; tokens: string[] }[] = [];
  const tIn = doc['tenants'] ?? [];
  if (!Array.isArray(tIn)) errors.push('tenants: must be a list');
  else
    tIn.forEach((t: unknown, i) => {
      if (!isObj(t) || typeof t['name'] !== 'string' || !/^[a-z0-9][-a-z0-9_]{0,62}$/.test(t['name'])) {
        errors.push(`tenants[${i}].name: required, lowercase letters, digits, - and _`);
        return;
      }
      const tokens = t['tokens'] ?? [];
      if (!Array.isArray(tokens)) errors.push(`tenants[${i}].tokens: must be a list`);
      else tokens.forEach((tok: unknown, j) => str(tok, `tenants[${i}].tokens[${j}]`));
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
      queues.push({ name: q['name'], gpuQuota: optInt(q['gpuQuota'], `queues[${i}].gpuQuota`), borrowingLimit: optInt(q['borrowingLimit'], `queues[${i}].borrowingLimit`) });
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
