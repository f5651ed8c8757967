/**
 * `cert export`: a lineage's key, certificate and chain in one file for servers that cannot read PEM pairs
 * (acme.sh's --toPkcs): PKCS#12 for Java, IIS and appliances, or one PEM bundle (key, leaf, chain) for HAProxy
 * and similar. The file holds the private key: mode 0600, written atomically.
 */
import { createPrivateKey } from 'node:crypto';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import { GuardError, usageError } from '../core/errors.js';
import { splitPem } from './certinfo.js';
import { buildPkcs12 } from './pkcs12.js';
import { isPlaceholder } from './placeholder-flag.js';
import { CertStore } from './store.js';

export const EXPORT_FORMATS = ['p12', 'pem-bundle'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function checkExportFormat(value: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(value)) {
    throw usageError(`--format "${value}" is not an export format`, `use ${EXPORT_FORMATS.join(' or ')}`);
  }
  return value as ExportFormat;
}

export interface ExportResult {
  file: string;
  format: ExportFormat;
  serial: string;
  certificates: number;
  encrypted: boolean;
}

/** Writes the export; password null means an unencrypted key (asked for with --no-password). */
export function exportLineage(home: string, name: string, format: ExportFormat, out: string, password: string | null): ExportResult {
  const store = new CertStore(home);
  const meta = store.readMeta(name);
  if (isPlaceholder(meta)) {
    throw new GuardError('GUARD_E_CERT_NOT_FOUND', `"${name}" holds a self-signed placeholder, not a certificate from a CA`, {
      hint: `get the real certificate first: guardctl cert issue --name ${name} -d ${meta.names.join(' -d ')} --dns PROVIDER`,
    });
  }
  const bundle = store.readBundle(name);
  const certPems = splitPem(bundle.fullchain);
  const file = path.resolve(out);
  const data = format === 'p12'
    ? buildPkcs12({ keyPem: bundle.privkey, certPems, password, friendlyName: name })
    : pemBundle(bundle.privkey, certPems, password);
  writeFileAtomic(file, data, 0o600);
  return { file, format, serial: meta.cert.serial, certificates: certPems.length, encrypted: password !== null };
}

/** The key first (encrypted PKCS#8, AES-256-CBC, when a password is given), then the leaf and its chain. */
function pemBundle(keyPem: string, certPems: string[], password: string | null): string {
  const key = createPrivateKey(keyPem);
  const keyOut = password === null
    ? key.export({ type: 'pkcs8', format: 'pem' })
    : key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: password });
  return `${keyOut.toString()}${certPems.join('')}`;
}
