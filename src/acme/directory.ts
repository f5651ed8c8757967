/**
 * CA directory aliases, the per-CA account folder name, and trust for private CAs (Pebble, step-ca): extra
 * root certificates for the ACME server's own HTTPS come from NODE_EXTRA_CA_CERTS (read by Node at start) or,
 * for a process that is already running (in-process tests), from GUARDCTL_ACME_CA_CERTIFICATES.
 */
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import acme from 'acme-client';
import { GuardError, usageError } from '../core/errors.js';
import { acmeError } from './errors.js';
import { getJson } from './http.js';

export const CA_ALIASES: Record<string, string> = {
  letsencrypt: acme.directory.letsencrypt.production,
  'letsencrypt-staging': acme.directory.letsencrypt.staging,
  zerossl: acme.directory.zerossl.production,
};

export const DEFAULT_SERVER = 'letsencrypt';

/** An alias or an http(s) URL -> the directory URL. */
export function resolveDirectoryUrl(server: string): string {
  const alias = CA_ALIASES[server];
  if (alias) return alias;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usageError(`unknown ACME server "${server}"`, `use ${Object.keys(CA_ALIASES).join(', ')} or the directory URL of an RFC 8555 CA (https://...)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw usageError(`the ACME server URL must be https://, got "${server}"`, 'give the CA\'s directory URL, for example https://acme-v02.api.letsencrypt.org/directory');
  }
  return url.href;
}

/** ZeroSSL (and some private CAs) need External Account Binding credentials. */
export function requiresEab(directoryUrl: string): boolean {
  return new URL(directoryUrl).hostname.endsWith('zerossl.com');
}

/** The account folder for a CA: its host (and port), safe as a file name. */
export function accountDirName(directoryUrl: string): string {
  const url = new URL(directoryUrl);
  return url.host.replace(/[^A-Za-z0-9.-]/g, '_');
}

export interface AcmeDirectory {
  newOrder?: string;
  renewalInfo?: string;
  meta?: { termsOfService?: string; externalAccountRequired?: boolean; profiles?: Record<string, string> };
}

/** GETs the directory document (with the same trust as acme-client's requests). */
export async function fetchDirectory(directoryUrl: string): Promise<AcmeDirectory> {
  let res;
  try {
    res = await getJson(directoryUrl);
  } catch (err) {
    throw new GuardError('GUARD_E_NETWORK', `cannot reach the ACME server ${directoryUrl}: ${(err as Error).message}`, { hint: TRUST_HINT, cause: err });
  }
  const dir = res.body as AcmeDirectory | null;
  if (res.status !== 200 || typeof dir !== 'object' || dir === null || typeof dir.newOrder !== 'string') {
    throw acmeError(`${directoryUrl} is not an ACME directory (HTTP ${res.status})`, undefined, TRUST_HINT);
  }
  return dir;
}

const TRUST_HINT = 'check the --server URL and the network; for a private CA trust its root with NODE_EXTRA_CA_CERTS';

const trusted = new Set<string>();

/**
 * Trusts the PEM files listed in GUARDCTL_ACME_CA_CERTIFICATES (separated by commas or the path delimiter) for
 * requests to the ACME server, on top of Node's roots. A no-op when the variable is empty.
 */
export function configureAcmeTrust(env: NodeJS.ProcessEnv): void {
  const list = env.GUARDCTL_ACME_CA_CERTIFICATES;
  if (!list) return;
  let added = false;
  for (const file of list.split(/[,:]/).map((s) => s.trim()).filter(Boolean)) {
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usageError(`cannot read the CA certificate ${file} (GUARDCTL_ACME_CA_CERTIFICATES): ${(err as Error).message}`, 'list PEM files of the roots your ACME server\'s HTTPS certificate chains to');
    }
    if (!trusted.has(pem)) {
      trusted.add(pem);
      added = true;
    }
  }
  if (added) acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, ...trusted], keepAlive: false });
}
