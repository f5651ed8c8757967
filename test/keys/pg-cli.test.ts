import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { PG_SCHEMA_VERSION } from '../../src/keys/pg-schema.js';

// Issue 13.2: every `guardctl keys` command against a real PostgreSQL 15, migrations, and export/import.

type Run = (...args: string[]) => ReturnType<typeof runCli>;

function cli(home: string, keys?: string): Run {
  return (...args) => runCli(['--home', home, '--json', ...args], { env: keys ? { GUARDCTL_KEYS: keys } : {} });
}

test('every keys command works against PostgreSQL once keys migrate has made its tables', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const url = await server.database('cmds');
  const home = path.join(tempDir(t), 'home');
  const run = cli(home, url);

  // Before migrate: refused, saying which command fixes it, and nothing was created.
  const early = await run('keys', 'list');
  assert.equal(early.code, 1);
  assert.equal(early.json().error.code, 'GUARD_E_KEYSTORE');
  assert.match(early.json().error.hint, /guardctl keys migrate/);

  const migrated = await run('keys', 'migrate');
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.deepEqual([migrated.json().from, migrated.json().to], [0, PG_SCHEMA_VERSION]);
  assert.equal((await run('keys', 'migrate')).json().from, PG_SCHEMA_VERSION, 'a second migrate changes nothing');

  const created = await run('keys', 'create', '--name', 'acme', '--tier', 'pro', '--daily', '100', '--allow-ip', '10.0.0.0/8');
  assert.equal(created.code, 0, created.stderr);
  const key = created.json<{ id: string; secret: string; daily: number }>();
  assert.equal(key.daily, 100);
  // --keys on the command line beats the environment (which names no store here).
  const viaFlag = await runCli(['--home', home, '--json', 'keys', 'list', '--keys', url]);
  assert.deepEqual(viaFlag.json().keys.map((k: { id: string }) => k.id), [key.id]);

  const rotated = await run('keys', 'rotate', key.id, '--grace', '1h');
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.notEqual(rotated.json().secret, key.secret);
  const revoked = await run('keys', 'revoke', key.id);
  assert.equal(revoked.json().status, 'revoked');
  const again = await run('keys', 'revoke', key.id);
  assert.equal(again.json().error.code, 'GUARD_E_KEY_STATE');
  const shown = (await run('keys', 'show', key.id)).json();
  assert.equal(shown.status, 'revoked');
  assert.deepEqual(shown.events.map((e: { action: string }) => e.action), ['create', 'rotate', 'revoke']);
  assert.deepEqual(shown.allow_ips, ['10.0.0.0/8']);

  // The database holds sealed secrets only; the master key stayed in the data directory.
  const db = new pg.Client({ connectionString: url });
  db.on('error', () => {}); // the server may stop first at teardown
  await db.connect();
  t.after(() => db.end());
  const { rows } = await db.query('SELECT secret FROM guardctl_keys');
  assert.match(rows[0].secret, /^v1\./);
  assert.ok(!JSON.stringify((await db.query('SELECT * FROM guardctl_meta')).rows).includes(fs.readFileSync(path.join(home, 'master.key'), 'utf8').trim()));

  // Another master key is refused, naming the problem.
  const other = await runCli(['--json', 'keys', 'list'], { env: { GUARDCTL_KEYS: url, GUARDCTL_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), GUARDCTL_HOME: path.join(tempDir(t), 'h2') } });
  assert.equal(other.json().error.code, 'GUARD_E_MASTER_KEY');

  // A store of schema 1 (before bearer credentials): refused until keys migrate adds the column; keys keep no bearer.
  await db.query('ALTER TABLE guardctl_keys DROP COLUMN allow_bearer');
  await db.query(`UPDATE guardctl_meta SET value = '1' WHERE name = 'schema_version'`);
  const stale = await run('keys', 'list');
  assert.equal(stale.code, 1);
  assert.match(stale.json().error.hint, /guardctl keys migrate/);
  assert.deepEqual([(await run('keys', 'migrate')).json().from, (await run('keys', 'migrate')).json().from], [1, 2]);
  assert.ok((await run('keys', 'list')).json().keys.every((k: { allow_bearer: boolean }) => k.allow_bearer === false));

  // A schema from a newer guardctl: every command and migrate itself refuse, and say to upgrade.
  await db.query(`UPDATE guardctl_meta SET value = '99' WHERE name = 'schema_version'`);
  for (const args of [['keys', 'list'], ['keys', 'migrate']]) {
    const r = await run(...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.json().error.message, new RegExp(`schema 99, newer than this guardctl's ${PG_SCHEMA_VERSION}`));
    assert.match(r.json().error.hint, /upgrade guardctl/);
  }
});

