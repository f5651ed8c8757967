/**
 * Everything the gate remembers between requests, behind one interface: SQLite on one host (the default, it
 * survives restarts: sqlite-state.ts), memory (memory-state.ts), and Redis/Valkey (redis-state.ts), which several
 * daemons share. Each backend makes its own operations atomic; the arithmetic they share (token-bucket.ts,
 * auth-failures.ts) lives outside them. The gate only decides what to ask and how to answer.
 */
export interface LimitOutcome {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the limit's window resets (or the bucket refills a token). */
  resetMs: number;
}

/** 'full': no room left at all; 'key_full': this key holds its whole share (see recordNonce). */
export type NonceResult = 'ok' | 'replayed' | 'full' | 'key_full';

/**
 * Methods on the hot path may answer synchronously (the in-memory state does), saving the gate an await per
 * request; shared stores (Redis) return promises.
 */
export interface GateState {
  /**
   * Records a nonce for a key unless seen; remembered for ttlMs. 'key_full' when the key already holds `share`
   * live nonces, 'full' when no room is left at all: a live nonce is never forgotten early.
   */
  recordNonce(keyId: string, nonce: string, ttlMs: number, share: number): NonceResult | Promise<NonceResult>;
  /** Undoes recordNonce for a request that was refused after it (never executed, so its replay may count as new). */
  forgetNonce(keyId: string, nonce: string): void | Promise<void>;
  /** Takes one token from the key's bucket (refill `rate`/s, capacity `burst`); see token-bucket.ts. */
  consumeRate(keyId: string, rate: number, burst: number): LimitOutcome | Promise<LimitOutcome>;
  /** Takes a concurrency slot if fewer than `max` are held. */
  acquireSlot(keyId: string, max: number): Promise<boolean>;
  releaseSlot(keyId: string): Promise<void>;
  /** Counts one request against the key's quota for the UTC day containing `now`. */
  consumeQuota(keyId: string, daily: number, now: number): LimitOutcome | Promise<LimitOutcome>;
  /** Counts a failed authentication from an address; returns ms the address is now blocked for (0 if not). */
  recordAuthFailure(ip: string): Promise<number>;
  /** Milliseconds the address is still blocked for after too many failures (0 if not). */
  authBlockedFor(ip: string): number | Promise<number>;
  close(): void | Promise<void>;
  /**
   * For a backend that groups its writes (SQLite): resolves once everything recorded so far is durable. The gate
   * waits for it before letting a request through, so a crash cannot forget what an answer relied on, while a
   * refused request (its nonce forgotten before the commit) writes nothing.
   */
  durable?(): Promise<void>;
  /** For a networked backend: whether it answers now, and why not (for /readyz, /metrics and doctor). */
  health?(): StateHealth;
  /**
   * For a networked backend: the address block, recordNonce, consumeRate, acquireSlot and consumeQuota of one
   * request in one round trip, in that order, answering as those would. A request refused after its nonce forgets
   * it and holds no slot (what the gate does step by step); a slot taken is freed with releaseSlot.
   */
  admit?(request: Admission): Promise<AdmissionResult>;
}

/** What GateState.admit checks for one request: null for a limit the key does not have. */
export interface Admission {
  keyId: string;
  ip: string;
  nonce: string;
  ttlMs: number;
  nonceShare: number;
  rate: { rate: number; burst: number } | null;
  concurrency: number | null;
  daily: number | null;
  /** The gate's clock (the UTC day of the daily quota). */
  now: number;
}

export type AdmissionResult =
  | { outcome: 'blocked'; blockedMs: number }
  | { outcome: Exclude<NonceResult, 'ok'> }
  | { outcome: 'ok' | 'rate_limited' | 'concurrency_limited' | 'quota_exhausted'; rate?: LimitOutcome; quota?: LimitOutcome };

export interface StateHealth {
  /** 'redis', ... (the metric label). */
  backend: string;
  up: boolean;
  /** Why not up, for people: no secrets (the store's address without credentials). */
  reason?: string;
  /** Operations that failed since the start. */
  errors: number;
}

/**
 * A shared store that cannot answer (unreachable, too slow): the request is refused with 503 state_unavailable,
 * never let through unchecked.
 */
export class StateUnavailableError extends Error {
  readonly code = 'state_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateUnavailableError';
  }
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
