/** `cert issue` flags -> IssueOptions, every check done before anything is written or any server is asked. */
import { pick } from '../core/config.js';
import { secondsOrDuration } from '../core/duration.js';
import { usageError } from '../core/errors.js';
import { formatServer, parseDnsServers } from './dns-query.js';
import { requiresEab, resolveDirectoryUrl, DEFAULT_SERVER } from './directory.js';
import type { IssueOptions } from './issue.js';
import { checkKeyType, checkLineageName, defaultLineageName, normalizeNames } from './keys.js';
import { checkHttpNames, httpSettings } from './http01.js';
import { checkProviderName } from './solver.js';
import type { DeployTarget, DnsSettings } from './types.js';

export interface IssueFlags {
  domain?: string[];
  /** One of dns and httpWebroot. */
  dns?: string;
  httpWebroot?: string;
  server?: string;
  email?: string;
  agreeTos?: boolean;
  keyType?: string;
  eabKid?: string;
  eabHmacKey?: string;
  profile?: string;
  name?: string;
  deployDir?: string;
  certFile?: string;
  keyFile?: string;
  fullchainFile?: string;
  reloadCmd?: string;
  dnsTimeout?: string;
  dnsInterval?: string;
  dnsCheck?: string;
  dnsResolvers?: string[];
  dnsExec?: string;
  wait?: string;
}

export function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = secondsOrDuration(text);
  if (ms === undefined || ms <= 0) throw usageError(`${flag} must be a positive duration, got "${text}"`, `for example ${flag} 120s or 2m (a plain number counts seconds)`);
  return ms / 1000;
}

function deployTarget(f: IssueFlags): DeployTarget | undefined {
  const files = f.certFile !== undefined || f.keyFile !== undefined || f.fullchainFile !== undefined;
  if (f.deployDir !== undefined && files) {
    throw usageError('--deploy-dir and --cert-file/--key-file/--fullchain-file are exclusive', 'copy all files to one folder with --deploy-dir, or name each file');
  }
  if (files && (f.keyFile === undefined || (f.certFile === undefined && f.fullchainFile === undefined))) {
    throw usageError('--key-file needs --cert-file or --fullchain-file, and the other way round', 'a server needs both the key and a certificate');
  }
  const target: DeployTarget = {
    ...(f.deployDir !== undefined ? { dir: f.deployDir } : {}),
    ...(f.certFile !== undefined ? { certFile: f.certFile } : {}),
    ...(f.keyFile !== undefined ? { keyFile: f.keyFile } : {}),
    ...(f.fullchainFile !== undefined ? { fullchainFile: f.fullchainFile } : {}),
    ...(f.reloadCmd ? { reloadCmd: f.reloadCmd } : {}),
  };
  return Object.keys(target).length > 0 ? target : undefined;
}

export function issueOptionsFrom(f: IssueFlags, env: NodeJS.ProcessEnv): IssueOptions {
  const names = normalizeNames(f.domain ?? []);
  const server = resolveDirectoryUrl(pick(f.server, env.GUARDCTL_ACME_SERVER, DEFAULT_SERVER)!);
  const kid = pick(f.eabKid, env.GUARDCTL_EAB_KID);
  const hmacKey = pick(f.eabHmacKey, env.GUARDCTL_EAB_HMAC_KEY);
  if ((kid === undefined) !== (hmacKey === undefined)) throw usageError('--eab-kid and --eab-hmac-key go together', 'give both, as the CA\'s dashboard shows them');
  if (requiresEab(server) && kid === undefined) {
    throw usageError('ZeroSSL needs External Account Binding credentials', 'copy them from the ZeroSSL dashboard (Developer section) and pass --eab-kid KID --eab-hmac-key KEY');
  }
  const dns = challengeSettings(f, names);
  const email = pick(f.email, env.GUARDCTL_ACME_EMAIL);
  if (email !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw usageError(`"${email}" is not an email address`, 'give the address the CA may write to, or leave --email out');
  const deploy = deployTarget(f);
  return {
    lineage: checkLineageName(f.name ?? defaultLineageName(names)),
    names,
    server,
    keyType: checkKeyType(f.keyType ?? 'ec256'),
    dns,
    ...(email ? { email } : {}),
    ...(f.agreeTos ? { agreeTos: true } : {}),
    ...(kid !== undefined && hmacKey !== undefined ? { eab: { kid, hmacKey } } : {}),
    ...(f.profile ? { profile: f.profile } : {}),
    ...(deploy ? { deploy } : {}),
  };
}

/** The lineage's challenge: a DNS provider with its propagation settings, or HTTP-01 through a webroot. */
function challengeSettings(f: IssueFlags, names: string[]): DnsSettings {
  if ((f.dns === undefined) === (f.httpWebroot === undefined)) {
    throw usageError(f.dns === undefined ? 'how should the CA validate the names? give --dns PROVIDER or --http-webroot DIR' : 'give --dns or --http-webroot, not both',
      '--dns PROVIDER (DNS-01, wildcards included; see guardctl cert providers) or --http-webroot DIR (HTTP-01: the folder nginx serves /.well-known/acme-challenge/ from)');
  }
  if (f.httpWebroot !== undefined) {
    checkHttpNames(names);
    return httpSettings(f.httpWebroot);
  }
  const options: Record<string, string | boolean> = {};
  if (f.dnsExec !== undefined) options.exec = f.dnsExec;
  if (f.wait !== undefined) options.wait = f.wait;
  const resolvers = (f.dnsResolvers ?? []).flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean);
  return {
    provider: checkProviderName(f.dns!),
    options,
    ...(f.dnsTimeout !== undefined ? { timeoutSec: seconds(f.dnsTimeout, '--dns-timeout') } : {}),
    ...(f.dnsInterval !== undefined ? { intervalSec: seconds(f.dnsInterval, '--dns-interval') } : {}),
    ...(resolvers.length > 0 ? { resolvers: parseDnsServers(resolvers).map(formatServer) } : {}),
    ...(f.dnsCheck !== undefined ? { check: dnsCheck(f.dnsCheck, resolvers.length > 0) } : {}),
  };
}

/** --dns-check: whom the propagation check asks. 'resolvers' needs --dns-resolvers to know whom. */
function dnsCheck(value: string, haveResolvers: boolean): 'authoritative' | 'resolvers' {
  if (value !== 'authoritative' && value !== 'resolvers') throw usageError(`--dns-check must be authoritative or resolvers, got "${value}"`);
  if (value === 'resolvers' && !haveResolvers) throw usageError('--dns-check resolvers needs --dns-resolvers', 'name the servers whose answers count, e.g. --dns-resolvers 10.0.0.53');
  return value;
}
