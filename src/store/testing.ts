/**
 * Store factories for tests: every adapter the conformance suite runs against. PostgreSQL runs
 * when TIDE_TEST_DATABASE_URL is set (CI sets it); each store gets a fresh schema there.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from './sqlStore.ts';
import type { Store } from './store.ts';

export interface StoreFactory {
  readonly name: string;
  /** Why this adapter cannot be tested here (its suite is then reported as skipped). */
  readonly skip?: string;
  open(): Promise<{ store: Store; url: string; cleanup(): Promise<void> }>;
}

/** A fresh, empty PostgreSQL schema; returns a URL that uses it. */
export async function freshPostgresUrl(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `tide_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

/**
 * Why the PostgreSQL suites cannot run (no TIDE_TEST_DATABASE_URL), or undefined when they can;
 * `npm test` starts a throwaway cluster and says why it could not in TIDE_TEST_POSTGRES_SKIP.
 */
export function postgresSkipReason(): string | undefined {
  if (process.env['TIDE_TEST_DATABASE_URL']) return undefined;
  return process.env['TIDE_TEST_POSTGRES_SKIP'] ?? 'TIDE_TEST_DATABASE_URL is not set (npm test starts a throwaway PostgreSQL where initdb exists)';
}

export function storeFactories(): StoreFactory[] {
  const out: StoreFactory[] = [
    {
      name: 'memory',
      async open() {
        const store = await openStore('memory:');
        return { store, url: 'memory:', cleanup: () => store.close() };
      },
    },
    {
      name: 'sqlite',
      async open() {
        const dir = mkdtempSync(join(tmpdir(), 'tide-store-'));
        const url = `sqlite:${join(dir, 'tide.db')}`;
        const store = await openStore(url);
        return {
          store,
          url,
          async cleanup() {
            await store.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
  ];
  const base = process.env['TIDE_TEST_DATABASE_URL'];
  const skip = postgresSkipReason();
  out.push({
    name: 'postgres',
    ...(skip !== undefined ? { skip } : {}),
    async open() {
      if (!base) throw new Error(`postgres store: ${skip}`);
      const { url, drop } = await freshPostgresUrl(base);
      const store = await openStore(url);
      return {
        store,
        url,
        async cleanup() {
          await store.close();
          await drop();
        },
      };
    },
  });
  return out;
}
