/**
 * Argument parsing for the bench scripts, one way for all of them: `node:util` parseArgs in
 * strict mode (an unknown flag or a missing value is an error), and a user error is one line on
 * stderr and exit code 2, never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../src/util/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Prints `script: message` and exits 2. */
export function usageError(script: string, message: string): never {
  console.error(`${script}: ${message}`);
  process.exit(2);
}

/** Parses `process.argv` against `options`; positionals only where `positionals` is true. */
export function benchArgs<O extends Options>(script: string, options: O, positionals = false) {
  try {
    return parseArgs({ args: process.argv.slice(2), options, strict: true, allowPositionals: positionals });
  } catch (e) {
    return usageError(script, (e as Error).message);
  }
}

/** A non-negative integer flag value (or the fallback when the flag is absent). */
export function intFlag(script: string, name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) usageError(script, `--${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

/** The value `parse` returns; a UserError it throws (a bad flag value) becomes `usageError`. */
export function userValue<T>(script: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof UserError) return usageError(script, e.message);
    throw e;
  }
}
