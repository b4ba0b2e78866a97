/**
 * The dashboard's static files (dist-web/, built by scripts/buildWeb.mjs from web/) at `/`:
 * index.html (revalidated on each load) and assets/<hashed name> (cached for a year, immutable).
 * Only names of one path segment made of letters, digits, `.`, `_` and `-` are looked up, inside
 * the assets folder, so no request reaches a file outside it. These routes are public (the page
 * itself holds no data; the API behind it asks for a token) and hidden from /openapi.json.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api/errors.ts';

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Where the built dashboard is: TIDE_WEB_DIR, else dist-web/ beside src/ (sources) or dist/ (the compiled CLI). */
export function webDir(): string | null {
  const env = process.env['TIDE_WEB_DIR'];
  // This module is src/server/webRoutes.ts (the sources) or a chunk in dist/ (the compiled CLI).
  const fromSources = fileURLToPath(import.meta.url).replaceAll('\\', '/').includes('/src/server/');
  const candidates = env ? [env] : [fileURLToPath(new URL(fromSources ? '../../dist-web' : '../dist-web', import.meta.url))];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

const NOT_BUILT = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tide</title></head><body><main><h1>Tide</h1><p>The dashboard was not built: run <code>npm run build</code> (it needs the devDependencies), then reload. The API is at <a href="/openapi.json">/openapi.json</a>.</p></main></body></html>';

export function registerWebRoutes(app: FastifyInstance, dir: string | null = webDir()): void {
  // Read once: the files are small and never change while the server runs.
  const assets = new Map<string, Buffer>();
  if (dir && existsSync(join(dir, 'assets'))) for (const name of readdirSync(join(dir, 'assets'))) assets.set(name, readFileSync(join(dir, 'assets', name)));
  const index = dir ? readFileSync(join(dir, 'index.html')) : Buffer.from(NOT_BUILT);

  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    void reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'").type('text/html; charset=utf-8');
    return index;
  });
  app.get('/assets/:file', { schema: { hide: true } }, async (req, reply) => {
    const file = (req.params as { file?: unknown }).file;
    const body = typeof file === 'string' && /^[A-Za-z0-9_.-]{1,200}$/.test(file) && !file.startsWith('.') ? assets.get(file) : undefined;
    if (!body) throw new ApiError('not_found', `no asset ${typeof file === 'string' ? file.slice(0, 64) : ''}`);
    void reply.header('cache-control', 'public, max-age=31536000, immutable').header('x-content-type-options', 'nosniff').type(TYPES[extname(file as string)] ?? 'application/octet-stream');
    return body;
  });
}
