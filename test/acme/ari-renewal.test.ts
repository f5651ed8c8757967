/**
 * ARI end to end: Pebble behind a fixture directory that adds `renewalInfo`. Outside the window nothing is
 * renewed and Retry-After is honoured; once the CA moves the window into the past the renewal happens, and the
 * new order's payload names the old certificate in `replaces`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import acme from 'acme-client';
import { certIdOf } from '../../src/acme/ari.js';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPebble } from '../helpers/pebble.js';
import { startAriFixture } from './ari-fixture.js';

const DAY = 86_400_000;

test('ARI: window outside -> not due (Retry-After honoured); window passed -> renewed with replaces', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}` });
  if (!pebble) return;
  const ari = await startAriFixture(t, pebble);
  const home = tempDir(t);
  const env = {
    PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: pebble.caFile, GUARDCTL_RENEW_JITTER: '0', GUARDCTL_ACME_POLL_MS: '200',
    RFC2136_NAMESERVER: `127.0.0.1:${bind.port}`, RFC2136_TSIG_KEY: bind.tsig.name, RFC2136_TSIG_SECRET: bind.tsig.secret,
  };
  let clock = Date.now();
  const cli = (args: string[]) => runCli(['--home', home, '--json', 'cert', ...args], { env, now: () => clock });

  // The payloads sent to newOrder, decoded (a request retried after a bad nonce is counted once).
  const orders: Array<Record<string, unknown>> = [];
  const spy = acme.axios.interceptors.request.use((config) => {
    const data = config.data as { payload?: string } | undefined;
    if (config.method === 'post' && /order-plz/.test(config.url ?? '') && data?.payload) {
      const payload = JSON.parse(Buffer.from(data.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      if (!orders.some((o) => JSON.stringify(o) === JSON.stringify(payload))) orders.push(payload);
    }
    return config;
  });
  t.after(() => acme.axios.interceptors.request.eject(spy));

  const issued = await cli(['issue', '-d', 'ari.example.test', '--server', ari.directory, '--agree-tos', '--dns', 'rfc2136',
    '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2']);
  assert.equal(issued.code, 0, issued.stderr + issued.stdout);
  const { dir, serial } = issued.json<{ dir: string; serial: string }>();
  assert.equal(orders.length, 1);
  assert.equal('replaces' in orders[0]!, false, 'a first issuance replaces nothing');
  const certId = certIdOf(fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'))!;
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')).cert.certId, certId);

  // The CA suggests a window a month away.
  ari.setWindow({ start: clock + 30 * DAY, end: clock + 31 * DAY }, 3600);
  const early = await cli(['renew', 'ari.example.test']);
  assert.equal(early.code, 0, early.stderr);
  const r1 = early.json<{ results: Array<{ status: string; nextRenewalAt: string }> }>().results[0]!;
  assert.equal(r1.status, 'not-due');
  const at = Date.parse(r1.nextRenewalAt);
  assert.ok(at >= clock + 30 * DAY && at <= clock + 31 * DAY, 'the next renewal is a moment inside the window');
  assert.deepEqual(ari.asked, [certId]);
  const listed = (await cli(['list'])).json<{ certificates: Array<{ ari: { selected_at: string } | null; next_renewal_at: string }> }>().certificates[0]!;
  assert.equal(listed.next_renewal_at, r1.nextRenewalAt);
  assert.equal(listed.ari?.selected_at, r1.nextRenewalAt);

  // Within Retry-After the CA is not asked again.
  clock += 30 * 60_000;
  assert.equal((await cli(['renew', '--all'])).json<{ results: Array<{ status: string }> }>().results[0]!.status, 'not-due');
  assert.equal(ari.asked.length, 1);

  // The CA pulls the window into the past (say, a mass revocation is coming): renew now, with replaces.
  clock += 60 * 60_000;
  ari.setWindow({ start: clock - 2 * DAY, end: clock - DAY });
  const renewed = await cli(['renew', '--all']);
  assert.equal(renewed.code, 0, renewed.stderr + renewed.stdout);
  const r2 = renewed.json<{ results: Array<{ status: string; reason: string; serial: string }> }>().results[0]!;
  assert.equal(r2.status, 'renewed');
  assert.match(r2.reason, /ARI/);
  assert.notEqual(r2.serial, serial);
  assert.equal(ari.asked.length, 2);
  assert.equal(orders.length, 2);
  assert.equal(orders[1]!.replaces, certId);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  assert.equal(meta.ari, undefined, 'the new certificate starts without the old one\'s window');
  assert.notEqual(meta.cert.certId, certId);
});
