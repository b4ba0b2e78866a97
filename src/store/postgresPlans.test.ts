/**
 * PostgreSQL's plans for the store's hot lookups, as the store runs them: prepared, so that after
 * a few calls PostgreSQL may keep one generic plan, made from whatever statistics it had then
 * (a table that grew since its last ANALYZE looks small).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { parseJobSpec } from '../api/spec.ts';
import { Q } from './queries.ts';
import { storeFactories } from './testing.ts';

const pgFactory = storeFactories().find((f) => f.name === 'postgres');

test("PostgreSQL plans: a submission's client keys are probed through (tenant, client_key) by a generic plan made before any ANALYZE, never by walking the tenant's jobs", { ...(pgFactory?.skip !== undefined ? { skip: pgFactory.skip } : {}) }, async () => {
  if (!pgFactory) throw new Error('no postgres factory');
  const { store, url, cleanup } = await pgFactory.open();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('ALTER TABLE jobs SET (autovacuum_enabled = false)'); // statistics as they were when the table was empty
    const fill = parseJobSpec({ name: 'fill', tasks: [{ replicas: 1, gpus: 1, command: 'true' }] });
    if (!fill.ok) throw new Error(JSON.stringify(fill.errors));
    // 8,000 keyed job rows: an array is one row now (migration 019), so single jobs, a thousand
    // submitted at once (group-committed, a hundred to a statement), eight times.
    for (let i = 0; i < 8; i++) await Promise.all(Array.from({ length: 1000 }, (_, j) => store.submit('default', fill.spec, `fill-${i}-${j}`, 1000 + i)));
    const keys = Array.from({ length: 500 }, (_, i) => `fill-7-${i}`);
    await client.query('SET plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE by_keys AS ${Q.jobsByClientKeys('postgres', keys.length)}`);
    const plan = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE by_keys(${['default', ...keys].map((k) => `'${k}'`).join(', ')})`)).rows[0]['QUERY PLAN'][0] as { Plan: Record<string, unknown> };
    const indexes = new Set(JSON.stringify(plan.Plan).match(/"Index Name":"[a-z_]+"/g) ?? []);
    assert.deepEqual([...indexes], ['"Index Name":"jobs_tenant_client_key"'], `the plan: ${JSON.stringify(plan.Plan)}`);
    assert.equal(plan.Plan['Actual Rows'], 500);
    assert.equal(await store.countOpenJobs('default'), 8000);
  } finally {
    await client.end();
    await cleanup();
  }
});
