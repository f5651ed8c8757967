/**
 * The cloud API providers end to end: each provider signs its real API calls to a local fake that verifies the
 * signature scheme (Alibaba RPC HMAC-SHA1, Tencent TC3-HMAC-SHA256, Cloudflare bearer token), the fake mirrors
 * its TXT records into pebble-challtestsrv, and Pebble validates DNS-01 against challtestsrv. challtestsrv is
 * no authoritative server (no SOA/NS), so the propagation check asks it directly: --dns-check resolvers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freeLoopbackPort } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startFakeAliyun } from '../helpers/fake-dns-apis/aliyun.js';
import { forwardToChalltestsrv } from '../helpers/fake-dns-apis/challtestsrv.js';
import { startFakeCloudflare } from '../helpers/fake-dns-apis/cloudflare.js';
import type { FakeDnsApi, FakeDnsOptions } from '../helpers/fake-dns-apis/common.js';
import { startFakeDnspod } from '../helpers/fake-dns-apis/dnspod.js';
import { startPebble } from '../helpers/pebble.js';
import { haveProgram } from '../helpers/system.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

async function startChalltestsrv(t: { after(fn: () => unknown): void }): Promise<{ dnsPort: number; management: string }> {
  const [dnsPort, mgmtPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const child = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${mgmtPort}`,
    '-http01', '', '-https01', '', '-tlsalpn01', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  t.after(() => child.kill('SIGKILL'));
  const management = `http://127.0.0.1:${mgmtPort}`;
  const deadline = Date.now() + HANG_BOUND_MS;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${management}/clear-txt`, { method: 'POST', body: '{"host":"probe.invalid."}' })).ok) return { dnsPort, management };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pebble-challtestsrv did not start:\n${out}`);
}

const PROVIDERS: Array<[string, (o: FakeDnsOptions) => Promise<FakeDnsApi>]> = [
  ['aliyun', startFakeAliyun], ['cloudflare', startFakeCloudflare], ['dnspod', startFakeDnspod],
];

test('aliyun, cloudflare and dnspod issue a name + wildcard through their fakes, challtestsrv and Pebble', async (t) => {
  if (!haveProgram(t, 'pebble-challtestsrv', '-h')) return;
  const cts = await startChalltestsrv(t);
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${cts.dnsPort}` });
  if (!pebble) return;
  for (const [provider, start] of PROVIDERS) {
    const fake = await start({ zones: ['example.test'], onChange: forwardToChalltestsrv(cts.management) });
    t.after(() => fake.close());
    const home = tempDir(t);
    const name = `${provider}.example.test`;
    const r = await runCli(['--home', home, '--json', 'cert', 'issue', '-d', name, '-d', `*.${name}`, '--dns', provider,
      '--server', pebble.directory, '--agree-tos', '--dns-resolvers', `127.0.0.1:${cts.dnsPort}`, '--dns-check', 'resolvers',
      '--dns-interval', '0.2', '--dns-timeout', '120'], {
      env: { ...fake.env, PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: pebble.caFile, GUARDCTL_RENEW_JITTER: '0', GUARDCTL_ACME_POLL_MS: '200' },
    });
    assert.equal(r.code, 0, `${provider}: ${r.stderr}${r.stdout}`);
    const { dir } = r.json<{ dir: string }>();
    const leaf = new X509Certificate(fs.readFileSync(path.join(dir, 'cert.pem')));
    assert.match(leaf.subjectAltName ?? '', new RegExp(`DNS:\\*\\.${provider}\\.example\\.test`));
    // Both values were added through the signed API and removed by value afterwards.
    assert.deepEqual(fake.values(`_acme-challenge.${name}`), [], `${provider} left TXT records behind`);
    assert.ok(fake.requests.filter((q) => q.status === 200).length >= 4, `${provider}: ${JSON.stringify(fake.requests)}`);
    for (const secret of fake.secrets) assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `${provider} printed a secret`);
  }
});
