import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { summarize, toBundle } from '../../src/acme/certinfo.js';
import { metaFor } from '../../src/acme/obtain.js';
import { ensurePlaceholder } from '../../src/acme/placeholder.js';
import { CertStore } from '../../src/acme/store.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { makeTestCa } from '../helpers/test-ca.js';

const PASSWORD = 'correct horse battery staple';
const NAMES = ['guard.example.test'];

/** A home with lineage "site": a real EC leaf signed by a test CA, so the export has a chain of one. */
function homeWithLineage(t: { after(fn: () => void): void }): { home: string; ca: ReturnType<typeof makeTestCa> } {
  const ca = makeTestCa(t, { names: NAMES, ips: [] });
  const home = tempDir(t);
  const bundle = toBundle(fs.readFileSync(ca.cert, 'utf8'), fs.readFileSync(ca.key, 'utf8'));
  const meta = metaFor({ version: 1, lineage: 'site', names: NAMES, server: 'https://ca.test/dir', keyType: 'ec256', dns: { provider: 'manual', options: {} } }, summarize(bundle.cert), Date.now());
  new CertStore(home).install('site', bundle, meta);
  return { home, ca };
}

function run(cmd: string, args: string[], input?: string) {
  return spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 120_000 });
}

const spkiOf = (keyPem: string) => createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' }).toString('hex');

test('cert export --format p12: OpenSSL 3 reads it with the password (no -legacy): key, leaf, chain, friendly name', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const { home, ca } = homeWithLineage(t);
  const out = path.join(tempDir(t), 'site.p12');
  const res = await runCli(['--home', home, '--json', 'cert', 'export', 'site', '--out', out, '--password-env', 'P12_PASS'], { env: { P12_PASS: PASSWORD } });
  {
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.deepEqual({ ...res.json<Record<string, unknown>>(), serial: undefined }, { lineage: 'site', file: out, format: 'p12', serial: undefined, certificates: 2, encrypted: true });
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['site.p12'], 'no temp file left beside it');

    const info = run('openssl', ['pkcs12', '-info', '-in', out, '-passin', `pass:${PASSWORD}`, '-noout']);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stderr, /MAC: sha256/);
    assert.match(info.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);

    const certs = run('openssl', ['pkcs12', '-in', out, '-passin', `pass:${PASSWORD}`, '-nokeys']);
    assert.equal(certs.status, 0, certs.stderr);
    assert.match(certs.stdout, /friendlyName: site/);
    const pems = certs.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    assert.deepEqual(pems.map((p) => new X509Certificate(p).fingerprint256).sort(),
      [ca.cert, ca.caFile].map((f) => new X509Certificate(fs.readFileSync(f)).fingerprint256).sort());

    const key = run('openssl', ['pkcs12', '-in', out, '-passin', `pass:${PASSWORD}`, '-nocerts', '-noenc']);
    assert.equal(key.status, 0, key.stderr);
    assert.equal(spkiOf(key.stdout.slice(key.stdout.indexOf('-----BEGIN'))), spkiOf(fs.readFileSync(ca.key, 'utf8')));

    const wrong = run('openssl', ['pkcs12', '-info', '-in', out, '-passin', 'pass:wrong', '-noout']);
    assert.notEqual(wrong.status, 0, 'a wrong password is refused (the MAC does not verify)');
  }
});

test('cert export --format p12: Java keytool lists the key entry under the lineage name with its chain', async (t) => {
  if (!haveProgram(t, 'keytool', '-help')) return;
  const { home } = homeWithLineage(t);
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'pass'), `${PASSWORD}\n`, { mode: 0o600 });
  const out = path.join(dir, 'site.pfx');
  const res = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out, '--password-file', path.join(dir, 'pass')]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /wrote .*site\.pfx \(PKCS#12, certificate \w+ with 1 chain certificate, key encrypted with AES-256\)/);
  const list = run('keytool', ['-list', '-v', '-keystore', out, '-storetype', 'PKCS12', '-storepass', PASSWORD]);
  assert.equal(list.status, 0, list.stdout + list.stderr);
  assert.match(list.stdout, /Your keystore contains 1 entry/);
  assert.match(list.stdout, /Alias name: site/);
  assert.match(list.stdout, /Entry type: PrivateKeyEntry/);
  assert.match(list.stdout, /Certificate chain length: 2/);
});

test('cert export --format pem-bundle: an encrypted PKCS#8 key, then the leaf and its chain', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const { home, ca } = homeWithLineage(t);
  const out = path.join(tempDir(t), 'site.pem');
  fs.writeFileSync(out, 'old\n', { mode: 0o644 });
  const res = await runCli(['--home', home, 'cert', 'export', 'site', '--format', 'pem-bundle', '--out', out, '--password-env', 'PW'], { env: { PW: PASSWORD } });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(fs.statSync(out).mode & 0o777, 0o600, 'a replaced file gets 0600 too');
  const text = fs.readFileSync(out, 'utf8');
  assert.match(text, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  assert.equal(text.match(/BEGIN CERTIFICATE/g)?.length, 2);
  const key = run('openssl', ['pkey', '-in', out, '-passin', `pass:${PASSWORD}`]);
  assert.equal(key.status, 0, key.stderr);
  assert.equal(spkiOf(key.stdout), spkiOf(fs.readFileSync(ca.key, 'utf8')));
  assert.notEqual(run('openssl', ['pkey', '-in', out, '-passin', 'pass:wrong']).status, 0);
});

test('cert export: a missing password is a usage error unless --no-password; --no-password writes a readable, unencrypted file', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const { home } = homeWithLineage(t);
  const dir = tempDir(t);
  const out = path.join(dir, 'site.p12');
  const none = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /cert export needs a password/);
  assert.match(none.stderr, /--password-env VAR or --password-file FILE, or --no-password/);
  assert.equal(fs.existsSync(out), false, 'nothing written');

  const unset = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out, '--password-env', 'NOPE']);
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /environment variable NOPE is not set or empty/);
  const both = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out, '--password-env', 'PW', '--no-password'], { env: { PW: 'x' } });
  assert.equal(both.code, 2);
  const format = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out, '--format', 'jks', '--no-password']);
  assert.equal(format.code, 2);
  assert.match(format.stderr, /--format "jks" is not an export format/);
  assert.equal(fs.existsSync(out), false);

  const open = await runCli(['--home', home, 'cert', 'export', 'site', '--out', out, '--no-password']);
  assert.equal(open.code, 0, open.stderr);
  assert.match(open.stderr, /unencrypted \(--no-password\)/);
  const info = run('openssl', ['pkcs12', '-info', '-in', out, '-passin', 'pass:', '-noout']);
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stderr, /Key bag/);
  assert.doesNotMatch(info.stderr, /Shrouded/);
});

test('cert export: a placeholder is refused, an unknown lineage too', async (t) => {
  const home = tempDir(t);
  await ensurePlaceholder(home, 'fresh', NAMES, Date.now());
  const out = path.join(tempDir(t), 'x.p12');
  const r = await runCli(['--home', home, 'cert', 'export', 'fresh', '--out', out, '--no-password']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /self-signed placeholder/);
  assert.match(r.stderr, /cert issue --name fresh -d guard\.example\.test/);
  const missing = await runCli(['--home', home, 'cert', 'export', 'nope', '--out', out, '--no-password']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no certificate named "nope"/);
  assert.equal(fs.existsSync(out), false);
});
