/**
 * DNS-01 propagation: before the CA is asked to validate, every authoritative name server of the zone that holds
 * the challenge must serve every value (an apex and its wildcard put two values at one name; a CA may ask any of
 * the zone's servers, and a lagging secondary fails the order).
 *
 * The steps, each round until the deadline:
 * 1. follow the CNAMEs of `_acme-challenge.<name>` (a delegated challenge, possibly chained) to the target;
 * 2. find the target's zone: the closest enclosing name that answers an SOA query (walking up the labels);
 * 3. get the zone's NS names and their A/AAAA addresses;
 * 4. ask each of those addresses directly for TXT at the target (the server answers for its own zone; no cache).
 *
 * Where the lookups go: with `resolvers` (`--dns-resolvers IP[:PORT],...`) EVERY lookup of steps 1-3 (CNAME, SOA,
 * NS and the name servers' own addresses) goes to those servers, else to the system's resolvers. The
 * authoritative servers of step 4 are asked on port 53, or, when the resolvers name a port, on the FIRST
 * resolver's port (a test or lab setup where the one server listens on 127.0.0.1:5353 and its NS records point
 * at 127.0.0.1); `nameserverPort` overrides both.
 *
 * A name server with several addresses counts as having the values when at least one address answered and every
 * address that answered had them all (an address that cannot be reached from here, IPv6 on an IPv4-only
 * machine, does not hold the wait up while another one answers).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GuardError } from '../core/errors.js';
import {
  DnsQueryError, formatServer, isZoneApex, queryAddresses, queryCname, queryNs, queryTxt, type DnsServer,
} from './dns-query.js';

export type { DnsServer } from './dns-query.js';

export interface WaitForTxtOptions {
  /** The challenge name, `_acme-challenge.example.com` (CNAMEs from it are followed). */
  fqdn: string;
  /** Every value that must be served (an apex and its wildcard share one name). */
  values: string[];
  resolvers?: DnsServer[];
  /** The port of the authoritative servers (default: the first resolver's port, else 53). */
  nameserverPort?: number;
  /** 'resolvers': the resolvers themselves are the servers whose answers count (split horizon, no NS walk). */
  check?: 'authoritative' | 'resolvers';
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface Authority {
  name: string;
  addresses: string[];
  /** Its own port, when it is not the zone-wide one (a resolver given as IP:PORT). */
  port?: number;
  /** Why no address is known (the lookup failed), when addresses is empty. */
  problem?: string;
}

export interface TxtAuthorities {
  /** The name the TXT record lives at: fqdn, or the end of its CNAME chain. */
  target: string;
  zone: string;
  nameservers: Authority[];
  port: number;
}

const MAX_CNAME_HOPS = 10;
const strip = (name: string) => name.trim().replace(/\.$/, '').toLowerCase();

function dnsFailure(message: string, cause: unknown, hint: string, details?: Record<string, unknown>): GuardError {
  const why = cause instanceof DnsQueryError ? `: ${cause.message}` : '';
  return new GuardError('GUARD_E_NETWORK', `${message}${why}`, { hint, cause, details });
}

const RESOLVER_HINT = 'check that the resolvers (--dns-resolvers, else /etc/resolv.conf) answer for this name';

/** Where `_acme-challenge.<name>` really lives: the end of its CNAME chain (itself when it has no CNAME). */
export async function resolveChallengeTarget(fqdn: string, resolvers?: DnsServer[]): Promise<string> {
  let name = strip(fqdn);
  const seen = [name];
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    let next: string | null;
    try {
      next = await queryCname(name, { servers: resolvers });
    } catch (err) {
      throw dnsFailure(`cannot look up the CNAME of ${name}`, err, RESOLVER_HINT);
    }
    if (next === null) return name;
    next = strip(next);
    if (seen.includes(next)) {
      throw new GuardError('GUARD_E_NETWORK', `the CNAMEs of ${strip(fqdn)} loop: ${[...seen, next].join(' -> ')}`, { hint: 'fix the CNAME records of the challenge name' });
    }
    seen.push(next);
    name = next;
  }
  throw new GuardError('GUARD_E_NETWORK', `the CNAME chain of ${strip(fqdn)} is longer than ${MAX_CNAME_HOPS} hops`, { hint: 'point _acme-challenge at its final target directly' });
}

