/**
 * testssl.sh against sites rendered by `guardctl nginx` and served by a real nginx (offline: the test CA's
 * certificates, loopback only). Checks only what it needs: protocols (-p), the ciphers of each protocol (-E),
 * forward secrecy (-f) and the vulnerabilities (-U); about 45 s for the intermediate profile on 2 cores.
 * Skipped without nginx/openssl/testssl (fails instead under GUARDCTL_REQUIRE_SYSTEM=1).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { checkSite } from '../../src/nginx/check.js';
import { detectVersions, type NginxVersions } from '../../src/nginx/detect.js';
import { renderSite, writeRendered } from '../../src/nginx/render.js';
import type { TlsProfile } from '../../src/nginx/tls.js';
import { tempDir } from '../helpers/cli.js';
import { cleanupStack, freePort, startNginx } from '../helpers/nginx.js';
import { haveProgram } from '../helpers/system.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const TESTSSL = process.env.GUARDCTL_TEST_TESTSSL ?? 'testssl';

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

/** Runs testssl with a JSON file and returns its findings. */
function testssl(t: { after(fn: () => unknown): void }, port: number, checks: string[], jsonFile: string, timeoutMs = 10 * HANG_BOUND_MS): Promise<{ findings: Finding[]; output: string; ms: number }> {
  const args = [
    '--quiet', '--color', '0', '--warnings', 'off',
    '-n', 'none', '--ip', '127.0.0.1', // offline: no DNS lookups, connect to loopback
    // Bounds for a hang only: a probe cut short on a busy machine would read as a finding (e.g. "not offered").
    '--connect-timeout', String(HANG_BOUND_MS / 1000), '--openssl-timeout', String(HANG_BOUND_MS / 1000),
    '--jsonfile', jsonFile, ...checks, `https://guard.test:${port}`,
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group: testssl is a shell script that starts openssl processes; all of them go on a timeout.
    const child = spawn(TESTSSL, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.dirname(jsonFile), detached: true });
    let output = '';
    let done = false;
    const killAll = () => {
      if (done) return;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    };
    t.after(killAll);
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(killAll, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      done = true;
      clearTimeout(timer);
      if (signal !== null) return reject(new Error(`testssl ${args.join(' ')} was killed (${signal}) after ${Date.now() - started} ms:\n${output}`));
      let findings: Finding[];
      try {
        findings = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Finding[];
      } catch (err) {
        return reject(new Error(`testssl (exit ${code}) wrote no JSON findings (${(err as Error).message}):\n${output}`));
      }
      resolve({ findings, output, ms: Date.now() - started });
    });
  });
}

/** A plain upstream with a small HTML page (BREACH and the HTTP service detection fetch "/"). */
async function pageUpstream(t: { after(fn: () => unknown): void }): Promise<number> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>guard</title><p>guard</p>\n'));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

async function tlsSite(t: { after(fn: () => unknown): void }, versions: NginxVersions, upstreamPort: number, certFile: string, keyFile: string, tlsProfile: TlsProfile) {
  const dir = tempDir(t, 'guardctl-nginx-tls-');
  const snippetsDir = path.join(dir, 'snippets');
  const siteFile = path.join(dir, 'site.conf');
  const httpsPort = await freePort();
  const rendered = renderSite({
    domains: ['guard.test'], upstreams: [`127.0.0.1:${upstreamPort}`], certFile, keyFile, tlsProfile, hsts: true,
    nginxVersion: versions.nginx, opensslVersion: versions.openssl, snippetsDir,
    httpPort: await freePort(), httpsPort, listenAddress: '127.0.0.1',
  });
  writeRendered(rendered, siteFile, snippetsDir);
  const check = await checkSite(siteFile);
  assert.ok(check.ok, check.output);
  await startNginx(t, siteFile, { prefix: path.join(dir, 'nginx') });
  return { dir, httpsPort };
}

const byId = (findings: Finding[], id: string): Finding => {
  const f = findings.find((x) => x.id === id);
  assert.ok(f, `testssl reported no "${id}"; ids: ${findings.map((x) => x.id).join(' ')}`);
  return f;
};

