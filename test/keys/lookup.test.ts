import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKeyLookup } from '../../src/keys/lookup.js';
import { KeyStore } from '../../src/keys/store.js';
import { newKeyId } from '../../src/keys/token.js';
import { tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

function twoConnections(t: Parameters<typeof tempDir>[0]) {
  const home = path.join(tempDir(t), 'home');
  const daemon = KeyStore.open({ home, env: {} });
  const shell = KeyStore.open({ home, env: {} });
  t.after(() => {
    daemon.close();
    shell.close();
  });
  return { daemon, shell };
}

// How soon (checkEveryMs) is the next test's, on a controlled clock: a real clock's verdict would depend on speed.
test('a revocation made through another connection reaches the cached lookup (real clock)', async (t) => {
  const { daemon, shell } = twoConnections(t);
  const { record, secret } = shell.create({ name: 'a', tier: 'pro' });
  const lookup = createKeyLookup(daemon, { checkEveryMs: 100 });
  t.after(() => lookup.close());
  assert.equal(lookup.lookup(record.id)?.secrets[0]?.value.toString(), secret);
  shell.revoke(record.id);
  await waitFor(() => lookup.lookup(record.id)?.secrets.length === 0, 'the revocation to reach the cached lookup');
  assert.equal(lookup.lookup(record.id)?.record.status, 'revoked');
});

test('the cache really is a cache: no change is seen before checkEveryMs, and rotations arrive after it', (t) => {
  const { daemon, shell } = twoConnections(t);
  let now = 1_000_000;
  const { record, secret: s1 } = shell.create({ name: 'a', tier: 'pro' });
  const lookup = createKeyLookup(daemon, { checkEveryMs: 500, now: () => now });
  t.after(() => lookup.close());
  const missing = newKeyId();
  assert.equal(lookup.lookup(missing), undefined);
  assert.equal(lookup.lookup(record.id)?.secrets[0]?.value.toString(), s1);

  const { secret: s2 } = shell.rotate(record.id, 60_000);
  now += 499;
  assert.equal(lookup.lookup(record.id)?.secrets.length, 1, 'still the cached answer');
  now += 1;
  const rotated = lookup.lookup(record.id)!;
  assert.deepEqual(rotated.secrets.map((s) => s.value.toString()), [s2, s1]);
  assert.equal(lookup.lookup('gk_short'), undefined);
});

test('rotation grace ends in the cached answer by the clock alone', (t) => {
  const { daemon, shell } = twoConnections(t);
  let now = Date.now();
  const { record } = shell.create({ name: 'a', tier: 'pro' });
  shell.rotate(record.id, 1000);
  const lookup = createKeyLookup(daemon, { checkEveryMs: 60_000, now: () => now });
  t.after(() => lookup.close());
  assert.equal(lookup.lookup(record.id)?.secrets.length, 2);
  now += 5000;
  assert.equal(lookup.lookup(record.id)?.secrets.length, 1);
});

test('a key created elsewhere replaces a cached "not found"; writes through the same store are seen too', (t) => {
  const { daemon, shell } = twoConnections(t);
  let now = 1_000_000;
  const lookup = createKeyLookup(daemon, { checkEveryMs: 50, now: () => now });
  t.after(() => lookup.close());
  const id = newKeyId();
  assert.equal(lookup.lookup(id), undefined);
  const { record } = shell.create({ name: 'a', tier: 'pro' });
  assert.equal(lookup.lookup(record.id)?.record.id, record.id, 'an id never asked for is read from the store');
  now += 50;
  assert.ok(lookup.lookup(record.id));
  // SQLite's data_version ignores this connection's own commits; the lookup must notice them anyway.
  const own = daemon.create({ name: 'b', tier: 'pro' });
  assert.equal(lookup.lookup(own.record.id)?.record.status, 'active');
  daemon.revoke(own.record.id);
  now += 50;
  assert.equal(lookup.lookup(own.record.id)?.record.status, 'revoked');
});

test('touch batches last-used times and writes them on flush and close, never backwards', (t) => {
  const { daemon, shell } = twoConnections(t);
  const { record } = shell.create({ name: 'a', tier: 'pro' });
  const lookup = createKeyLookup(daemon, { flushEveryMs: 60_000 });
  lookup.touch(record.id, 2000);
  lookup.touch(record.id, 1000);
  assert.equal(shell.get(record.id).lastUsedAt, null, 'not written before a flush');
  lookup.flush();
  assert.equal(shell.get(record.id).lastUsedAt, 2000);
  lookup.touch(record.id, 3000);
  lookup.close();
  assert.equal(shell.get(record.id).lastUsedAt, 3000);
  shell.touch(record.id, 10);
  assert.equal(shell.get(record.id).lastUsedAt, 3000);
});
