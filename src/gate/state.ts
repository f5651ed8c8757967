/**
 * Everything the gate remembers between requests, behind one interface so that several daemons can share it
 * (Redis) or one can keep it in memory (the default). Implementations own the limiter arithmetic; the gate only
 * decides what to ask and how to answer.
 */
export interface LimitOutcome {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the limit's window resets (or the bucket refills a token). */
  resetMs: number;
}

export type NonceResult = 'ok' | 'replayed' | 'full';

/**
 * Methods on the hot path may answer synchronously (the in-memory state does), saving the gate an await per
 * request; shared stores (Redis) return promises.
 */
export interface GateState {
  /** Records a nonce for a key unless seen; remembered for ttlMs. 'full' when no room is left: never forgets early. */
  recordNonce(keyId: string, nonce: string, ttlMs: number): NonceResult | Promise<NonceResult>;
  /** Takes one token from the key's bucket (refill `rate`/s, capacity `burst`). */
  consumeRate(keyId: string, rate: number, burst: number): Promise<LimitOutcome>;
  /** Takes a concurrency slot if fewer than `max` are held. */
  acquireSlot(keyId: string, max: number): Promise<boolean>;
  releaseSlot(keyId: string): Promise<void>;
  /** Counts one request against the key's quota for the UTC day containing `now`. */
  consumeQuota(keyId: string, daily: number, now: number): Promise<LimitOutcome>;
  /** Counts a failed authentication from an address; returns ms the address is now blocked for (0 if not). */
  recordAuthFailure(ip: string): Promise<number>;
  /** Milliseconds the address is still blocked for after too many failures (0 if not). */
  authBlockedFor(ip: string): number | Promise<number>;
  close(): Promise<void>;
}

export interface AuthFailurePolicy {
  /** Failures allowed per window before the address is blocked. */
  limit: number;
  windowSec: number;
  blockSec: number;
}

/** Milliseconds from `now` to the next 00:00 UTC, when daily quotas reset. */
export function msUntilUtcMidnight(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - now;
}

export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}
