import type { AuthFailurePolicy } from './state.js';

/** What the gate remembers about one address's failed authentications. */
export interface FailureRow {
  count: number;
  /** End of the counting window that began with the first failure (ms). */
  windowEnd: number;
  /** Until when the address is refused (ms); 0 when it is not. */
  blockedUntil: number;
}

/**
 * Counts one failure: `limit` failures within `windowSec` are allowed, the next one blocks the address for
 * `blockSec`. Shared by every backend so that a restart onto another backend keeps the same rule.
 */
export function countFailure(row: FailureRow | undefined, now: number, policy: AuthFailurePolicy): FailureRow {
  const fresh = !row || row.windowEnd <= now;
  const count = fresh ? 1 : row.count + 1;
  const windowEnd = fresh ? now + policy.windowSec * 1000 : row.windowEnd;
  const stillBlocked = row && row.blockedUntil > now ? row.blockedUntil : 0;
  const blockedUntil = count > policy.limit ? Math.max(stillBlocked, now + policy.blockSec * 1000) : stillBlocked;
  return { count, windowEnd, blockedUntil };
}

/** When a row can be forgotten: its window is over and it blocks nothing. */
export function failureRowExpires(row: FailureRow): number {
  return Math.max(row.windowEnd, row.blockedUntil);
}

/** Failure rows per address, in memory (for SQLite, a copy of the file's, loaded at start). */
export class FailureTable {
  readonly rows = new Map<string, FailureRow>();

  constructor(private readonly policy: AuthFailurePolicy) {}

  /** Counts one failure; returns ms the address is now blocked for (0 if not). */
  count(ip: string, now: number): number {
    const row = countFailure(this.rows.get(ip), now, this.policy);
    this.rows.set(ip, row);
    return Math.max(0, row.blockedUntil - now);
  }

  blockedFor(ip: string, now: () => number): number {
    if (this.rows.size === 0) return 0;
    const row = this.rows.get(ip);
    if (row === undefined || row.blockedUntil === 0) return 0;
    return Math.max(0, row.blockedUntil - now());
  }
}
