/** Flags and names are checked before anything is written or any server is asked. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { accountDirName, resolveDirectoryUrl } from '../../src/acme/directory.js';
import { defaultLineageName, normalizeNames } from '../../src/acme/keys.js';
import { issueOptionsFrom } from '../../src/acme/options.js';
import { runCli, tempDir } from '../helpers/cli.js';

test('names: lower case, punycode, wildcards only as the leftmost label, duplicates dropped', () => {
  assert.deepEqual(normalizeNames(['Example.TEST.', '*.example.test', 'example.test', 'bücher.example.test']), ['example.test', '*.example.test', 'xn--bcher-kva.example.test']);
  for (const bad of ['localhost', 'a..b.test', 'foo.*.test', '-x.test', '1.2.3.4', 'under_score.test', '*']) {
    assert.throws(() => normalizeNames([bad]), (err: Error & { code?: string }) => err.code === 'GUARD_E_USAGE' && err.message.includes(bad));
  }
  assert.equal(defaultLineageName(['*.example.test', 'example.test']), '_wildcard.example.test');
});

test('servers: aliases, URLs and one account folder per CA host', () => {
  assert.equal(resolveDirectoryUrl('letsencrypt'), 'https://acme-v02.api.letsencrypt.org/directory');
  assert.equal(resolveDirectoryUrl('letsencrypt-staging'), 'https://acme-staging-v02.api.letsencrypt.org/directory');
  assert.equal(resolveDirectoryUrl('zerossl'), 'https://acme.zerossl.com/v2/DV90');
  assert.equal(resolveDirectoryUrl('https://127.0.0.1:14000/dir'), 'https://127.0.0.1:14000/dir');
  assert.throws(() => resolveDirectoryUrl('lets-encrypt'), /unknown ACME server/);
  assert.throws(() => resolveDirectoryUrl('ftp://ca.test/dir'), /must be https/);
  assert.equal(accountDirName('https://acme-v02.api.letsencrypt.org/directory'), 'acme-v02.api.letsencrypt.org');
  assert.equal(accountDirName('https://127.0.0.1:14000/dir'), '127.0.0.1_14000');
});

test('issue options: defaults, provider options and propagation settings; secrets stay out of the settings', () => {
  const o = issueOptionsFrom({ domain: ['a.example.test', '*.a.example.test'], dns: 'exec', dnsExec: '/usr/local/bin/dns.sh', dnsResolvers: ['127.0.0.1:5353,1.1.1.1'], dnsInterval: '0.5', dnsTimeout: '30', eabKid: 'kid', eabHmacKey: 'c2VjcmV0' }, {});
  assert.equal(o.lineage, 'a.example.test');
  assert.equal(o.server, 'https://acme-v02.api.letsencrypt.org/directory');
  assert.equal(o.keyType, 'ec256');
  assert.deepEqual(o.dns, { provider: 'exec', options: { exec: '/usr/local/bin/dns.sh' }, timeoutSec: 30, intervalSec: 0.5, resolvers: ['127.0.0.1:5353', '1.1.1.1:53'] });
  assert.deepEqual(o.eab, { kid: 'kid', hmacKey: 'c2VjcmV0' });
  assert.equal(JSON.stringify(o.dns).includes('c2VjcmV0'), false);
  // The same flags take durations with units, as every other duration flag does.
  const units = issueOptionsFrom({ domain: ['a.example.test'], dns: 'manual', dnsInterval: '500ms', dnsTimeout: '2m' }, {});
  assert.deepEqual([units.dns!.timeoutSec, units.dns!.intervalSec], [120, 0.5]);
  const env = issueOptionsFrom({ domain: ['b.example.test'], dns: 'manual' }, { GUARDCTL_ACME_SERVER: 'letsencrypt-staging', GUARDCTL_ACME_EMAIL: 'ops@example.test' });
  assert.equal(env.server, 'https://acme-staging-v02.api.letsencrypt.org/directory');
  assert.equal(env.email, 'ops@example.test');
});

test('--http-webroot: the lineage keeps HTTP-01 and its webroot for renewals', () => {
  const o = issueOptionsFrom({ domain: ['a.example.test'], httpWebroot: '/srv/acme/' }, {});
  assert.deepEqual(o.dns, { provider: 'http-01', options: { webroot: '/srv/acme/' } });
});

test('bad flags: exit 2 naming the flag, and nothing is created', async (t) => {
  const home = tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [['-d', 'a.example.test'], /give --dns PROVIDER or --http-webroot DIR/],
    [['-d', 'a.example.test', '--dns', 'manual', '--http-webroot', '/srv/acme'], /give --dns or --http-webroot, not both/],
    [['-d', '*.a.example.test', '--http-webroot', '/srv/acme'], /\*\.a\.example\.test: a wildcard certificate needs the DNS-01 challenge/],
    [['-d', 'a.example.test', '--http-webroot', 'relative/dir'], /--http-webroot must be an absolute path/],
    [['-d', 'a.example.test', '--dns', 'nosuch'], /unknown DNS provider "nosuch"/],
    [['--dns', 'manual'], /no names to certify/],
    [['-d', 'a.example.test', '--dns', 'manual', '--key-type', 'ed25519'], /unknown key type "ed25519"/],
    [['-d', 'a.example.test', '--dns', 'manual', '--server', 'zerossl'], /ZeroSSL needs External Account Binding/],
    [['-d', 'a.example.test', '--dns', 'manual', '--eab-kid', 'k'], /--eab-kid and --eab-hmac-key go together/],
    [['-d', 'a.example.test', '--dns', 'manual', '--deploy-dir', '/tmp/x', '--key-file', '/tmp/k'], /exclusive/],
    [['-d', 'a.example.test', '--dns', 'manual', '--key-file', '/tmp/k'], /--key-file needs --cert-file or --fullchain-file/],
    [['-d', 'a.example.test', '--dns', 'manual', '--dns-timeout', 'soon'], /--dns-timeout must be a positive duration/],
    [['-d', 'a.example.test', '--dns', 'manual', '--dns-resolvers', 'dns.google'], /not a DNS server address/],
    [['-d', 'a.example.test', '--dns', 'manual', '--name', '../etc'], /invalid certificate name/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['--home', home, 'cert', 'issue', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const renew = await runCli(['--home', home, 'cert', 'renew']);
  assert.equal(renew.code, 2);
  assert.match(renew.stderr, /which certificate\?/);
  const missing = await runCli(['--home', home, '--json', 'cert', 'renew', 'nope']);
  assert.equal(missing.code, 1);
  assert.equal(missing.json<{ error: { code: string } }>().error.code, 'GUARD_E_CERT_NOT_FOUND');
  const revoke = await runCli(['--home', home, 'cert', 'revoke', 'nope', '--reason', 'bored']);
  assert.equal(revoke.code, 2);
  assert.match(revoke.stderr, /unknown revocation reason "bored"/);
  assert.deepEqual(fs.readdirSync(home), []);
});

test('cert list and providers: empty store, every provider with its variables', async (t) => {
  const home = tempDir(t);
  const list = await runCli(['--home', home, '--json', 'cert', 'list']);
  assert.deepEqual(list.json(), { certificates: [] });
  assert.match((await runCli(['--home', home, 'cert', 'list'])).stdout, /No certificates yet/);
  const providers = (await runCli(['--json', 'cert', 'providers'])).json<{ providers: Array<{ name: string; env: Array<{ name: string }> }> }>().providers;
  for (const name of ['aliyun', 'cloudflare', 'dnspod', 'pdns', 'rfc2136', 'exec', 'manual']) assert.ok(providers.some((p) => p.name === name), name);
  assert.ok(providers.find((p) => p.name === 'rfc2136')!.env.some((v) => v.name === 'RFC2136_TSIG_SECRET'));
  const text = (await runCli(['cert', 'providers'])).stdout;
  assert.match(text, /CF_Token \(or CLOUDFLARE_DNS_API_TOKEN.*\[required\] \[secret, or _FILE\]/);
});

test('--dns-check: authoritative or resolvers, and resolvers needs --dns-resolvers', () => {
  const base = { domain: ['a.example.test'], dns: 'exec', dnsExec: '/bin/true' };
  assert.equal(issueOptionsFrom({ ...base }, {}).dns.check, undefined);
  assert.equal(issueOptionsFrom({ ...base, dnsCheck: 'resolvers', dnsResolvers: ['10.0.0.53'] }, {}).dns.check, 'resolvers');
  assert.equal(issueOptionsFrom({ ...base, dnsCheck: 'authoritative' }, {}).dns.check, 'authoritative');
  assert.throws(() => issueOptionsFrom({ ...base, dnsCheck: 'resolvers' }, {}), /--dns-check resolvers needs --dns-resolvers/);
  assert.throws(() => issueOptionsFrom({ ...base, dnsCheck: 'none' }, {}), /--dns-check must be authoritative or resolvers, got "none"/);
});
