/**
 * Renders the nginx site for the daemon from the Handlebars templates in templates/nginx/: one site file plus
 * its snippets (split the way nginxconfig.io does), which the site file includes by ABSOLUTE path, so the
 * pair works wherever it is installed once the snippets sit in `snippetsDir`. Pure except for reading the
 * templates (and, with ocspStapling, the certificate). Every value is checked before it reaches a template.
 */
import fs from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { ensureDir, writeConfigFile } from './files.js';
import { usageError } from '../core/errors.js';
import { assertStaplingPossible, checkProfile, tlsView, type TlsProfile } from './tls.js';
import {
  checkBurst, checkCidr, checkCsp, checkDomain, checkListenAddress, checkNginxPath, checkPathPrefix, checkPort,
  checkRate, checkSiteName, checkSize, checkTime, checkUpstream, checkVersion, versionAtLeast,
} from './validate.js';

const TEMPLATES = new URL('../../templates/nginx/', import.meta.url);
export const SNIPPETS = ['http.conf', 'tls.conf', 'security.conf', 'proxy.conf', 'acme.conf'] as const;

/** The daemon's web page needs nothing but its own origin. */
export const DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
export const HSTS = 'max-age=63072000; includeSubDomains';

/** What renderSite needs. Only domains, upstreams, nginxVersion and snippetsDir are required. */
export interface SiteOptions {
  /** server_name values (DNS names, "*.example.com" allowed); the first names the site by default. */
  domains: string[];
  /** Upstream servers (guardctl serve): "127.0.0.1:7860" or "[::1]:7860". */
  upstreams: string[];
  /** Site name: the installed file is <name>.conf, nginx identifiers are guardctl_<name with _>. */
  name?: string;
  /** URL prefix, "/" (default) or "/guard/": proxied as-is, so the daemon runs with --base-path /guard. */
  path?: string;
  /** Absolute path of the certificate chain (fullchain). With keyFile; both absent means bootstrap. */
  certFile?: string;
  /** Absolute path of the private key. */
  keyFile?: string;
  /** HTTP only (ACME webroot + proxy over http): forced when no certificate is given. */
  bootstrap?: boolean;
  /** Mozilla profile: "intermediate" (default; TLS 1.2 + 1.3) or "modern" (TLS 1.3 only). */
  tlsProfile?: TlsProfile;
  /** Strict-Transport-Security: max-age=63072000; includeSubDomains (default off). */
  hsts?: boolean;
  /** Adds "; preload" to HSTS (needs hsts). */
  hstsPreload?: boolean;
  /** Content-Security-Policy: undefined = DEFAULT_CSP, a string replaces it, false sends none. */
  csp?: string | false;
  /** OCSP stapling; refused unless certFile's authorityInfoAccess names an OCSP responder. */
  ocspStapling?: boolean;
  /** ssl_trusted_certificate for stapling verification (default: certFile). */
  trustedCertFile?: string;
  /** limit_req rate per client address, "10r/s" or "600r/m"; undefined = no limit. */
  rateLimit?: string;
  /** limit_req burst (answered without delay); default 20 with rateLimit. */
  burst?: number;
  /** CIDRs or addresses allowed to reach the proxied path; everyone else gets 403. Empty = everyone. */
  allow?: string[];
  /** client_max_body_size (default "1m", the daemon's own --max-body default). */
  maxBody?: string;
  /** proxy_read_timeout / proxy_send_timeout (default "300s"). */
  timeout?: string;
  /** Serve /.well-known/acme-challenge/ from this folder on port 80. */
  acmeWebroot?: string;
  /** The nginx that will load the site, X.Y.Z: 1.25.1+ gets "http2 on;", older "listen ... ssl http2". */
  nginxVersion: string;
  /** The OpenSSL nginx runs with: 3.5+ puts X25519MLKEM768 first in ssl_ecdh_curve. Unknown: not. */
  opensslVersion?: string;
  /** Ports (default 80 and 443) and one listen address (default: every IPv4 and IPv6 address). */
  httpPort?: number;
  httpsPort?: number;
  listenAddress?: string;
  /** Absolute folder where the snippets will live; the site file includes them from there. */
  snippetsDir: string;
  /** Idle keepalive connections per worker to the upstream (default 16). */
  keepalive?: number;
  /** With several upstreams (a pool): failed attempts within failTimeout before a daemon rests (default 3). */
  maxFails?: number;
  /** With several upstreams: the window for maxFails, and how long a failed daemon rests (default "10s"). */
  failTimeout?: string;
}

