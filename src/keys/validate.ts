import net from 'node:net';
import { GuardError, usageError } from '../core/errors.js';
import { validateSelector } from './tiers.js';
import type { Limits, Tier } from './types.js';

/** Input checks for new keys, shared by the key store (last line of defence) and `keys create` (early, before
 * anything is written). Errors name the bad value; none of these values is secret. */

export function validateKeyName(name: string): string {
  // \p{C}: control, format and unassigned characters, which would corrupt tables and terminals.
  if (typeof name !== 'string' || name.trim() === '' || [...name].length > 64 || /\p{C}/u.test(name)) {
    throw usageError(`invalid key name ${JSON.stringify(String(name).slice(0, 80))}`, 'use 1 to 64 printable characters, for example --name acme-corp');
  }
  return name;
}

export function validateTier(tier: string, tiers: Record<string, Tier>): Tier {
  const found = Object.hasOwn(tiers, tier) ? tiers[tier] : undefined;
  if (!found) {
    throw new GuardError('GUARD_E_TIER', `unknown tier "${tier}"`, {
      hint: `known tiers: ${Object.keys(tiers).join(', ')} (add tiers in the "tiers:" section of the config file)`,
      details: { tier, known: Object.keys(tiers) },
    });
  }
  return found;
}

/** Plain IPv4/IPv6 addresses or CIDRs; returns them trimmed and de-duplicated. */
export function validateAllowIps(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    if (!isAddressOrCidr(entry)) {
      throw usageError(`invalid IP address or CIDR "${entry}" in the allow-list`, 'use addresses such as 203.0.113.7 or 2001:db8::1, or CIDRs such as 203.0.113.0/24 or 2001:db8::/32');
    }
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

export function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, extra] = entry.split('/');
  const family = net.isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return false;
  try {
    // BlockList is what the gate matches with, so anything it refuses must be refused here too.
    new net.BlockList().addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}

export function validateOverrides(overrides: Partial<Limits>): Partial<Limits> {
  const out: Partial<Limits> = {};
  if (overrides.models !== undefined) {
    if (!Array.isArray(overrides.models) || overrides.models.length === 0) throw usageError('the model list must name at least one pattern', 'for example --models "guard-*,size:small"');
    for (const m of overrides.models) validateSelector(m, 'the key\'s model list');
    out.models = [...overrides.models];
  }
  for (const field of ['concurrency', 'daily', 'rate', 'burst'] as const) {
    if (!(field in overrides) || overrides[field] === undefined) continue;
    const value = overrides[field];
    const whole = field !== 'rate';
    if (value !== null && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (whole && !Number.isInteger(value)))) {
      throw usageError(`invalid ${field} limit ${JSON.stringify(value)}`, `use a positive ${whole ? 'whole number' : 'rate'}, or "unlimited"`);
    }
    out[field] = value;
  }
  return out;
}

export function validateExpiry(expiresAt: number | null | undefined, now: number): number | null {
  if (expiresAt === undefined || expiresAt === null) return null;
  if (!Number.isFinite(expiresAt) || expiresAt <= now) {
    throw usageError(`expiry ${Number.isFinite(expiresAt) ? new Date(expiresAt).toISOString() : String(expiresAt)} is not in the future`, 'give a future date or a positive duration such as 90d');
  }
  return expiresAt;
}
