/**
 * Checks for every value that ends up in an nginx file. Each throws a usage error that names the flag and the
 * value, so that nothing malformed (or able to inject directives: quotes, ";", "{", "$") reaches a template.
 */
import net from 'node:net';
import path from 'node:path';
import { usageError } from '../core/errors.js';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)*${LABEL}$`);

/** A server_name: a DNS name, optionally "*." in front. Lower-cased. */
export function checkDomain(value: string): string {
  const name = value.trim().toLowerCase().replace(/\.$/, '');
  if (name.length > 253 || !HOSTNAME.test(name)) {
    throw usageError(`--domain "${value}" is not a DNS name`, 'for example --domain guard.example.com (or *.example.com)');
  }
  return name;
}

/** An upstream server: HOST:PORT or [IPV6]:PORT. */
export function checkUpstream(value: string): string {
  const v = value.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : 0;
  const hostOk = m !== null && (m[1] !== undefined ? net.isIPv6(m[1]) : net.isIPv4(m[2]!) || HOSTNAME.test(m[2]!.toLowerCase()));
  if (!hostOk || port < 1 || port > 65535) {
    throw usageError(`--upstream "${value}" is not HOST:PORT`, 'for example --upstream 127.0.0.1:7860 or [::1]:7860');
  }
  return v;
}

/** An IPv4 or IPv6 address or CIDR, for allow lists. */
export function checkCidr(value: string): string {
  const v = value.trim();
  const [addr, bits, extra] = v.split('/');
  const family = net.isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  if (!family || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
    throw usageError(`--allow "${value}" is not an IPv4 or IPv6 address or CIDR`, 'for example --allow 203.0.113.0/24 --allow 2001:db8::/32');
  }
  return v;
}

/** A limit_req rate: N r/s or N r/m. */
export function checkRate(value: string): string {
  const v = value.trim();
  if (!/^[1-9]\d{0,6}r\/[sm]$/.test(v)) throw usageError(`--rate-limit "${value}" is not a rate like 10r/s or 600r/m`);
  return v;
}

export function checkBurst(value: string | number): number {
  const n = typeof value === 'number' ? value : /^\d{1,7}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0) throw usageError(`--burst "${value}" is not a whole number of requests (0 or more)`);
  return n;
}

/** An nginx size (client_max_body_size): 1m, 512k, 10485760. */
export function checkSize(value: string, flag = '--max-body'): string {
  const v = value.trim();
  if (!/^\d{1,10}[kKmMgG]?$/.test(v)) throw usageError(`${flag} "${value}" is not a size like 1m, 512k or 0 (no limit)`);
  return v;
}

/** An nginx time (proxy_read_timeout): 300s, 5m, 1h. */
export function checkTime(value: string, flag = '--timeout'): string {
  const v = value.trim();
  if (!/^[1-9]\d{0,7}(?:ms|s|m|h|d)?$/.test(v)) throw usageError(`${flag} "${value}" is not a duration like 300s, 5m or 1h`);
  return v;
}

/** The URL prefix: "/" or "/seg/.../" with the segments the daemon's --base-path accepts. */
export function checkPathPrefix(value: string): string {
  const v = value.trim();
  if (v === '/') return v;
  if (!v.startsWith('/') || !v.endsWith('/')) {
    throw usageError(`--path "${value}" must start and end with "/"`, `for example --path ${`/${v.replace(/^\/+|\/+$/g, '') || 'guard'}/`}`);
  }
  const segments = v.slice(1, -1).split('/');
  if (segments.some((s) => !/^[A-Za-z0-9._~-]+$/.test(s) || s === '.' || s === '..')) {
    throw usageError(`--path "${value}" has an empty or invalid segment`, 'use segments of letters, digits, . _ ~ -, for example --path /guard/');
  }
  return v;
}

export function checkPort(value: string | number, flag: string): number {
  const n = typeof value === 'number' ? value : /^\d{1,5}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw usageError(`${flag} "${value}" is not a port number (1-65535)`);
  return n;
}

/** A listen address: an IPv4 or IPv6 address; returned as nginx writes it (IPv6 in brackets). */
export function checkListenAddress(value: string): string {
  const v = value.trim().replace(/^\[(.*)\]$/, '$1');
  const family = net.isIP(v);
  if (!family) throw usageError(`--listen-address "${value}" is not an IPv4 or IPv6 address`, 'for example --listen-address 127.0.0.1 or --listen-address ::1');
  return family === 6 ? `[${v}]` : v;
}

/** An absolute path nginx can read without quoting (no spaces, quotes, ";", "{", "}", "$", "#"). */
export function checkNginxPath(value: string, flag: string): string {
  if (!path.isAbsolute(value) || !/^\/[A-Za-z0-9._/@+,=:~-]*$/.test(value)) {
    throw usageError(`${flag} "${value}" must be an absolute path without spaces or any of " ' ; { } $ #`);
  }
  return path.normalize(value);
}

/** A site name: file names and nginx identifiers derive from it. */
export function checkSiteName(value: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/.test(value) || value.includes('..')) {
    throw usageError(`--name "${value}" is not a site name`, 'use letters, digits, "." "_" "-", for example --name guard.example.com');
  }
  return value;
}

/** A Content-Security-Policy value that fits in a double-quoted nginx string without variables. */
export function checkCsp(value: string): string {
  const v = value.trim();
  if (v === '' || /["\\$\p{Cc}]/u.test(v)) {
    throw usageError(`--csp "${value}" cannot be used`, 'give a policy without double quotes, backslashes or "$" (for example --csp "default-src \'self\'"), or --csp off');
  }
  return v;
}

/** X.Y.Z (nginx) or X.Y[.Z] (OpenSSL), trailing letters (3.0.2k) dropped. */
export function checkVersion(value: string, flag: string): string {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?[a-z]?$/.exec(value.trim());
  if (!m) throw usageError(`${flag} "${value}" is not a version like 1.22.1`);
  return `${m[1]}.${m[2]}.${m[3] ?? '0'}`;
}

/** Compares dotted versions numerically: versionAtLeast('1.25.1', '1.25.1') is true. */
export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
