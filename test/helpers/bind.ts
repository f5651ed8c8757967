/**
 * A real BIND (`named -g`) for tests, in its own temporary directory, on a random free loopback port.
 *
 *   const bind = await startBind(t);                 // skips the test when named is missing
 *   if (!bind) return;
 *   bind.port, bind.address ('127.0.0.1'), bind.tsig ({ name, algorithm, secret }), bind.zones
 *   await bind.dig('_acme-challenge.example.test', 'TXT')  // ['value', ...] straight from this server
 *   await bind.nsupdate(['update add x.example.test 60 TXT "v"'])
 *
 * Zones (all primary, dynamic: `allow-update { key <tsig.name>; }`, journals in the temp directory):
 * - example.test: SOA + `NS ns1.example.test.`, `ns1 A <nsAddress or address>` (so a propagation check finds the
 *   authoritative server through this same server) and
 *   `_acme-challenge.cname.example.test CNAME _acme-challenge.cname.delegated.test.`
 * - delegated.test: SOA + `NS ns1.example.test.` (the target zone of that CNAME delegation).
 * opts.zones adds zone-file lines to these (or declares further zones). The SOA minimum is 1 s, so
 * negative answers are not cached. named is stopped in t.after (SIGTERM, then SIGKILL).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { haveProgram } from './system.js';
import { HANG_BOUND_MS } from './wait.js';

export type TsigAlgorithm = 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';

export interface BindOptions {
  /** Loopback address to listen on (default 127.0.0.1; a second server may use ::1: named only binds addresses
   *  configured on an interface, so 127.0.0.2 does not work unless added to lo). */
  address?: string;
  /** The address of ns1.example.test (default: address; a second server sets 127.0.0.1 to share the zone). */
  nsAddress?: string;
  /** Fixed port (default: a random free one). */
  port?: number;
  algorithm?: TsigAlgorithm;
  /** Extra zone-file lines per zone, relative names allowed: { 'example.test': ['www A 127.0.0.1'] }. */
  zones?: Record<string, string[]>;
  /** Start timeout, ms (default HANG_BOUND_MS: named starts slowly on a busy machine). */
  startTimeoutMs?: number;
}

export interface BindServer {
  port: number;
  address: string;
  tsig: { name: string; algorithm: TsigAlgorithm; secret: string };
  zones: string[];
  /** Asks this server (no recursion) and returns the answers; TXT strings are unquoted and joined. */
  dig(name: string, type: string): Promise<string[]>;
  /** Runs nsupdate against this server with its key; throws with nsupdate's output on failure. */
  nsupdate(commands: string[]): void;
  /** The rfc2136 provider's environment (RFC2136_NAMESERVER, _TSIG_KEY, _SECRET, _ALGORITHM) for this server. */
  rfc2136Env(): NodeJS.ProcessEnv;
  /** named's output so far. */
  output(): string;
  stop(): Promise<void>;
}

interface TestContext {
  skip(message?: string): void;
  after(fn: () => unknown): void;
}

const udpFamily = (address: string) => (net.isIPv6(address) ? 'udp6' : 'udp4');

function portFree(port: number, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, address, () => srv.close(() => {
      const sock = dgram.createSocket(udpFamily(address));
      sock.once('error', () => resolve(false));
      sock.bind(port, address, () => sock.close(() => resolve(true)));
    }));
  });
}

/** A port free for both TCP and UDP (DNS servers need both) on every one of the addresses. */
export async function freeLoopbackPort(...addresses: string[]): Promise<number> {
  const where = addresses.length ? addresses : ['127.0.0.1'];
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(where.map((a) => portFree(port, a)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no free TCP+UDP port on ${where.join(', ')}`);
}

/** Whether the address can be bound here (::1 is missing where IPv6 is disabled, in some containers). */
export async function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(udpFamily(address));
    sock.once('error', () => resolve(false));
    sock.bind(0, address, () => sock.close(() => resolve(true)));
  });
}

function zoneFile(zone: string, address: string, token: string, extra: string[]): string {
  const lines = ['$TTL 60', `$ORIGIN ${zone}.`, '@ IN SOA ns1.example.test. hostmaster.example.test. 1 60 60 600 1', '@ IN NS ns1.example.test.'];
  if (zone === 'example.test') {
    lines.push(`ns1 IN A ${address}`, '_acme-challenge.cname IN CNAME _acme-challenge.cname.delegated.test.');
    lines.push(`_guardctl-harness IN TXT "${token}"`);
  }
  return [...lines, ...extra, ''].join('\n');
}

function namedConf(dir: string, address: string, port: number, tsig: BindServer['tsig'], zones: string[]): string {
  const q = (p: string) => JSON.stringify(path.join(dir, p));
  return `options {
  directory ${JSON.stringify(dir)};
  pid-file ${q('named.pid')};
  lock-file ${q('named.lock')};
  session-keyfile ${q('session.key')};
  managed-keys-directory ${JSON.stringify(dir)};
  ${net.isIPv6(address) ? `listen-on { none; };\n  listen-on-v6 port ${port} { ${address}; };` : `listen-on port ${port} { ${address}; };\n  listen-on-v6 { none; };`}
  reuseport no;
  recursion no;
  dnssec-validation no;
  notify no;
  allow-query { any; };
};
controls { };
key "${tsig.name}" { algorithm ${tsig.algorithm}; secret "${tsig.secret}"; };
${zones.map((z) => `zone "${z}" { type primary; file ${q(`${z}.zone`)}; allow-update { key "${tsig.name}"; }; };`).join('\n')}
`;
}

/** `dig @address -p port +short +norecurse name type`; TXT answers come back unquoted, their strings joined. */
export function digAt(address: string, port: number, name: string, type: string): string[] {
  const r = spawnSync('dig', [`@${address}`, '-p', String(port), '+short', '+norecurse', '+time=30', '+tries=1', name, type], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dig failed: ${r.stderr || r.stdout}`);
  const lines = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith(';'));
  if (type.toUpperCase() !== 'TXT') return lines;
  return lines.map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')).join(''));
}

