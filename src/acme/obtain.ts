/**
 * The steps every issuance shares: log in to the CA, order with a fresh key, check the result, install it in
 * the store, deploy it and run the reload command. Commands call issue.ts / renew.ts, which call this.
 */
import path from 'node:path';
import { usageError } from '../core/errors.js';
import { openAccount } from './account.js';
import { fetchDirectory, type AcmeDirectory } from './directory.js';
import { toBundle, validateBundle, type Bundle, type CertSummary } from './certinfo.js';
import { deployFiles, hasDeployFiles, runHook } from './deploy.js';
import { acmeError } from './errors.js';
import { createCsr, generatePrivateKey } from './keys.js';
import { orderCertificate, phaseOf, type LogFn, type NameState, type Solver } from './order.js';
import { nextRenewalAt } from './renewal.js';
import type { CertStore } from './store.js';
import type { DnsSettings, LineageMeta } from './types.js';

export interface LifecycleDeps {
  home: string;
  env: NodeJS.ProcessEnv;
  now(): number;
  log: LogFn;
  /** Builds the DNS-01 solver (provider from the registry + propagation checks) for a lineage's settings. */
  solverFor(dns: DnsSettings): Solver;
  progress?: (name: string, state: NameState) => void;
  /** Challenge/order polling of acme-client, milliseconds (tests shorten it). */
  pollMinMs?: number;
  signal?: AbortSignal;
}

export interface AccountInputs {
  email?: string;
  agreeTos?: boolean;
  eab?: { kid: string; hmacKey: string };
}

const HINTS = {
  order: 'the CA refused the order (its policy, a rate limit, or the account): the reason above is the CA\'s own',
  challenge: 'the CA did not see the right TXT record: check that the provider writes to the zone the public DNS serves (CNAME delegation, split-horizon DNS) and try a longer --dns-timeout',
  finalize: 'the CA did not issue after validation; try again later, and check its status page',
} as const;

/** Orders and validates a certificate for meta's names and settings; touches nothing on disk but the account. */
export async function obtain(meta: Omit<LineageMeta, 'cert' | 'nextRenewalAt'>, account: AccountInputs, deps: LifecycleDeps, replaces?: string): Promise<{ bundle: Bundle; summary: CertSummary }> {
  const solver = deps.solverFor(meta.dns);
  // Reached first: a CA that is down or untrusted is reported at once (acme-client would retry for a minute).
  const directory = await fetchDirectory(meta.server);
  if (meta.profile) checkProfile(directory, meta.profile);
  const client = await openAccount({
    directory,
    home: deps.home,
    directoryUrl: meta.server,
    email: account.email ?? meta.email,
    agreeTos: account.agreeTos,
    eab: account.eab,
    pollMinMs: deps.pollMinMs,
    log: deps.log,
  });
  const privkey = generatePrivateKey(meta.keyType);
  const csr = await createCsr(meta.names, privkey);
  let fullchain: string;
  try {
    fullchain = await orderCertificate(client, { names: meta.names, csr, replaces, profile: meta.profile }, solver, { log: deps.log, progress: deps.progress, signal: deps.signal });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('GUARD_E_')) throw err;
    const phase = phaseOf(err) ?? 'order';
    throw acmeError(`could not get a certificate for ${meta.names.join(', ')}: ${(err as Error).message}`, err, phase === 'challenge' ? solver.failureHint ?? HINTS.challenge : HINTS[phase]);
  }
  const bundle = toBundle(fullchain, privkey);
  try {
    return { bundle, summary: validateBundle(bundle, meta.names, deps.now()) };
  } catch (err) {
    throw acmeError(`the CA's certificate was not installed: ${(err as Error).message}`, err, 'the previous certificate stays in place; report this to the CA if it repeats');
  }
}

/** ACME profiles (draft-aaron-acme-profiles): the directory's meta.profiles must list the one asked for. */
function checkProfile(directory: AcmeDirectory, profile: string): void {
  const profiles = directory.meta?.profiles;
  if (!profiles || !(profile in profiles)) {
    const offered = profiles ? Object.keys(profiles) : [];
    throw usageError(`the CA offers no certificate profile "${profile}"`, offered.length > 0 ? `use one of: ${offered.join(', ')}` : 'this CA has no profiles: leave --profile out');
  }
}

/** meta.json for a freshly obtained certificate. */
export function metaFor(base: Omit<LineageMeta, 'cert' | 'nextRenewalAt'>, summary: CertSummary, now: number): LineageMeta {
  const meta: LineageMeta = {
    ...base,
    cert: {
      serial: summary.serial,
      issuer: summary.issuer,
      notBefore: new Date(summary.notBefore).toISOString(),
      notAfter: new Date(summary.notAfter).toISOString(),
      issuedAt: new Date(now).toISOString(),
      certId: summary.certId,
    },
    nextRenewalAt: '',
    lastAttemptAt: new Date(now).toISOString(),
    lastError: null,
  };
  delete meta.ari;
  delete meta.revokedAt;
  delete meta.deployedSerial;
  meta.nextRenewalAt = new Date(nextRenewalAt(meta)).toISOString();
  return meta;
}

/**
 * Copies the current certificate to the deploy target and runs the reload command; records success as
 * deployedSerial so that a failed deploy is retried by the next `cert renew`, even when nothing is due.
 */
export async function deployAndReload(store: CertStore, meta: LineageMeta, deps: LifecycleDeps): Promise<string[]> {
  const target = meta.deploy;
  if (!target || (!hasDeployFiles(target) && !target.reloadCmd)) return [];
  const bundle = store.readBundle(meta.lineage);
  const files = hasDeployFiles(target) ? deployFiles(bundle, target) : [];
  if (target.reloadCmd) {
    await runHook('reload', target.reloadCmd, deps.env, { lineage: meta.lineage, certDir: path.join(store.dir, meta.lineage), names: meta.names });
  }
  store.writeMeta(meta.lineage, { ...meta, deployedSerial: meta.cert.serial });
  meta.deployedSerial = meta.cert.serial;
  return files;
}
