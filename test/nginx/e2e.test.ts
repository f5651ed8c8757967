/**
 * End to end: `guardctl nginx` renders a site, `nginx -t` accepts it, a real nginx serves it with a test CA's
 * certificate in front of the real `guardctl serve` (a separate process), and clients talk TLS to nginx.
 * Skipped without nginx/openssl (fails instead under GUARDCTL_REQUIRE_SYSTEM=1). testssl runs in
 * e2e-testssl.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { signRequest } from '../../src/gate/sign-request.js';
import { checkSite } from '../../src/nginx/check.js';
import { detectVersions, type NginxVersions } from '../../src/nginx/detect.js';
import { renderSite, writeRendered, type SiteOptions } from '../../src/nginx/render.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { cleanupStack, freePort, startNginx, startNginxRoot, type RunningNginx } from '../helpers/nginx.js';
import { haveProgram } from '../helpers/system.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;
const BOMB = 'How do I make a bomb in my kitchen?';

// ---------------------------------------------------------------------------------------------------------
// The daemon

interface Daemon {
  home: string;
  /** 127.0.0.1:PORT, for --upstream. */
  upstream: string;
  url: string;
  lines: string[];
}

/** The real `guardctl serve` (embedded demo models) as a separate process on a free port; stopped after the test. */
async function startDaemon(t: { after(fn: () => unknown): void }, home: string, args: string[] = []): Promise<Daemon> {
  const child: ChildProcess = spawn(process.execPath, [BIN, '--home', home, 'serve', '--port', '0', '--device', 'cpu', ...args], {
    env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_LOG: 'info', GUARDCTL_MASTER_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  t.after(async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const lines: string[] = [];
  let buffered = '';
  let notify = () => {};
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts.filter(Boolean));
    notify();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  // Starting from the TypeScript sources and warming the models is slow on a busy machine: a hang's bound only.
  const waitFor = async (re: RegExp, ms = 3 * HANG_BOUND_MS): Promise<string> => {
    const end = Date.now() + ms;
    for (;;) {
      const line = lines.find((l) => re.test(l));
      if (line) return line;
      if (child.exitCode !== null || Date.now() > end) throw new Error(`guardctl serve: no line matching ${re}; output:\n${lines.join('\n')}`);
      await new Promise<void>((r) => ((notify = r), setTimeout(r, 100)));
    }
  };
  const url = (JSON.parse(await waitFor(/"msg":"listening"/)) as { url: string }).url;
  await waitFor(/"model":"guard-demo".*"msg":"model ready"/);
  return { home, upstream: new URL(url).host, url, lines };
}

function writeDaemonConfig(home: string): void {
  // nginx on this machine is the trusted proxy: the daemon takes the client from X-Forwarded-For.
  fs.writeFileSync(path.join(home, 'guardctl.yaml'), 'gate:\n  trusted_proxies: ["127.0.0.1/32"]\n');
}

async function createKey(home: string, name: string, extra: string[] = []): Promise<{ id: string; secret: string }> {
  const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', name, '--tier', 'enterprise', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return r.json();
}

// ---------------------------------------------------------------------------------------------------------
// Clients

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Raw header lines (name, value, name, value...), to count repeated headers. */
  raw: string[];
  body: string;
}

interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Source address (any 127.x.y.z on Linux loopback), to play a client other than nginx's own address. */
  from?: string;
  /** Host header (default guard.test:PORT). */
  host?: string;
}

/** HTTPS to nginx on 127.0.0.1, SNI guard.test, verified against the test CA. */
function httpsCall(ca: TestCa, port: number, urlPath: string, o: CallOptions = {}): Promise<Answer> {
  return call(https, port, urlPath, { ...o, tls: { ca: fs.readFileSync(ca.caFile), servername: 'guard.test' } });
}

function httpCall(port: number, urlPath: string, o: CallOptions = {}): Promise<Answer> {
  return call(http, port, urlPath, o);
}

