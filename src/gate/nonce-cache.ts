import type { NonceResult } from './state.js';

interface Entry {
  expires: number;
  owner: string;
}

/**
 * Seen nonces with their expiry, bounded in count overall and per owner (API key). When full it sweeps expired
 * entries and, if none can go, refuses the new request: forgetting a live nonce early would reopen a replay
 * window. The per-owner bound keeps one key from taking the room every other key needs.
 */
export class NonceCache {
  private readonly seen = new Map<string, Entry>();
  private readonly perOwner = new Map<string, number>();
  private lastFullSweep = 0;
  /** When the nonce that record() last accepted expires: the caller that writes it down needs no second lookup. */
  lastExpires = 0;

  constructor(private readonly capacity: number, private readonly clock: () => number = Date.now) {}

  get size(): number {
    return this.seen.size;
  }

  /** Live entries held by one owner. */
  held(owner: string): number {
    return this.perOwner.get(owner) ?? 0;
  }

  record(owner: string, nonce: string, ttlMs: number, share = Infinity): NonceResult {
    const now = this.clock();
    const key = `${owner}\n${nonce}`;
    const entry = this.seen.get(key);
    if (entry !== undefined) {
      if (entry.expires > now) return 'replayed';
      this.delete(key, entry);
    }
    this.sweepFront(now);
    if (this.seen.size >= this.capacity) {
      // Entries are roughly in expiry order; a full scan (at most once a second) finds any stragglers.
      if (now - this.lastFullSweep >= 1000) {
        this.lastFullSweep = now;
        for (const [k, e] of this.seen) if (e.expires <= now) this.delete(k, e);
      }
      if (this.seen.size >= this.capacity) return 'full';
    }
    if (this.held(owner) >= share) return 'key_full';
    this.lastExpires = now + ttlMs;
    this.seen.set(key, { expires: this.lastExpires, owner });
    this.perOwner.set(owner, this.held(owner) + 1);
    return 'ok';
  }

  /** Removes a live nonce; returns when it would have expired (undefined if it was not held). */
  forget(owner: string, nonce: string): number | undefined {
    const key = `${owner}\n${nonce}`;
    const entry = this.seen.get(key);
    if (!entry) return undefined;
    this.delete(key, entry);
    return entry.expires;
  }

  /** Puts back a nonce remembered elsewhere (a file), oldest first; no bound applies. */
  restore(owner: string, nonce: string, expires: number): void {
    const key = `${owner}\n${nonce}`;
    if (this.seen.has(key)) return;
    this.seen.set(key, { expires, owner });
    this.perOwner.set(owner, this.held(owner) + 1);
  }

  private delete(key: string, entry: Entry): void {
    this.seen.delete(key);
    const left = this.held(entry.owner) - 1;
    if (left > 0) this.perOwner.set(entry.owner, left);
    else this.perOwner.delete(entry.owner);
  }

  private sweepFront(now: number): void {
    for (const [k, e] of this.seen) {
      if (e.expires > now) break;
      this.delete(k, e);
    }
  }
}
