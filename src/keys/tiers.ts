import { GuardError } from '../core/errors.js';
import { parseRate } from '../core/duration.js';
import type { KeyRecord, Limits, ModelRef, Tier } from './types.js';

/** Defaults from the HY-MT1.5 web-inference article's tier table. */
export const DEFAULT_TIERS: Readonly<Record<string, Tier>> = Object.freeze({
  free: { name: 'free', models: ['size:small'], concurrency: 2, daily: 1_000, rate: 5, burst: 10 },
  pro: { name: 'pro', models: ['size:small', 'size:large'], concurrency: 10, daily: 50_000, rate: 50, burst: 100 },
  enterprise: { name: 'enterprise', models: ['*'], concurrency: null, daily: null, rate: null, burst: null },
});

const LIMIT_FIELDS = ['concurrency', 'daily', 'rate', 'burst'] as const;

/**
 * The effective tier table: built-ins, with the config file's `tiers:` section merged over them field by field
 * (redefining) or adding new tiers (which must name their models; unset limits mean "no limit").
 */
export function loadTiers(section: Record<string, unknown> | undefined, source = 'the config file'): Record<string, Tier> {
  const tiers: Record<string, Tier> = {};
  for (const [name, tier] of Object.entries(DEFAULT_TIERS)) tiers[name] = { ...tier, models: [...tier.models] };
  for (const [name, raw] of Object.entries(section ?? {})) {
    const where = `tier "${name}" in ${source}`;
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      throw new GuardError('GUARD_E_TIER', `invalid tier name "${name}" in ${source}`, { hint: 'tier names are lower-case letters, digits, - and _, starting with a letter' });
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new GuardError('GUARD_E_TIER', `${where} must be a mapping of limits`, { hint: 'for example: { models: ["size:small"], concurrency: 2, daily: 1000, rate: "5/s", burst: 10 }' });
    }
    const base: Tier = tiers[name] ?? { name, models: [], concurrency: null, daily: null, rate: null, burst: null };
    const fields = raw as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (key !== 'models' && key !== 'require_v2' && key !== 'allow_bearer' && !(LIMIT_FIELDS as readonly string[]).includes(key)) {
        throw new GuardError('GUARD_E_TIER', `${where} has an unknown field "${key}"`, { hint: `allowed fields: models, ${LIMIT_FIELDS.join(', ')}, require_v2, allow_bearer` });
      }
    }
    const tier: Tier = { ...base, ...parseLimits(fields, where) };
    if (fields.require_v2 !== undefined) {
      if (typeof fields.require_v2 !== 'boolean') throw new GuardError('GUARD_E_TIER', `${where}: require_v2 must be true or false`, { hint: `got ${JSON.stringify(fields.require_v2)}` });
      tier.requireV2 = fields.require_v2;
    }
    if (fields.allow_bearer !== undefined) {
      if (typeof fields.allow_bearer !== 'boolean') throw new GuardError('GUARD_E_TIER', `${where}: allow_bearer must be true or false`, { hint: `got ${JSON.stringify(fields.allow_bearer)}` });
      tier.allowBearer = fields.allow_bearer;
    }
    if (!(name in tiers) && fields.models === undefined) {
      throw new GuardError('GUARD_E_TIER', `${where} is new and must list its models`, { hint: 'add models: ["size:small"] or name patterns such as ["guard-*"]' });
    }
    tiers[name] = tier;
  }
  return tiers;
}

/** Parses limit fields from config values (numbers, "5/s" rates, null / "none" / "unlimited" for no limit). */
export function parseLimits(fields: Record<string, unknown>, where: string): Partial<Limits> {
  const out: Partial<Limits> = {};
  if (fields.models !== undefined) {
    const models = fields.models;
    if (!Array.isArray(models) || !models.every((m) => typeof m === 'string' && m.trim() !== '')) {
      throw new GuardError('GUARD_E_TIER', `${where}: models must be a list of patterns`, { hint: 'for example ["size:small", "guard-*"]' });
    }
    for (const m of models) validateSelector(m as string, where);
    out.models = models as string[];
  }
  for (const field of LIMIT_FIELDS) {
    if (!(field in fields)) continue;
    const value = fields[field];
    if (value === null || value === 'none' || value === 'unlimited') {
      out[field] = null;
      continue;
    }
    let n: number;
    if (field === 'rate' && typeof value === 'string') {
      try {
        n = parseRate(value);
      } catch {
        n = NaN;
      }
    } else n = typeof value === 'number' ? value : NaN;
    const whole = field !== 'rate';
    if (!Number.isFinite(n) || n <= 0 || (whole && !Number.isInteger(n))) {
      throw new GuardError('GUARD_E_TIER', `${where}: ${field} must be a positive ${whole ? 'whole number' : 'rate such as 5 or "5/s"'}, or null for no limit`, {
        hint: `got ${JSON.stringify(value)}`,
      });
    }
    out[field] = n;
  }
  return out;
}

export function validateSelector(selector: string, where: string): void {
  if (selector.startsWith('size:')) {
    if (selector !== 'size:small' && selector !== 'size:large') {
      throw new GuardError('GUARD_E_TIER', `${where}: unknown size class in "${selector}"`, { hint: 'use size:small or size:large' });
    }
  } else if (!/^[A-Za-z0-9._*?:/-]+$/.test(selector)) {
    throw new GuardError('GUARD_E_TIER', `${where}: invalid model pattern "${selector}"`, { hint: 'patterns use letters, digits, . _ - / and the wildcards * and ?' });
  }
}

/** The limits that apply to a key: its tier's, with the key's own overrides replacing single fields. */
export function effectiveLimits(record: Pick<KeyRecord, 'tier' | 'overrides'>, tiers: Record<string, Tier>): Limits {
  const tier = tiers[record.tier];
  // A key whose tier was removed from the config keeps only what it was explicitly granted.
  const base: Limits = tier ?? { models: [], concurrency: 1, daily: 0, rate: null, burst: null };
  return {
    models: record.overrides.models ?? base.models,
    concurrency: 'concurrency' in record.overrides ? record.overrides.concurrency ?? null : base.concurrency,
    daily: 'daily' in record.overrides ? record.overrides.daily ?? null : base.daily,
    rate: 'rate' in record.overrides ? record.overrides.rate ?? null : base.rate,
    burst: 'burst' in record.overrides ? record.overrides.burst ?? null : base.burst,
  };
}

/** Whether any selector admits the model: `size:X` by size class, anything else as a case-insensitive glob on the name. */
export function modelAllowed(selectors: readonly string[], model: ModelRef): boolean {
  return selectors.some((s) => (s.startsWith('size:') ? model.size !== undefined && s === `size:${model.size}` : globMatch(s, model.name)));
}

const globCache = new Map<string, RegExp>();
function globMatch(pattern: string, name: string): boolean {
  let re = globCache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 'i');
    globCache.set(pattern, re);
  }
  return re.test(name);
}

/** Whether a key may authenticate with a bearer credential: its own flag, or its tier's `allow_bearer`. */
export function bearerAllowed(record: Pick<KeyRecord, 'tier' | 'allowBearer'>, tiers: Record<string, Tier>): boolean {
  return record.allowBearer || tiers[record.tier]?.allowBearer === true;
}