/** The zone that holds name: the closest enclosing name with an SOA of its own. */
export async function findZone(name: string, resolvers?: DnsServer[]): Promise<string> {
  const labels = strip(name).split('.');
  let refused: unknown;
  for (let i = 0; i < labels.length; i++) {
    const candidate = labels.slice(i).join('.');
    try {
      if (await isZoneApex(candidate, { servers: resolvers })) return candidate;
    } catch (err) {
      // A server that is authoritative only (the --dns-resolvers of a lab) refuses names outside its zones.
      if (err instanceof DnsQueryError && err.code === 'EREFUSED') {
        refused = err;
        continue;
      }
      throw dnsFailure(`cannot find the zone of ${strip(name)}`, err, RESOLVER_HINT);
    }
  }
  throw dnsFailure(`no zone holds ${strip(name)} (no SOA found for it or any parent)`, refused, RESOLVER_HINT);
}

/** Steps 1-3: the target, its zone, and the zone's name servers with their addresses. */
export async function findAuthorities(fqdn: string, resolvers?: DnsServer[], nameserverPort?: number): Promise<TxtAuthorities> {
  const target = await resolveChallengeTarget(fqdn, resolvers);
  const zone = await findZone(target, resolvers);
  let names: string[];
  try {
    names = [...new Set(await queryNs(zone, { servers: resolvers }))].sort();
  } catch (err) {
    throw dnsFailure(`cannot look up the name servers of ${zone}`, err, RESOLVER_HINT);
  }
  if (names.length === 0) throw dnsFailure(`the zone ${zone} has no NS records`, undefined, RESOLVER_HINT);
  const nameservers = await Promise.all(names.map(async (name): Promise<Authority> => {
    try {
      const addresses = await queryAddresses(name, { servers: resolvers });
      return addresses.length ? { name, addresses } : { name, addresses, problem: 'it has no A or AAAA record' };
    } catch (err) {
      return { name, addresses: [], problem: err instanceof Error ? err.message : String(err) };
    }
  }));
  return { target, zone, nameservers, port: nameserverPort ?? resolvers?.[0]?.port ?? 53 };
}

/** The --dns-check resolvers mode: the target (CNAMEs followed through the resolvers) and the resolvers as its servers. */
async function resolverAuthorities(fqdn: string, resolvers: DnsServer[]): Promise<TxtAuthorities> {
  if (resolvers.length === 0) throw dnsFailure('checking at the resolvers needs --dns-resolvers', undefined, RESOLVER_HINT);
  const target = await resolveChallengeTarget(fqdn, resolvers);
  const nameservers = resolvers.map((r) => ({ name: `resolver ${formatServer(r)}`, addresses: [r.host], port: r.port }));
  return { target, zone: 'the --dns-resolvers', nameservers, port: resolvers[0]!.port };
}

/** What one authoritative server still lacks in a round. */
export interface Lack {
  server: string;
  missing: string[];
  /** Why it gave no answer (all its addresses failed), when it gave none. */
  error?: string;
}

/** Step 4 for every name server: [] when all of them serve every value. */
export async function checkAuthorities(auth: TxtAuthorities, values: string[], timeoutMs = 1500): Promise<Lack[]> {
  const lacks = await Promise.all(auth.nameservers.map(async (ns): Promise<Lack[]> => {
    if (ns.addresses.length === 0) return [{ server: ns.name, missing: values, error: `cannot resolve its address: ${ns.problem ?? 'no address'}` }];
    const answers = await Promise.all(ns.addresses.map(async (host) => {
      const server: DnsServer = { host, port: ns.port ?? auth.port };
      const label = `${ns.name} (${formatServer(server)})`;
      try {
        const have = new Set(await queryTxt(auth.target, { servers: [server], timeoutMs }));
        return { label, missing: values.filter((v) => !have.has(v)) };
      } catch (err) {
        return { label, error: err instanceof DnsQueryError ? err.message : String(err) };
      }
    }));
    const answered = answers.filter((a): a is { label: string; missing: string[] } => 'missing' in a);
    if (answered.length === 0) {
      return answers.map((a) => ({ server: a.label, missing: values, error: 'error' in a ? a.error : undefined }));
    }
    return answered.filter((a) => a.missing.length > 0).map((a) => ({ server: a.label, missing: a.missing }));
  }));
  return lacks.flat();
}

