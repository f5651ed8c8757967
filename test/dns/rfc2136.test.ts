import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isGuardError } from '../../src/core/errors.js';
import { factory } from '../../src/dns/providers/rfc2136/index.js';
import { parseAlgorithm, parseNameserver, quoteTxt } from '../../src/dns/providers/rfc2136/config.js';
import { freeLoopbackPort, startBind, type BindServer } from '../helpers/bind.js';
import { haveProgram } from '../helpers/system.js';
import { runProviderContract } from './contract.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';
import { resolveChallengeTarget, waitForTxt } from '../../src/acme/propagation.js';

const FQDN = '_acme-challenge.example.test';
const logs: string[] = [];
const log = (level: string, message: string) => void logs.push(`${level} ${message}`);

function envFor(bind: BindServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...bind.rfc2136Env(), ...extra };
}

/** A temporary directory removed after the test (not helpers/cli.ts's: that one loads the whole CLI). */
function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-rfc2136-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const tsigTempDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('guardctl-tsig-'));

test('settings: name server, algorithm spellings, TXT quoting', () => {
  assert.deepEqual(parseNameserver('192.0.2.53'), { host: '192.0.2.53', port: 53 });
  assert.deepEqual(parseNameserver('ns1.example.com:5353'), { host: 'ns1.example.com', port: 5353 });
  assert.deepEqual(parseNameserver('[2001:db8::53]:5353'), { host: '2001:db8::53', port: 5353 });
  assert.deepEqual(parseNameserver('2001:db8::53'), { host: '2001:db8::53', port: 53 });
  for (const bad of ['192.0.2.53:0', 'ns1:abc', 'a b', '192.0.2.53:70000']) assert.throws(() => parseNameserver(bad), /RFC2136_NAMESERVER/);
  assert.equal(parseAlgorithm(undefined), 'hmac-sha256');
  assert.equal(parseAlgorithm('hmac-sha512.'), 'hmac-sha512');
  assert.equal(parseAlgorithm('HMAC-SHA384'), 'hmac-sha384');
  assert.equal(parseAlgorithm('sha256'), 'hmac-sha256');
  assert.throws(() => parseAlgorithm('hmac-sha3'), (err: unknown) => isGuardError(err) && err.code === 'GUARD_E_DNS_PROVIDER' && /^rfc2136: /.test(err.message));
  assert.equal(quoteTxt('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoteTxt('x'.repeat(300)), `"${'x'.repeat(255)}" "${'x'.repeat(45)}"`);
  assert.throws(() => quoteTxt('a\nupdate delete example.test'), /control characters/);
});

test('settings: missing and half-given credentials are named', () => {
  assert.throws(() => factory.create({ env: {}, log }), /rfc2136: missing setting: set RFC2136_NAMESERVER \(or NSUPDATE_SERVER\)/);
  assert.throws(() => factory.create({ env: { RFC2136_NAMESERVER: '127.0.0.1', RFC2136_TSIG_KEY: 'k' }, log }), /RFC2136_TSIG_SECRET is missing/);
  assert.throws(() => factory.create({ env: { RFC2136_NAMESERVER: '127.0.0.1', RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: 'not base64!' }, log }),
    (err: unknown) => isGuardError(err) && !err.message.includes('not base64!') && /not base64/.test(err.message));
  const p = factory.create({ env: { RFC2136_NAMESERVER: '127.0.0.1' }, log });
  assert.equal(p.name, 'rfc2136');
});

test('present and cleanup against BIND: values coexist, cleanup removes only its own value', async (t) => {
  const bind = await startBind(t);
  if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
  const before = tsigTempDirs();
  const provider = factory.create({ env: envFor(bind, { RFC2136_TSIG_ALGORITHM: undefined }), log });
  bind.nsupdate([`update add ${FQDN} 60 TXT "someone-else"`]);
  await provider.present({ fqdn: FQDN, value: 'apex-value', ttl: 60 });
  await provider.present({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 });
  await provider.present({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 }); // idempotent
  assert.deepEqual((await bind.dig(FQDN, 'TXT')).sort(), ['apex-value', 'someone-else', 'wildcard-value']);
  await provider.cleanup({ fqdn: FQDN, value: 'apex-value', ttl: 60 });
  assert.deepEqual((await bind.dig(FQDN, 'TXT')).sort(), ['someone-else', 'wildcard-value']);
  await provider.cleanup({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 });
  await provider.cleanup({ fqdn: FQDN, value: 'never-there', ttl: 60 }); // not an error
  assert.deepEqual(await bind.dig(FQDN, 'TXT'), ['someone-else']);
  assert.deepEqual(tsigTempDirs(), before, 'the temporary key file was left behind');
});

for (const algorithm of ['hmac-sha384', 'hmac-sha512'] as const) {
  test(`TSIG ${algorithm} (lego's trailing-dot spelling), a zone given by RFC2136_ZONE, a delegated target`, async (t) => {
    const bind = await startBind(t, { algorithm });
    if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
    const target = '_acme-challenge.cname.delegated.test';
    const provider = factory.create({ env: envFor(bind, { RFC2136_TSIG_ALGORITHM: `${algorithm}.`, RFC2136_ZONE: 'delegated.test' }), log });
    await provider.present({ fqdn: target, value: 'delegated', ttl: 30 });
    assert.deepEqual(await bind.dig(target, 'TXT'), ['delegated']);
    await provider.cleanup({ fqdn: target, value: 'delegated', ttl: 30 });
    assert.deepEqual(await bind.dig(target, 'TXT'), []);
  });
}

test('the secret from RFC2136_TSIG_SECRET_FILE, or a BIND key file through RFC2136_TSIG_FILE', async (t) => {
  const bind = await startBind(t);
  if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
  const dir = tempDir(t);
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, `${bind.tsig.secret}\n`, { mode: 0o600 });
  const viaSecretFile = factory.create({ env: envFor(bind, { RFC2136_TSIG_SECRET: undefined, RFC2136_TSIG_SECRET_FILE: secretFile }), log });
  await viaSecretFile.present({ fqdn: FQDN, value: 'from-secret-file', ttl: 60 });
  const keyFile = path.join(dir, 'tsig.key');
  fs.writeFileSync(keyFile, `key "${bind.tsig.name}" { algorithm ${bind.tsig.algorithm}; secret "${bind.tsig.secret}"; };\n`, { mode: 0o600 });
  const viaKeyFile = factory.create({ env: { RFC2136_NAMESERVER: `${bind.address}:${bind.port}`, RFC2136_TSIG_FILE: keyFile }, log });
  await viaKeyFile.present({ fqdn: FQDN, value: 'from-key-file', ttl: 60 });
  assert.deepEqual((await bind.dig(FQDN, 'TXT')).sort(), ['from-key-file', 'from-secret-file']);
});

test('a wrong TSIG secret: a clear error that never shows the secret', async (t) => {
  const bind = await startBind(t);
  if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
  const wrong = Buffer.from('a-wrong-secret-of-32-bytes-long!').toString('base64');
  const provider = factory.create({ env: envFor(bind, { RFC2136_TSIG_SECRET: wrong }), log });
  await assert.rejects(provider.present({ fqdn: FQDN, value: 'v', ttl: 60 }), (err: unknown) => {
    assert.ok(isGuardError(err));
    assert.equal(err.code, 'GUARD_E_DNS_PROVIDER');
    assert.match(err.message, new RegExp(`^rfc2136: cannot add TXT at ${FQDN} through 127\\.0\\.0\\.1:${bind.port}: .*BADSIG`));
    assert.match(err.hint ?? '', /RFC2136_TSIG_SECRET/);
    assert.ok(!JSON.stringify({ m: err.message, h: err.hint, d: err.details }).includes(wrong));
    return true;
  });
  const unknownKey = factory.create({ env: envFor(bind, { RFC2136_TSIG_KEY: 'other-key' }), log });
  await assert.rejects(unknownKey.present({ fqdn: FQDN, value: 'v', ttl: 60 }), /BADKEY/);
  assert.deepEqual(await bind.dig(FQDN, 'TXT'), []);
});

test('an unreachable name server and a missing nsupdate: clear errors', async (t) => {
  if (!haveProgram(t, 'nsupdate', '-V')) return;
  const port = await freeLoopbackPort();
  const env = { RFC2136_NAMESERVER: `127.0.0.1:${port}`, RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: 'c2VjcmV0', RFC2136_TIMEOUT: '3' };
  const provider = factory.create({ env, log });
  await assert.rejects(provider.present({ fqdn: FQDN, value: 'v', ttl: 60 }), (err: unknown) => {
    assert.ok(isGuardError(err));
    assert.match(err.message, new RegExp(`^rfc2136: cannot add TXT at ${FQDN} through 127\\.0\\.0\\.1:${port}: .*(connection refused|timed out|could not reach)`, 'i'));
    assert.match(err.hint ?? '', /RFC2136_NAMESERVER/);
    return true;
  });
  const savedPath = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(provider.present({ fqdn: FQDN, value: 'v', ttl: 60 }), /rfc2136: nsupdate is not installed/);
  } finally {
    process.env.PATH = savedPath;
  }
});

