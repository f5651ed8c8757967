/**
 * `guardctl status`: one report of what `up` installed and whether each part is healthy. Every part lists its
 * problems; any problem makes the command exit 1, so it can serve as a monitoring check.
 */
import fs from 'node:fs';
import { isPlaceholder } from '../acme/placeholder-flag.js';
import { CertStore } from '../acme/store.js';
import { keyStoreExists, openKeyBackend, type KeyStoreSpec } from '../keys/backend.js';
import type { Tier } from '../keys/types.js';
import { httpGet, runningDaemon } from './daemon.js';
import { siteDiff } from './site.js';
import { readState } from './state.js';
import { unitActive } from './systemd.js';

const DAY = 86_400_000;
const iso = (t: number) => new Date(t).toISOString();

interface Part {
  ok: boolean;
  problems: string[];
}

export interface StatusReport {
  deployed: boolean;
  domain: string | null;
  url: string | null;
  certificate: Part & { name: string; placeholder: boolean; names: string[]; not_after: string; days_left: number; next_renewal_at: string; last_error: string | null } | null;
  site: Part & { name: string; file: string; installed: boolean; matches: boolean } | null;
  daemon: Part & { supervisor: string; address: string; pid: number | null; running: boolean; ready: boolean; models: Array<{ name: string; state: string }>; devices: string[]; queue: Record<string, number> } | null;
  keys: Part & { by_tier: Record<string, number>; expiring_within_7_days: Array<{ id: string; name: string; expires_at: string }> } | null;
  renewal: Part & { timer: string; reload_hook: string } | null;
  attention: string[];
}

export interface StatusDeps {
  home: string;
  env: NodeJS.ProcessEnv;
  now(): number;
  keyStore: KeyStoreSpec;
  tiers: Record<string, Tier>;
}

function part<T extends object>(fields: T, problems: string[]): T & Part {
  return { ...fields, ok: problems.length === 0, problems };
}

/** Sample values of one Prometheus metric, by the value of one label. */
function metricByLabel(text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1]!)?.[1];
    if (value !== undefined) out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

/** The daemon's /readyz answer, or undefined when the body is not one (something else answers the address). */
function daemonReadiness(body: string): { ready: boolean; models: Array<{ name: string; state: string }> } | undefined {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null || typeof (j as { ready?: unknown }).ready !== 'boolean') return undefined;
  const models = (j as { models?: unknown }).models;
  return { ready: (j as { ready: boolean }).ready, models: Array.isArray(models) ? models as Array<{ name: string; state: string }> : [] };
}