function call(mod: typeof http | typeof https, port: number, urlPath: string, o: CallOptions & { tls?: https.RequestOptions }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = mod.request({
      host: '127.0.0.1', port, path: urlPath, method: o.method ?? 'GET', agent: false, localAddress: o.from, ...o.tls,
      headers: { host: o.host ?? `guard.test:${port}`, ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timed out: ${urlPath}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A signed moderation request over TLS through nginx; `urlPath` is what is requested and signed. */
function moderate(ca: TestCa, port: number, key: { id: string; secret: string }, o: CallOptions & { path?: string } = {}): Promise<Answer> {
  const urlPath = o.path ?? '/api/v1/moderate';
  const body = JSON.stringify({ text: BOMB });
  const signed = signRequest({ method: 'POST', url: `https://guard.test:${port}${urlPath}`, body, keyId: key.id, secret: key.secret });
  return httpsCall(ca, port, urlPath, { ...o, method: 'POST', body, headers: { ...signed.headers, ...o.headers } });
}

/** GETs pipelined on one TLS connection (HTTP/1.1); the status of each answer, in order. */
function pipelined(ca: TestCa, port: number, paths: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'guard.test', ca: fs.readFileSync(ca.caFile), ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(paths.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: guard.test:${port}\r\n${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join(''));
    });
    let text = '';
    socket.setTimeout(30_000, () => socket.destroy(new Error('pipelined requests timed out')));
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    // Status lines: an answer's body need not end with a newline, so they are not anchored at line starts.
    socket.on('end', () => resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) [A-Za-z ]+\r\n/g)].map((m) => Number(m[1]))));
    socket.on('error', reject);
  });
}

const headerCount = (a: Answer, name: string) => a.raw.filter((v, i) => i % 2 === 0 && v.toLowerCase() === name).length;
const json = <T = any>(a: Answer): T => {
  try {
    return JSON.parse(a.body) as T;
  } catch {
    throw new Error(`not JSON (${a.status}): ${a.body.slice(0, 500)}`);
  }
};

// ---------------------------------------------------------------------------------------------------------
// Sites

interface Site {
  dir: string;
  siteFile: string;
  snippetsDir: string;
  httpPort: number;
  httpsPort: number;
  nginx: RunningNginx;
}

type SiteInput = Omit<SiteOptions, 'nginxVersion' | 'opensslVersion' | 'snippetsDir' | 'domains' | 'httpPort' | 'httpsPort' | 'listenAddress'> & { domains?: string[] };

/** render (the library) -> write -> checkSite (nginx -t) -> a running nginx serving it on two free loopback ports. */
async function serveSite(t: { after(fn: () => unknown): void }, versions: NginxVersions, input: SiteInput): Promise<Site> {
  const dir = tempDir(t, 'guardctl-nginx-e2e-');
  const snippetsDir = path.join(dir, 'snippets');
  const siteFile = path.join(dir, 'sites', 'site.conf');
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const rendered = renderSite({
    domains: ['guard.test'], ...input, nginxVersion: versions.nginx, opensslVersion: versions.openssl, snippetsDir,
    httpPort, httpsPort, listenAddress: '127.0.0.1',
  });
  writeRendered(rendered, siteFile, snippetsDir);
  const check = await checkSite(siteFile);
  assert.ok(check.ok, `nginx -t refused the rendered site:\n${check.output}\n${rendered.site}`);
  const nginx = await startNginx(t, siteFile, { prefix: path.join(dir, 'nginx') });
  assert.equal(nginx.httpsPort, input.bootstrap ? 0 : httpsPort);
  return { dir, siteFile, snippetsDir, httpPort, httpsPort, nginx };
}

// ---------------------------------------------------------------------------------------------------------

