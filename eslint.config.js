// Lint: the recommended TypeScript rules, plus the boundaries: no I/O in the pure core, no server in the store.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = ['node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:child_process',
  'node:worker_threads', 'node:os', 'node:process', 'fs', 'http', 'child_process'];

export default tseslint.config(
  { ignores: ['node_modules/', '.tide/', 'coverage/', 'dist/', 'dist-web/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ioModules.map((name) => ({ name, message: 'core/ is pure: no I/O.' })) }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'core/ takes its clock as a parameter.' },
        { object: 'Math', property: 'random', message: 'core/ takes a seeded Rng as a parameter.' }],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval'],
    },
  },
  {
    // The store is a port the server uses; it knows nothing of HTTP, auth or the loop.
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../server/*', '**/server/*'], message: 'store/ must not import from server/.' }] }],
    },
  },
  {
    // Tests read JSON from the API without restating every response type.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
