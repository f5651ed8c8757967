import { GuardError } from '../core/errors.js';
import type { ProviderContext } from './types.js';

/**
 * Provider errors and logs. Every message starts with the provider's name (lego's rule) so an operator with
 * several providers configured knows which one failed, and every message goes through scrub() because provider
 * APIs echo request data back (Aliyun's SignatureDoesNotMatch message quotes the whole string to sign, AccessKeyId
 * included): a second line of defence behind never putting secrets into messages on purpose.
 */
export interface DnsErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Machine-readable fields for --json (provider, action, status, code); never secrets. */
  details?: Record<string, unknown>;
}

const REDACTED = '[redacted]';

/** Replaces every secret value found in text. Very short values are skipped: they would mangle ordinary words. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}

export function dnsError(provider: string, message: string, opts: DnsErrorOptions = {}, secrets: readonly string[] = []): GuardError {
  return new GuardError('GUARD_E_DNS_PROVIDER', scrub(`${provider}: ${message}`, secrets), {
    hint: opts.hint === undefined ? undefined : scrub(opts.hint, secrets),
    cause: opts.cause,
    details: { provider, ...opts.details },
  });
}

/** The context's logger, prefixed with the provider's name and scrubbed of the given secrets. */
export function providerLog(provider: string, ctx: ProviderContext, secrets: readonly string[]): ProviderContext['log'] {
  return (level, message) => ctx.log(level, scrub(`${provider}: ${message}`, secrets));
}

/** A short description of a thrown value for messages: its code and message, never a stack or a request. */
export function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const code = (cause as { code?: string } | undefined)?.code ?? (err as Error & { code?: string }).code;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  if (code) return code;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}
