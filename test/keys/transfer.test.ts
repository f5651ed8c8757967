import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';

// keys export/import between two SQLite stores (PostgreSQL: pg-cli.test.ts): the file's checks and --merge.

test('keys import: truncated or foreign files are refused before anything is written; --merge adds only new ids', async (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const run = (home: string, ...args: string[]) => runCli(['--home', home, '--json', ...args]);
  const k1 = (await run(a, 'keys', 'create', '--name', 'one', '--tier', 'free')).json<{ id: string }>();
  const file = path.join(dir, 'a.jsonl');
  assert.equal((await run(a, 'keys', 'export', '--out', file)).code, 0);
  fs.mkdirSync(b, { mode: 0o700 });
  fs.copyFileSync(path.join(a, 'master.key'), path.join(b, 'master.key'));

  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  const cut = path.join(dir, 'cut.jsonl');
  fs.writeFileSync(cut, `${lines.slice(0, -1).join('\n')}\n`);
  const truncated = await run(b, 'keys', 'import', cut);
  assert.equal(truncated.code, 2);
  assert.match(truncated.json().error.message, /truncated/);
  const junk = path.join(dir, 'junk.jsonl');
  fs.writeFileSync(junk, '{"format":"something-else"}\n');
  assert.match((await run(b, 'keys', 'import', junk)).json().error.message, /not a guardctl key export/);
  assert.deepEqual((await run(b, 'keys', 'list')).json().keys, [], 'nothing was written');

  const k2 = (await run(b, 'keys', 'create', '--name', 'two', '--tier', 'free')).json<{ id: string }>();
  assert.equal((await run(b, 'keys', 'import', file)).json().error.code, 'GUARD_E_KEYSTORE', 'not into a store with keys');
  assert.deepEqual((await run(b, 'keys', 'import', file, '--merge')).json(), { keys: 1, events: 1, skipped: [] });
  assert.deepEqual((await run(b, 'keys', 'list')).json().keys.map((k: { id: string }) => k.id).sort(), [k1.id, k2.id].sort());
  assert.deepEqual((await run(b, 'keys', 'import', file, '--merge')).json().skipped, [k1.id]);
});
