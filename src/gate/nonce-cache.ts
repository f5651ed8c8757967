import type { NonceResult } from './state.js';

/**
 * Seen nonces with their expiry, bounded in count. When full it sweeps expired entries and, if none can go,
 * refuses the new request: forgetting a live nonce early would reopen a replay window.
 */
export class NonceCache {
  private readonly seen = new Map<string, number>();
  private lastFullSweep = 0;

  constructor(private readonly capacity: number, private readonly clock: () => number = Date.now) {}

  get size(): number {
    return this.seen.size;
  }

  record(key: string, ttlMs: number): NonceResult {
    const now = this.clock();
    const expires = this.seen.get(key);
    if (expires !== undefined) {
      if (expires > now) return 'replayed';
      this.seen.delete(key);
    }
    this.sweepFront(now);
    if (this.seen.size >= this.capacity) {
      // Entries are roughly in expiry order; a full scan (at most once a second) finds any stragglers.
      if (now - this.lastFullSweep >= 1000) {
        this.lastFullSweep = now;
        for (const [k, exp] of this.seen) if (exp <= now) this.seen.delete(k);
      }
      if (this.seen.size >= this.capacity) return 'full';
    }
    this.seen.set(key, now + ttlMs);
    return 'ok';
  }

  private sweepFront(now: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > now) break;
      this.seen.delete(k);
    }
  }
}