/** The end of a server's output, without named's build banner: enough to see why it failed. */
export function tail(out: string, lines = 40): string {
  return out.split('\n').filter((l) => !/built with|compiled with|linked to|^\S+ \S+ -{10,}/.test(l)).slice(-lines).join('\n');
}

const txtJoin = (chunks: string[][]) => chunks.map((c) => c.join(''));

/** Starts named; returns undefined when the test was skipped because named is not installed. */
export async function startBind(t: TestContext, opts: BindOptions = {}): Promise<BindServer | undefined> {
  if (!haveProgram(t, 'named', '-v')) return undefined;
  const address = opts.address ?? '127.0.0.1';
  const algorithm = opts.algorithm ?? 'hmac-sha256';
  const tsig = { name: 'guardctl-test-key', algorithm, secret: randomBytes(algorithm === 'hmac-sha256' ? 32 : 64).toString('base64') };
  const zones = [...new Set(['example.test', 'delegated.test', ...Object.keys(opts.zones ?? {})])];
  const token = randomBytes(8).toString('hex');
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bind-'));
    const port = opts.port ?? (await freeLoopbackPort(address));
    for (const z of zones) fs.writeFileSync(path.join(dir, `${z}.zone`), zoneFile(z, opts.nsAddress ?? address, token, opts.zones?.[z] ?? []));
    fs.writeFileSync(path.join(dir, 'named.conf'), namedConf(dir, address, port, tsig, zones));
    const server = await launch(t, dir, address, port, tsig, zones, token, opts.startTimeoutMs ?? HANG_BOUND_MS);
    if (typeof server !== 'string') return server;
    lastError = server;
    // Another process took the port between the probe and named's bind: try a new one.
    if (opts.port !== undefined || !/address in use/i.test(server)) break;
  }
  throw new Error(`named did not start:\n${lastError}`);
}

async function launch(t: TestContext, dir: string, address: string, port: number, tsig: BindServer['tsig'], zones: string[],
  token: string, timeoutMs: number): Promise<BindServer | string> {
  const child = spawn('named', ['-g', net.isIPv6(address) ? '-6' : '-4', '-n', '2', '-c', path.join(dir, 'named.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));
  const stop = async () => {
    if (exitedNow) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const stopAndClean = async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  t.after(stopAndClean);
  const resolver = () => {
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`]);
    return r;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitedNow || /address in use|loading configuration: failure|not loaded due to errors|exiting \(due to fatal error\)/i.test(out)) {
      await stopAndClean();
      return `${tail(out)}\n(named ${exitedNow ? 'exited' : 'failed'} on ${address}:${port})`;
    }
    try {
      const answer = txtJoin(await resolver().resolveTxt('_guardctl-harness.example.test'));
      if (answer.includes(token)) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await stopAndClean();
      return `${tail(out)}\n(named did not answer on ${address}:${port} within ${timeoutMs} ms)`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port, address, tsig, zones,
    dig: async (name, type) => digAt(address, port, name, type),
    nsupdate(commands) {
      const script = [`server ${address} ${port}`, ...commands, 'send', ''].join('\n');
      const r = spawnSync('nsupdate', ['-y', `${tsig.algorithm}:${tsig.name}:${tsig.secret}`], { input: script, encoding: 'utf8', timeout: HANG_BOUND_MS });
      if (r.status !== 0) throw new Error(`nsupdate failed (${r.status}): ${r.stderr}${r.stdout}`);
    },
    rfc2136Env: () => ({ RFC2136_NAMESERVER: `${address}:${port}`, RFC2136_TSIG_KEY: tsig.name, RFC2136_TSIG_SECRET: tsig.secret, RFC2136_TSIG_ALGORITHM: tsig.algorithm }),
    output: () => out,
    stop: stopAndClean,
  };
}
