/** What `cert list` shows of each lineage (the --json shape). */
import path from 'node:path';
import { isPlaceholder } from './placeholder-flag.js';
import type { CertStore } from './store.js';

export interface LineageRow {
  name: string;
  names: string[];
  issuer: string;
  serial: string;
  server: string;
  provider: string;
  not_before: string;
  not_after: string;
  days_left: number;
  next_renewal_at: string;
  ari: { window_start: string; window_end: string; selected_at: string; next_check_at: string } | null;
  revoked_at: string | null;
  last_attempt_at: string | null;
  last_error: { at: string; message: string } | null;
  dir: string;
  /** A self-signed placeholder awaiting its first issuance (src/acme/placeholder.ts). */
  placeholder: boolean;
}

const iso = (t: number) => new Date(t).toISOString();

export function lineageRows(store: CertStore, now: number): LineageRow[] {
  return store.list().map((name) => {
    const m = store.readMeta(name);
    const ari = m.ari && m.ari.certId === m.cert.certId ? m.ari : undefined;
    return {
      name,
      names: m.names,
      issuer: m.cert.issuer,
      serial: m.cert.serial,
      server: m.server,
      provider: m.dns.provider,
      not_before: m.cert.notBefore,
      not_after: m.cert.notAfter,
      days_left: Math.floor((Date.parse(m.cert.notAfter) - now) / 86_400_000),
      next_renewal_at: m.nextRenewalAt,
      ari: ari ? { window_start: iso(ari.windowStart), window_end: iso(ari.windowEnd), selected_at: iso(ari.selectedAt), next_check_at: iso(ari.nextCheckAt) } : null,
      revoked_at: m.revokedAt ?? null,
      last_attempt_at: m.lastAttemptAt ?? null,
      last_error: m.lastError ?? null,
      dir: path.join(store.dir, name),
      placeholder: isPlaceholder(m),
    };
  });
}
