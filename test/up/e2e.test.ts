/**
 * `guardctl up` / `status` / `down` end to end on loopback, against real servers: Pebble (the CA), BIND (DNS-01
 * through rfc2136, and the A records Pebble follows for HTTP-01), nginx on unprivileged ports, and the daemon on
 * the demo models as a background process (no systemd here: the plan says so).
 *
 * Order: three forced failures (the CA rejects, the daemon cannot bind, nginx refuses the reload), each leaving
 * the nginx root and the data directory as they were, file by file (the certificate store aside: a certificate
 * already obtained is kept); then up with DNS-01 and a signed moderation through https; up again (nothing
 * changes); up with HTTP-01 for a second domain (Pebble validating through nginx's port 80 stand-in); status;
 * down.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { isAlive } from '../../src/core/lock.js';
import { request } from '../../src/up/verify.js';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { cleanupStack, freePort, startNginxRoot } from '../helpers/nginx.js';
import { startPebble } from '../helpers/pebble.js';
import { haveProgram } from '../helpers/system.js';

/** Every file under the given roots: mode and content hash, symlink targets; `skip` drops top-level names. */
function tree(roots: string[], skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (root: string, dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (dir === root && skip.includes(name)) continue;
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[p] = `link ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = `dir ${mode}`;
        walk(root, p);
      } else out[p] = `file ${mode} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
    }
  };
  for (const r of roots) if (fs.existsSync(r)) walk(r, r);
  return out;
}

