import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExecaError, execa } from 'execa';
import { dnsError } from '../../errors.js';
import type { NameServer, TsigAlgorithm } from './config.js';

/** How nsupdate signs: a key built from name + secret, the operator's own key file, or nothing (unsigned). */
export type TsigSource =
  | { kind: 'secret'; name: string; algorithm: TsigAlgorithm; secret: string }
  | { kind: 'file'; path: string }
  | { kind: 'none' };

export interface NsupdateRun {
  server: NameServer;
  tsig: TsigSource;
  /** `zone NAME` line; nsupdate finds the zone itself (an SOA query to the server) when absent. */
  zone?: string;
  /** The `update ...` lines. */
  updates: string[];
  /** What the run does, for messages: "add TXT at _acme-challenge.example.com". */
  action: string;
  /** nsupdate's own timeout for the whole update, seconds. */
  timeoutSec: number;
  secrets: readonly string[];
}

/**
 * The secret goes into a 0600 key file in a private 0700 temporary directory, removed afterwards, never onto
 * nsupdate's command line (where `ps` shows it to every user of the machine).
 */
async function withKeyFile<T>(tsig: TsigSource, fn: (args: string[]) => Promise<T>): Promise<T> {
  if (tsig.kind === 'none') return fn([]);
  if (tsig.kind === 'file') return fn(['-k', tsig.path]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-tsig-'));
  try {
    const file = path.join(dir, 'tsig.key');
    const text = `key "${tsig.name}" {\n  algorithm ${tsig.algorithm};\n  secret "${tsig.secret}";\n};\n`;
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    return await fn(['-k', file]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function hintFor(output: string, server: string): string {
  if (/BADSIG|BADKEY|BADTIME|tsig/i.test(output)) {
    return 'the server did not accept the TSIG signature: check that RFC2136_TSIG_KEY, RFC2136_TSIG_SECRET and RFC2136_TSIG_ALGORITHM match the key in the server\'s configuration (and that both clocks are right)';
  }
  if (/REFUSED|NOTAUTH/.test(output)) {
    return `${server} refused the update: its allow-update / update-policy must allow this key for the zone, and it must be the primary server of the zone (set RFC2136_ZONE when it cannot find the zone)`;
  }
  if (/enclosing zone/i.test(output)) {
    return `nsupdate asked ${server} for the zone of this name and found none: check that RFC2136_NAMESERVER is reachable and serves the zone, or set RFC2136_ZONE`;
  }
  if (/NOTZONE|not.*authoritative|SERVFAIL|NXDOMAIN/i.test(output)) {
    return 'the server does not hold the zone of this name: set RFC2136_ZONE to the zone that holds it, and RFC2136_NAMESERVER to its primary server';
  }
  if (/timed out|connection refused|could not reach|couldn't get address|unreachable/i.test(output)) {
    return `check RFC2136_NAMESERVER (${server}): the primary name server must be reachable from this machine over UDP and TCP`;
  }
  return 'run the same update with nsupdate -d by hand to see the exchange with the server';
}

/** Runs one nsupdate transaction; throws a GUARD_E_DNS_PROVIDER error with nsupdate's own words on failure. */
export async function runNsupdate(run: NsupdateRun): Promise<void> {
  const server = run.server.host.includes(':') ? `[${run.server.host}]:${run.server.port}` : `${run.server.host}:${run.server.port}`;
  const script = [`server ${run.server.host} ${run.server.port}`, ...(run.zone ? [`zone ${run.zone}`] : []), ...run.updates, 'send', ''].join('\n');
  await withKeyFile(run.tsig, async (keyArgs) => {
    try {
      await execa('nsupdate', [...keyArgs, '-t', String(run.timeoutSec)], {
        input: script,
        timeout: (run.timeoutSec + 15) * 1000,
        env: { LC_ALL: 'C' },
        stripFinalNewline: true,
      });
    } catch (err) {
      if (!(err instanceof ExecaError)) throw err;
      if (err.code === 'ENOENT') {
        throw dnsError('rfc2136', 'nsupdate is not installed', { hint: 'install it (Debian/Ubuntu: apt install bind9-dnsutils; RHEL: dnf install bind-utils)' });
      }
      const output = [err.stderr, err.stdout].map((s) => String(s ?? '')).join('\n')
        .split('\n')
        // BIND's own timestamps ("23-Nov-2026 05:25:04.284 ") and comment marks add nothing to the message.
        .map((l) => l.replace(/^\d{2}-\w{3}-\d{4} [\d:.]+ /, '').replace(/^;\s*/, '').trim()).filter(Boolean).join('; ');
      const what = err.timedOut ? `nsupdate did not finish within ${run.timeoutSec + 15}s` : output || `nsupdate exited with ${err.exitCode ?? err.signal}`;
      throw dnsError('rfc2136', `cannot ${run.action} through ${server}: ${what}`, {
        hint: hintFor(output || (err.timedOut ? 'timed out' : ''), server),
        details: { server, exitCode: err.exitCode },
      }, run.secrets);
    }
  });
}
