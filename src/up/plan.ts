/**
 * The plan of an `up` run, from the options and what is installed (Facts): pure, so the same inputs always
 * print the same plan, and a second run with nothing to do says so. Each step names its action, why, and the
 * files it writes with their modes.
 */
import path from 'node:path';
import { LOCAL_PROXIES, type UpOptions } from './options.js';
import { runFiles } from './daemon.js';

export type StepId = 'bootstrap' | 'cert' | 'daemon' | 'site' | 'renewal' | 'keys';
export type Action = 'create' | 'update' | 'unchanged';

export interface FileSpec {
  path: string;
  mode: string;
}

export interface PlanStep {
  id: StepId;
  action: Action;
  title: string;
  details: string[];
  files: FileSpec[];
}

export interface Facts {
  now: number;
  /** placeholder: a self-signed stand-in (src/acme/placeholder.ts) that still needs its first issuance. */
  lineage?: { names: string[]; notAfter: string; revoked: boolean; reloadCmd?: string; provider: string; placeholder?: boolean };
  site: { installed: boolean; diff: string; servesWebroot: boolean; files: Array<{ path: string; mode: number | 'symlink' }> };
  daemon: { running: boolean; pid?: number; args?: string[] };
  /** Active keys by name. */
  keys: Array<{ id: string; name: string; tier: string }>;
  /** systemd: whether the unit files on disk differ from the rendered ones. */
  unitsDiffer: { daemon: boolean; timer: boolean };
}

export interface Plan {
  domain: string;
  url: string;
  supervisor: 'process' | 'systemd';
  supervisorWhy: string;
  steps: PlanStep[];
  /** The site's diff against what is installed ('' when it matches). */
  siteDiff: string;
  changes: boolean;
}

const mode = (m: number | 'symlink') => (m === 'symlink' ? 'symlink' : `0${m.toString(8)}`);

export function siteUrl(o: UpOptions): string {
  const port = o.nginx.httpsPort !== undefined && o.nginx.httpsPort !== 443 ? `:${o.nginx.httpsPort}` : '';
  return `https://${o.domain}${port}${o.basePath}`;
}

/** The task `up` verifies and suggests calling: moderation when a model serves it, else translation. */
export function servedTask(o: Pick<UpOptions, 'models'>): 'moderate' | 'translate' {
  return o.models.some((m) => m.task === 'moderate') ? 'moderate' : 'translate';
}

export function reloadHook(o: UpOptions): string {
  return o.nginx.reloadCmd ?? `${o.nginx.bin} -s reload`;
}

export function certReusable(o: UpOptions, f: Facts): boolean {
  const l = f.lineage;
  return l !== undefined && !l.placeholder && l.names.includes(o.domain) && !l.revoked && Date.parse(l.notAfter) > f.now;
}

