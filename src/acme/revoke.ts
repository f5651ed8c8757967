/** `cert revoke`: revokes a lineage's current certificate with its CA account; the next `cert renew` replaces it. */
import { usageError } from '../core/errors.js';
import { openAccount } from './account.js';
import { acmeError } from './errors.js';
import { isPlaceholder } from './placeholder-flag.js';
import type { LifecycleDeps } from './obtain.js';
import { CertStore } from './store.js';
import type { LineageMeta } from './types.js';

/** RFC 5280 reason codes that ACME CAs accept from subscribers. */
export const REVOCATION_REASONS: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
};

export function checkReason(reason: string): number {
  const code = REVOCATION_REASONS[reason];
  if (code === undefined) throw usageError(`unknown revocation reason "${reason}"`, `use one of ${Object.keys(REVOCATION_REASONS).join(', ')}`);
  return code;
}

export async function revokeLineage(name: string, reason: number, deps: Pick<LifecycleDeps, 'home' | 'now' | 'log'>): Promise<LineageMeta> {
  const store = new CertStore(deps.home);
  store.readMeta(name);
  return store.locked(name, async () => {
    const meta = store.readMeta(name);
    if (isPlaceholder(meta)) throw usageError(`"${name}" holds a self-signed placeholder, which no CA issued`, 'there is nothing to revoke; cert issue replaces the placeholder');
    if (meta.revokedAt) throw usageError(`certificate "${name}" (serial ${meta.cert.serial}) was already revoked at ${meta.revokedAt}`, `get a new one with guardctl cert renew ${name}`);
    const client = await openAccount({ home: deps.home, directoryUrl: meta.server, log: deps.log });
    const { cert } = store.readBundle(name);
    try {
      await client.revokeCertificate(cert, { reason });
    } catch (err) {
      throw acmeError(`the CA refused to revoke certificate ${meta.cert.serial}: ${(err as Error).message}`, err, 'a certificate can only be revoked once, by the account that ordered it');
    }
    const at = new Date(deps.now()).toISOString();
    const updated: LineageMeta = { ...meta, revokedAt: at, nextRenewalAt: at };
    store.writeMeta(name, updated);
    return updated;
  });
}
