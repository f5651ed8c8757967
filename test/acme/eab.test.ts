/**
 * A CA that requires External Account Binding (as ZeroSSL does): refused without it, registered with it, the
 * HMAC key never printed (not even with --verbose); the account is stored once per CA and reused; a profile the
 * CA does not offer is refused before any order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPebble } from '../helpers/pebble.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;
const HMAC = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';

test('EAB: required by the CA, used once to register, the account reused afterwards', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}`, eab: { 'kid-1': HMAC } });
  if (!pebble) return;
  const home = tempDir(t);
  const env = {
    PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: pebble.caFile, GUARDCTL_ACME_POLL_MS: '200',
    RFC2136_NAMESERVER: `127.0.0.1:${bind.port}`, RFC2136_TSIG_KEY: bind.tsig.name, RFC2136_TSIG_SECRET: bind.tsig.secret,
  };
  const base = ['--home', home, 'cert', 'issue', '--server', pebble.directory, '--agree-tos', '--dns', 'rfc2136', '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2'];

  const without = await runCli([...base, '-d', 'eab.example.test'], { env });
  assert.equal(without.code, 2);
  assert.match(without.stderr, /this CA requires External Account Binding credentials/);
  assert.equal(fs.existsSync(path.join(home, 'acme')), false);

  const profile = await runCli([...base, '-d', 'eab.example.test', '--profile', 'shortlived', '--eab-kid', 'kid-1', '--eab-hmac-key', HMAC], { env });
  assert.equal(profile.code, 2);
  assert.match(profile.stderr, /the CA offers no certificate profile "shortlived"/);

  const wrongKey = await runCli([...base, '-d', 'eab.example.test', '--eab-kid', 'kid-1', '--eab-hmac-key', 'b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH'], { env });
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /the CA refused to register an account/);
  assert.equal(fs.existsSync(path.join(home, 'acme', 'accounts')), false, 'a refused registration stores no key');

  // The real CLI as its own process, with every log line on (-v: debug, acme-client's own included).
  const ok = spawnSync(process.execPath, [BIN, '-v', ...base, '-d', 'eab.example.test'], {
    env: { ...env, GUARDCTL_FROM_SRC: '1', GUARDCTL_ACME_CA_CERTIFICATES: '', NODE_EXTRA_CA_CERTS: pebble.caFile, GUARDCTL_EAB_KID: 'kid-1', GUARDCTL_EAB_HMAC_KEY: HMAC },
    encoding: 'utf8',
    timeout: 5 * HANG_BOUND_MS, // a hang's bound: the CLI starts from the TypeScript sources
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /"component":"acme-client"/, 'trace logs were written');
  assert.equal(ok.stderr.includes(HMAC) || ok.stdout.includes(HMAC), false, 'the HMAC key is never printed');
  assert.equal(ok.stderr.includes(bind.tsig.secret), false, 'nor the TSIG secret');

  const accounts = path.join(home, 'acme', 'accounts');
  const [host] = fs.readdirSync(accounts);
  assert.equal(host, new URL(pebble.directory).host.replace(':', '_'));
  const keyFile = path.join(accounts, host!, 'account.key');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const account = fs.readFileSync(path.join(accounts, host!, 'account.json'), 'utf8');
  assert.equal(account.includes(HMAC), false);

  // A second certificate from the same CA: no EAB needed any more, the same account.
  const second = await runCli([...base, '-d', 'second.example.test'], { env });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(fs.readFileSync(path.join(accounts, host!, 'account.json'), 'utf8'), account);
  assert.deepEqual(fs.readdirSync(accounts), [host]);
});
