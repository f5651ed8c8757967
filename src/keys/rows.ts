import { GuardError } from '../core/errors.js';
import type { KeyRow } from './schema.js';
import { open as unseal, seal } from './seal.js';
import { keyStatusAt } from './status.js';
import { newKeyId, newSecret } from './token.js';
import type { KeyCredentials, Tier } from './types.js';
import { validateAllowIps, validateExpiry, validateKeyName, validateOverrides, validateTier } from './validate.js';
import type { CreateKeyInput } from './store.js';

/**
 * What create, rotate and revoke write, decided once for every backend (SQLite and PostgreSQL): the stores only
 * run the statements, so a rule about keys (validation, grace slots, sealing) cannot drift between them.
 */

export interface NewKeyPlan {
  row: KeyRow;
  secret: string;
  detail: Record<string, unknown>;
}

export function planCreate(input: CreateKeyInput, now: number, tiers: Record<string, Tier>, masterKey: Buffer): NewKeyPlan {
  const name = validateKeyName(input.name);
  validateTier(input.tier, tiers);
  const allowIps = validateAllowIps(input.allowIps ?? []);
  const overrides = validateOverrides(input.overrides ?? {});
  const expiresAt = validateExpiry(input.expiresAt, now);
  const id = newKeyId();
  const secret = newSecret();
  const row: KeyRow = {
    id, name, tier: input.tier, created_at: now, expires_at: expiresAt, revoked_at: null, last_used_at: null,
    allow_ips: JSON.stringify(allowIps), overrides: JSON.stringify(overrides), secret: seal(masterKey, secret, id),
    previous_secret: null, previous_valid_until: null, allow_bearer: input.allowBearer ? 1 : 0,
  };
  return { row, secret, detail: { name, tier: input.tier, expiresAt, allowIps, overrides, ...(input.allowBearer ? { allowBearer: true } : {}) } };
}

export function checkGrace(graceMs: number): void {
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new GuardError('GUARD_E_USAGE', `invalid grace period ${graceMs}`, { hint: 'use 0 or a positive duration such as 24h' });
}

export interface RotatePlan {
  secret: string;
  sealed: string;
  previous: string | null;
  until: number | null;
  detail: Record<string, unknown>;
}

export function planRotate(row: KeyRow, graceMs: number, now: number, masterKey: Buffer): RotatePlan {
  if (row.revoked_at !== null) throw stateError(row.id, 'is revoked and cannot be rotated', 'create a new key with guardctl keys create');
  if (row.expires_at !== null && row.expires_at <= now) throw stateError(row.id, 'has expired and cannot be rotated', 'create a new key with guardctl keys create');
  const secret = newSecret();
  // The old secret moves into the grace slot still sealed; any secret already there (an earlier rotation's) ends now.
  const until = graceMs > 0 ? now + graceMs : null;
  return { secret, sealed: seal(masterKey, secret, row.id), previous: until === null ? null : row.secret, until, detail: { graceMs, previousValidUntil: until } };
}

export function checkRevocable(row: KeyRow): void {
  if (row.revoked_at !== null) throw stateError(row.id, `was already revoked at ${new Date(row.revoked_at).toISOString()}`);
}

/** The record and the secrets that verify at `now` (none for a revoked or expired key). */
export function credentialsOf(row: KeyRow, record: KeyCredentials['record'], now: number, masterKey: Buffer): KeyCredentials {
  if (keyStatusAt(record, now) !== 'active') return { record, secrets: [] };
  const secrets = [{ value: Buffer.from(unseal(masterKey, row.secret, row.id), 'utf8'), notAfter: null as number | null }];
  if (row.previous_secret !== null && row.previous_valid_until !== null && row.previous_valid_until > now) {
    secrets.push({ value: Buffer.from(unseal(masterKey, row.previous_secret, row.id), 'utf8'), notAfter: row.previous_valid_until });
  }
  return { record, secrets };
}

export function notFound(id: string): GuardError {
  return new GuardError('GUARD_E_KEY_NOT_FOUND', `no key has the id ${id}`, { hint: 'see the ids with guardctl keys list' });
}

function stateError(id: string, what: string, hint = 'see its state with guardctl keys show ' + id): GuardError {
  return new GuardError('GUARD_E_KEY_STATE', `key ${id} ${what}`, { hint });
}
