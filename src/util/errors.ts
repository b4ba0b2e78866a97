/**
 * Errors a user can fix (bad input, bad flags). The CLI prints their message on one line and
 * exits non-zero, never a stack trace; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** Process exit code the CLI uses (2: bad usage or input). */
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** An error located in a file: "FILE:LINE: field 'F': MESSAGE". */
export function inputError(file: string, line: number, field: string | null, message: string): UserError {
  return new UserError(`${file}:${line}: ${field === null ? '' : `field '${field}': `}${message}`);
}
