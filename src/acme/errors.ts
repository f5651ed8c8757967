/** The certificate lifecycle's user-facing errors, in one place (codes from src/core/errors.ts). */
import { GuardError } from '../core/errors.js';

/** The CA refused, a challenge failed, or DNS did not propagate. The cause stays for --verbose. */
export function acmeError(message: string, cause?: unknown, hint?: string): GuardError {
  return new GuardError('GUARD_E_ACME', message, {
    hint: hint ?? 'check the DNS provider credentials and that the names are in zones it controls; run again with --verbose for details',
    cause,
  });
}

export function lineageNotFound(name: string, home: string): GuardError {
  return new GuardError('GUARD_E_CERT_NOT_FOUND', `no certificate named "${name}" in ${home}/certs`, {
    hint: 'list them with guardctl cert list, or issue one with guardctl cert issue -d NAME --dns PROVIDER',
  });
}

export function lineageBusy(name: string, pid: number): GuardError {
  return new GuardError('GUARD_E_CERT_BUSY', `certificate "${name}" is being changed by another guardctl (pid ${pid})`, {
    hint: 'wait for it to finish; a stale lock of a process that no longer runs is removed automatically',
  });
}

export function storeError(message: string, cause?: unknown, hint?: string): GuardError {
  return new GuardError('GUARD_E_HOME', message, { hint: hint ?? 'check that the directory exists and is writable by this user', cause });
}

/** One line, without stack, for meta.json's lastError and GUARDCTL_ERROR. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim().slice(0, 500);
}
