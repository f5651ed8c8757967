/**
 * A real Pebble (Let's Encrypt's test CA) for tests, on random free loopback ports, with a TLS certificate for
 * its own listener made here with openssl (the Debian package ships none).
 *
 *   const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}` });   // skips when pebble is missing
 *   pebble.directory, pebble.caPem (the CA of Pebble's HTTPS listener), pebble.caFile, pebble.managementUrl
 *   await pebble.root() / pebble.intermediate()   // the issuing hierarchy, from the management API
 *   await pebble.certStatus(serialHex)            // { Status: 'Valid' | 'Revoked', ... }
 *
 * PEBBLE_VA_NOSLEEP=1 (validation at once) and PEBBLE_AUTHZREUSE=0 (every order has challenges to solve); the
 * default 5% of good nonces rejected as bad stays on: acme-client must retry them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from './bind.js';
import { haveProgram } from './system.js';
import { HANG_BOUND_MS } from './wait.js';

interface TestContext {
  skip(message?: string): void;
  after(fn: () => unknown): void;
}

export interface PebbleOptions {
  /** host:port of the DNS server Pebble asks for the challenge TXT records. */
  dnsServer: string;
  /** Certificate lifetime in seconds (Pebble's default is five years). */
  validitySeconds?: number;
  /** The port Pebble's HTTP-01 validation connects to (default: a free port nothing listens on). */
  httpPort?: number;
  /** Names Pebble refuses to issue for (rejectedIdentifier), subdomains included. */
  blockedDomains?: string[];
  /** External Account Binding required, with these key ids and base64url HMAC keys. */
  eab?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export interface Pebble {
  directory: string;
  caPem: string;
  /** caPem in a file (for NODE_EXTRA_CA_CERTS / GUARDCTL_ACME_CA_CERTIFICATES). */
  caFile: string;
  managementUrl: string;
  root(): Promise<string>;
  intermediate(): Promise<string>;
  certStatus(serialHex: string): Promise<{ Status: string; Reason?: number }>;
  /** The CLI's environment for this CA: PATH, its root trusted for ACME, no renewal jitter, fast polling. */
  cliEnv(): NodeJS.ProcessEnv;
  output(): string;
  stop(): Promise<void>;
}

function tempDir(t: TestContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a child and registers its stop (SIGTERM, then SIGKILL) with the test. */
function supervise(t: TestContext, child: ChildProcess): { output: () => string; stop: () => Promise<void>; exited: () => boolean } {
  let out = '';
  let done = false;
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((done = true), resolve())));
  const stop = async () => {
    if (done) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  t.after(stop);
  return { output: () => out, stop, exited: () => done };
}

/** GET over HTTPS trusting only `ca`. */
export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

function makeTlsCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'tls-cert.pem');
  const key = path.join(dir, 'tls-key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=pebble test listener', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

async function waitUntil(what: string, fn: () => Promise<boolean>, dead: () => boolean, output: () => string, ms = HANG_BOUND_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (dead()) throw new Error(`${what} exited:\n${output()}`);
    try {
      if (await fn()) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${ms} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPebble(t: TestContext, opts: PebbleOptions): Promise<Pebble | undefined> {
  if (!haveProgram(t, 'pebble', '-h')) return undefined;
  const dir = tempDir(t, 'guardctl-pebble-');
  const tls = makeTlsCert(dir);
  const caPem = fs.readFileSync(tls.cert, 'utf8');
  const [port, mgmt, httpPort, tlsPort] = [await freeLoopbackPort(), await freeLoopbackPort(), opts.httpPort ?? await freeLoopbackPort(), await freeLoopbackPort()];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${mgmt}`,
      certificate: tls.cert,
      privateKey: tls.key,
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: opts.eab !== undefined,
      ...(opts.eab ? { externalAccountMACKeys: opts.eab } : {}),
      ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      ...(opts.blockedDomains ? { domainBlocklist: opts.blockedDomains } : {}),
    },
  };
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config));
  const child = spawn('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', opts.dnsServer], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = supervise(t, child);
  const directory = `https://127.0.0.1:${port}/dir`;
  const managementUrl = `https://127.0.0.1:${mgmt}`;
  await waitUntil('pebble', async () => (await httpsGet(directory, caPem)).status === 200 && (await httpsGet(`${managementUrl}/roots/0`, caPem)).status === 200, proc.exited, proc.output);
  const get = async (route: string) => {
    const r = await httpsGet(`${managementUrl}${route}`, caPem);
    if (r.status !== 200) throw new Error(`pebble management ${route}: HTTP ${r.status} ${r.body}`);
    return r.body;
  };
  return {
    directory,
    caPem,
    caFile: tls.cert,
    managementUrl,
    root: () => get('/roots/0'),
    intermediate: () => get('/intermediates/0'),
    certStatus: async (serial) => JSON.parse(await get(`/cert-status-by-serial/${serial.replace(/^0+/, '')}`)) as { Status: string; Reason?: number },
    cliEnv: () => ({ PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: tls.cert, GUARDCTL_RENEW_JITTER: '0', GUARDCTL_ACME_POLL_MS: '200' }),
    output: proc.output,
    stop: proc.stop,
  };
}
