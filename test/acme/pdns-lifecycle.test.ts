/**
 * The same lifecycle with PowerDNS (its HTTP API through the pdns provider), and acme-client's handling of
 * Pebble's bad nonces (5% of good nonces rejected, Pebble's default): every signed request still succeeds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import acme from 'acme-client';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPdns } from '../helpers/pdns.js';
import { startPebble } from '../helpers/pebble.js';

test('PowerDNS: issue an apex + wildcard, renew, and bad nonces are retried', async (t) => {
  const pdns = await startPdns(t);
  if (!pdns) return;
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${pdns.dnsPort}` });
  if (!pebble) return;
  let badNonces = 0;
  const spy = acme.axios.interceptors.response.use((res) => {
    if (res.status === 400 && (res.data as { type?: string } | undefined)?.type === 'urn:ietf:params:acme:error:badNonce') badNonces++;
    return res;
  });
  t.after(() => acme.axios.interceptors.response.eject(spy));

  const home = tempDir(t);
  const env = { PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: pebble.caFile, GUARDCTL_RENEW_JITTER: '0', GUARDCTL_ACME_POLL_MS: '200', PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: pdns.apiKey };
  const cli = (args: string[]) => runCli(['--home', home, '--json', 'cert', ...args], { env });
  const issued = await cli(['issue', '-d', 'example.test', '-d', '*.example.test', '--server', pebble.directory, '--agree-tos', '--dns', 'pdns',
    '--dns-resolvers', `127.0.0.1:${pdns.dnsPort}`, '--dns-interval', '0.2', '--key-type', 'rsa2048']);
  assert.equal(issued.code, 0, issued.stderr + issued.stdout);
  assert.equal(issued.stderr.includes(pdns.apiKey), false);
  const { dir, serial } = issued.json<{ dir: string; serial: string }>();
  assert.match(fs.readFileSync(path.join(dir, 'privkey.pem'), 'utf8'), /BEGIN PRIVATE KEY/);
  assert.deepEqual(await pdns.dig('_acme-challenge.example.test', 'TXT'), []);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  assert.equal(meta.keyType, 'rsa2048');
  assert.deepEqual(meta.dns, { provider: 'pdns', options: {}, intervalSec: 0.2, resolvers: [`127.0.0.1:${pdns.dnsPort}`] });
  assert.equal(JSON.stringify(meta).includes(pdns.apiKey), false, 'no secret in meta.json');

  const renewed = await cli(['renew', '--all', '--force']);
  assert.equal(renewed.code, 0, renewed.stderr + renewed.stdout);
  assert.notEqual(renewed.json<{ results: Array<{ serial: string }> }>().results[0]!.serial, serial);
  assert.deepEqual(await pdns.dig('_acme-challenge.example.test', 'TXT'), []);

  // Enough signed requests that some nonces are surely rejected: acme-client must retry each transparently.
  const accounts = path.join(home, 'acme', 'accounts');
  const accountDir = path.join(accounts, fs.readdirSync(accounts)[0]!);
  const account = JSON.parse(fs.readFileSync(path.join(accountDir, 'account.json'), 'utf8')) as { url: string };
  const client = new acme.Client({ directoryUrl: pebble.directory, accountKey: fs.readFileSync(path.join(accountDir, 'account.key')), accountUrl: account.url });
  for (let i = 0; i < 300 && badNonces < 2; i++) await client.updateAccount({});
  assert.ok(badNonces >= 1, 'Pebble rejected some nonces');
});