export async function collectStatus(deps: StatusDeps): Promise<StatusReport> {
  const state = readState(deps.home);
  const now = deps.now();
  if (!state) {
    return { deployed: false, domain: null, url: null, certificate: null, site: null, daemon: null, keys: null, renewal: null, attention: ['nothing is deployed from this data directory: run guardctl up'] };
  }
  const store = new CertStore(deps.home);
  let certificate: StatusReport['certificate'] = null;
  let overdue = false;
  if (store.exists(state.lineage)) {
    const m = store.readMeta(state.lineage);
    const daysLeft = Math.floor((Date.parse(m.cert.notAfter) - now) / DAY);
    overdue = Date.parse(m.nextRenewalAt) < now;
    const problems = [
      // A placeholder is self-signed: clients refuse it, so the deployment is not usable until a real issuance.
      ...(isPlaceholder(m) ? ['a self-signed placeholder, not issued by a CA: run guardctl up (or guardctl cert issue) to replace it'] : []),
      ...(m.revokedAt ? [`revoked at ${m.revokedAt}`] : []),
      ...(daysLeft < 0 ? ['expired'] : daysLeft < 7 ? [`expires in ${daysLeft} days`] : []),
      ...(m.lastError ? [`last renewal failed: ${m.lastError.message}`] : []),
    ];
    certificate = part({ name: state.lineage, placeholder: isPlaceholder(m), names: m.names, not_after: m.cert.notAfter, days_left: daysLeft, next_renewal_at: m.nextRenewalAt, last_error: m.lastError?.message ?? null }, problems);
  }

  const siteFile = state.site.files[0]!;
  const installed = fs.existsSync(siteFile);
  const matches = installed && (await siteDiff(state.site.root, state.site.options).catch(() => 'error')) === '';
  const site = part({ name: state.site.name, file: siteFile, installed, matches },
    !installed ? [`${siteFile} is missing`] : !matches ? ['the installed site differs from what guardctl renders (edited by hand?): guardctl up installs it again'] : []);

  const d = state.daemon;
  const address = `${d.host}:${d.port}`;
  const pid = d.supervisor === 'process' ? runningDaemon(deps.home)?.pid ?? null : null;
  const running = d.supervisor === 'process' ? pid !== null : await unitActive('guardctl.service');
  let ready = false;
  let foreign = false;
  let models: Array<{ name: string; state: string }> = [];
  let devices: string[] = [];
  let queue: Record<string, number> = {};
  if (running) {
    const r = await httpGet(`http://${address}${d.basePath}/readyz`).catch(() => undefined);
    if (r) {
      const body = daemonReadiness(r.body);
      if (body) {
        ready = body.ready && r.status === 200;
        models = body.models;
      } else {
        foreign = true;
      }
    }
    const metrics = await httpGet(`http://${address}${d.basePath}/metrics`).catch(() => undefined);
    if (metrics?.status === 200) {
      queue = metricByLabel(metrics.body, 'guard_engine_queue_length', 'device');
      devices = Object.keys(metricByLabel(metrics.body, 'guard_model_execution_provider', 'provider')).filter((p) => p !== 'none');
    }
  }
  const daemon = part({ supervisor: d.supervisor, address, pid, running, ready, models, devices, queue },
    !running ? [d.supervisor === 'process' ? `not running (pid file ${d.pidFile}); guardctl up starts it again` : 'guardctl.service is not active']
      : foreign ? [`the daemon address ${address}${d.basePath}/readyz answers but not as guardctl (another program on the port?)`]
        : !ready ? ['running but not ready (/readyz is not 200)'] : []);

  let keys: StatusReport['keys'] = null;
  if (keyStoreExists(deps.keyStore, deps.home)) {
    const backend = await openKeyBackend(deps.keyStore, { home: deps.home, env: deps.env, now: deps.now, tiers: deps.tiers });
    try {
      const active = (await backend.list()).filter((k) => k.status === 'active' && (k.expiresAt === null || k.expiresAt > now));
      const byTier: Record<string, number> = {};
      for (const k of active) byTier[k.tier] = (byTier[k.tier] ?? 0) + 1;
      const expiring = active.filter((k) => k.expiresAt !== null && k.expiresAt - now < 7 * DAY).map((k) => ({ id: k.id, name: k.name, expires_at: iso(k.expiresAt!) }));
      keys = part({ by_tier: byTier, expiring_within_7_days: expiring }, [
        ...(active.length === 0 ? ['no active key: clients cannot sign requests'] : []),
        ...expiring.map((k) => `key ${k.id} (${k.name}) expires at ${k.expires_at}`),
      ]);
    } finally {
      await backend.close();
    }
  }

  const timer = state.renewal.units.length > 0 ? ((await unitActive('guardctl-renew.timer')) ? 'active' : 'inactive') : 'none';
  const renewal = part({ timer, reload_hook: state.renewal.reloadCmd }, [
    ...(timer === 'inactive' ? ['guardctl-renew.timer is not active'] : []),
    // Without systemd there is no timer of guardctl's own; only a renewal that is late needs someone's attention.
    ...(timer === 'none' && overdue ? ['the certificate is due for renewal and no timer runs here: run guardctl cert renew --all (from cron)'] : []),
  ]);
  const parts = { certificate, site, daemon, keys, renewal };
  const attention = Object.entries(parts).flatMap(([name, p]) => (p ? p.problems.map((x) => `${name}: ${x}`) : name === 'certificate' ? [`certificate: "${state.lineage}" is not in the store`] : []));
  return { deployed: true, domain: state.domain, url: state.url, ...parts, attention };
}

export function formatStatus(s: StatusReport): string {
  if (!s.deployed) return s.attention.join('\n');
  const mark = (p: Part | null) => (p === null ? 'MISSING' : p.ok ? 'ok' : 'ATTENTION');
  const lines = [`${s.domain} (${s.url})`];
  const c = s.certificate;
  lines.push(`  certificate  ${mark(c)}  ${c ? `${c.placeholder ? 'PLACEHOLDER (self-signed) ' : ''}${c.names.join(', ')}; expires ${c.not_after} (${c.days_left} days); next renewal ${c.next_renewal_at}; last error ${c.last_error ?? 'none'}` : ''}`);
  lines.push(`  nginx site   ${mark(s.site)}  ${s.site ? `${s.site.file}: ${s.site.installed ? 'installed' : 'missing'}, ${s.site.matches ? 'matches' : 'does not match'} what guardctl renders` : ''}`);
  const d = s.daemon;
  lines.push(`  daemon       ${mark(d)}  ${d ? `${d.supervisor} on ${d.address}${d.pid ? ` (pid ${d.pid})` : ''}; ${d.running ? (d.ready ? 'ready' : 'not ready') : 'not running'}; models ${d.models.map((m) => `${m.name}=${m.state}`).join(', ') || '-'}; devices ${d.devices.join(', ') || '-'}; queue ${Object.entries(d.queue).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}` : ''}`);
  const k = s.keys;
  lines.push(`  keys         ${mark(k)}  ${k ? `${Object.entries(k.by_tier).map(([t, n]) => `${n} ${t}`).join(', ') || 'none active'}; expiring within 7 days: ${k.expiring_within_7_days.length}` : ''}`);
  lines.push(`  renewal      ${mark(s.renewal)}  ${s.renewal ? `timer ${s.renewal.timer}; reload hook ${s.renewal.reload_hook}` : ''}`);
  if (s.attention.length > 0) lines.push('', 'Needs attention:', ...s.attention.map((a) => `  - ${a}`));
  return lines.join('\n');
}