const quote = (v: string) => `"${v}"`;
const describeLack = (l: Lack) => (l.error ? `${l.server} did not answer (${l.error})` : `${l.server} lacks ${l.missing.map(quote).join(', ')}`);

/**
 * Returns once every authoritative name server of the challenge's zone serves every value; throws a GuardError
 * naming each server and the values it lacks when timeoutMs passes first. Aborting the signal rejects at once.
 */
export async function waitForTxt(opts: WaitForTxtOptions): Promise<TxtAuthorities> {
  const values = [...new Set(opts.values)];
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  const name = strip(opts.fqdn);
  let auth: TxtAuthorities | undefined;
  let lastProblem = '';
  let lastLacks: Lack[] = [];
  let lastSaid = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    const left = () => deadline - Date.now();
    try {
      // Redone while a name server's address is unknown: a lookup may have failed for a moment.
      if (!auth || auth.nameservers.some((ns) => ns.addresses.length === 0)) {
        auth = opts.check === 'resolvers' ? await resolverAuthorities(name, opts.resolvers ?? []) : await findAuthorities(name, opts.resolvers, opts.nameserverPort);
        const list = auth.nameservers.map((ns) => `${ns.name} (${ns.addresses.join(', ') || 'no address'})`).join(', ');
        opts.log('info', `checking TXT ${auth.target}${auth.target === name ? '' : ` (CNAME target of ${name})`} on the name servers of ${auth.zone}, port ${auth.port}: ${list}`);
      }
      lastLacks = await checkAuthorities(auth, values, Math.max(200, Math.min(1500, left() / 2)));
      lastProblem = '';
      if (lastLacks.length === 0) {
        opts.log('info', `TXT ${auth.target} is served by every name server of ${auth.zone} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
        return auth;
      }
      const said = lastLacks.map(describeLack).join('; ');
      if (said !== lastSaid) opts.log('info', `waiting for TXT ${auth.target}: ${said}`);
      lastSaid = said;
    } catch (err) {
      if (!(err instanceof GuardError)) throw err;
      lastProblem = err.message;
      if (lastProblem !== lastSaid) opts.log('warn', `${lastProblem}; trying again`);
      lastSaid = lastProblem;
    }
    if (left() <= 0) throw timeoutError(name, auth, lastLacks, lastProblem, opts.timeoutMs);
    await sleep(Math.min(opts.intervalMs, left()), undefined, opts.signal ? { signal: opts.signal } : undefined);
  }
}

function timeoutError(name: string, auth: TxtAuthorities | undefined, lacks: Lack[], problem: string, timeoutMs: number): GuardError {
  const after = `after ${Number((timeoutMs / 1000).toFixed(1))}s`;
  if (problem || !auth) {
    return new GuardError('GUARD_E_NETWORK', `cannot check the propagation of TXT ${name} ${after}: ${problem || 'no answer'}`, {
      hint: RESOLVER_HINT, details: { fqdn: name },
    });
  }
  const target = auth.target === name ? name : `${auth.target} (CNAME target of ${name})`;
  return new GuardError('GUARD_E_NETWORK', `TXT ${target} is not served by every name server of ${auth.zone} ${after}: ${lacks.map(describeLack).join('; ')}`, {
    hint: 'the provider accepted the record but these servers do not serve it yet: try a longer --dns-timeout, or check that the provider updates the zone these servers serve (a secondary without NOTIFY, a second provider, a stale delegation)',
    details: { fqdn: name, target: auth.target, zone: auth.zone, lacking: lacks.map((l) => ({ server: l.server, missing: l.missing, error: l.error })) },
  });
}
