/** `guardctl up` flags -> UpOptions: every check done before anything is planned, written or asked of a server. */
import fs from 'node:fs';
import path from 'node:path';
import { usageError } from '../core/errors.js';
import type { IssueOptions } from '../acme/issue.js';
import { defaultLineageName, normalizeNames } from '../acme/keys.js';
import { issueOptionsFrom, type IssueFlags } from '../acme/options.js';
import { checkUniqueNames, embeddedModels, parseModelFlag } from '../daemon/models.js';
import type { ModelSpec } from '../infer/types.js';
import { defaultSiteName } from '../nginx/render.js';
import { checkListenAddress, checkPathPrefix, checkPort, checkSiteName } from '../nginx/validate.js';
import { validateKeyName, validateTier } from '../keys/validate.js';
import type { Tier } from '../keys/types.js';

export interface UpFlags extends Omit<IssueFlags, 'domain' | 'dns' | 'httpWebroot' | 'name' | 'deployDir' | 'certFile' | 'keyFile' | 'fullchainFile' | 'reloadCmd'> {
  domain?: string;
  dns?: string;
  http?: boolean;
  model?: string[];
  tierKey?: string[];
  basePath?: string;
  dryRun?: boolean;
  port: string;
  webroot?: string;
  nginxRoot: string;
  nginxBin: string;
  reloadCmd?: string;
  httpPort?: string;
  httpsPort?: string;
  listenAddress?: string;
  caFile?: string;
  verifyAddress?: string;
  supervisor: string;
  unitDir: string;
  bin?: string;
  envFile: string;
}

export interface UpOptions {
  domain: string;
  siteName: string;
  lineage: string;
  issue: IssueOptions;
  http: boolean;
  webroot: string;
  models: ModelSpec[];
  serveArgs: string[];
  keys: Array<{ name: string; tier: string }>;
  /** '' or '/guard' (the daemon's --base-path; nginx serves the prefix '/guard/'). */
  basePath: string;
  daemon: { host: string; port: number };
  nginx: { root: string; bin: string; reloadCmd?: string; httpPort?: number; httpsPort?: number; listenAddress?: string };
  supervisor: 'process' | 'systemd';
  /** Why that supervisor (the plan says it). */
  supervisorWhy: string;
  unitDir: string;
  bin: string;
  envFile: string;
  verify: { caFile?: string; address?: string };
}

/** The local nginx, as the daemon `up` starts sees it: the proxies it trusts. */
export const LOCAL_PROXIES = ['127.0.0.1/32', '::1/128'];

/** Where systemd runs as the service manager (sd_booted(3) checks the same folder). */
export function systemdRuns(): boolean {
  return fs.existsSync('/run/systemd/system');
}

function supervisorOf(flag: string): { supervisor: 'process' | 'systemd'; why: string } {
  if (flag === 'systemd') return { supervisor: 'systemd', why: 'asked for with --supervisor systemd' };
  if (flag === 'process') return { supervisor: 'process', why: 'asked for with --supervisor process' };
  if (flag !== 'auto') throw usageError(`--supervisor must be auto, systemd or process, got "${flag}"`);
  return systemdRuns()
    ? { supervisor: 'systemd', why: 'systemd runs this host (/run/systemd/system exists)' }
    : { supervisor: 'process', why: 'systemd does not run this host (no /run/systemd/system): a background process with a pid file instead' };
}

