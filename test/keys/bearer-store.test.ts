import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { KeyStore } from '../../src/keys/store.js';
import { dumpToLines, linesToDump } from '../../src/keys/transfer.js';
import { runCli, tempDir } from '../helpers/cli.js';

// Issue 14.1: the bearer opt-in is stored as a flag beside the sealed secret; a store from before it upgrades.

test('a schema 1 store (before bearer credentials) upgrades on open; its keys allow no bearer', (t) => {
  const home = path.join(tempDir(t), 'home');
  const env = { GUARDCTL_MASTER_KEY: 'ab'.repeat(32) };
  const store = KeyStore.open({ home, env });
  const old = store.create({ name: 'old', tier: 'free' }).record;
  store.close();
  // Back to what a guardctl of schema 1 wrote.
  const db = new Database(path.join(home, 'keys.db'));
  db.exec('ALTER TABLE keys DROP COLUMN allow_bearer');
  db.pragma('user_version = 1');
  db.close();

  const reopened = KeyStore.open({ home, env });
  t.after(() => reopened.close());
  assert.equal(reopened.get(old.id).allowBearer, false);
  const fresh = reopened.create({ name: 'new', tier: 'free', allowBearer: true }).record;
  assert.equal(reopened.get(fresh.id).allowBearer, true);
  assert.deepEqual(reopened.events(fresh.id)[0]!.detail?.allowBearer, true, 'the opt-in is in the key\'s history');

  // Export and import carry the flag; an export written before it reads as "no bearer".
  const lines = dumpToLines(reopened.dump());
  const back = linesToDump(lines, 'export');
  assert.deepEqual(back.keys.map((k) => [k.name, k.allow_bearer]), [['old', 0], ['new', 1]]);
  const older = lines.replace(/,"allow_bearer":\d/g, '');
  assert.deepEqual(linesToDump(older, 'old export').keys.map((k) => k.allow_bearer), [0, 0]);
});

test('keys create --allow-bearer prints a bearer; a tier with allow_bearer gives every key one; show says which', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const env = { GUARDCTL_MASTER_KEY: 'cd'.repeat(32) };
  const cli = (...args: string[]) => runCli(['--home', home, '--json', ...args], { env });
  const flagged = (await cli('keys', 'create', '--name', 'a', '--tier', 'free', '--allow-bearer')).json<{ id: string; secret: string; bearer: string; allow_bearer: boolean }>();
  assert.equal(flagged.bearer, `${flagged.id}.${flagged.secret}`);
  assert.equal(flagged.allow_bearer, true);
  const plain = (await cli('keys', 'create', '--name', 'b', '--tier', 'free')).json<{ bearer?: string; allow_bearer: boolean }>();
  assert.equal(plain.bearer, undefined);
  assert.equal(plain.allow_bearer, false);

  (await import('node:fs')).writeFileSync(path.join(home, 'guardctl.yaml'), 'tiers:\n  free:\n    allow_bearer: true\n');
  const viaTier = (await cli('keys', 'create', '--name', 'c', '--tier', 'free')).json<{ id: string; secret: string; bearer: string }>();
  assert.equal(viaTier.bearer, `${viaTier.id}.${viaTier.secret}`);
  const rotated = (await cli('keys', 'rotate', viaTier.id)).json<{ secret: string; bearer: string }>();
  assert.equal(rotated.bearer, `${viaTier.id}.${rotated.secret}`);
  const shown = await runCli(['--home', home, 'keys', 'show', viaTier.id], { env });
  assert.match(shown.stdout, /bearer: +allowed \(tier free\)/);
  const bad = await runCli(['--home', home, 'keys', 'list'], { env: { ...env } });
  assert.equal(bad.code, 0);
  (await import('node:fs')).writeFileSync(path.join(home, 'guardctl.yaml'), 'tiers:\n  free:\n    allow_bearer: "yes"\n');
  const refused = await cli('keys', 'create', '--name', 'd', '--tier', 'free');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr + refused.stdout, /allow_bearer must be true or false/);
});
