/** Reading and checking a certificate bundle before it is allowed anywhere near the store. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { certIdOf } from './ari.js';

export interface Bundle {
  /** The leaf certificate (PEM). */
  cert: string;
  /** The intermediates (PEM, possibly empty). */
  chain: string;
  /** Leaf followed by the intermediates. */
  fullchain: string;
  privkey: string;
}

export interface CertSummary {
  serial: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  names: string[];
  certId: string | null;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in a chain, in order, each with a trailing newline. */
export function splitPem(pem: string): string[] {
  return (pem.match(PEM_BLOCK) ?? []).map((block) => `${block}\n`);
}

/** Splits what the CA returned into cert, chain and fullchain. */
export function toBundle(fullchainPem: string, privkey: string): Bundle {
  const certs = splitPem(fullchainPem);
  return { cert: certs[0] ?? '', chain: certs.slice(1).join(''), fullchain: certs.join(''), privkey };
}

/** The subjectAltName DNS names of a certificate, lower case. */
export function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
}

export function summarize(certPem: string): CertSummary {
  const cert = new X509Certificate(certPem);
  return {
    serial: cert.serialNumber.toLowerCase(),
    issuer: cert.issuer.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? cert.issuer.replace(/\n/g, ', '),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    names: sanNames(cert),
    certId: certIdOf(certPem),
  };
}

/**
 * Throws unless the bundle is complete and usable: every certificate parses, each is signed by the next, the
 * key matches the leaf, the leaf names exactly the requested names, and it is valid now.
 */
export function validateBundle(bundle: Bundle, names: string[], now: number): CertSummary {
  const pems = splitPem(bundle.fullchain);
  if (pems.length === 0) throw new Error('the CA returned no certificate');
  let certs: X509Certificate[];
  try {
    certs = pems.map((pem) => new X509Certificate(pem));
  } catch (err) {
    throw new Error(`the CA returned a certificate that does not parse: ${(err as Error).message}`);
  }
  const leaf = certs[0]!;
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i]!;
    const parent = certs[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new Error(`the chain is broken: certificate ${i} is not signed by certificate ${i + 1}`);
    }
  }
  if (!leaf.checkPrivateKey(createPrivateKey(bundle.privkey))) throw new Error('the certificate does not match the private key');
  const got = sanNames(leaf).sort();
  const want = [...names].sort();
  if (got.length !== want.length || got.some((n, i) => n !== want[i])) {
    throw new Error(`the certificate names ${got.join(', ')} but ${want.join(', ')} were requested`);
  }
  const summary = summarize(pems[0]!);
  if (summary.notAfter <= now) throw new Error(`the certificate expired at ${new Date(summary.notAfter).toISOString()}`);
  if (summary.notBefore > now + 300_000) throw new Error(`the certificate is not valid before ${new Date(summary.notBefore).toISOString()}`);
  return summary;
}
