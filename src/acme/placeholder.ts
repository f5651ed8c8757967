/**
 * A short-lived self-signed certificate that stands in a lineage's place before the CA has answered, so that
 * nginx can start with its final HTTPS configuration on a fresh host. It is marked in meta.json; `cert renew`
 * never renews or deploys it (it needs a first issuance), `cert export` refuses it, and the first `cert issue`
 * under the same name replaces it without keeping it in previous/.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { summarize, toBundle, type Bundle } from './certinfo.js';
import { CertStore } from './store.js';
import type { LineageMeta } from './types.js';
import { isPlaceholder, PLACEHOLDER_DAYS } from './placeholder-flag.js';

export { isPlaceholder, PLACEHOLDER_DAYS };
export const PLACEHOLDER_ISSUER = 'guardctl placeholder (self-signed)';

/**
 * A self-signed certificate for `names`. The key is RSA 2048 from node:crypto (forge signs with RSA only, and
 * generating the key natively takes milliseconds where forge's JavaScript takes seconds).
 */
export function makePlaceholder(names: string[], now: number): Bundle {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`; // positive, 16 bytes
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + PLACEHOLDER_DAYS * 86_400_000);
  const cn = names[0] !== undefined && names[0].length <= 64 ? names[0] : 'guardctl placeholder';
  const subject = [{ name: 'commonName', value: cn }, { name: 'organizationName', value: 'guardctl placeholder' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
  ]);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return toBundle(forge.pki.certificateToPem(cert), keyPem);
}

/** meta.json of a placeholder: no CA, no DNS provider, and due at once (it needs its first issuance). */
export function placeholderMeta(lineage: string, names: string[], bundle: Bundle, now: number): LineageMeta {
  const s = summarize(bundle.cert);
  return {
    version: 1,
    lineage,
    names,
    server: '',
    keyType: 'rsa2048',
    dns: { provider: '', options: {} },
    cert: {
      serial: s.serial,
      issuer: PLACEHOLDER_ISSUER,
      notBefore: new Date(s.notBefore).toISOString(),
      notAfter: new Date(s.notAfter).toISOString(),
      issuedAt: new Date(now).toISOString(),
      certId: null,
    },
    nextRenewalAt: new Date(now).toISOString(),
    placeholder: true,
  };
}

/**
 * Puts a placeholder in lineage `name`'s place unless the lineage exists (a real certificate or an earlier
 * placeholder is left alone). Returns whether one was made.
 */
export async function ensurePlaceholder(home: string, name: string, names: string[], now: number): Promise<{ created: boolean; meta: LineageMeta }> {
  const store = new CertStore(home);
  store.checkWritable();
  return store.locked(name, async () => {
    if (store.exists(name)) return { created: false, meta: store.readMeta(name) };
    const bundle = makePlaceholder(names, now);
    const meta = placeholderMeta(name, names, bundle, now);
    store.install(name, bundle, meta);
    return { created: true, meta };
  });
}
