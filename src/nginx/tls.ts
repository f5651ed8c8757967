/**
 * TLS settings: Mozilla's server-side TLS profiles (https://ssl-config.mozilla.org/), the key exchange groups
 * the OpenSSL in use supports, and the certificate files (from the guardctl store or given as files).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import { GuardError, usageError } from '../core/errors.js';
import { CertStore } from '../acme/store.js';
import { checkNginxPath, versionAtLeast } from './validate.js';

export const TLS_PROFILES = ['intermediate', 'modern'] as const;
export type TlsProfile = (typeof TLS_PROFILES)[number];

/** Mozilla intermediate: the six ECDHE AEAD suites for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). */
export const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export interface TlsView {
  profile: TlsProfile;
  protocols: string;
  ciphers?: string;
  curves: string;
}

export function checkProfile(value: string): TlsProfile {
  if (!(TLS_PROFILES as readonly string[]).includes(value)) {
    throw usageError(`--tls-profile "${value}" is not a profile`, `use ${TLS_PROFILES.join(' or ')}`);
  }
  return value as TlsProfile;
}

/** The profile's directives; the hybrid post-quantum group goes first only where OpenSSL (>= 3.5) has it. */
export function tlsView(profile: TlsProfile, opensslVersion: string | undefined): TlsView {
  const curves = ['X25519', 'prime256v1', 'secp384r1'];
  if (opensslVersion !== undefined && versionAtLeast(opensslVersion, '3.5.0')) curves.unshift('X25519MLKEM768');
  return profile === 'modern'
    ? { profile, protocols: 'TLSv1.3', curves: curves.join(':') }
    : { profile, protocols: 'TLSv1.2 TLSv1.3', ciphers: INTERMEDIATE_CIPHERS.join(':'), curves: curves.join(':') };
}

export interface CertPaths {
  certFile: string;
  keyFile: string;
  /** The issuer chain, for ssl_trusted_certificate (OCSP stapling verification). */
  chainFile?: string;
}

/**
 * `--cert LINEAGE`: the store's fullchain.pem and privkey.pem (nginx reads them as root at start and reload).
 * `mayBeMissing`: the paths of a lineage that a placeholder will fill (install --dry-run --placeholder-cert).
 */
export function lineagePaths(home: string, lineage: string, mayBeMissing = false): CertPaths {
  const store = new CertStore(home);
  const valid = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(lineage) && !lineage.includes('..');
  const exists = valid && store.exists(lineage);
  if (!valid || (!exists && !mayBeMissing)) {
    throw new GuardError('GUARD_E_CERT_NOT_FOUND', `--cert "${lineage}": no certificate of that name in ${store.dir}`, {
      hint: 'list them with guardctl cert list; issue one with guardctl cert issue, or render the HTTP-only bootstrap site without --cert (nginx install --placeholder-cert starts with a self-signed one)',
    });
  }
  const dir = store.lineageDir(lineage);
  const certFile = checkNginxPath(`${dir}/fullchain.pem`, '--cert');
  if (exists) readCertificate(certFile, `--cert "${lineage}":`);
  return { certFile, keyFile: checkNginxPath(`${dir}/privkey.pem`, '--cert'), chainFile: `${dir}/chain.pem` };
}

function readOrFail(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw usageError(`${flag} "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'give a readable PEM file (nginx reads it as root)');
  }
}

/** The leaf certificate of a PEM file (its first certificate), or a usage error naming the file. */
export function readCertificate(file: string, flag = '--cert-file'): X509Certificate {
  const pem = readOrFail(file, flag);
  try {
    return new X509Certificate(pem);
  } catch {
    throw usageError(`${flag} "${file}" does not hold a PEM certificate`);
  }
}

/** `--cert-file F --key-file K`: both readable, a certificate and a matching private key. */
export function filePaths(certFile: string, keyFile: string): CertPaths {
  const cert = checkNginxPath(certFile, '--cert-file');
  const key = checkNginxPath(keyFile, '--key-file');
  const x509 = readCertificate(cert);
  const keyPem = readOrFail(key, '--key-file');
  let privateKey;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch {
    throw usageError(`--key-file "${key}" does not hold an unencrypted PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw usageError(`--key-file "${key}" is not the private key of --cert-file "${cert}"`);
  return { certFile: cert, keyFile: key };
}

/** The OCSP responder URL of a certificate, if its authorityInfoAccess names one. */
export function ocspUrl(cert: X509Certificate): string | undefined {
  return /^OCSP - URI:(\S+)$/m.exec(cert.infoAccess ?? '')?.[1];
}

/** --ocsp-stapling is refused unless the certificate carries an OCSP URL (Let's Encrypt's no longer do). */
export function assertStaplingPossible(certFile: string): string {
  const url = ocspUrl(readCertificate(certFile, '--ocsp-stapling certificate'));
  if (url === undefined) {
    throw usageError(`--ocsp-stapling: the certificate ${certFile} names no OCSP responder (authorityInfoAccess has no OCSP URL)`,
      'leave OCSP stapling off: Let\'s Encrypt ended OCSP in 2025, and browsers do not need it');
  }
  return url;
}
