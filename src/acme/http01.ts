/**
 * HTTP-01 (RFC 8555 section 8.3) through a webroot: the key authorization is written to
 * `<webroot>/.well-known/acme-challenge/<token>`, which the nginx site serves on port 80 (its acme.conf snippet),
 * and removed again after validation. A lineage stores it as the pseudo provider "http-01" with the webroot as
 * its one option, so that renewals (which rebuild the solver from meta.json) take the same path unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GuardError, usageError } from '../core/errors.js';
import type { DnsProvider, TxtRecord } from '../dns/types.js';
import type { Solver } from './order.js';
import type { DnsSettings } from './types.js';

export const HTTP01 = 'http-01';

export const CHALLENGE_DIR = path.join('.well-known', 'acme-challenge');

/** The lineage settings for HTTP-01 through `webroot` (an absolute path; nginx reads it as a file root). */
export function httpSettings(webroot: string): DnsSettings {
  if (!path.isAbsolute(webroot) || /[\s;{}'"]/.test(webroot)) {
    throw usageError(`--http-webroot must be an absolute path without spaces or quotes, got "${webroot}"`, 'for example --http-webroot /var/lib/guardctl/acme (the folder the nginx site serves /.well-known/acme-challenge/ from)');
  }
  return { provider: HTTP01, options: { webroot: path.normalize(webroot) } };
}

export function isHttp01(dns: DnsSettings): boolean {
  return dns.provider === HTTP01;
}

/** Wildcards can only be validated through DNS: refused before anything is asked of the CA. */
export function checkHttpNames(names: string[]): void {
  const wild = names.filter((n) => n.startsWith('*.'));
  if (wild.length > 0) {
    throw usageError(`${wild.join(', ')}: a wildcard certificate needs the DNS-01 challenge, which HTTP-01 cannot replace`, 'use --dns PROVIDER for wildcards (see guardctl cert providers), or list the names one by one with HTTP-01');
  }
}

/** The token is the file name: only the base64url alphabet, so it cannot leave the challenge folder. */
function tokenFile(webroot: string, token: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error(`the CA sent an HTTP-01 token with unexpected characters: "${token.slice(0, 40)}"`);
  return path.join(webroot, CHALLENGE_DIR, token);
}

/** present/cleanup write and remove one token file; record.fqdn carries the token (see order.ts). */
function webrootWriter(webroot: string): DnsProvider {
  return {
    name: HTTP01,
    async present(record: TxtRecord) {
      const file = tokenFile(webroot, record.fqdn);
      try {
        // World-readable: nginx's workers (often nobody or www-data) serve it.
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
        fs.writeFileSync(file, record.value, { mode: 0o644 });
        fs.chmodSync(file, 0o644);
      } catch (err) {
        throw new GuardError('GUARD_E_DEPLOY', `cannot write the HTTP-01 challenge file ${file}: ${(err as Error).message}`, {
          hint: 'the --http-webroot folder must be writable by guardctl and served by nginx at /.well-known/acme-challenge/ on port 80', cause: err,
        });
      }
    },
    async cleanup(record: TxtRecord) {
      fs.rmSync(tokenFile(webroot, record.fqdn), { force: true });
    },
  };
}

export function httpSolver(dns: DnsSettings): Solver {
  const webroot = String(dns.options.webroot ?? '');
  if (!webroot) throw usageError('this certificate uses HTTP-01 but names no webroot', 'issue it again with guardctl cert issue --http-webroot DIR');
  return {
    challenge: HTTP01,
    failureHint: 'the CA could not fetch the challenge file over http://NAME/.well-known/acme-challenge/: check that the name points at this host, that port 80 reaches nginx, and that the site serves the --http-webroot folder there',
    provider: webrootWriter(webroot),
    parallel: true,
    // Nothing propagates: the file is served as soon as it is written.
    propagation: { waitForTxt: async () => undefined, resolveChallengeTarget: async (name) => name },
    timeoutMs: 0,
    intervalMs: 0,
  };
}