function assertNoSevere(findings: Finding[]): void {
  const severe = findings.filter((f) => f.severity === 'HIGH' || f.severity === 'CRITICAL');
  assert.deepEqual(severe.map((f) => `${f.severity} ${f.id}: ${f.finding}`), []);
}

test('testssl: the intermediate profile offers TLS 1.2 and 1.3 only, forward secrecy on every suite, no HIGH or CRITICAL finding', { timeout: 12 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version') || !haveProgram(t, TESTSSL, '--version')) return;
  const c = cleanupStack(t);
  const versions = await detectVersions();
  // RSA: with an ECDSA certificate no RSA key-transport (non-forward-secret) suite could ever be negotiated,
  // whatever ssl_ciphers says; with RSA the cipher list is what decides.
  const ca = makeTestCa(c, { rsa: true });
  const site = await tlsSite(c, versions, await pageUpstream(c), ca.rsaCert!, ca.rsaKey!, 'intermediate');
  const run = await testssl(c, site.httpsPort, ['-p', '-E', '-f', '-U'], path.join(site.dir, 'testssl.json'));
  t.diagnostic(`testssl -p -E -f -U took ${run.ms} ms`);
  const { findings } = run;

  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(byId(findings, id).finding, /^not offered/, id);
  for (const id of ['TLS1_2', 'TLS1_3']) assert.match(byId(findings, id).finding, /^offered/, id);

  const suites = findings.filter((f) => /^cipher-/.test(f.id));
  assert.ok(suites.length >= 4, `suites: ${suites.map((f) => f.id).join(' ')}`);
  for (const s of suites) {
    assert.match(s.id, /^cipher-tls1_[23]_/, `a suite outside TLS 1.2/1.3: ${s.id} ${s.finding}`);
    // "TLS 1.2   xc02f   ECDHE-RSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_..."
    const kx = s.finding.trim().split(/\s{2,}/)[3] ?? '';
    assert.match(kx, /^(ECDH|DH)\b/, `not forward secret: ${s.finding}`);
    assert.doesNotMatch(s.finding, /CBC|SHA1\b|3DES|RC4|NULL|EXP/, `a weak suite: ${s.finding}`);
  }
  assert.ok(suites.some((s) => s.id.startsWith('cipher-tls1_2_') && /ECDHE-RSA/.test(s.finding)), 'the RSA certificate is used');
  assert.equal(byId(findings, 'PFS').severity, 'OK');
  for (const id of ['heartbleed', 'CCS', 'ROBOT', 'secure_renego', 'secure_client_renego', 'CRIME_TLS', 'POODLE_SSL', 'SWEET32', 'FREAK', 'DROWN', 'LOGJAM', 'BEAST', 'LUCKY13', 'RC4']) {
    assert.equal(byId(findings, id).severity, 'OK', `${id}: ${byId(findings, id).finding}`);
  }
  assertNoSevere(findings);
});

test('testssl: --tls-profile modern offers TLS 1.3 only', { timeout: 12 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version') || !haveProgram(t, TESTSSL, '--version')) return;
  const c = cleanupStack(t);
  const versions = await detectVersions();
  const ca = makeTestCa(c);
  const site = await tlsSite(c, versions, await pageUpstream(c), ca.cert, ca.key, 'modern');
  const run = await testssl(c, site.httpsPort, ['-p', '-E', '-f'], path.join(site.dir, 'testssl.json'));
  t.diagnostic(`testssl -p -E -f took ${run.ms} ms`);
  const { findings } = run;
  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2']) assert.match(byId(findings, id).finding, /^not offered/, id);
  assert.match(byId(findings, 'TLS1_3').finding, /^offered/);
  const suites = findings.filter((f) => /^cipher-/.test(f.id));
  assert.ok(suites.length >= 1);
  for (const s of suites) assert.match(s.id, /^cipher-tls1_3_/, s.finding);
  assertNoSevere(findings);
});
