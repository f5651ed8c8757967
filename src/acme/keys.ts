/** Certificate keys, CSRs and the names that go into them. */
import { generateKeyPairSync } from 'node:crypto';
import { domainToASCII } from 'node:url';
import acme from 'acme-client';
import { usageError } from '../core/errors.js';
import { KEY_TYPES, type KeyType } from './types.js';

export function checkKeyType(value: string): KeyType {
  if (!(KEY_TYPES as readonly string[]).includes(value)) {
    throw usageError(`unknown key type "${value}"`, `use one of ${KEY_TYPES.join(', ')}`);
  }
  return value as KeyType;
}

/** A new private key as PKCS#8 PEM. */
export function generatePrivateKey(type: KeyType): string {
  const { privateKey } = type === 'ec256' || type === 'ec384'
    ? generateKeyPairSync('ec', { namedCurve: type === 'ec256' ? 'P-256' : 'P-384' })
    : generateKeyPairSync('rsa', { modulusLength: Number(type.slice(3)) });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Normalises one name: lower case, IDNs to punycode, no trailing dot; a wildcard only as the whole leftmost
 * label. Throws a usage error naming the bad name.
 */
export function normalizeName(raw: string): string {
  let name = raw.trim().toLowerCase().replace(/\.$/, '');
  const wildcard = name.startsWith('*.');
  const rest = wildcard ? name.slice(2) : name;
  const ascii = domainToASCII(rest);
  const labels = ascii.split('.');
  if (ascii === '' || ascii.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]!)) {
    throw usageError(`"${raw}" is not a valid DNS name for a certificate`, 'give a fully qualified name such as guard.example.com or *.example.com (IP addresses are not supported)');
  }
  name = wildcard ? `*.${ascii}` : ascii;
  return name;
}

/** De-duplicated, normalised names in the order given (the first is the certificate's common name). */
export function normalizeNames(raw: string[]): string[] {
  if (raw.length === 0) throw usageError('no names to certify', 'give at least one name with -d NAME');
  const out: string[] = [];
  for (const name of raw.map(normalizeName)) if (!out.includes(name)) out.push(name);
  if (out.length > 100) throw usageError(`${out.length} names in one certificate; CAs allow at most 100`, 'split the names over several lineages with --name');
  return out;
}

/** The default lineage name: the first name, with a wildcard written as "_wildcard.example.com". */
export function defaultLineageName(names: string[]): string {
  return names[0]!.replace(/^\*\./, '_wildcard.');
}

export function checkLineageName(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(name) || name.includes('..')) {
    throw usageError(`invalid certificate name "${name}"`, 'use letters, digits, dots, dashes and underscores (for example guard.example.com)');
  }
  return name;
}

/** A PEM CSR for the names (the first one also as the common name when it fits). */
export async function createCsr(names: string[], keyPem: string): Promise<Buffer> {
  const commonName = names[0]!.length <= 64 ? names[0] : undefined;
  const [, csr] = await acme.crypto.createCsr({ ...(commonName ? { commonName } : {}), altNames: names }, keyPem);
  return csr;
}