test('rfc2136 passes the shared provider contract against BIND', async (t) => {
  const bind = await startBind(t);
  if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
  const wrong = Buffer.from('a-wrong-secret-of-32-bytes-long!').toString('base64');
  await runProviderContract(t, {
    factory,
    env: envFor(bind),
    secrets: [bind.tsig.secret, wrong],
    zone: 'example.test',
    values: (fqdn) => bind.dig(fqdn, 'TXT'),
    seed: (fqdn, value) => bind.nsupdate([`update add ${fqdn} 60 TXT "${value}"`]),
    badEnv: envFor(bind, { RFC2136_TSIG_SECRET: wrong }),
  });
});

test('the ACME flow\'s order against BIND: CNAME target, present there, wait for every name server', async (t) => {
  const bind = await startBind(t);
  if (!bind || !haveProgram(t, 'nsupdate', '-V')) return;
  const resolvers = [{ host: bind.address, port: bind.port }];
  const target = await resolveChallengeTarget('_acme-challenge.cname.example.test', resolvers);
  const provider = factory.create({ env: envFor(bind), log });
  await provider.present({ fqdn: target, value: 'through-cname', ttl: 60 });
  const auth = await waitForTxt({ fqdn: '_acme-challenge.cname.example.test', values: ['through-cname'], resolvers, timeoutMs: HANG_BOUND_MS, intervalMs: 100, log });
  assert.deepEqual([auth.target, auth.zone], ['_acme-challenge.cname.delegated.test', 'delegated.test']);
  await provider.cleanup({ fqdn: target, value: 'through-cname', ttl: 60 });
  assert.deepEqual(await bind.dig(target, 'TXT'), []);
});