export interface RenderedSite {
  site: string;
  /** Snippet file name (in snippetsDir) -> content. */
  snippets: Record<string, string>;
  /** The absolute folder the site file's includes point at. */
  snippetsDir: string;
  name: string;
}

/** The site name when none is given: the first domain ("*.example.com" -> "_wildcard.example.com"). */
export function defaultSiteName(domains: string[]): string {
  return (domains[0] ?? 'guardctl').replace(/^\*\./, '_wildcard.');
}

function checkKeepalive(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw usageError(`keepalive ${n} is not a number of connections (1-10000)`);
  return n;
}

function checkMaxFails(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw usageError(`--max-fails ${n} is not a number of failed attempts (1-1000)`);
  return n;
}

function buildView(o: SiteOptions) {
  if (o.domains.length === 0) throw usageError('which domain? give --domain NAME (repeatable)');
  if (o.upstreams.length === 0) throw usageError('which upstream? give --upstream HOST:PORT (the daemon, for example 127.0.0.1:7860)');
  const domains = [...new Set(o.domains.map(checkDomain))];
  const name = checkSiteName(o.name ?? defaultSiteName(domains));
  const prefix = checkPathPrefix(o.path ?? '/');
  const hasCert = o.certFile !== undefined || o.keyFile !== undefined;
  if (hasCert && (o.certFile === undefined || o.keyFile === undefined)) throw usageError('give both the certificate and its key (--cert-file and --key-file), or --cert LINEAGE');
  if (o.bootstrap && hasCert) throw usageError('--bootstrap renders HTTP only: leave out the certificate, or leave out --bootstrap');
  const bootstrap = !hasCert;
  if (o.hstsPreload && !o.hsts) throw usageError('--hsts-preload needs --hsts');
  if (o.burst !== undefined && o.rateLimit === undefined) throw usageError('--burst needs --rate-limit');
  if (o.ocspStapling && bootstrap) throw usageError('--ocsp-stapling needs a certificate (--cert or --cert-file)');
  const nginxVersion = checkVersion(o.nginxVersion, '--nginx-version');
  const opensslVersion = o.opensslVersion === undefined ? undefined : checkVersion(o.opensslVersion, '--openssl-version');
  const httpPort = checkPort(o.httpPort ?? 80, '--http-port');
  const httpsPort = checkPort(o.httpsPort ?? 443, '--https-port');
  if (!bootstrap && httpPort === httpsPort) throw usageError(`--http-port and --https-port are both ${httpPort}`);
  const listenAt = (port: number) => (o.listenAddress !== undefined ? [`${checkListenAddress(o.listenAddress)}:${port}`] : [`${port}`, `[::]:${port}`]);
  const http2On = versionAtLeast(nginxVersion, '1.25.1');
  const certFile = o.certFile === undefined ? undefined : checkNginxPath(o.certFile, '--cert-file');
  const upstreams = o.upstreams.map(checkUpstream);
  const basePath = prefix === '/' ? '' : prefix.slice(0, -1);
  const firstPort = /:(\d+)$/.exec(upstreams[0]!)?.[1];
  const pool = upstreams.length > 1;
  return {
    name,
    id: `guardctl_${name.replace(/[^A-Za-z0-9_]/g, '_')}`,
    serverNames: domains.join(' '),
    upstreams,
    keepalive: checkKeepalive(o.keepalive ?? 16),
    pool,
    maxFails: checkMaxFails(o.maxFails ?? 3),
    failTimeout: checkTime(o.failTimeout ?? '10s'),
    nextTries: upstreams.length,
    path: prefix,
    basePath,
    daemonPort: firstPort!,
    bootstrap,
    certFile,
    keyFile: o.keyFile === undefined ? undefined : checkNginxPath(o.keyFile, '--key-file'),
    ocspStapling: Boolean(o.ocspStapling),
    ocspUrl: o.ocspStapling && certFile ? assertStaplingPossible(certFile) : undefined,
    trustedCertFile: o.ocspStapling && certFile ? checkNginxPath(o.trustedCertFile ?? certFile, '--trusted-cert-file') : undefined,
    tls: tlsView(checkProfile(o.tlsProfile ?? 'intermediate'), opensslVersion),
    hsts: o.hsts && !bootstrap ? `${HSTS}${o.hstsPreload ? '; preload' : ''}` : undefined,
    csp: o.csp === false ? undefined : checkCsp(o.csp ?? DEFAULT_CSP),
    rateLimit: o.rateLimit === undefined ? undefined : checkRate(o.rateLimit),
    burst: o.rateLimit === undefined ? undefined : checkBurst(o.burst ?? 20),
    allow: [...new Set((o.allow ?? []).map(checkCidr))],
    maxBody: checkSize(o.maxBody ?? '1m'),
    timeout: checkTime(o.timeout ?? '300s'),
    acmeWebroot: o.acmeWebroot === undefined ? undefined : checkNginxPath(o.acmeWebroot, '--acme-webroot').replace(/(.)\/$/, '$1'),
    httpListen: listenAt(httpPort),
    httpsListen: listenAt(httpsPort).map((l) => `${l} ssl${http2On ? '' : ' http2'}`),
    http2On,
    httpsPortSuffix: httpsPort === 443 ? '' : `:${httpsPort}`,
    snippetsDir: checkNginxPath(o.snippetsDir, '--snippets-dir').replace(/(.)\/$/, '$1'),
  };
}