function tierKeys(values: string[] | undefined, site: string, tiers: Record<string, Tier>): Array<{ name: string; tier: string }> {
  const list = (values ?? [`${site}:free`]).map((v) => {
    const at = v.lastIndexOf(':');
    if (at <= 0 || at === v.length - 1) throw usageError(`--tier-key must be NAME:TIER, got "${v}"`, 'for example --tier-key acme-corp:pro');
    const name = validateKeyName(v.slice(0, at));
    validateTier(v.slice(at + 1), tiers);
    return { name, tier: v.slice(at + 1) };
  });
  const names = list.map((k) => k.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw usageError(`--tier-key names "${twice}" twice`, 'give each key its own name');
  return list;
}

function defaultBin(): string {
  const script = process.argv[1];
  return script && /guardctl(\.js)?$/.test(script) ? path.resolve(script) : '/usr/local/bin/guardctl';
}

export function upOptionsFrom(f: UpFlags, env: NodeJS.ProcessEnv, home: string, tiers: Record<string, Tier>): UpOptions {
  if (f.domain === undefined) throw usageError('which domain? give --domain NAME', 'for example guardctl up --domain guard.example.com --dns cloudflare');
  const [domain] = normalizeNames([f.domain]);
  if ((f.dns === undefined) === !f.http) {
    throw usageError(f.dns === undefined ? 'how should the CA validate the domain? give --dns PROVIDER or --http' : 'give --dns or --http, not both',
      '--dns PROVIDER uses DNS-01 (see guardctl cert providers); --http uses HTTP-01 through nginx on port 80 (no DNS credentials needed)');
  }
  const webroot = path.resolve(f.webroot ?? path.join(home, 'acme-webroot'));
  const lineage = defaultLineageName([domain!]);
  // reloadCmd is nginx's: the renewal step sets it as the certificate's hook (and can undo that), not the issuance.
  const issue = issueOptionsFrom({ ...f, domain: [domain!], dns: f.dns, httpWebroot: f.http ? webroot : undefined, name: lineage, reloadCmd: undefined }, env);
  const siteName = checkSiteName(defaultSiteName([domain!]));
  const models = f.model?.length ? f.model.map(parseModelFlag) : embeddedModels();
  checkUniqueNames(models);
  const basePathText = f.basePath ?? '';
  const prefix = checkPathPrefix(basePathText === '' ? '/' : basePathText.endsWith('/') ? basePathText : `${basePathText}/`);
  const basePath = prefix === '/' ? '' : prefix.slice(0, -1);
  const port = checkPort(f.port, '--port');
  const host = '127.0.0.1';
  // nginx on this host connects from loopback: trusting it makes X-Forwarded-For (set by the site) the client's
  // address for the gate's rate limits, blocks, IP allow-lists and audit, instead of 127.0.0.1 for everyone.
  const serveArgs = ['--host', host, '--port', String(port), '--trusted-proxies', LOCAL_PROXIES.join(','), ...(f.model ?? []).flatMap((m) => ['--model', m]), ...(basePath ? ['--base-path', basePath] : [])];
  const sup = supervisorOf(f.supervisor);
  if (f.caFile !== undefined && !fs.existsSync(f.caFile)) throw usageError(`--ca-file ${f.caFile} does not exist`, 'give the PEM file of the root your CA issues under (for a test CA such as Pebble, its root from the management API)');
  return {
    domain: domain!,
    siteName,
    lineage,
    issue,
    http: Boolean(f.http),
    webroot,
    models,
    serveArgs,
    keys: tierKeys(f.tierKey, siteName, tiers),
    basePath,
    daemon: { host, port },
    nginx: {
      root: path.resolve(f.nginxRoot),
      bin: f.nginxBin,
      ...(f.reloadCmd ? { reloadCmd: f.reloadCmd } : {}),
      ...(f.httpPort !== undefined ? { httpPort: checkPort(f.httpPort, '--http-port') } : {}),
      ...(f.httpsPort !== undefined ? { httpsPort: checkPort(f.httpsPort, '--https-port') } : {}),
      ...(f.listenAddress !== undefined ? { listenAddress: checkListenAddress(f.listenAddress) } : {}),
    },
    supervisor: sup.supervisor,
    supervisorWhy: sup.why,
    unitDir: path.resolve(f.unitDir),
    bin: f.bin ?? defaultBin(),
    envFile: f.envFile,
    verify: { ...(f.caFile ? { caFile: path.resolve(f.caFile) } : {}), ...(f.verifyAddress ? { address: f.verifyAddress } : {}) },
  };
}
