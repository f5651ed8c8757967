import type { Limits } from '../keys/types.js';

/**
 * The most live nonces one key may hold: what its own limits let it send within a nonce's lifetime. A token
 * bucket admits at most `burst + rate * t` requests in t seconds, and refused requests record no nonce, so a key
 * that keeps to its limits never reaches its share, while a flooding key cannot fill the room the others need.
 * A daily quota bounds it too (twice: a lifetime can span midnight). A key with neither limit may use it all.
 */
export function nonceShare(limits: Pick<Limits, 'rate' | 'burst' | 'daily'>, ttlMs: number, capacity: number): number {
  let share = capacity;
  if (limits.rate !== null) share = Math.min(share, Math.ceil(bucketSize(limits) + (limits.rate * ttlMs) / 1000));
  if (limits.daily !== null) share = Math.min(share, 2 * limits.daily);
  return Math.max(1, share);
}

/** The bucket's capacity as the gate uses it: the configured burst, or one second's worth. */
export function bucketSize(limits: Pick<Limits, 'rate' | 'burst'>): number {
  return limits.burst ?? Math.max(1, Math.ceil(limits.rate ?? 1));
}
