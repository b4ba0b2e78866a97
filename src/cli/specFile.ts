/**
 * Job spec files for the CLI: read (YAML or JSON by content, strictly: a duplicate key is
 * refused, an error is one line with where) and checked locally with the server's own schema
 * (api/spec.ts), so `tide submit` never sends a spec the server would refuse for its shape and
 * `tide validate` needs no server. The YAML parser and Ajv are loaded only here, on use: the
 * other commands start without them.
 */
import { readFileSync } from 'node:fs';
import type { FieldError, SpecResult } from '../api/spec.ts';
import { UserError } from '../util/errors.ts';
import { ApiFailure } from './errorOutput.ts';

/** The spec a file holds (`-` for stdin), parsed but not yet checked. */
export async function readSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { parseYamlStrict } = await import('../api/strictParse.ts');
  try {
    return parseYamlStrict(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML or JSON: ${(e as Error).message}`);
  }
}

/** The server's checks of a job spec, run here (the schema and the named checks). */
export async function checkSpec(value: unknown): Promise<SpecResult> {
  const { parseJobSpec } = await import('../api/spec.ts');
  return parseJobSpec(value);
}

/** One line for every bad field: `tasks[0].gpus: must be …; tasks[0].memory: …`. */
export const describeErrors = (errors: readonly FieldError[]): string => errors.map((e) => `${e.path}: ${e.message}`).join('; ');

/** Throws what the server would answer (invalid_spec, exit 2, every field) when the spec is invalid. */
export async function refuseInvalidSpec(file: string, value: unknown): Promise<void> {
  const r = await checkSpec(value);
  if (!r.ok) throw new ApiFailure(`${file}: invalid job spec: ${describeErrors(r.errors)}`, 0, 2, 'invalid_spec', r.errors);
}
