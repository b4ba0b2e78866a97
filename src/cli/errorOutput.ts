/**
 * Errors as JSON for `-o json`: one line on stderr, `{"error": {"code", "message", "fields"?}}`,
 * with the same exit code as the human line. `code` is the API's error code when the server
 * answered (invalid_spec, not_found, forbidden, …), else one named after the exit code:
 * invalid_request (2), not_found (3), unauthorized (4), conflict (5), unavailable (6),
 * unreachable (7), failed (1: e.g. `submit --wait` on a job that did not succeed), and
 * internal for a bug (whose stack trace follows on the next lines). stdout keeps only data.
 */
import { UserError } from '../util/errors.ts';

export interface FieldProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * A UserError from an API answer: keeps the server's error code, its own message (`detail`,
 * what JSON shows) and field problems; the human message adds the code and HTTP status.
 */
export class ApiFailure extends UserError {
  constructor(
    readonly detail: string,
    readonly status: number,
    exitCode: number,
    readonly code: string,
    readonly fields?: readonly FieldProblem[],
  ) {
    super(status ? `${detail} (${code}, HTTP ${status})` : detail, exitCode);
  }
}

const CODE_OF_EXIT: Record<number, string> = { 1: 'failed', 2: 'invalid_request', 3: 'not_found', 4: 'unauthorized', 5: 'conflict', 6: 'unavailable', 7: 'unreachable' };

/** Whether the command line asks for JSON output (-o json, -ojson, --output json, --output=json). */
export function wantsJson(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return false;
    if ((a === '-o' || a === '--output') && argv[i + 1] === 'json') return true;
    if (a === '-ojson' || a === '--output=json') return true;
  }
  return false;
}

export function errorJson(e: UserError): string;
export function errorJson(code: string, message: string): string;
export function errorJson(e: UserError | string, message?: string): string {
  const error =
    typeof e === 'string'
      ? { code: e, message: message ?? '' }
      : e instanceof ApiFailure
        ? { code: e.code, message: e.detail, ...(e.fields?.length ? { fields: e.fields } : {}) }
        : { code: CODE_OF_EXIT[e.exitCode] ?? 'failed', message: e.message };
  return `${JSON.stringify({ error })}\n`;
}
