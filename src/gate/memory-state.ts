import { countFailure, type FailureRow } from './auth-failures.js';
import { NonceCache } from './nonce-cache.js';
import { msUntilUtcMidnight, utcDay, type AuthFailurePolicy, type GateState, type LimitOutcome, type NonceResult } from './state.js';
import { takeToken } from './token-bucket.js';

export interface MemoryStateOptions {
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  clock?: () => number;
}

/**
 * The state of one daemon held in memory: lost on restart, so captured requests replay and daily quotas start
 * again (`guardctl serve --state memory`, for tests and experiments). Answers synchronously.
 */
export class MemoryGateState implements GateState {
  private readonly nonces: NonceCache;
  /** Token bucket TAT per key (token-bucket.ts). */
  private readonly buckets = new Map<string, number>();
  /** Requests counted per key for the UTC day `quotaDay`; replaced when the day changes. */
  private quotaDay = '';
  private quotas = new Map<string, number>();
  private readonly slots = new Map<string, number>();
  private readonly failures = new Map<string, FailureRow>();
  private lastFailureSweep = 0;
  private readonly clock: () => number;
  private readonly policy: AuthFailurePolicy;

  constructor(options: MemoryStateOptions) {
    this.clock = options.clock ?? Date.now;
    this.nonces = new NonceCache(options.nonceCapacity, this.clock);
    this.policy = options.authFailures;
  }

  recordNonce(keyId: string, nonce: string, ttlMs: number, share: number): NonceResult {
    return this.nonces.record(keyId, nonce, ttlMs, share);
  }

  forgetNonce(keyId: string, nonce: string): void {
    this.nonces.forget(keyId, nonce);
  }

  consumeRate(keyId: string, rate: number, burst: number): LimitOutcome {
    const now = this.clock();
    const step = takeToken(this.buckets.get(keyId), now, rate, burst);
    // A full bucket needs no entry: one per key that is actually drawing on its bucket.
    if (step.tat <= now) this.buckets.delete(keyId);
    else this.buckets.set(keyId, step.tat);
    if (this.buckets.size > 10_000) this.dropFullBuckets(now);
    return step.outcome;
  }

  async acquireSlot(keyId: string, max: number): Promise<boolean> {
    const held = this.slots.get(keyId) ?? 0;
    if (held >= max) return false;
    this.slots.set(keyId, held + 1);
    return true;
  }

  async releaseSlot(keyId: string): Promise<void> {
    const held = this.slots.get(keyId) ?? 0;
    if (held <= 1) this.slots.delete(keyId);
    else this.slots.set(keyId, held - 1);
  }

  consumeQuota(keyId: string, daily: number, now: number): LimitOutcome {
    const day = utcDay(now);
    if (day !== this.quotaDay) {
      this.quotaDay = day;
      this.quotas = new Map();
    }
    const used = this.quotas.get(keyId) ?? 0;
    const resetMs = msUntilUtcMidnight(now);
    if (used >= daily) return { allowed: false, limit: daily, remaining: 0, resetMs };
    this.quotas.set(keyId, used + 1);
    return { allowed: true, limit: daily, remaining: daily - used - 1, resetMs };
  }

  async recordAuthFailure(ip: string): Promise<number> {
    const now = this.clock();
    // Addresses come and go; drop the finished ones when many have piled up (a full scan at most once a second).
    if (this.failures.size > 100_000 && now - this.lastFailureSweep >= 1000) {
      this.lastFailureSweep = now;
      for (const [k, row] of this.failures) if (row.windowEnd <= now && row.blockedUntil <= now) this.failures.delete(k);
    }
    const row = countFailure(this.failures.get(ip), now, this.policy);
    this.failures.set(ip, row);
    return Math.max(0, row.blockedUntil - now);
  }

  authBlockedFor(ip: string): number {
    if (this.failures.size === 0) return 0;
    const row = this.failures.get(ip);
    if (row === undefined || row.blockedUntil === 0) return 0;
    return Math.max(0, row.blockedUntil - this.clock());
  }

  close(): void {}

  /** How many live nonces a key holds (for tests). */
  heldBy(keyId: string): number {
    return this.nonces.held(keyId);
  }

  private dropFullBuckets(now: number): void {
    for (const [k, tat] of this.buckets) if (tat <= now) this.buckets.delete(k);
  }
}
