/**
 * `cert renew`: for each lineage, refresh the CA's renewal window (ARI) when it offers one, decide, and renew
 * the due ones with `replaces`. A failure leaves the installed certificate as it was and is recorded as
 * lastError; a certificate whose deploy or reload failed earlier is deployed again even when not due.
 */
import { fetchRenewalInfo, updateAriState } from './ari.js';
import { fetchDirectory, type AcmeDirectory } from './directory.js';
import { checkDeployWritable, hasDeployFiles } from './deploy.js';
import { errorLine } from './errors.js';
import { deployAndReload, metaFor, obtain, type LifecycleDeps } from './obtain.js';
import { isPlaceholder } from './placeholder-flag.js';
import { decideRenewal, nextRenewalAt } from './renewal.js';
import { CertStore } from './store.js';
import type { LineageMeta } from './types.js';

export interface RenewOptions {
  force?: boolean;
  dryRun?: boolean;
}

export interface RenewDeps extends LifecycleDeps {
  /** Called once, just before the first real renewal of this run (the bounded random delay off a TTY). */
  beforeRenewal?: () => Promise<void>;
}

/** needs-issuance: a placeholder (src/acme/placeholder.ts), which only `cert issue` replaces. */
export type RenewStatus = 'renewed' | 'not-due' | 'would-renew' | 'redeployed' | 'needs-issuance';

export interface RenewOutcome {
  lineage: string;
  status: RenewStatus;
  reason: string;
  nextRenewalAt: string;
  serial: string;
  previousSerial?: string;
  deployed?: string[];
}

const iso = (t: number) => new Date(t).toISOString();

/** Asks the CA for the renewal window when it offers ARI and the last answer's Retry-After has passed. */
async function refreshAri(meta: LineageMeta, directory: AcmeDirectory | null, deps: LifecycleDeps): Promise<boolean> {
  const now = deps.now();
  const certId = meta.cert.certId;
  if (!directory?.renewalInfo || !certId) return false;
  if (meta.ari && meta.ari.certId === certId && now < meta.ari.nextCheckAt) return false;
  try {
    const info = await fetchRenewalInfo(directory.renewalInfo, certId, now);
    meta.ari = updateAriState(meta.ari?.certId === certId ? meta.ari : undefined, certId, info, now);
    if (info.explanationUrl) deps.log('info', `${meta.lineage}: the CA explains its renewal window at ${info.explanationUrl}`);
  } catch (err) {
    deps.log('warn', `${meta.lineage}: renewal information unavailable (${errorLine(err)}); using the saved schedule`);
    return false;
  }
  meta.nextRenewalAt = iso(nextRenewalAt(meta));
  return true;
}

async function directoryOf(meta: LineageMeta, deps: LifecycleDeps): Promise<AcmeDirectory | null> {
  try {
    return await fetchDirectory(meta.server);
  } catch (err) {
    deps.log('warn', `${meta.lineage}: ${errorLine(err)}`);
    return null;
  }
}

export async function renewLineage(name: string, opts: RenewOptions, deps: RenewDeps): Promise<RenewOutcome> {
  const store = new CertStore(deps.home);
  if (!opts.dryRun) store.readMeta(name); // a clear "not found" before any lock file is made
  const run = async (): Promise<RenewOutcome> => {
    const meta = store.readMeta(name);
    if (isPlaceholder(meta)) {
      // It has no CA or DNS provider to renew with, and must never be deployed as if it were real.
      const reason = `a self-signed placeholder: get its first certificate with guardctl cert issue --name ${name} -d ${meta.names.join(' -d ')} --dns PROVIDER`;
      deps.log('warn', `${name}: ${reason}`);
      return { lineage: name, status: 'needs-issuance', reason, serial: meta.cert.serial, nextRenewalAt: meta.nextRenewalAt };
    }
    const directory = await directoryOf(meta, deps);
    const ariChanged = await refreshAri(meta, directory, deps);
    if (ariChanged && !opts.dryRun) store.writeMeta(name, meta);
    const decision = decideRenewal(meta, deps.now(), opts.force);
    const base = { lineage: name, serial: meta.cert.serial, nextRenewalAt: iso(decision.at) };
    const pendingDeploy = meta.deploy !== undefined && (hasDeployFiles(meta.deploy) || Boolean(meta.deploy.reloadCmd)) && meta.deployedSerial !== meta.cert.serial;
    if (!decision.due) {
      if (!pendingDeploy || opts.dryRun) return { ...base, status: 'not-due', reason: decision.reason };
      return record(store, meta, deps, async () => ({ ...base, status: 'redeployed', reason: 'the last deploy or reload had failed', deployed: await deployAndReload(store, meta, deps) }));
    }
    if (opts.dryRun) {
      deps.solverFor(meta.dns); // the provider's configuration (credentials in the environment) is checked
      return { ...base, status: 'would-renew', reason: decision.reason };
    }
    return record(store, meta, deps, async () => {
      if (meta.deploy && hasDeployFiles(meta.deploy)) checkDeployWritable(meta.deploy);
      await deps.beforeRenewal?.();
      const replaces = directory?.renewalInfo && meta.cert.certId && !meta.revokedAt ? meta.cert.certId : undefined;
      const { bundle, summary } = await obtain(meta, {}, deps, replaces);
      const { cert: _cert, nextRenewalAt: _next, ...settings } = meta;
      const fresh = metaFor(settings, summary, deps.now());
      store.install(name, bundle, fresh);
      deps.log('info', `${name}: installed certificate ${fresh.cert.serial} (replaces ${meta.cert.serial})`);
      Object.assign(meta, fresh);
      const deployed = await deployAndReload(store, meta, deps);
      return { lineage: name, status: 'renewed', reason: decision.reason, serial: fresh.cert.serial, previousSerial: base.serial, nextRenewalAt: fresh.nextRenewalAt, deployed };
    });
  };
  return opts.dryRun ? run() : store.locked(name, run);
}

/** Runs one step; on failure, writes lastError into the lineage's (current) meta.json and rethrows. */
async function record(store: CertStore, meta: LineageMeta, deps: LifecycleDeps, step: () => Promise<RenewOutcome>): Promise<RenewOutcome> {
  const at = iso(deps.now());
  try {
    const out = await step();
    store.writeMeta(meta.lineage, { ...store.readMeta(meta.lineage), lastAttemptAt: at, lastError: null });
    return out;
  } catch (err) {
    try {
      store.writeMeta(meta.lineage, { ...store.readMeta(meta.lineage), lastAttemptAt: at, lastError: { at, message: errorLine(err) } });
    } catch (e) {
      deps.log('warn', `${meta.lineage}: could not record the error in meta.json: ${errorLine(e)}`);
    }
    throw err;
  }
}
