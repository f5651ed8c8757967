/** `cert issue`: a new lineage (or a re-issue of an existing one with new settings; the old one becomes previous/). */
import { checkDeployWritable, hasDeployFiles } from './deploy.js';
import { errorLine } from './errors.js';
import { deployAndReload, metaFor, obtain, type AccountInputs, type LifecycleDeps } from './obtain.js';
import { CertStore } from './store.js';
import type { DeployTarget, DnsSettings, KeyType, LineageMeta } from './types.js';

export interface IssueOptions extends AccountInputs {
  lineage: string;
  names: string[];
  /** The directory URL. */
  server: string;
  keyType: KeyType;
  profile?: string;
  dns: DnsSettings;
  deploy?: DeployTarget;
}

export interface IssueResult {
  meta: LineageMeta;
  dir: string;
  deployed: string[];
  replacedExisting: boolean;
}

export async function issueCertificate(opts: IssueOptions, deps: LifecycleDeps): Promise<IssueResult> {
  const store = new CertStore(deps.home);
  // Everything that can be checked locally is checked before the CA is asked for anything.
  store.checkWritable();
  if (opts.deploy && hasDeployFiles(opts.deploy)) checkDeployWritable(opts.deploy);
  return store.locked(opts.lineage, async () => {
    const replacedExisting = store.exists(opts.lineage);
    const base: Omit<LineageMeta, 'cert' | 'nextRenewalAt'> = {
      version: 1,
      lineage: opts.lineage,
      names: opts.names,
      server: opts.server,
      keyType: opts.keyType,
      ...(opts.email ? { email: opts.email } : {}),
      ...(opts.profile ? { profile: opts.profile } : {}),
      dns: opts.dns,
      ...(opts.deploy ? { deploy: opts.deploy } : {}),
    };
    // A failure here concerns the new settings, not the installed certificate: the lineage stays as it is.
    const obtained = await obtain(base, opts, deps);
    const meta = metaFor(base, obtained.summary, deps.now());
    store.install(opts.lineage, obtained.bundle, meta);
    deps.log('info', `installed certificate ${meta.cert.serial} for ${opts.names.join(', ')} in ${store.lineageDir(opts.lineage)}`);
    let deployed: string[] = [];
    try {
      deployed = await deployAndReload(store, meta, deps);
    } catch (err) {
      store.writeMeta(opts.lineage, { ...meta, lastError: { at: new Date(deps.now()).toISOString(), message: errorLine(err) } });
      throw err;
    }
    return { meta, dir: store.lineageDir(opts.lineage), deployed, replacedExisting };
  });
}
