/**
 * A fresh host: nginx install --placeholder-cert starts a real nginx with its final HTTPS site on a self-signed
 * placeholder before any CA has answered; cert renew leaves the placeholder alone; the first cert issue (Pebble
 * validating through a real BIND) replaces it, and after the reload nginx serves the CA's certificate.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import tls, { type PeerCertificate } from 'node:tls';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { cleanupStack, freePort, startNginxRoot } from '../helpers/nginx.js';
import { startPebble } from '../helpers/pebble.js';
import { haveProgram } from '../helpers/system.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const NAME = 'guard.example.test';

/** The certificate nginx presents on the port (not verified: the point is which one it is). */
function servedCertificate(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false, timeout: HANG_BOUND_MS }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
    socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

test('nginx install --placeholder-cert: HTTPS before the CA answers; never renewed; the first cert issue replaces it', async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const sc = cleanupStack(t);
  const bind = await startBind(t);
  if (!bind) return;
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}` });
  if (!pebble) return;
  const home = tempDir(sc);
  const { root, nginx: ngx } = await startNginxRoot(sc);
  const httpsPort = await freePort();
  const env = { ...pebble.cliEnv(), ...bind.rfc2136Env() };
  const cli = (args: string[]) => runCli(['--home', home, ...args], { env });
  const install = ['nginx', 'install', '--nginx-root', root, '--domain', NAME, '--upstream', '127.0.0.1:9', '--cert', 'site', '--placeholder-cert',
    '--listen-address', '127.0.0.1', '--http-port', String(await freePort()), '--https-port', String(httpsPort), '--reload-cmd', ngx.reloadCommand];

  // Without the flag, a lineage that does not exist is refused as before.
  const refused = await cli(install.filter((a) => a !== '--placeholder-cert'));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--cert "site": no certificate of that name/);

  // --dry-run writes no placeholder (and no site).
  const dry = await cli([...install, '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`ssl_certificate +${home}/certs/site/fullchain\\.pem;`));
  assert.equal(fs.existsSync(path.join(home, 'certs', 'site')), false);

  // 1. The placeholder: nginx starts serving HTTPS with the final site.
  let mark = ngx.mark();
  const first = await cli(install);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /certificate "site" does not exist yet: nginx gets a self-signed placeholder \(valid 7 days/);
  await ngx.waitForReload(mark);
  const placeholder = await servedCertificate(httpsPort);
  assert.equal(placeholder.subject.O, 'guardctl placeholder');
  assert.deepEqual(placeholder.issuer, placeholder.subject, 'self-signed');
  assert.equal(placeholder.subjectaltname, `DNS:${NAME}`);
  const lifetime = Date.parse(placeholder.valid_to) - Date.parse(placeholder.valid_from);
  assert.ok(lifetime > 6 * 86_400_000 && lifetime < 8 * 86_400_000, `short-lived: ${placeholder.valid_from} .. ${placeholder.valid_to}`);
  const dir = path.join(home, 'certs', 'site');
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')).placeholder, true);
  assert.equal(fs.statSync(path.join(dir, 'privkey.pem')).mode & 0o777, 0o600);

  // cert list shows it as what it is.
  const listed = await cli(['--json', 'cert', 'list']);
  assert.equal(listed.json().certificates[0].placeholder, true);
  assert.equal(listed.json().certificates[0].issuer, 'guardctl placeholder (self-signed)');
  assert.match((await cli(['cert', 'list'])).stdout, /placeholder: needs cert issue/);

  // A second install finds the placeholder and leaves it (no new key, nothing changed).
  const keyBefore = fs.readFileSync(path.join(dir, 'privkey.pem'), 'utf8');
  const again = await cli(install);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /placeholder/);
  assert.equal(fs.readFileSync(path.join(dir, 'privkey.pem'), 'utf8'), keyBefore);

  // 2. Never renewed or deployed as if it were real: renew says it needs its first issuance and changes nothing.
  for (const args of [['cert', 'renew', 'site'], ['cert', 'renew', '--all'], ['cert', 'renew', '--all', '--force']]) {
    const renewed = await cli(['--json', ...args]);
    assert.equal(renewed.code, 0, renewed.stderr + renewed.stdout);
    assert.equal(renewed.json().results[0].status, 'needs-issuance');
    assert.match(renewed.json().results[0].reason, /cert issue --name site -d guard\.example\.test/);
  }
  assert.equal(fs.readFileSync(path.join(dir, 'privkey.pem'), 'utf8'), keyBefore);
  const revoke = await cli(['cert', 'revoke', 'site']);
  assert.equal(revoke.code, 2);
  assert.match(revoke.stderr, /self-signed placeholder/);

  // 3. The first issuance replaces it (and keeps no previous/ to roll back to); the reload serves the real one.
  mark = ngx.mark();
  const issued = await cli(['--json', 'cert', 'issue', '--name', 'site', '-d', NAME, '--server', pebble.directory, '--agree-tos',
    '--dns', 'rfc2136', '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2', '--dns-timeout', '120', '--reload-cmd', ngx.reloadCommand]);
  assert.equal(issued.code, 0, issued.stderr + issued.stdout);
  await ngx.waitForReload(mark);
  const real = await servedCertificate(httpsPort);
  assert.match(String(real.issuer.CN), /Pebble/);
  const hex = (s: string) => s.toLowerCase().replace(/^0+/, '');
  assert.equal(hex(real.serialNumber), hex(issued.json().serial));
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  assert.equal(meta.placeholder, undefined);
  assert.equal(fs.existsSync(path.join(dir, 'previous')), false, 'a placeholder is no version to roll back to');
  assert.equal((await cli(['--json', 'cert', 'list'])).json().certificates[0].placeholder, false);
  const notDue = await cli(['--json', 'cert', 'renew', 'site']);
  assert.equal(notDue.json().results[0].status, 'not-due');
});
