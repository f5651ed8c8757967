import { FailureTable, failureRowExpires } from './auth-failures.js';
import { NonceCache } from './nonce-cache.js';
import { DailyCounts, ProcessSlots } from './counters.js';
import { type AuthFailurePolicy, type GateState, type LimitOutcome, type NonceResult } from './state.js';
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
export class MemoryGateState extends ProcessSlots implements GateState {
  private readonly nonces: NonceCache;
  /** Token bucket TAT per key (token-bucket.ts). */
  private readonly buckets = new Map<string, number>();
  private readonly quotas = new DailyCounts();
  private readonly failures: FailureTable;
  private lastFailureSweep = 0;
  private readonly clock: () => number;

  constructor(options: MemoryStateOptions) {
    super();
    this.clock = options.clock ?? Date.now;
    this.nonces = new NonceCache(options.nonceCapacity, this.clock);
    this.failures = new FailureTable(options.authFailures);
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

  consumeQuota(keyId: string, daily: number, now: number): LimitOutcome {
    return this.quotas.consume(keyId, daily, now);
  }

  async recordAuthFailure(ip: string): Promise<number> {
    const now = this.clock();
    // Addresses come and go; drop the finished ones when many have piled up (a full scan at most once a second).
    const rows = this.failures.rows;
    if (rows.size > 100_000 && now - this.lastFailureSweep >= 1000) {
      this.lastFailureSweep = now;
      for (const [k, row] of rows) if (failureRowExpires(row) <= now) rows.delete(k);
    }
    return this.failures.count(ip, now);
  }

  authBlockedFor(ip: string): number {
    return this.failures.blockedFor(ip, this.clock);
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
