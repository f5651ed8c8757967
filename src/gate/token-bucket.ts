import type { LimitOutcome } from './state.js';

/**
 * A token bucket kept as one number per key, the GCRA "theoretical arrival time" (TAT): the moment the bucket
 * would be full again. One timestamp is all a shared store (SQLite, Redis) needs to hold, and the arithmetic is
 * the same for every backend, so they cannot drift apart.
 *
 * Guarantee: over any interval of t seconds at most `burst + rate * t` requests are allowed, and a client that
 * keeps to `rate` per second is never refused. A refused request leaves the bucket as it was.
 */
export interface BucketStep {
  outcome: LimitOutcome;
  /** The key's new TAT in ms (unchanged when refused). */
  tat: number;
}

export function takeToken(tat: number | undefined, now: number, rate: number, burst: number): BucketStep {
  const interval = 1000 / rate;
  // A bucket that has been idle is full: its TAT cannot lie in the past.
  const from = tat === undefined || tat < now ? now : tat;
  // Allowed while the debt after this request stays within `burst` tokens.
  const next = from + interval;
  const debt = next - now;
  const capacity = burst * interval;
  if (debt > capacity + 1e-6) {
    return {
      outcome: { allowed: false, limit: burst, remaining: 0, resetMs: Math.max(1, Math.ceil(debt - capacity)) },
      tat: from,
    };
  }
  return {
    outcome: { allowed: true, limit: burst, remaining: Math.floor((capacity - debt) / interval + 1e-9), resetMs: Math.ceil(debt) },
    tat: next,
  };
}
