import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { factory as aliyun } from '../../src/dns/providers/aliyun/index.js';
import { factory as cloudflare } from '../../src/dns/providers/cloudflare/index.js';
import { factory as dnspod } from '../../src/dns/providers/dnspod/index.js';
import { factory as exec } from '../../src/dns/providers/exec/index.js';
import type { ProviderFactory } from '../../src/dns/types.js';
import { tempDir } from '../helpers/cli.js';
import { startFakeAliyun } from '../helpers/fake-dns-apis/aliyun.js';
import { startFakeCloudflare } from '../helpers/fake-dns-apis/cloudflare.js';
import type { FakeDnsApi, FakeDnsOptions } from '../helpers/fake-dns-apis/common.js';
import { startFakeDnspod } from '../helpers/fake-dns-apis/dnspod.js';
import { runProviderContract } from './contract.js';

// Every API provider against its fake, which verifies the real authentication scheme; exec against a shell script.
const zones = ['example.com', 'b.example.com'];

const apis: Array<[ProviderFactory, (o: FakeDnsOptions) => Promise<FakeDnsApi>, (env: Record<string, string>) => Record<string, string>]> = [
  [aliyun, startFakeAliyun, (env) => ({ ...env, Ali_Secret: 'not-the-secret' })],
  [cloudflare, startFakeCloudflare, (env) => ({ ...env, CF_Token: 'not-the-token' })],
  [dnspod, startFakeDnspod, (env) => ({ ...env, TENCENTCLOUD_SECRET_KEY: 'not-the-key' })],
];

for (const [factory, start, wrong] of apis) {
  test(`${factory.meta.name} passes the provider contract`, async (t) => {
    const fake = await start({ zones });
    t.after(() => fake.close());
    await runProviderContract(t, {
      factory,
      env: fake.env,
      secrets: fake.secrets,
      zone: 'example.com',
      nestedZone: 'b.example.com',
      values: (fqdn, zone) => fake.values(fqdn, zone),
      seed: (fqdn, value) => fake.seed(fqdn, value),
      faults: fake,
      badEnv: wrong(fake.env),
    });
  });
}

// A script-backed store: one "NAME. VALUE" line per record. The failing script prints a credential, which the
// provider must scrub from its error.
const STORE_SCRIPT = `#!/bin/sh
set -eu
store="$EXEC_TEST_STORE"
touch "$store"
case "$1" in
  present) grep -qxF "$2 $3" "$store" || echo "$2 $3" >> "$store" ;;
  cleanup) { grep -vxF "$2 $3" "$store" || true; } > "$store.tmp"; mv "$store.tmp" "$store" ;;
  *) echo "unknown mode $1" >&2; exit 2 ;;
esac
`;
const FAILING_SCRIPT = `#!/bin/sh
echo "calling the DNS API with token $EXEC_TEST_API_TOKEN" >&2
echo "401 unauthorized" >&2
exit 3
`;

test('exec passes the provider contract', async (t) => {
  const dir = tempDir(t);
  const script = path.join(dir, 'dns.sh');
  const failing = path.join(dir, 'fail.sh');
  fs.writeFileSync(script, STORE_SCRIPT, { mode: 0o700 });
  fs.writeFileSync(failing, FAILING_SCRIPT, { mode: 0o700 });
  const store = path.join(dir, 'records');
  const token = 'exec-test-token-7GqP2sVx';
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', EXEC_TEST_STORE: store, EXEC_TEST_API_TOKEN: token, GUARDCTL_DNS_EXEC: script };
  const values = (fqdn: string) => {
    const lines = fs.existsSync(store) ? fs.readFileSync(store, 'utf8').split('\n') : [];
    return lines.filter((l) => l.startsWith(`${fqdn}. `)).map((l) => l.slice(fqdn.length + 2));
  };
  await runProviderContract(t, {
    factory: exec,
    env,
    secrets: [token],
    zone: 'example.com',
    values,
    badEnv: { ...env, GUARDCTL_DNS_EXEC: failing },
  });
});
