import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pg from 'pg';
import { createPgKeyLookup } from '../../src/keys/pg-lookup.js';
import { PgKeyStore } from '../../src/keys/pg-store.js';
import { newKeyId } from '../../src/keys/token.js';
import { KeysUnavailableError } from '../../src/keys/unavailable.js';
import { tempDir } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

async function store(t: TestContext) {
  const server = await startPostgres(t);
  if (!server) return undefined;
  const url = await server.database('lookup');
  const opts = { url, home: path.join(tempDir(t), 'home'), env: {} };
  await PgKeyStore.migrate(opts);
  const daemon = await PgKeyStore.open(opts);
  const shell = await PgKeyStore.open(opts);
  t.after(async () => {
    await daemon.close();
    await shell.close();
  });
  return { server, url, daemon, shell };
}

test('NOTIFY reaches the cache at once; with notifications lost, the generation poll still does', async (t) => {
  const s = await store(t);
  if (!s) return;
  // Made before the lookups listen, so that their own notifications cannot arrive later and empty the cache.
  const { record, secret } = await s.shell.create({ name: 'a', tier: 'pro' });
  const b = await s.shell.create({ name: 'b', tier: 'pro' });
  // A poll far beyond the test: only NOTIFY can explain a quick change.
  const lookup = await createPgKeyLookup(s.daemon, { pollMs: 3_600_000 });
  t.after(() => lookup.close());
  const first = await lookup.lookup(record.id);
  assert.equal(first?.secrets[0]?.value.toString(), secret);
  assert.ok(!(lookup.lookup(record.id) instanceof Promise), 'a cached key is answered without a round trip');
  const started = Date.now();
  await s.shell.revoke(record.id);
  await waitFor(async () => (await lookup.lookup(record.id))?.record.status === 'revoked', 'the revocation by NOTIFY');
  t.diagnostic(`NOTIFY propagation: ${Date.now() - started} ms`);
  assert.equal(await lookup.lookup(newKeyId()), undefined, 'an unknown key is unknown, not unavailable');

  // A writer that bumps the generation but whose notification never comes (as if the listener had been down).
  const polled = await createPgKeyLookup(s.daemon, { pollMs: 100 });
  t.after(() => polled.close());
  assert.equal((await polled.lookup(b.record.id))?.record.status, 'active');
  const raw = new pg.Client({ connectionString: s.url });
  // The server may stop before this client is closed (hooks run in the order they were added).
  raw.on('error', () => {});
  await raw.connect();
  t.after(() => raw.end());
  await raw.query('UPDATE guardctl_keys SET revoked_at = $1, revision = revision + 1 WHERE id = $2', [Date.now(), b.record.id]);
  await raw.query(`UPDATE guardctl_meta SET value = (value::bigint + 1)::text WHERE name = 'generation'`);
  await waitFor(async () => (await polled.lookup(b.record.id))?.record.status === 'revoked', 'the revocation by polling');
});

test('staleMs 0 refuses at once once PostgreSQL is unreachable, cached or not', async (t) => {
  const s = await store(t);
  if (!s) return;
  const changes: boolean[] = [];
  const { record } = await s.shell.create({ name: 'a', tier: 'pro' });
  const lookup = await createPgKeyLookup(s.daemon, { staleMs: 0, pollMs: 3_600_000, onHealth: (up) => changes.push(up) });
  t.after(() => lookup.close());
  assert.ok(await lookup.lookup(record.id));
  s.server.stop();
  // The listening connection ends with the server, and the poll it starts finds the server gone.
  await waitFor(() => changes.includes(false), 'the lookup to notice PostgreSQL is gone');
  assert.throws(() => lookup.lookup(record.id), KeysUnavailableError);
  assert.equal(lookup.health().up, false);
  assert.ok(lookup.health().refused >= 1);
  s.server.start();
});
