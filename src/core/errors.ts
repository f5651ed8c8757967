/**
 * Typed errors. A GuardError is a user-facing problem (bad flag, missing credential, bad file): the CLI prints
 * its message and hint on one line each and exits with its exitCode. Anything else that reaches the CLI is a bug
 * and prints a stack trace only with --verbose. Codes are stable: docs/errors.md lists them and a test keeps
 * that list in sync with ERROR_CODES.
 */
export const ERROR_CODES = {
  GUARD_E_USAGE: 'A flag or argument is missing or malformed.',
  GUARD_E_CONFIG: 'The configuration file cannot be read or holds an invalid value.',
  GUARD_E_HOME: 'The data directory cannot be created, read or written, or has unsafe permissions.',
  GUARD_E_MASTER_KEY: 'The master key is missing, malformed, readable by others, or does not open the key store.',
  GUARD_E_KEYSTORE: 'The key store cannot be opened or is damaged.',
  GUARD_E_STATE: "The gate's state file (nonces, quotas, blocks) cannot be opened, is in use by another daemon, or is damaged.",
  GUARD_E_KEY_NOT_FOUND: 'No API key has that id.',
  GUARD_E_KEY_STATE: 'The key is in a state that does not allow the operation (for example already revoked).',
  GUARD_E_TOKEN: 'An API key id or secret is mistyped or truncated (its checksum does not match).',
  GUARD_E_TIER: 'The tier is unknown or its definition is invalid.',
  GUARD_E_SECRET_SOURCE: "A secret (the signing secret, cert export's password) could not be read from the given file or variable.",
  GUARD_E_NETWORK: 'A request to a server failed.',
  GUARD_E_DNS_PROVIDER: 'A DNS provider is misconfigured (missing credentials, unknown zone) or its API refused or failed a request.',
  GUARD_E_ACME: 'The ACME CA refused a request, or a challenge or order failed.',
  GUARD_E_CERT_NOT_FOUND: 'No certificate has that name in the store.',
  GUARD_E_CERT_BUSY: 'Another guardctl process is changing that certificate.',
  GUARD_E_DEPLOY: 'A certificate or nginx site could not be put in place, or its reload or hook command failed.',
  GUARD_E_DAEMON: 'The daemon could not be started, did not become ready, or could not be stopped.',
  GUARD_E_UP: 'A step of guardctl up failed; what that run had changed was undone (a certificate already obtained is kept).',
  GUARD_E_NGINX_BUSY: 'Another guardctl process is installing a site into that nginx root.',
  GUARD_E_NGINX: 'nginx cannot be run or its version read, the nginx root lacks what a site needs, or a site file cannot be read.',
  GUARD_E_NGINX_CONFIG: 'nginx -t refused the configuration with the new site; nothing was changed.',
  GUARD_E_LISTEN: 'The daemon cannot listen on its address: the port is in use, needs privileges, or the address is not this machine\'s.',
  GUARD_E_MODEL: 'A model failed to load, so the daemon does not start (unless --allow-partial).',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GuardErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable fields for --json output; never secrets. */
  details?: Record<string, unknown>;
}

export class GuardError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly exitCode: 1 | 2;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GuardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GuardError';
    this.code = code;
    this.hint = options.hint;
    // Exit 2 means the command line itself was wrong (a bad or missing flag), so it follows from the code alone.
    this.exitCode = code === 'GUARD_E_USAGE' ? 2 : 1;
    this.details = options.details;
  }
}

export function usageError(message: string, hint?: string): GuardError {
  return new GuardError('GUARD_E_USAGE', message, { hint });
}

export function isGuardError(err: unknown): err is GuardError {
  return err instanceof GuardError;
}
