/**
 * The catalogue of API error codes: each maps to one HTTP status (used by the server) and one
 * CLI exit code (used by the CLI). Add new codes here, nowhere else.
 */
export const ERROR_CODES = {
  invalid_spec: { status: 400, exit: 2, summary: 'the job spec or request body is invalid; `fields` names each problem' },
  invalid_request: { status: 400, exit: 2, summary: 'malformed JSON/YAML or bad parameters' },
  unauthorized: { status: 401, exit: 4, summary: 'no token, or a token the server does not know' },
  forbidden: { status: 403, exit: 4, summary: 'the token is valid but may not do this' },
  not_found: { status: 404, exit: 3, summary: 'no such job, node or queue (or not yours)' },
  conflict: { status: 409, exit: 5, summary: 'the object is not in a state that allows this' },
  idempotency_conflict: { status: 409, exit: 5, summary: 'the idempotency key was already used for a different job spec' },
  unsatisfiable: { status: 422, exit: 2, summary: 'no node of the cluster could run the job even empty; `fields` names the task field (e.g. tasks[0].gpus)' },
  payload_too_large: { status: 413, exit: 2, summary: 'the request body is over the limit' },
  unsupported_media_type: { status: 415, exit: 2, summary: 'send application/json or application/yaml' },
  too_many_jobs: { status: 429, exit: 8, summary: "the tenant has as many open jobs as its limit (maxSubmitJobs) allows: submit again once some have ended" },
  not_leader: { status: 503, exit: 6, summary: 'this server is not the leader for this operation' },
  unavailable: { status: 503, exit: 6, summary: 'the server cannot reach its database' },
  internal: { status: 500, exit: 1, summary: 'a bug: see the server log' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Exit code when the server cannot be reached at all. */
export const EXIT_UNREACHABLE = 7;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fields?: readonly { path: string; message: string }[],
  ) {
    super(message);
  }
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERROR_CODES, s);
}