export function buildPlan(o: UpOptions, home: string, f: Facts): Plan {
  const steps: PlanStep[] = [];
  const reuse = certReusable(o, f);
  const certDir = path.join(home, 'certs', o.lineage);
  const siteFiles = f.site.files.map((x) => ({ path: x.path, mode: mode(x.mode) }));
  const challenge = o.http ? `HTTP-01 through ${o.webroot} (served by nginx on port ${o.nginx.httpPort ?? 80})` : `DNS-01 through the ${o.issue.dns.provider} provider`;

  if (o.http && !reuse && !f.site.servesWebroot) {
    steps.push({ id: 'bootstrap', action: 'create', title: 'temporary HTTP-only site for the ACME challenge', details: [
      `no installed site serves ${o.webroot} at /.well-known/acme-challenge/ yet: the HTTP-only bootstrap site does until the full site replaces it`,
    ], files: siteFiles });
  }
  steps.push({
    id: 'cert',
    action: reuse ? 'unchanged' : f.lineage ? 'update' : 'create',
    title: `certificate "${o.lineage}" for ${o.domain}`,
    details: reuse
      ? [`reusing the certificate in the store (valid until ${f.lineage!.notAfter}; issuing again would cost rate limit)`]
      : [`${f.lineage?.placeholder ? 'issue, replacing the self-signed placeholder in the store' : f.lineage ? 'issue again (the stored one does not cover the domain, expired or was revoked)' : 'issue'} from ${o.issue.server} with ${challenge}`, `key type ${o.issue.keyType}`],
    files: reuse ? [] : [
      { path: path.join(certDir, 'privkey.pem'), mode: '0600' },
      ...['cert', 'chain', 'fullchain'].map((n) => ({ path: path.join(certDir, `${n}.pem`), mode: '0644' })),
      { path: path.join(certDir, 'meta.json'), mode: '0600' },
      ...(o.http ? [{ path: path.join(o.webroot, '.well-known/acme-challenge/<token>'), mode: '0644 (removed after validation)' }] : []),
    ],
  });

  const toMint = o.keys.filter((k) => !f.keys.some((e) => e.name === k.name && e.tier === k.tier));
  steps.push({
    id: 'keys',
    action: toMint.length === 0 ? 'unchanged' : 'create',
    title: 'API keys',
    details: o.keys.map((k) => (toMint.includes(k) ? `mint "${k.name}" (tier ${k.tier}); its secret is shown once` : `keep "${k.name}" (tier ${k.tier}): already active`)),
    files: toMint.length === 0 ? [] : [{ path: path.join(home, 'keys.db'), mode: '0600' }],
  });

  const daemonSame = o.supervisor === 'systemd' ? !f.unitsDiffer.daemon && f.daemon.running : f.daemon.running && JSON.stringify(f.daemon.args) === JSON.stringify(o.serveArgs);
  steps.push({
    id: 'daemon',
    action: daemonSame ? 'unchanged' : f.daemon.running ? 'update' : 'create',
    title: `daemon on ${o.daemon.host}:${o.daemon.port}${o.basePath ? ` under ${o.basePath}` : ''}`,
    details: [
      o.supervisor === 'systemd' ? `a systemd unit, guardctl.service (${o.supervisorWhy})` : `a supervised background process with a pid file (${o.supervisorWhy})`,
      `models: ${o.models.map((m) => `${m.name} (${m.task}, ${m.size})`).join(', ')}`,
      `guardctl serve ${o.serveArgs.join(' ')}`,
      `trusts X-Forwarded-For from the local nginx (${LOCAL_PROXIES.join(', ')}): rate limits, IP allow-lists and the audit see the real client address`,
      ...(daemonSame ? ['already running with these settings'] : f.daemon.running ? [`restart: pid ${f.daemon.pid} runs with other settings`] : []),
    ],
    files: o.supervisor === 'systemd'
      ? [{ path: path.join(o.unitDir, 'guardctl.service'), mode: '0644' }]
      : [{ path: runFiles(home).pidFile, mode: '0600' }, { path: runFiles(home).logFile, mode: '0600' }],
  });

  steps.push({
    id: 'site',
    action: f.site.diff === '' ? 'unchanged' : f.site.installed ? 'update' : 'create',
    title: `nginx site "${o.siteName}" in ${o.nginx.root}`,
    details: [
      `HTTPS on port ${o.nginx.httpsPort ?? 443}, HTTP on ${o.nginx.httpPort ?? 80} (redirect + ACME webroot), proxy to ${o.daemon.host}:${o.daemon.port}`,
      'installed with nginx -t and a reload confirmed by the new workers; the previous files come back if nginx refuses',
      f.site.diff === '' ? 'already installed as it would be rendered' : 'the diff against what is installed follows the plan',
    ],
    files: f.site.diff === '' ? [] : siteFiles,
  });

  const hook = reloadHook(o);
  const hookSame = f.lineage?.reloadCmd === hook;
  const timerSame = o.supervisor !== 'systemd' || !f.unitsDiffer.timer;
  steps.push({
    id: 'renewal',
    action: hookSame && timerSame && reuse ? 'unchanged' : f.lineage ? 'update' : 'create',
    title: 'renewal',
    details: [
      `the certificate's reload hook: ${hook}`,
      o.supervisor === 'systemd'
        ? 'guardctl-renew.timer runs guardctl cert renew --all twice a day'
        : 'no timer (systemd does not run here): run guardctl cert renew --all twice a day from cron; the hook reloads nginx',
    ],
    files: [
      ...(hookSame && reuse ? [] : [{ path: path.join(certDir, 'meta.json'), mode: '0600' }]),
      ...(o.supervisor === 'systemd' && !timerSame ? ['guardctl-renew.service', 'guardctl-renew.timer'].map((n) => ({ path: path.join(o.unitDir, n), mode: '0644' })) : []),
    ],
  });

  return {
    domain: o.domain,
    url: siteUrl(o),
    supervisor: o.supervisor,
    supervisorWhy: o.supervisorWhy,
    steps,
    siteDiff: f.site.diff,
    changes: steps.some((s) => s.action !== 'unchanged'),
  };
}

/** The plan for people: one block per step, then the site diff (coloured by `paintDiff` on a terminal). */
export function formatPlan(p: Plan, paintDiff: (diff: string) => string = (d) => d): string {
  const lines = [`Plan for ${p.url}:`];
  p.steps.forEach((s, i) => {
    lines.push(`  ${i + 1}. ${s.title} [${s.action}]`);
    for (const d of s.details) lines.push(`       ${d}`);
    for (const f of s.files) lines.push(`       writes ${f.path} (${f.mode})`);
  });
  if (p.siteDiff) lines.push('', 'nginx site diff:', paintDiff(p.siteDiff.trimEnd()));
  if (!p.changes) lines.push('', 'Nothing to change: everything is installed as asked.');
  return lines.join('\n');
}
