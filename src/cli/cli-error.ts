/**
 * The CLI's one error type and its exit codes. Scripts rely on the exit codes, so they are a stable
 * interface: documented in docs/cli.md and in `portcullis --help`, and never renumbered.
 */

/** Process exit codes of `portcullis`. */
export const exitCodes = {
  ok: 0,
  /** A fault of the CLI or an error it could not classify. */
  unexpected: 1,
  /** Bad flags or arguments, or input the server rejected as invalid (HTTP 400, 413, 415). */
  usage: 2,
  /** Not signed in, session expired, or the server refused the token (HTTP 401). */
  unauthenticated: 3,
  /** Forbidden, or denied by policy (HTTP 403). */
  forbidden: 4,
  /** No such request, grant, resource or role (HTTP 404). */
  notFound: 5,
  /** Conflict or wrong state, e.g. approving a request that is no longer pending (HTTP 409). */
  conflict: 6,
  /** The server or network is unavailable (HTTP 5xx, 429, connection refused, timeout). */
  unavailable: 7,
  /** Audit verification found tampering, a token is not genuine or not valid, a policy test case did not match, or reconciliation found drift. */
  verificationFailed: 10,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** The exit-code table as shown at the end of `portcullis --help`. */
export const exitCodeHelp = `Exit codes:
  0   ok
  1   unexpected error
  2   usage error (bad flags or arguments; input rejected by the server)
  3   not signed in, session expired or token refused (HTTP 401)
  4   forbidden or denied by policy (HTTP 403)
  5   not found (HTTP 404)
  6   conflict or wrong state (HTTP 409)
  7   server or network unavailable (HTTP 5xx/429, connection refused, timeout)
  10  audit verification failed, token not genuine or not valid, a policy test case did not match,
      or reconcile found drift`;

/**
 * An error the CLI reports as `error[code]: message` on stderr before exiting with `exitCode`.
 * `code` is the server's problem code for API errors, or a CLI code such as `not_signed_in`.
 */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  /** A next step for the user, printed on its own line (e.g. "run `portcullis login`"). */
  readonly hint: string | undefined;
  /** Extra fields of a problem response, shown with `--json`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    exitCode: ExitCode,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }
}

/** A usage error (exit 2). */
export function usageError(message: string, hint?: string): CliError {
  return new CliError('usage', message, exitCodes.usage, hint === undefined ? {} : { hint });
}
