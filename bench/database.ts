/**
 * The database a server bench runs on, one way for every bench: SQLite in the server's data
 * directory (no URL), a throwaway PostgreSQL (`--postgres`; initdb on PATH), or a schema of its
 * own in an existing PostgreSQL (`--database-url`), dropped at the end so runs never see each
 * other's rows.
 */
export async function benchDatabase(opts: { readonly postgres: boolean | undefined; readonly databaseUrl: string | undefined }): Promise<{ url: string | undefined; stop: () => Promise<void> }> {
  if (opts.databaseUrl) {
    const { freshPostgresUrl } = await import('../src/store/testing.ts');
    const fresh = await freshPostgresUrl(opts.databaseUrl);
    return { url: fresh.url, stop: () => fresh.drop() };
  }
  if (opts.postgres) {
    const { startThrowawayPostgres } = await import('../test/e2e/throwawayPostgres.ts');
    const pg = await startThrowawayPostgres();
    return { url: pg.url, stop: async () => pg.stop() };
  }
  return { url: undefined, stop: async () => {} };
}
