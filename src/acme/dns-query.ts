/**
 * Small DNS lookups for the propagation check, over node:dns (c-ares). Every lookup gets a fresh Resolver, so no
 * answer is ever served from a cache while polling, and the servers are explicit when the caller gives them
 * (`--dns-resolvers`, split-horizon setups, tests), else the system's (/etc/resolv.conf).
 */
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { usageError } from '../core/errors.js';

export interface DnsServer {
  /** An IP address (node:dns takes no names here). */
  host: string;
  port: number;
}

export type RecordType = 'CNAME' | 'SOA' | 'NS' | 'A' | 'AAAA' | 'TXT';

/** A lookup that failed for another reason than "no such name" or "no such record": timeout, REFUSED, SERVFAIL... */
export class DnsQueryError extends Error {
  constructor(readonly code: string, readonly type: RecordType, readonly qname: string, readonly servers: string) {
    super(`${type} ${qname} @ ${servers}: ${describeCode(code)}`);
    this.name = 'DnsQueryError';
  }
}

export function describeCode(code: string): string {
  const words: Record<string, string> = {
    ETIMEOUT: 'timed out', ECONNREFUSED: 'connection refused', EREFUSED: 'REFUSED', ESERVFAIL: 'SERVFAIL',
    EBADRESP: 'bad response', ENOTIMP: 'not implemented', EFORMERR: 'FORMERR', ECANCELLED: 'cancelled',
  };
  return words[code] ?? code;
}

/** `IP`, `IP:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address; port 53 by default. */
export function parseDnsServer(raw: string): DnsServer {
  const text = raw.trim();
  let host = text;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4port = /^([\d.]+):(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] === undefined ? 53 : Number(bracketed[2]);
  } else if (v4port) {
    host = v4port[1]!;
    port = Number(v4port[2]);
  }
  if (net.isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError(`"${text}" is not a DNS server address (IP[:PORT])`, 'use for example --dns-resolvers 1.1.1.1,8.8.8.8 or 127.0.0.1:5353 or [2001:db8::53]:53');
  }
  return { host, port };
}

/** `--dns-resolvers IP[:PORT],...`, as one comma-separated string or a list of them. */
export function parseDnsServers(spec: string | string[]): DnsServer[] {
  const parts = (Array.isArray(spec) ? spec : [spec]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  return parts.map(parseDnsServer);
}

export function formatServer(s: DnsServer): string {
  return net.isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

export interface QueryOptions {
  /** Where to ask; the system's resolvers when absent or empty. */
  servers?: DnsServer[];
  /** Per try, ms (two tries). */
  timeoutMs?: number;
}

function resolver(opts: QueryOptions): Resolver {
  const r = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: 2 });
  if (opts.servers?.length) r.setServers(opts.servers.map(formatServer));
  return r;
}

const EMPTY = new Set(['ENODATA', 'ENOTFOUND']);

async function ask<T>(type: RecordType, name: string, opts: QueryOptions, fn: (r: Resolver) => Promise<T>): Promise<T | null> {
  try {
    return await fn(resolver(opts));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (EMPTY.has(code)) return null;
    const where = opts.servers?.length ? opts.servers.map(formatServer).join(',') : 'system resolvers';
    throw new DnsQueryError(code, type, name, where);
  }
}

/** The CNAME target of name (no trailing dot), or null when name has none. */
export async function queryCname(name: string, opts: QueryOptions = {}): Promise<string | null> {
  const answer = await ask('CNAME', name, opts, (r) => r.resolveCname(name));
  return answer?.[0]?.replace(/\.$/, '') ?? null;
}

/** Whether name is a zone apex: an SOA answer (not one in the authority section) comes back for it. */
export async function isZoneApex(name: string, opts: QueryOptions = {}): Promise<boolean> {
  return (await ask('SOA', name, opts, (r) => r.resolveSoa(name))) !== null;
}

export async function queryNs(zone: string, opts: QueryOptions = {}): Promise<string[]> {
  return ((await ask('NS', zone, opts, (r) => r.resolveNs(zone))) ?? []).map((n) => n.replace(/\.$/, '').toLowerCase());
}

/** IPv4 and IPv6 addresses of name; a failure of one family is ignored when the other answers. */
export async function queryAddresses(name: string, opts: QueryOptions = {}): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([ask('A', name, opts, (r) => r.resolve4(name)), ask('AAAA', name, opts, (r) => r.resolve6(name))]);
  const found = [v4, v6].flatMap((s) => (s.status === 'fulfilled' ? (s.value ?? []) : []));
  if (found.length === 0) {
    const failed = [v4, v6].find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }
  return found;
}

/** The TXT values at name (each record's strings joined), [] when there are none. */
export async function queryTxt(name: string, opts: QueryOptions = {}): Promise<string[]> {
  return ((await ask('TXT', name, opts, (r) => r.resolveTxt(name))) ?? []).map((chunks) => chunks.join(''));
}