test('nginx in front of guardctl serve: redirect, ACME, headers, signed requests, client address, limits, streaming', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const versions = await detectVersions();
  const c = cleanupStack(t);
  const ca = makeTestCa(c);

  // One daemon at the root, one under /guard; keys created before they start.
  const home = tempDir(c);
  const subHome = tempDir(c);
  writeDaemonConfig(home);
  writeDaemonConfig(subHome);
  const anyKey = await createKey(home, 'anywhere');
  const nearKey = await createKey(home, 'near', ['--allow-ip', '127.0.1.0/24']);
  const tenKey = await createKey(home, 'ten', ['--allow-ip', '10.0.0.0/8']);
  const subKey = await createKey(subHome, 'sub');
  const [daemon, subDaemon] = await Promise.all([startDaemon(c, home), startDaemon(c, subHome, ['--base-path', '/guard'])]);

  const webroot = tempDir(c, 'guardctl-webroot-');
  fs.mkdirSync(path.join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
  fs.writeFileSync(path.join(webroot, '.well-known', 'acme-challenge', 'tok-123'), 'tok-123.thumbprint');
  const main = await serveSite(c, versions, { upstreams: [daemon.upstream], certFile: ca.cert, keyFile: ca.key, hsts: true, acmeWebroot: webroot });

  await t.test('plain HTTP answers 308 to HTTPS; the ACME http-01 location is served from the webroot', async () => {
    const r = await httpCall(main.httpPort, '/x?y=1');
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, `https://guard.test:${main.httpsPort}/x?y=1`);
    const token = await httpCall(main.httpPort, '/.well-known/acme-challenge/tok-123');
    assert.equal(token.status, 200);
    assert.equal(token.body, 'tok-123.thumbprint');
    assert.match(String(token.headers['content-type']), /^text\/plain/);
    assert.equal((await httpCall(main.httpPort, '/.well-known/acme-challenge/missing')).status, 404);
  });

  await t.test('the port-80 server does not reveal the nginx version', async () => {
    for (const p of ['/x', '/.well-known/acme-challenge/missing']) {
      const r = await httpCall(main.httpPort, p);
      assert.equal(r.headers.server, 'nginx', p);
      assert.doesNotMatch(r.body, /nginx\/\d/, p);
    }
  });

  await t.test('the page over TLS carries the security headers, each once', async () => {
    const r = await httpsCall(ca, main.httpsPort, '/');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.ok(['no-referrer', 'same-origin', 'strict-origin', 'strict-origin-when-cross-origin'].includes(String(r.headers['referrer-policy'])), `Referrer-Policy: ${r.headers['referrer-policy']}`);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'self'/);
    for (const h of ['strict-transport-security', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'content-security-policy']) {
      assert.equal(headerCount(r, h), 1, `${h} sent ${headerCount(r, h)} times`);
    }
    assert.equal(r.headers.server, 'nginx', 'server_tokens off: no version');
    // On nginx's own error answers too ("always").
    const denied = await httpsCall(ca, main.httpsPort, '/metrics');
    assert.equal(denied.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');
    assert.equal(denied.headers['x-content-type-options'], 'nosniff');
  });

  await t.test('a signed moderation request end to end over TLS', async () => {
    const r = await moderate(ca, main.httpsPort, anyKey);
    assert.equal(r.status, 200, r.body);
    const answer = json<{ level: string; model: string }>(r);
    assert.equal(answer.level, 'unsafe');
    assert.equal(answer.model, 'guard-demo');
    // A tampered body fails the signature: nginx passes the request through unchanged, not "fixed".
    const signed = signRequest({ method: 'POST', url: '/api/v1/moderate', body: JSON.stringify({ text: BOMB }), keyId: anyKey.id, secret: anyKey.secret });
    const bad = await httpsCall(ca, main.httpsPort, '/api/v1/moderate', { method: 'POST', body: JSON.stringify({ text: 'hello' }), headers: signed.headers });
    assert.equal(bad.status, 401, bad.body);
    assert.equal(json(bad).error.code, 'bad_signature');
  });

  await t.test('the daemon sees the real client through X-Forwarded-For (and only from nginx)', async () => {
    // 127.0.1.5 plays a remote client; nginx itself is 127.0.0.1 (the trusted proxy).
    const near = await moderate(ca, main.httpsPort, nearKey, { from: '127.0.1.5' });
    assert.equal(near.status, 200, near.body);
    const fromNginxNet = await moderate(ca, main.httpsPort, nearKey);
    assert.equal(fromNginxNet.status, 403, fromNginxNet.body);
    assert.equal(json(fromNginxNet).error.code, 'ip_denied');
    const ten = await moderate(ca, main.httpsPort, tenKey, { from: '127.0.1.5' });
    assert.equal(ten.status, 403, ten.body);
    assert.equal(json(ten).error.code, 'ip_denied');
    // A client's own X-Forwarded-For is not believed: nginx appends the address it saw, the daemon reads from the right.
    const spoofed = await moderate(ca, main.httpsPort, nearKey, { from: '127.0.2.7', headers: { 'X-Forwarded-For': '127.0.1.9' } });
    assert.equal(spoofed.status, 403, spoofed.body);
    assert.equal(json(spoofed).error.code, 'ip_denied');

    const auditFile = path.join(home, 'audit', 'audit.jsonl');
    let records: Array<{ key_id: string; status: number; reason: string | null; client_net: string }> = [];
    await waitFor(() => {
      records = fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      return records.filter((r) => r.key_id === nearKey.id || r.key_id === tenKey.id).length >= 4;
    }, () => `four audit records of the near and ten keys in:\n${records.map((r) => JSON.stringify(r)).join('\n')}`, HANG_BOUND_MS, 100);
    const nets = (id: string) => records.filter((r) => r.key_id === id).map((r) => `${r.status} ${r.reason ?? '-'} ${r.client_net}`);
    assert.deepEqual(nets(nearKey.id), ['200 - 127.0.1.0/24', '403 ip_denied 127.0.0.0/24', '403 ip_denied 127.0.2.0/24']);
    assert.deepEqual(nets(tenKey.id), ['403 ip_denied 127.0.1.0/24']);
  });

  await t.test('/metrics is not reachable through nginx (however the path is spelled)', async () => {
    const direct = await fetch(`${daemon.url}/metrics`);
    assert.equal(direct.status, 200, 'the daemon itself serves /metrics');
    assert.match(await direct.text(), /guard_http_requests_total/);
    for (const p of ['/metrics', '/metrics?x=1', '//metrics', '/%6Detrics', '/api/../metrics', '/metrics/']) {
      const r = await httpsCall(ca, main.httpsPort, p);
      assert.equal(r.status, 403, `${p}: ${r.status} ${r.body.slice(0, 200)}`);
      assert.doesNotMatch(r.body, /guard_http_requests_total/, p);
    }
    const plain = await httpCall(main.httpPort, '/metrics');
    assert.equal(plain.status, 308);
  });

  await t.test('the sub-path: site at /guard/, daemon with --base-path /guard', async (st) => {
    const site = await serveSite(cleanupStack(st), versions, { upstreams: [subDaemon.upstream], certFile: ca.cert, keyFile: ca.key, path: '/guard/' });
    const page = await httpsCall(ca, site.httpsPort, '/guard/');
    assert.equal(page.status, 200, page.body);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    const bare = await httpsCall(ca, site.httpsPort, '/guard');
    assert.equal(bare.status, 308);
    assert.match(String(bare.headers.location), /\/guard\/$/);
    const r = await moderate(ca, site.httpsPort, subKey, { path: '/guard/api/v1/moderate' });
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r).level, 'unsafe');
    // Signed without the prefix: the daemon checks the full path it was asked for.
    const body = JSON.stringify({ text: BOMB });
    const wrong = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: subKey.id, secret: subKey.secret });
    const refused = await httpsCall(ca, site.httpsPort, '/guard/api/v1/moderate', { method: 'POST', body, headers: wrong.headers });
    assert.equal(refused.status, 401, refused.body);
    assert.equal((await httpsCall(ca, site.httpsPort, '/guard/metrics')).status, 403);
    assert.equal((await httpsCall(ca, site.httpsPort, '/api/v1/moderate')).status, 404, 'nothing outside the prefix');
    assert.equal((await httpsCall(ca, site.httpsPort, '/guard/healthz')).status, 200);
  });

  await t.test('limit_req: --rate-limit 1r/m --burst 1 lets the allowance through, then answers 429', async (st) => {
    // One request a minute: however slowly this machine serves the series, no allowance comes back during it,
    // so exactly the first request and the burst pass.
    const site = await serveSite(cleanupStack(st), versions, { upstreams: [daemon.upstream], certFile: ca.cert, keyFile: ca.key, rateLimit: '1r/m', burst: 1 });
    const statuses = await pipelined(ca, site.httpsPort, Array.from({ length: 10 }, () => '/healthz'));
    assert.deepEqual(statuses, [200, 200, ...Array(8).fill(429)]);
    // Another client address has its own allowance.
    assert.equal((await httpsCall(ca, site.httpsPort, '/healthz', { from: '127.0.3.1' })).status, 200);
  });

  await t.test('--allow 10.0.0.0/8: everyone else gets 403 from nginx', async (st) => {
    const site = await serveSite(cleanupStack(st), versions, { upstreams: [daemon.upstream], certFile: ca.cert, keyFile: ca.key, allow: ['10.0.0.0/8'] });
    for (const p of ['/', '/healthz']) {
      const r = await httpsCall(ca, site.httpsPort, p);
      assert.equal(r.status, 403, `${p}: ${r.body.slice(0, 200)}`);
      assert.match(r.body, /<center>nginx<\/center>/, 'nginx answered, not the daemon');
    }
    const r = await moderate(ca, site.httpsPort, anyKey);
    assert.equal(r.status, 403);
  });

  await t.test('WebSocket upgrades and server-sent events pass through unbuffered', async (st) => {
    const sc = cleanupStack(st);
    const up = await streamingUpstream(sc);
    const site = await serveSite(sc, versions, { upstreams: [`127.0.0.1:${up.port}`], certFile: ca.cert, keyFile: ca.key });

    // SSE: the upstream sends each event only once the client has the previous one, so a buffering proxy
    // stalls the stream (and the test fails at the hang bound) whatever the machine's speed.
    const arrivals: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stalled = setTimeout(() => reject(new Error(`the stream stalled after ${JSON.stringify(arrivals.join(''))}: buffered`)), HANG_BOUND_MS);
      const req = https.get({
        host: '127.0.0.1', port: site.httpsPort, path: '/events', agent: false, ca: fs.readFileSync(ca.caFile), servername: 'guard.test',
        headers: { host: `guard.test:${site.httpsPort}`, accept: 'text/event-stream' },
      }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        res.on('data', (c: Buffer) => {
          arrivals.push(c.toString('utf8'));
          // The whole of what was sent has arrived: the next event may go.
          if (arrivals.join('') === up.expected(up.sent)) up.sendNext();
        });
        res.on('end', () => (clearTimeout(stalled), resolve()));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    assert.equal(arrivals.join(''), up.expected(up.events.length));
    assert.ok(arrivals.length >= up.events.length, `${arrivals.length} chunks arrived for ${up.events.length} events`);
    // What the upstream was told about the client.
    const seen = up.requests.find((r) => r.url === '/events')!;
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
    assert.equal(seen.headers.host, 'guard.test');
    assert.notEqual(String(seen.headers.connection ?? '').toLowerCase(), 'upgrade');

    // WebSocket: 101 through nginx, then bytes both ways over the tunnel.
    const wsKey = randomBytes(16).toString('base64');
    const { res, socket } = await new Promise<{ res: http.IncomingMessage; socket: net.Socket }>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: site.httpsPort, path: '/ws', agent: false, ca: fs.readFileSync(ca.caFile), servername: 'guard.test',
        headers: { host: `guard.test:${site.httpsPort}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': wsKey, 'sec-websocket-version': '13' },
      });
      req.on('upgrade', (r, s) => resolve({ res: r, socket: s }));
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    sc.after(() => socket.destroy());
    assert.equal(res.statusCode, 101);
    assert.equal(res.headers['sec-websocket-accept'], wsAccept(wsKey));
    const echoed = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString('utf8'))));
    socket.write('ping');
    assert.equal(await echoed, 'echo:ping');
    const wsSeen = up.requests.find((r) => r.url === '/ws')!;
    assert.equal(wsSeen.headers.upgrade, 'websocket');
    assert.equal(String(wsSeen.headers.connection).toLowerCase(), 'upgrade');
  });

  await t.test('guardctl nginx install into a root served by a real nginx: reloads; an install that breaks nginx -t is rolled back', async (st) => {
    const sc = cleanupStack(st);
    const { root, nginx: ngx } = await startNginxRoot(sc);
    const httpPort = await freePort();
    const httpsPort = await freePort();
    const install = (args: string[]) => runCli(['--home', home, '--json', 'nginx', 'install', '--nginx-root', root, '--name', 'e2e', '--reload-cmd', ngx.reloadCommand, ...args]);
    const siteArgs = ['--domain', 'guard.test', '--upstream', daemon.upstream, '--cert-file', ca.cert, '--key-file', ca.key,
      '--listen-address', '127.0.0.1', '--http-port', String(httpPort), '--https-port', String(httpsPort)];

    // 1. A new site: installed, nginx -t passes, the reload makes it answer.
    let mark = ngx.mark();
    const first = await install(siteArgs);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.json().reloaded, true);
    assert.equal(first.json().reload_verified, true, 'the master was found through the pid file and started new workers');
    assert.equal(first.json().site_file, path.join(root, 'sites-available', 'e2e.conf'));
    await ngx.waitForReload(mark);
    const v1 = await httpsCall(ca, httpsPort, '/healthz');
    assert.equal(v1.status, 200, v1.body);
    assert.equal(v1.headers['strict-transport-security'], undefined);
    assert.equal((await httpCall(httpPort, '/')).status, 308);

    // 2. A changed site (now with HSTS), rendered with --out elsewhere and installed with --file (its snippets
    // come along, its includes pointed at the root's snippets folder), replaces it on the next reload.
    const out = path.join(tempDir(sc, 'guardctl-render-'), 'e2e.conf');
    const rendered = await runCli(['--home', home, '--json', 'nginx', 'render', '--name', 'e2e', ...siteArgs, '--hsts', '--out', out]);
    assert.equal(rendered.code, 0, rendered.stdout + rendered.stderr);
    mark = ngx.mark();
    const second = await install(['--file', out]);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(second.json().reloaded, true);
    assert.doesNotMatch(fs.readFileSync(path.join(root, 'sites-available', 'e2e.conf'), 'utf8'), new RegExp(path.dirname(out)));
    await ngx.waitForReload(mark);
    assert.equal((await httpsCall(ca, httpsPort, '/healthz')).headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');

    // 3. A site that nginx -t rejects: the previous files come back byte for byte, nginx is not reloaded, the site still answers.
    const snapshot = () => {
      const files: Record<string, string> = {};
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else files[path.relative(root, p)] = e.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : fs.readFileSync(p, 'utf8');
        }
      };
      for (const d of ['sites-available', 'sites-enabled', 'snippets']) walk(path.join(root, d));
      return files;
    };
    const before = snapshot();
    const broken = path.join(tempDir(sc, 'guardctl-broken-'), 'e2e.conf');
    fs.writeFileSync(broken, `server {\n    listen 127.0.0.1:${httpPort};\n    server_name guard.test;\n    proxy_pas http://127.0.0.1:1;\n}\n`);
    const checked = await runCli(['--home', home, '--json', 'nginx', 'check', broken]);
    assert.equal(checked.code, 1, 'nginx check refuses it too');
    mark = ngx.mark();
    const third = await install(['--file', broken]);
    assert.notEqual(third.code, 0, third.stdout);
    const error = third.json<{ error: { code: string; message: string } }>().error;
    assert.equal(error.code, 'GUARD_E_NGINX_CONFIG');
    assert.match(error.message, /nginx -t rejected .*previous files are back in place and nginx was not reloaded/s);
    assert.match(error.message, /unknown directive "proxy_pas"/);
    assert.deepEqual(snapshot(), before);
    // The reload command (nginx -s reload) logs "signal process started" before it exits, so a reload by the
    // install would be in the log by now; and after our own reload below, the master reconfigured only once.
    assert.doesNotMatch(ngx.errorLog().slice(mark), /signal process started/, 'no reload after the refused install');
    const still = await httpsCall(ca, httpsPort, '/healthz');
    assert.equal(still.status, 200, still.body);
    assert.equal(still.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');
    // And the whole configuration still passes nginx -t, and a reload of it works.
    await ngx.reload();
    assert.equal(ngx.errorLog().slice(mark).match(/\(SIGHUP\) received/g)?.length, 1, `no reload after the refused install:\n${ngx.errorLog().slice(mark)}`);
    assert.equal((await httpsCall(ca, httpsPort, '/healthz')).status, 200);

    // 4. A site that passes nginx -t but that the master cannot apply (its port is taken by another program):
    // the reload is seen to fail (no new worker), the files come back, nginx is reloaded with them and serves on.
    const squatter = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    sc.after(() => new Promise((r) => squatter.close(r)));
    const taken = (squatter.address() as net.AddressInfo).port;
    const workersBefore = ngx.errorLog().match(/start worker process/g)!.length;
    mark = ngx.mark();
    const fourth = await install([...siteArgs, '--http-port', String(taken), '--reload-timeout', '5s']);
    assert.equal(fourth.code, 1, fourth.stdout);
    const refused = fourth.json<{ error: { code: string; message: string; hint: string } }>().error;
    assert.equal(refused.code, 'GUARD_E_DEPLOY');
    assert.match(refused.message, new RegExp(`nginx did not take the site "e2e": the nginx master \\(pid ${ngx.pid}\\) started no new worker within 5 s`));
    assert.match(refused.message, new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${taken} failed \\(98: Address already in use\\)`));
    assert.match(refused.message, /the previous files are back in place and nginx was reloaded with them$/);
    assert.match(refused.hint, /a port that another program holds/);
    assert.deepEqual(snapshot(), before);
    // The restoring reload started new workers, and the site answers as before on its old ports.
    assert.ok(ngx.errorLog().match(/start worker process/g)!.length > workersBefore, ngx.errorLog().slice(mark));
    const after = await httpsCall(ca, httpsPort, '/healthz');
    assert.equal(after.status, 200, after.body);
    assert.equal((await httpCall(httpPort, '/')).status, 308);

    // 5. With the port free again the same install lands, and says that the reload was confirmed.
    await new Promise((r) => squatter.close(r));
    const fifth = await install([...siteArgs, '--http-port', String(taken)]);
    assert.equal(fifth.code, 0, fifth.stdout + fifth.stderr);
    assert.equal(fifth.json().reload_verified, true);
    assert.equal((await httpCall(taken, '/')).status, 308);
  });
});

function wsAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11B85`).digest('base64');
}

/**
 * A tiny upstream that the daemon is not: /events streams four server-sent events, the first at once and each
 * next one when sendNext() is called (without X-Accel-Buffering, so only the site's proxy_buffering decides),
 * and an Upgrade: websocket request gets a 101 and an echo.
 */
async function streamingUpstream(t: { after(fn: () => unknown): void }) {
  const events = ['one', 'two', 'three', 'four'];
  let sent = 0;
  let next = () => {};
  const requests: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url!, headers: req.headers });
    if (req.url !== '/events') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    next = () => {
      if (sent === events.length) return void res.end();
      res.write(`data: ${events[sent++]}\n\n`);
    };
    next();
  });
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  server.on('upgrade', (req, socket: net.Socket) => {
    requests.push({ url: req.url!, headers: req.headers });
    socket.write(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${wsAccept(String(req.headers['sec-websocket-key']))}`, '', ''].join('\r\n'));
    socket.on('data', (c: Buffer) => socket.write(`echo:${c.toString('utf8')}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as net.AddressInfo).port, events, requests,
    /** How many events were sent so far. */
    get sent() {
      return sent;
    },
    sendNext: () => next(),
    /** The stream's text after the first `n` events. */
    expected: (n: number) => events.slice(0, n).map((e) => `data: ${e}\n\n`).join(''),
  };
}
