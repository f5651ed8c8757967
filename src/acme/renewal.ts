/**
 * When to renew. With ARI the CA's window decides (a random moment inside it, chosen once per window);
 * otherwise renew when a third of the lifetime remains (half of it for certificates that live under 10 days).
 */
import type { LineageMeta } from './types.js';

const DAY = 86_400_000;

/** The fallback schedule: notAfter minus a third (or a half, for short-lived certificates) of the lifetime. */
export function lifetimeRenewalAt(notBefore: number, notAfter: number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  const remaining = lifetime < 10 * DAY ? lifetime / 2 : lifetime / 3;
  return Math.floor(notAfter - remaining);
}

/** When this lineage should next be renewed, from what meta.json holds. */
export function nextRenewalAt(meta: Pick<LineageMeta, 'cert' | 'ari' | 'revokedAt'>): number {
  if (meta.revokedAt) return Date.parse(meta.revokedAt);
  if (meta.ari && meta.ari.certId === meta.cert.certId) return meta.ari.selectedAt;
  return lifetimeRenewalAt(Date.parse(meta.cert.notBefore), Date.parse(meta.cert.notAfter));
}

export interface RenewalDecision {
  due: boolean;
  at: number;
  reason: string;
}

export function decideRenewal(meta: LineageMeta, now: number, force = false): RenewalDecision {
  const at = nextRenewalAt(meta);
  if (force) return { due: true, at, reason: 'forced' };
  if (meta.revokedAt) return { due: true, at, reason: 'the certificate was revoked' };
  if (Date.parse(meta.cert.notAfter) <= now) return { due: true, at, reason: 'the certificate has expired' };
  const source = meta.ari && meta.ari.certId === meta.cert.certId ? 'inside the CA\'s renewal window (ARI)' : 'a third of the lifetime remains';
  if (at <= now) return { due: true, at, reason: source };
  return { due: false, at, reason: `not before ${new Date(at).toISOString()}` };
}

/** A bounded random delay before renewing from a timer, so fleets do not hit the CA at the same second. */
export function jitterMs(maxMs: number, random = Math.random): number {
  return maxMs > 0 ? Math.floor(random() * maxMs) : 0;
}
