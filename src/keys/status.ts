import type { KeyRecord } from './types.js';

/** Active, revoked, or expired (derived from expiresAt, never stored). */
export function keyStatusAt(record: KeyRecord, now: number): 'active' | 'revoked' | 'expired' {
  if (record.status === 'revoked') return 'revoked';
  return record.expiresAt !== null && record.expiresAt <= now ? 'expired' : 'active';
}
