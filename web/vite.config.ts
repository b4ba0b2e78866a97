/**
 * The dashboard's build: web/ (index.html and src/) → dist-web/ at the repository root, which
 * `tide server` serves at `/` (src/server/webRoutes.ts). Hashed file names under assets/ are
 * cached for ever; index.html is revalidated. No dev server is needed: `npm run build` builds it.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  logLevel: 'warn',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
  },
  oxc: { jsx: { runtime: 'automatic' } },
});