function killDaemonOf(home: string): void {
  try {
    process.kill(Number(fs.readFileSync(path.join(home, 'run', 'guardctl-serve.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // not running
  }
}

test('up / status / down: DNS-01 and HTTP-01 through nginx, rollback at each step, idempotent re-run', async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const stack = cleanupStack(t);
  const ctx = { skip: (m?: string) => t.skip(m), after: stack.after };
  const bind = await startBind(ctx, { zones: { 'example.test': ['guard A 127.0.0.1', 'web A 127.0.0.1', 'blocked A 127.0.0.1'] } });
  if (!bind) return;
  const [httpPort, httpsPort, daemonPort, daemonPort2] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const pebble = await startPebble(ctx, { dnsServer: `127.0.0.1:${bind.port}`, httpPort, blockedDomains: ['blocked.example.test'] });
  if (!pebble) return;
  const work = tempDir(stack, 'guardctl-up-');
  const { root, nginx } = await startNginxRoot(stack);
  const caFile = path.join(work, 'pebble-root.pem');
  fs.writeFileSync(caFile, await pebble.root());
  const home = path.join(work, 'home');
  const home2 = path.join(work, 'home2');
  stack.after(() => {
    killDaemonOf(home);
    killDaemonOf(home2);
  });

  const env = { ...pebble.cliEnv(), ...bind.rfc2136Env(), HOME: process.env.HOME, GUARDCTL_FROM_SRC: '1' };
  const common = ['--server', pebble.directory, '--agree-tos', '--email', 'ops@example.test', '--nginx-root', root, '--reload-cmd', nginx.reloadCommand,
    '--http-port', String(httpPort), '--https-port', String(httpsPort), '--listen-address', '127.0.0.1', '--ca-file', caFile, '--verify-address', '127.0.0.1'];
  const dns = ['--dns', 'rfc2136', '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2', '--dns-timeout', '120'];
  const up = (h: string, args: string[]) => runCli(['--home', h, '--json', 'up', ...common, ...args], { env });
  const guard = ['--domain', 'guard.example.test', ...dns, '--port', String(daemonPort), '--tier-key', 'acme-corp:free'];
  fs.mkdirSync(home, { mode: 0o700 });
  // What a failed run must leave as it was: the nginx root, and the data directory but for the certificate
  // store and the CA account in acme/ (a certificate already obtained is kept).
  const snapshot = () => tree([root, home], ['certs', 'acme', 'logs']);
  const nginxFiles = () => tree([root], ['logs']);

  await t.test('the plan comes first; --dry-run changes nothing and names the supervisor', async () => {
    const before = snapshot();
    const r = await up(home, [...guard, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.json<{ dryRun: boolean; plan: { supervisor: string; supervisorWhy: string; steps: Array<{ id: string; action: string; files: Array<{ path: string; mode: string }> }> } }>();
    assert.equal(out.dryRun, true);
    assert.equal(out.plan.supervisor, 'process');
    assert.match(out.plan.supervisorWhy, /systemd does not run this host/);
    assert.deepEqual(out.plan.steps.map((s) => s.id), ['cert', 'keys', 'daemon', 'site', 'renewal']);
    assert.ok(out.plan.steps.find((s) => s.id === 'cert')!.files.some((f) => f.path.endsWith('privkey.pem') && f.mode === '0600'));
    assert.deepEqual(snapshot(), before);
    const human = await runCli(['--home', home, 'up', ...common, ...guard, '--dry-run'], { env });
    assert.match(human.stdout, /Plan for https:\/\/guard\.example\.test:\d+:/);
    assert.match(human.stdout, /supervised background process with a pid file/);
    assert.match(human.stdout, /nginx site diff:\n--- \/dev\/null/);
  });

  await t.test('the CA rejects: nothing changes, the error names the certificate step', async () => {
    const before = snapshot();
    const r = await up(home, ['--domain', 'blocked.example.test', ...dns, '--port', String(daemonPort)]);
    assert.equal(r.code, 1, r.stdout);
    const err = r.json<{ error: { code: string; message: string; step: string } }>().error;
    assert.equal(err.code, 'GUARD_E_UP');
    assert.equal(err.step, 'cert');
    assert.match(err.message, /step "cert" .*failed: .*(rejected|blocked|policy)/is);
    assert.deepEqual(snapshot(), before);
  });

  await t.test('the daemon cannot bind: the certificate is kept, everything else as it was', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(daemonPort, '127.0.0.1', resolve));
    try {
      const before = snapshot();
      const r = await up(home, guard);
      assert.equal(r.code, 1, r.stdout);
      const err = r.json<{ error: { code: string; message: string; step: string } }>().error;
      assert.equal(err.step, 'daemon');
      assert.match(err.message, /cannot listen on 127\.0\.0\.1:\d+: the port is already in use/i);
      assert.deepEqual(snapshot(), before);
      assert.ok(fs.existsSync(path.join(home, 'certs', 'guard.example.test', 'fullchain.pem')), 'the certificate obtained is kept');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  await t.test('nginx refuses the reload: the daemon is stopped, the site files are back', async () => {
    const before = snapshot();
    const failing = path.join(work, 'reload-refused.sh');
    fs.writeFileSync(failing, '#!/bin/sh\necho "nginx: [emerg] refused for the test" >&2\nexit 1\n', { mode: 0o755 });
    const r = await runCli(['--home', home, '--json', 'up', ...common, '--reload-cmd', failing, ...guard], { env });
    assert.equal(r.code, 1, r.stdout);
    const err = r.json<{ error: { message: string; step: string; undone: string[] } }>().error;
    assert.equal(err.step, 'site');
    assert.match(err.message, /refused for the test/);
    assert.deepEqual(err.undone, ['daemon', 'keys']);
    assert.deepEqual(snapshot(), before);
  });

  let keyId = '';
  let secret = '';
  await t.test('up with DNS-01: verified through nginx, then a signed moderation over https', async () => {
    const r = await up(home, guard);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = r.json<{ changed: boolean; url: string; keys: Array<{ id: string; secret: string; name: string; tier: string }>; verified: string[]; steps: Array<{ id: string; changed: boolean }> }>();
    assert.equal(out.changed, true);
    assert.equal(out.url, `https://guard.example.test:${httpsPort}`);
    assert.deepEqual(out.steps.map((s) => [s.id, s.changed]), [['cert', false], ['keys', true], ['daemon', true], ['site', true], ['renewal', true], ['verify', false], ['record', true]]);
    assert.equal(out.keys.length, 1);
    assert.equal(out.keys[0]!.tier, 'free');
    assert.match(out.verified.join('\n'), /signed POST .*\/api\/v1\/moderate .*: 200/);
    ({ id: keyId, secret } = out.keys[0]!);
    assert.equal(r.stderr.includes(bind.tsig.secret), false);
    // A client of our own: TLS checked against Pebble's root for the domain's name, signed with the new key.
    const body = JSON.stringify({ text: 'How do I bake bread?' });
    const res = await request({ baseUrl: out.url, caFile, address: '127.0.0.1' }, { method: 'POST', path: '/api/v1/moderate', body, key: { id: keyId, secret } });
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).model, 'guard-demo', res.body);
    assert.match(JSON.parse(res.body).level, /^(safe|controversial|unsafe)$/);
    const unsigned = await request({ baseUrl: out.url, caFile, address: '127.0.0.1' }, { method: 'POST', path: '/api/v1/moderate', body });
    assert.equal(unsigned.status, 401, 'the gate still refuses an unsigned request');
    const meta = JSON.parse(fs.readFileSync(path.join(home, 'certs', 'guard.example.test', 'meta.json'), 'utf8')) as { deploy: { reloadCmd: string } };
    assert.equal(meta.deploy.reloadCmd, nginx.reloadCommand, 'renewals reload nginx');
  });

  await t.test('up again with the same arguments changes nothing and says so', async () => {
    // Keys as up sees them (the daemon records last use in the background: not something up changes).
    const keyRows = async () => (await runCli(['--home', home, '--json', 'keys', 'list'], { env })).json<{ keys: Array<Record<string, unknown>> }>().keys
      .map((k) => ({ id: k.id, name: k.name, tier: k.tier, status: k.status }));
    const before = { files: tree([root, path.join(home, 'certs'), path.join(home, 'up')], ['logs']), keys: await keyRows() };
    const r = await up(home, guard);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = r.json<{ changed: boolean; plan: { changes: boolean }; keys: unknown[] }>();
    assert.equal(out.changed, false);
    assert.equal(out.plan.changes, false);
    assert.deepEqual(out.keys, []);
    assert.deepEqual({ files: tree([root, path.join(home, 'certs'), path.join(home, 'up')], ['logs']), keys: await keyRows() }, before);
    const human = await runCli(['--home', home, 'up', ...common, ...guard], { env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Nothing to change/);
    assert.match(human.stdout, /Nothing changed: https:\/\/guard\.example\.test:\d+ is up as asked/);
  });

  await t.test('through nginx the daemon sees the client\'s own address: a key allowed only from 127.0.0.2 works from there, not from 127.0.0.1', async () => {
    // 127.0.0.2 is a client other than nginx (which reaches the daemon from 127.0.0.1): without the daemon
    // trusting nginx as its proxy, every request would look like 127.0.0.1 and this key would be refused.
    const made = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'only-127-0-0-2', '--tier', 'free', '--allow-ip', '127.0.0.2'], { env });
    assert.equal(made.code, 0, made.stderr + made.stdout);
    const k = made.json<{ id: string; secret: string }>();
    const body = JSON.stringify({ text: 'hello' });
    const target = { baseUrl: `https://guard.example.test:${httpsPort}`, caFile, address: '127.0.0.1' };
    const fromThere = await request({ ...target, localAddress: '127.0.0.2' }, { method: 'POST', path: '/api/v1/moderate', body, key: { id: k.id, secret: k.secret } });
    assert.equal(fromThere.status, 200, fromThere.body);
    const fromHere = await request({ ...target, localAddress: '127.0.0.1' }, { method: 'POST', path: '/api/v1/moderate', body, key: { id: k.id, secret: k.secret } });
    assert.equal(fromHere.status, 403, fromHere.body);
    assert.match(fromHere.body, /ip_denied/);
    const revoked = await runCli(['--home', home, '--json', 'keys', 'revoke', k.id], { env });
    assert.equal(revoked.code, 0, revoked.stderr + revoked.stdout);
  });

  await t.test('a re-run whose new daemon cannot bind leaves the old daemon serving on its old port, files as they were', async () => {
    const heldPort = await freePort();
    // Connections are dropped at once: whatever polls this port gets an answer, and close() need not wait.
    const blocker = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(heldPort, '127.0.0.1', resolve));
    try {
      const files = () => tree([root, path.join(home, 'certs'), path.join(home, 'up')], ['logs']);
      const before = files();
      const r = await up(home, [...guard.filter((_, i) => i !== guard.indexOf('--port') && i !== guard.indexOf('--port') + 1), '--port', String(heldPort)]);
      assert.equal(r.code, 1, r.stdout);
      const err = r.json<{ error: { message: string; step: string } }>().error;
      assert.equal(err.step, 'daemon');
      assert.match(err.message, /already in use/i);
      assert.doesNotMatch(err.message, /could not restore the previous daemon/);
      assert.deepEqual(files(), before);
      const pid = Number(fs.readFileSync(path.join(home, 'run', 'guardctl-serve.pid'), 'utf8'));
      assert.ok(isAlive(pid), 'the previous daemon runs again, with its pid file');
      const ready = await request({ baseUrl: `https://guard.example.test:${httpsPort}`, caFile, address: '127.0.0.1' }, { method: 'GET', path: '/readyz' });
      assert.equal(ready.status, 200, ready.body);
      const status = await runCli(['--home', home, '--json', 'status'], { env });
      assert.equal(status.code, 0, status.stdout);
      assert.equal(status.json<{ daemon: { address: string } }>().daemon.address, `127.0.0.1:${daemonPort}`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  await t.test('up with HTTP-01 for a second domain: Pebble validates through nginx; wildcards need DNS-01', async () => {
    const wild = await up(home2, ['--domain', '*.example.test', '--http', '--port', String(daemonPort2)]);
    assert.equal(wild.code, 2);
    assert.match(wild.json<{ error: { message: string } }>().error.message, /wildcard certificate needs the DNS-01 challenge/);
    const r = await up(home2, ['--domain', 'web.example.test', '--http', '--port', String(daemonPort2), '--base-path', '/guard']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = r.json<{ url: string; steps: Array<{ id: string; changed: boolean }>; verified: string[] }>();
    assert.equal(out.url, `https://web.example.test:${httpsPort}/guard`);
    assert.deepEqual(out.steps.map((s) => s.id), ['bootstrap', 'cert', 'keys', 'daemon', 'site', 'renewal', 'verify', 'record']);
    assert.match(out.verified.join('\n'), /signed POST https:\/\/web\.example\.test:\d+\/guard\/api\/v1\/moderate/);
    const meta = JSON.parse(fs.readFileSync(path.join(home2, 'certs', 'web.example.test', 'meta.json'), 'utf8')) as { dns: { provider: string; options: { webroot: string } } };
    assert.deepEqual(meta.dns, { provider: 'http-01', options: { webroot: path.join(home2, 'acme-webroot') } }, 'renewals use HTTP-01 through the same webroot');
    assert.deepEqual(fs.readdirSync(path.join(home2, 'acme-webroot', '.well-known', 'acme-challenge')), [], 'the challenge file was removed');
    // A renewal takes the same HTTP-01 path from meta.json, and its hook reloads nginx.
    const serial = (JSON.parse(fs.readFileSync(path.join(home2, 'certs', 'web.example.test', 'meta.json'), 'utf8')) as { cert: { serial: string } }).cert.serial;
    const renewed = await runCli(['--home', home2, '--json', 'cert', 'renew', 'web.example.test', '--force'], { env });
    assert.equal(renewed.code, 0, renewed.stderr + renewed.stdout);
    const after = renewed.json<{ results: Array<{ status: string; serial: string }> }>().results[0]!;
    assert.equal(after.status, 'renewed');
    assert.notEqual(after.serial, serial);
    const served = await request({ baseUrl: out.url, caFile, address: '127.0.0.1' }, { method: 'GET', path: '/readyz' });
    assert.equal(served.status, 200);
  });

  await t.test('status reports each part, and exits 1 when something needs attention', async () => {
    const r = await runCli(['--home', home, '--json', 'status'], { env });
    assert.equal(r.code, 0, r.stdout);
    const s = r.json<any>();
    assert.deepEqual(s.certificate.names, ['guard.example.test']);
    assert.equal(s.certificate.ok, true);
    assert.ok(s.certificate.next_renewal_at);
    assert.equal(s.site.installed, true);
    assert.equal(s.site.matches, true);
    assert.equal(s.daemon.running, true);
    assert.equal(s.daemon.ready, true);
    assert.deepEqual(s.daemon.models.map((m: { name: string }) => m.name).sort(), ['guard-demo', 'mt-demo']);
    assert.ok(s.daemon.devices.length > 0, JSON.stringify(s.daemon));
    assert.deepEqual(s.keys.by_tier, { free: 1 });
    assert.equal(s.renewal.timer, 'none');
    assert.deepEqual(s.attention, []);
    const human = await runCli(['--home', home, 'status'], { env });
    assert.match(human.stdout, /certificate {2}ok/);
    // A hand edit of the site is noticed.
    const site = path.join(root, 'sites-available', 'guard.example.test.conf');
    const text = fs.readFileSync(site, 'utf8');
    fs.writeFileSync(site, `${text}# edited\n`);
    const edited = await runCli(['--home', home, '--json', 'status'], { env });
    fs.writeFileSync(site, text);
    assert.equal(edited.code, 1);
    assert.match(edited.json<{ attention: string[] }>().attention.join('\n'), /site: the installed site differs/);
  });

  await t.test('down: asks first, removes the site and the daemon, keeps the certificate and the keys', async () => {
    const pid = Number(fs.readFileSync(path.join(home, 'run', 'guardctl-serve.pid'), 'utf8'));
    // The running daemon may write its own state files meanwhile: what down would remove is compared.
    const installed = () => tree([root, path.join(home, 'up'), path.join(home, 'certs'), path.join(home, 'run')], ['logs', 'guardctl-serve.log']);
    const before = installed();
    const dry = await runCli(['--home', home, 'down', '--dry-run'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /remove the nginx site "guard\.example\.test"/);
    assert.match(dry.stdout, /\(keeps\) the certificate "guard\.example\.test" stays in the store/);
    assert.deepEqual(installed(), before);
    const refused = await runCli(['--home', home, 'down'], { env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /add --yes/);
    assert.ok(isAlive(pid));
    const r = await runCli(['--home', home, '--json', 'down', '--yes'], { env });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(isAlive(pid), false);
    assert.equal(fs.existsSync(path.join(root, 'sites-available', 'guard.example.test.conf')), false);
    assert.equal(fs.lstatSync(path.join(root, 'sites-enabled', 'guard.example.test.conf'), { throwIfNoEntry: false }), undefined);
    assert.equal(fs.existsSync(path.join(root, 'snippets', 'guardctl', 'guard.example.test')), false);
    assert.ok(fs.existsSync(path.join(home, 'certs', 'guard.example.test', 'fullchain.pem')));
    const { keys } = (await runCli(['--home', home, '--json', 'keys', 'list'], { env })).json<{ keys: Array<{ id: string; status: string }> }>();
    assert.equal(keys.find((k) => k.id === keyId)?.status, 'active');
    const status = await runCli(['--home', home, '--json', 'status'], { env });
    assert.equal(status.code, 1);
    // The second domain still answers: down touched only its own site.
    const still = await request({ baseUrl: `https://web.example.test:${httpsPort}/guard`, caFile, address: '127.0.0.1' }, { method: 'GET', path: '/readyz' });
    assert.equal(still.status, 200);
    const two = await runCli(['--home', home2, '--json', 'down', '--yes', '--revoke-keys'], { env });
    assert.equal(two.code, 0, two.stderr + two.stdout);
    assert.deepEqual(Object.keys(nginxFiles()).filter((p) => /sites-(available|enabled)\/|snippets\/guardctl\//.test(p)), []);
  });
});
