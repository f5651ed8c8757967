/**
 * The nginx side of `up`: the site's options (the full TLS site, or the HTTP-only bootstrap site that serves the
 * ACME webroot before a certificate exists), and an install that can be undone: the install itself restores the
 * previous files when nginx refuses them; undo() puts them back byte for byte after a later step failed, and
 * reloads nginx with them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GuardError } from '../core/errors.js';
import { detectVersions } from '../nginx/detect.js';
import { installSite, installTargets, type InstallResult, type InstallTargets } from '../nginx/install.js';
import { reloadNginx, describeFailure } from '../nginx/reload.js';
import { renderSite, type SiteOptions } from '../nginx/render.js';
import { matchesSnapshot, restoreSnapshot, takeSnapshot } from '../nginx/snapshot.js';
import type { UpOptions } from './options.js';

/** The certificate files nginx reads, straight from the store (renewals replace them in place). */
export function storeCertPaths(home: string, lineage: string): { certFile: string; keyFile: string; trustedCertFile: string } {
  const dir = path.join(home, 'certs', lineage);
  return { certFile: path.join(dir, 'fullchain.pem'), keyFile: path.join(dir, 'privkey.pem'), trustedCertFile: path.join(dir, 'chain.pem') };
}

export async function siteOptionsFor(o: UpOptions, home: string, bootstrap: boolean): Promise<SiteOptions> {
  const versions = await detectVersions({ nginxBin: o.nginx.bin });
  return {
    domains: [o.domain],
    upstreams: [`${o.daemon.host}:${o.daemon.port}`],
    name: o.siteName,
    path: o.basePath ? `${o.basePath}/` : '/',
    ...(bootstrap ? { bootstrap: true } : storeCertPaths(home, o.lineage)),
    // Always served, so that HTTP-01 renewals keep working and a later switch from DNS-01 needs no new site.
    acmeWebroot: o.webroot,
    nginxVersion: versions.nginx,
    ...(versions.openssl ? { opensslVersion: versions.openssl } : {}),
    ...(o.nginx.httpPort !== undefined ? { httpPort: o.nginx.httpPort } : {}),
    ...(o.nginx.httpsPort !== undefined ? { httpsPort: o.nginx.httpsPort } : {}),
    ...(o.nginx.listenAddress !== undefined ? { listenAddress: o.nginx.listenAddress } : {}),
    snippetsDir: installTargets(o.nginx.root, o.siteName).snippetsDir,
  };
}

/** The files the site consists of once installed. */
export function siteFiles(t: InstallTargets, options: SiteOptions): Array<{ path: string; mode: number | 'symlink' }> {
  const rendered = renderSite(options);
  return [
    { path: t.siteFile, mode: 0o644 },
    ...(t.enabledLink ? [{ path: t.enabledLink, mode: 'symlink' as const }] : []),
    ...Object.keys(rendered.snippets).map((f) => ({ path: path.join(t.snippetsDir, f), mode: 0o644 })),
  ];
}

/** The diff between what is installed and what `options` render ('' when they match). */
export async function siteDiff(root: string, options: SiteOptions): Promise<string> {
  const r = await installSite(root, options.name!, renderSite(options), { dryRun: true });
  return r.diff;
}

export interface NginxTarget {
  root: string;
  bin: string;
  reloadCmd?: string;
}

/** Installs the site; returns the result and an undo that puts the files before it back and reloads. */
export async function installWithUndo(n: NginxTarget, options: SiteOptions): Promise<{ result: InstallResult; undo: () => Promise<void> }> {
  const t = installTargets(n.root, options.name!);
  const snap = takeSnapshot([t.siteFile, ...(t.enabledLink ? [t.enabledLink] : []), t.snippetsDir], t.root);
  const result = await installSite(n.root, options.name!, renderSite(options), { nginxBin: n.bin, reloadCmd: n.reloadCmd });
  const undo = async () => {
    if (!result.changed) return;
    restoreSnapshot(snap);
    if (!matchesSnapshot(snap)) throw new GuardError('GUARD_E_DEPLOY', `could not restore the previous files of the site "${options.name}": check ${t.siteFile} and ${t.snippetsDir} by hand`);
    const again = await reloadNginx(t.conf, { nginxBin: n.bin, reloadCmd: n.reloadCmd });
    if (!again.ok) throw new GuardError('GUARD_E_DEPLOY', `the previous files of the site "${options.name}" are back, but reloading nginx with them failed: ${describeFailure(again)}`);
  };
  return { result, undo };
}

/** Whether an installed guardctl site already answers HTTP-01 from `webroot` (its acme.conf snippet). */
export function servesWebroot(t: InstallTargets, webroot: string): boolean {
  if (!fs.existsSync(t.siteFile)) return false;
  try {
    return fs.readFileSync(path.join(t.snippetsDir, 'acme.conf'), 'utf8').includes(`root ${webroot};`);
  } catch {
    return false;
  }
}

/** Removes the site (file, enabled link, snippets) and reloads nginx; for `down`. */
export async function removeSite(n: NginxTarget, name: string): Promise<string[]> {
  const t = installTargets(n.root, name);
  const gone = [t.enabledLink, t.siteFile, t.snippetsDir].filter((p): p is string => p !== undefined && fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined);
  if (gone.length === 0) return [];
  const snap = takeSnapshot(gone, t.root);
  for (const p of gone) fs.rmSync(p, { recursive: true, force: true });
  const reload = await reloadNginx(t.conf, { nginxBin: n.bin, reloadCmd: n.reloadCmd });
  if (!reload.ok) {
    restoreSnapshot(snap);
    throw new GuardError('GUARD_E_DEPLOY', `nginx did not reload without the site "${name}": ${describeFailure(reload)}; its files are back in place`, { hint: 'check that nginx runs, and the --reload-cmd that up recorded' });
  }
  return gone;
}
