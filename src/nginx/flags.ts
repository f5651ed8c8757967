/** From the flags of `nginx render` / `nginx install` to SiteOptions: certificate lookup and version detection. */
import { usageError } from '../core/errors.js';
import { detectVersions } from './detect.js';
import { defaultSiteName, type SiteOptions } from './render.js';
import { filePaths, lineagePaths, type CertPaths, type TlsProfile } from './tls.js';
import { checkBurst, checkDomain, checkPort, checkSiteName } from './validate.js';

/** The flags as commander hands them over (repeatable ones as arrays). */
export interface SiteFlags {
  domain?: string[];
  upstream?: string[];
  name?: string;
  path?: string;
  cert?: string;
  certFile?: string;
  keyFile?: string;
  bootstrap?: boolean;
  tlsProfile?: string;
  hsts?: boolean;
  hstsPreload?: boolean;
  csp?: string;
  ocspStapling?: boolean;
  rateLimit?: string;
  burst?: string;
  allow?: string[];
  maxBody?: string;
  timeout?: string;
  acmeWebroot?: string;
  nginxVersion?: string;
  opensslVersion?: string;
  httpPort?: string;
  httpsPort?: string;
  listenAddress?: string;
  nginxBin?: string;
  maxFails?: string;
  failTimeout?: string;
}

function checkCount(text: string, flag: string): number {
  if (!/^\d{1,4}$/.test(text)) throw usageError(`${flag} must be a whole number, got "${text}"`);
  return Number(text);
}

/** The site name the flags give (--name, else the first domain). */
export function siteNameFrom(flags: SiteFlags): string {
  if (flags.name !== undefined) return checkSiteName(flags.name);
  const domains = (flags.domain ?? []).map(checkDomain);
  if (domains.length === 0) throw usageError('which domain? give --domain NAME (repeatable)', 'for example --domain guard.example.com');
  return checkSiteName(defaultSiteName(domains));
}

function certFrom(flags: SiteFlags, home: string, lineageMayBeMissing = false): CertPaths | undefined {
  if (flags.cert !== undefined && (flags.certFile !== undefined || flags.keyFile !== undefined)) {
    throw usageError('give --cert LINEAGE or --cert-file with --key-file, not both');
  }
  if (flags.cert !== undefined) return lineagePaths(home, flags.cert, lineageMayBeMissing);
  if ((flags.certFile === undefined) !== (flags.keyFile === undefined)) {
    throw usageError(flags.certFile === undefined ? '--key-file needs --cert-file' : '--cert-file needs --key-file');
  }
  return flags.certFile !== undefined ? filePaths(flags.certFile, flags.keyFile!) : undefined;
}

/** SiteOptions for rendering into `snippetsDir`; detects nginx and OpenSSL unless --nginx-version is given. */
export async function siteOptionsFrom(flags: SiteFlags, env: { home: string; snippetsDir: string; lineageMayBeMissing?: boolean }): Promise<SiteOptions> {
  const cert = certFrom(flags, env.home, env.lineageMayBeMissing);
  let nginxVersion = flags.nginxVersion;
  let opensslVersion = flags.opensslVersion;
  if (nginxVersion === undefined) {
    const found = await detectVersions({ nginxBin: flags.nginxBin });
    nginxVersion = found.nginx;
    opensslVersion ??= found.openssl;
  }
  return {
    domains: flags.domain ?? [],
    upstreams: flags.upstream ?? [],
    name: siteNameFrom(flags),
    path: flags.path,
    certFile: cert?.certFile,
    keyFile: cert?.keyFile,
    trustedCertFile: cert?.chainFile,
    bootstrap: flags.bootstrap,
    tlsProfile: flags.tlsProfile as TlsProfile | undefined,
    hsts: flags.hsts,
    hstsPreload: flags.hstsPreload,
    csp: flags.csp === 'off' ? false : flags.csp,
    ocspStapling: flags.ocspStapling,
    rateLimit: flags.rateLimit,
    burst: flags.burst === undefined ? undefined : checkBurst(flags.burst),
    allow: flags.allow,
    maxBody: flags.maxBody,
    timeout: flags.timeout,
    acmeWebroot: flags.acmeWebroot,
    nginxVersion,
    opensslVersion,
    httpPort: flags.httpPort === undefined ? undefined : checkPort(flags.httpPort, '--http-port'),
    httpsPort: flags.httpsPort === undefined ? undefined : checkPort(flags.httpsPort, '--https-port'),
    listenAddress: flags.listenAddress,
    snippetsDir: env.snippetsDir,
    maxFails: flags.maxFails === undefined ? undefined : checkCount(flags.maxFails, '--max-fails'),
    failTimeout: flags.failTimeout,
  };
}
