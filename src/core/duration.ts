import { usageError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** A number with a unit: the one spelling of a duration. */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** "90d", "24h", "30m", "45s", "500ms" -> milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw usageError(`invalid ${what} "${text}"`, 'use a number with a unit: 500ms, 45s, 30m, 24h, 90d, 2w');
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/**
 * A duration flag that also takes a plain number of seconds (the older spelling, kept for scripts): "90", "45s",
 * "2m", "500ms" -> milliseconds; undefined where the text is neither.
 */
export function secondsOrDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  return DURATION.test(t) ? parseDuration(t) : undefined;
}

/** "--expires 90d" or an ISO 8601 date/time -> absolute epoch milliseconds (must be in the future). */
export function parseExpiry(text: string, now: number): number {
  let at: number;
  if (DURATION.test(text.trim())) at = now + parseDuration(text, 'expiry');
  else {
    at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(at)) throw usageError(`invalid expiry "${text}"`, 'use a duration such as 90d or an ISO date such as 2027-01-31 or 2027-01-31T12:00:00Z');
  }
  if (at <= now) throw usageError(`expiry "${text}" is in the past`, 'give a future date or a positive duration');
  return at;
}

/** "10/s", "600/m", "5" (per second) -> requests per second. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|m|h))?$/.exec(text.trim());
  const per = { s: 1, m: 60, h: 3600 } as const;
  if (!m || Number(m[1]) <= 0) throw usageError(`invalid rate "${text}"`, 'use requests per unit, for example 5/s, 300/m or 1000/h');
  return Number(m[1]) / per[(m[2] ?? 's') as keyof typeof per];
}

export function parsePositiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) <= 0) throw usageError(`${what} must be a positive whole number, got "${text}"`);
  return Number(text);
}
