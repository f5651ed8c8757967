import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';
import { gateFixture } from '../helpers/gate-app.js';
import { listenLoopback } from '../helpers/system.js';

test('guardctl request: a bad --timeout is a usage error naming the flag, not "cannot reach"', async (t) => {
  const home = tempDir(t);
  for (const value of ['abc', '0', '-5']) {
    const r = await runCli(['--home', home, 'request', 'GET', '/healthz', '--url', 'http://127.0.0.1:9', `--timeout=${value}`]);
    assert.equal(r.code, 2, `${value}: ${r.stderr}`);
    assert.match(r.stderr, /--timeout/);
    assert.doesNotMatch(r.stderr, /cannot reach/);
  }
});

test('guardctl request signs version 2 by default (arrays and objects pass), --v1 keeps seed-style bodies working', async (t) => {
  const f = await gateFixture();
  t.after(() => f.app.close());
  f.clock.now = Date.now();
  const secret = 'gs_request_command_secret';
  const key = f.keys.add(secret);
  const base = await listenLoopback(f.app);
  const home = tempDir(t);
  const env = { GUARDCTL_KEY_ID: key.id, GUARDCTL_SECRET: secret };
  const request = (...args: string[]) => runCli(['--home', home, '--json', 'request', 'POST', '/api/v1/moderate', '--url', base, ...args], { env });

  const batch = await request('--data', '{"text":["hello","there"],"messages":[{"role":"user","content":"hi"}]}');
  assert.equal(batch.code, 0, batch.stderr);
  assert.deepEqual(batch.json().body, { ok: true, key: key.id, model: 'guard-small' });

  const seed = await request('--v1', '--data', '{"text":"hello"}');
  assert.equal(seed.code, 0, seed.stderr);
  assert.equal(seed.json().status, 200);

  // What version 1 cannot sign is refused before anything is sent.
  const refused = await request('--v1', '--data', '{"text":["hello"]}');
  assert.equal(refused.code, 2);
  assert.match(refused.json().error.message, /--v1 cannot sign this request: member "text" is an array/);
  assert.match(refused.json().error.hint, /drop --v1/);
  assert.deepEqual(f.audit.records.map((r) => r.status), [200, 200]);
});