let engine: typeof Handlebars | undefined;
const compiled = new Map<string, Handlebars.TemplateDelegate>();

function template(file: string): Handlebars.TemplateDelegate {
  engine ??= Handlebars.create();
  let t = compiled.get(file);
  if (!t) {
    t = engine.compile(fs.readFileSync(new URL(file, TEMPLATES), 'utf8'), { noEscape: true, strict: false });
    compiled.set(file, t);
  }
  return t;
}

/** Trailing blanks off, at most one empty line in a row, one final newline. */
function tidy(text: string): string {
  return `${text.replace(/[ \t]+$/gm, '').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

/** Renders the site file and the snippets it includes (acme.conf and tls.conf only when used). */
export function renderSite(options: SiteOptions): RenderedSite {
  const view = buildView(options);
  const snippets: Record<string, string> = {};
  for (const file of SNIPPETS) {
    if (file === 'acme.conf' && view.acmeWebroot === undefined) continue;
    if (file === 'tls.conf' && view.bootstrap) continue;
    snippets[file] = tidy(template(`snippets/${file}.hbs`)(view));
  }
  return { site: tidy(template('site.conf.hbs')(view)), snippets, snippetsDir: view.snippetsDir, name: view.name };
}

/**
 * Writes the site file and its snippets (atomically each, 0644), snippets first. `snippetsDir` must be the
 * folder the site was rendered for: the includes are absolute.
 */
export function writeRendered(rendered: { site: string; snippets: Record<string, string>; snippetsDir?: string }, siteFile: string, snippetsDir: string): string[] {
  const dir = path.resolve(snippetsDir);
  if (rendered.snippetsDir !== undefined && path.resolve(rendered.snippetsDir) !== dir) {
    throw usageError(`the site was rendered for snippets in ${rendered.snippetsDir}, not ${dir}`, 'render again with the snippets folder you write to');
  }
  ensureDir(dir);
  const written: string[] = [];
  for (const [file, content] of Object.entries(rendered.snippets)) {
    writeConfigFile(path.join(dir, file), content);
    written.push(path.join(dir, file));
  }
  ensureDir(path.dirname(path.resolve(siteFile)));
  writeConfigFile(path.resolve(siteFile), rendered.site);
  return [...written, path.resolve(siteFile)];
}
