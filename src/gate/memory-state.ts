import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { NonceCache } from './nonce-cache.js';
import { msUntilUtcMidnight, utcDay, type AuthFailurePolicy, type GateState, type LimitOutcome, type NonceResult } from './state.js';

export interface MemoryStateOptions {
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  clock?: () => number;
}

/**
 * The single-daemon state. Rates use rate-limiter-flexible's BurstyRateLimiter, its documented token-bucket
 * equivalent: a steady limiter of `rate` per second plus a burst allowance of `burst - rate` that refills over
 * burst/rate seconds, so at most `burst` requests pass at once and `rate`/s pass sustained.
 */
export class MemoryGateState implements GateState {
  private readonly nonces: NonceCache;
  private readonly buckets = new Map<string, BurstyRateLimiter>();
  private readonly quotas = new Map<number, RateLimiterMemory>();
  private readonly slots = new Map<string, number>();
  private readonly failures: RateLimiterMemory;
  /** Blocked addresses and until when: checked on every request without touching the limiter. */
  private readonly blocked = new Map<string, number>();
  private readonly clock: () => number;

  constructor(options: MemoryStateOptions) {
    this.nonces = new NonceCache(options.nonceCapacity, options.clock);
    this.clock = options.clock ?? Date.now;
    this.failures = new RateLimiterMemory({
      keyPrefix: 'authfail',
      points: options.authFailures.limit,
      duration: options.authFailures.windowSec,
      blockDuration: options.authFailures.blockSec,
    });
  }

  recordNonce(keyId: string, nonce: string, ttlMs: number): NonceResult {
    return this.nonces.record(`${keyId}\n${nonce}`, ttlMs);
  }

  async consumeRate(keyId: string, rate: number, burst: number): Promise<LimitOutcome> {
    const limiter = this.bucketFor(rate, burst);
    return settle(limiter.consume(keyId), burst);
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

  async consumeQuota(keyId: string, daily: number, now: number): Promise<LimitOutcome> {
    let limiter = this.quotas.get(daily);
    if (!limiter) {
      // Keyed by UTC day, so the count resets at 00:00 UTC whatever the limiter's own window.
      limiter = new RateLimiterMemory({ keyPrefix: `quota${daily}`, points: daily, duration: 2 * 86_400 });
      this.quotas.set(daily, limiter);
    }
    const outcome = await settle(limiter.consume(`${keyId}:${utcDay(now)}`), daily);
    return { ...outcome, resetMs: msUntilUtcMidnight(now) };
  }

  async recordAuthFailure(ip: string): Promise<number> {
    try {
      await this.failures.consume(ip);
      return 0;
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      this.blocked.set(ip, this.clock() + res.msBeforeNext);
      return res.msBeforeNext;
    }
  }

  authBlockedFor(ip: string): number {
    if (this.blocked.size === 0) return 0;
    const until = this.blocked.get(ip);
    if (until === undefined) return 0;
    const left = until - this.clock();
    if (left <= 0) this.blocked.delete(ip);
    return Math.max(0, left);
  }

  async close(): Promise<void> {}

  private bucketFor(rate: number, burst: number): BurstyRateLimiter {
    const id = `${rate}/${burst}`;
    let limiter = this.buckets.get(id);
    if (!limiter) {
      // rate-limiter-flexible counts whole points per whole-second window: express fractional rates per minute/hour.
      const [points, duration] = wholePoints(rate);
      const extra = Math.max(burst - points, 0);
      const steady = new RateLimiterMemory({ keyPrefix: `rate${id}`, points, duration });
      const bursts = new RateLimiterMemory({ keyPrefix: `burst${id}`, points: extra, duration: Math.max(1, Math.ceil(burst / rate)) });
      limiter = new BurstyRateLimiter(steady, bursts);
      this.buckets.set(id, limiter);
    }
    return limiter;
  }
}

export function wholePoints(rate: number): [points: number, durationSec: number] {
  for (const duration of [1, 60, 3600]) {
    const points = rate * duration;
    if (Number.isInteger(points) || points >= 100) return [Math.max(1, Math.floor(points)), duration];
  }
  return [Math.max(1, Math.floor(rate * 86_400)), 86_400];
}

async function settle(attempt: Promise<RateLimiterRes>, limit: number): Promise<LimitOutcome> {
  try {
    const res = await attempt;
    return { allowed: true, limit, remaining: Math.max(0, res.remainingPoints), resetMs: res.msBeforeNext };
  } catch (res) {
    if (!(res instanceof RateLimiterRes)) throw res;
    return { allowed: false, limit, remaining: 0, resetMs: Math.max(1, res.msBeforeNext) };
  }
}
