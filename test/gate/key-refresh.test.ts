import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gate, type GateRequest } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS } from '../../src/gate/options.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { createKeyLookup } from '../../src/keys/lookup.js';
import { KeyStore } from '../../src/keys/store.js';
import { DEFAULT_TIERS } from '../../src/keys/tiers.js';
import { tempDir } from '../helpers/cli.js';

const IP = '203.0.113.7';

function request(keyId: string, secret: string): GateRequest {
  const body = JSON.stringify({ text: 'hello' });
  const signed = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId, secret, version: 2 });
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'POST', path: '/api/v1/moderate', rawQuery: '', headers, body: Buffer.from(body), json: JSON.parse(body), peerIp: IP };
}

test('a secret rotated by another process verifies at once; a bad signature is still refused and counted once', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const daemonStore = KeyStore.open({ home, env: {} });
  // The `guardctl keys rotate` process: its own connection, which the daemon sees only through data_version.
  const cli = KeyStore.open({ home, env: {} });
  // A poll interval no test run reaches: only the re-check on a failed signature can see the rotation.
  const lookup = createKeyLookup(daemonStore, { checkEveryMs: 3_600_000 });
  t.after(() => {
    lookup.close();
    daemonStore.close();
    cli.close();
  });
  const state = new MemoryGateState({ nonceCapacity: 1000, authFailures: { limit: 2, windowSec: 60, blockSec: 300 } });
  const gate = new Gate({ keys: lookup, state, tiers: DEFAULT_TIERS, options: DEFAULT_GATE_OPTIONS });
  const pass = async (secret: string) => {
    const r = await gate.check(request(record.id, secret));
    if (r.ok) r.release();
    return r.ok ? 'ok' : r.code;
  };

  const { record, secret: s1 } = cli.create({ name: 'a', tier: 'enterprise' });
  assert.equal(await pass(s1), 'ok', 'the old secret is now cached');
  const { secret: s2 } = cli.rotate(record.id, 0);
  assert.equal(await pass(s2), 'ok', 'the new secret must verify without waiting for the poll');
  assert.equal(await pass(s2), 'ok');

  // Two failures are within the limit of 2: each bad request counted once (not once per pass), so no block yet.
  assert.equal(await pass(s1), 'bad_signature', 'the rotated-out secret (grace 0) no longer verifies');
  assert.equal(await pass(`gs_${'x'.repeat(40)}`), 'bad_signature');
  assert.equal(state.authBlockedFor(IP), 0);
  assert.equal(await pass(s2), 'ok');
  // The third failure goes over the limit: they do count.
  assert.equal(await pass(`gs_${'y'.repeat(40)}`), 'bad_signature');
  assert.ok(state.authBlockedFor(IP) > 0);
  assert.equal(await pass(s2), 'auth_throttled');
});

test('refresh: false while the store is unchanged, true once after another connection writes', (t) => {
  const home = path.join(tempDir(t), 'home');
  const daemonStore = KeyStore.open({ home, env: {} });
  const cli = KeyStore.open({ home, env: {} });
  const { record } = cli.create({ name: 'a', tier: 'pro' });
  const lookup = createKeyLookup(daemonStore, { checkEveryMs: 3_600_000 });
  t.after(() => {
    lookup.close();
    daemonStore.close();
    cli.close();
  });
  assert.equal(lookup.lookup(record.id)?.record.status, 'active');
  assert.equal(lookup.refresh(record.id), false);
  cli.revoke(record.id);
  assert.equal(lookup.lookup(record.id)?.record.status, 'active', 'still the cached answer');
  assert.equal(lookup.refresh(record.id), true);
  assert.equal(lookup.refresh(record.id), false, 'the change is seen once');
  assert.equal(lookup.lookup(record.id)?.record.status, 'revoked');
});