test('export/import moves a store SQLite -> PostgreSQL -> SQLite with sealed secrets byte-identical', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const url = await server.database('move');
  const dir = tempDir(t);
  const home = path.join(dir, 'home');
  const sqlite = cli(home);
  const pgRun = cli(home, url);
  const a = (await sqlite('keys', 'create', '--name', 'a', '--tier', 'pro')).json<{ id: string }>();
  const b = (await sqlite('keys', 'create', '--name', 'b', '--tier', 'free', '--expires', '30d')).json<{ id: string }>();
  await sqlite('keys', 'rotate', a.id, '--grace', '2h');
  await sqlite('keys', 'revoke', b.id);

  const first = path.join(dir, 'from-sqlite.jsonl');
  assert.equal((await sqlite('keys', 'export', '--out', first)).code, 0);
  assert.equal(fs.statSync(first).mode & 0o777, 0o600);
  assert.equal((await pgRun('keys', 'migrate')).code, 0);
  const imported = await pgRun('keys', 'import', first);
  assert.equal(imported.code, 0, imported.stdout);
  assert.deepEqual(imported.json(), { keys: 2, events: 4, skipped: [] });

  // Into a store that already has keys: refused, unless --merge, which adds only the ids it lacks.
  const twice = await pgRun('keys', 'import', first);
  assert.equal(twice.json().error.code, 'GUARD_E_KEYSTORE');
  assert.match(twice.json().error.hint, /--merge/);
  assert.deepEqual((await pgRun('keys', 'import', first, '--merge')).json(), { keys: 0, events: 0, skipped: [a.id, b.id] });

  const second = path.join(dir, 'from-pg.jsonl');
  assert.equal((await pgRun('keys', 'export', '--out', second)).code, 0);
  const home2 = path.join(dir, 'home2');
  fs.mkdirSync(home2, { mode: 0o700 });
  fs.copyFileSync(path.join(home, 'master.key'), path.join(home2, 'master.key'));
  const back = cli(home2);
  assert.equal((await back('keys', 'import', second)).code, 0);
  const third = path.join(dir, 'back-in-sqlite.jsonl');
  await back('keys', 'export', '--out', third);

  // Rows, sealed secrets and history are what SQLite held, byte for byte, after two moves.
  // (The header's check value differs: each store seals its own, under the same master key.)
  const body = (file: string) => fs.readFileSync(file, 'utf8').split('\n').slice(1).join('\n');
  const original = body(first);
  assert.equal(body(second), original);
  assert.equal(body(third), original);
  const sealed = original.split('\n').filter((l) => l.includes('"type":"key"')).map((l) => JSON.parse(l) as { secret: string; previous_secret: string | null });
  assert.equal(sealed.length, 2);
  assert.ok(sealed.every((k) => k.secret.startsWith('v1.')));
  assert.ok(sealed.some((k) => k.previous_secret?.startsWith('v1.')), 'the rotation grace secret moved too');
  // And they still verify: the moved key answers with its record, status and history.
  const shown = (await back('keys', 'show', a.id)).json();
  assert.deepEqual(shown.events.map((e: { action: string }) => e.action), ['create', 'rotate']);

  // A store under another master key refuses the file before writing anything.
  const stranger = await runCli(['--json', 'keys', 'import', first], { env: { GUARDCTL_HOME: path.join(dir, 'home3'), GUARDCTL_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') } });
  assert.equal(stranger.json().error.code, 'GUARD_E_MASTER_KEY');
  assert.deepEqual((await runCli(['--json', 'keys', 'list'], { env: { GUARDCTL_HOME: path.join(dir, 'home3'), GUARDCTL_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') } })).json().keys, []);
});
