import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
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

test('guardctl request --data @FILE and --data - send a body larger than an argument may be (> 200 KB), signed', async (t) => {
  const f = await gateFixture();
  t.after(() => f.app.close());
  f.clock.now = Date.now();
  const secret = 'gs_request_large_body_secret';
  const key = f.keys.add(secret);
  const base = await listenLoopback(f.app);
  const dir = tempDir(t);
  const body = JSON.stringify({ text: 'x'.repeat(300_000) });
  const file = path.join(dir, 'big.json');
  fs.writeFileSync(file, body);
  const env = { GUARDCTL_KEY_ID: key.id, GUARDCTL_SECRET: secret };
  const fromFile = await runCli(['--home', dir, '--json', 'request', 'POST', '/api/v1/moderate', '--url', base, '--data', `@${file}`], { env });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.equal(fromFile.json().status, 200);
  const fromStdin = await runCli(['--home', dir, '--json', 'request', 'POST', '/api/v1/moderate', '--url', base, '--data', '-'], { env, stdin: body });
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.equal(fromStdin.json().status, 200);
  // The gate checked a version 2 signature over the exact bytes: both bodies arrived whole.
  assert.deepEqual(f.audit.records.map((r) => [r.status, r.input_bytes]), [[200, body.length], [200, body.length]]);

  const missing = await runCli(['--home', dir, 'request', 'POST', '/api/v1/moderate', '--url', base, '--data', `@${dir}/nope.json`], { env });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read the body file .*nope\.json: no such file/);
  fs.writeFileSync(file, '{"text": ');
  const broken = await runCli(['--home', dir, 'request', 'POST', '/api/v1/moderate', '--url', base, '--data', `@${file}`], { env });
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /the body file .*big\.json is not valid JSON/);
  const inline = await runCli(['--home', dir, 'request', 'POST', '/api/v1/moderate', '--url', base, '--data', 'text=hi'], { env });
  assert.match(inline.stderr, /--data is not valid JSON/);
  assert.match(inline.stderr, /--data @body\.json.*--data -/, 'the hint names the file and stdin forms');
});

test('guardctl request and guardctl sign take the same credentials and targets (a path or a full URL)', async (t) => {
  const f = await gateFixture();
  t.after(() => f.app.close());
  f.clock.now = Date.now();
  const secret = 'gs_request_sign_same_secret';
  const key = f.keys.add(secret);
  const base = await listenLoopback(f.app);
  const dir = tempDir(t);
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const data = ['--data', '{"text":"hi"}'];
  const ways: Array<{ args: string[]; env: NodeJS.ProcessEnv }> = [
    { args: [], env: { GUARDCTL_KEY_ID: key.id, GUARDCTL_SECRET: secret } },
    { args: ['--key', key.id, '--secret-env', 'MY_SECRET'], env: { MY_SECRET: secret } },
    { args: ['--key', key.id, '--secret-file', secretFile], env: {} },
    { args: ['--secret-file', secretFile], env: { GUARDCTL_KEY_ID: key.id } },
  ];
  for (const way of ways) {
    for (const target of [['/api/v1/moderate', '--url', base], [`${base}/api/v1/moderate`]]) {
      const sent = await runCli(['--home', dir, '--json', 'request', 'POST', ...target, ...data, ...way.args], { env: way.env });
      assert.equal(sent.code, 0, `request ${way.args.join(' ')} ${target.join(' ')}: ${sent.stderr}`);
      assert.equal(sent.json().status, 200);
      const signed = await runCli(['--home', dir, '--json', 'sign', 'POST', ...target, ...data, '--v2', ...way.args], { env: way.env });
      assert.equal(signed.code, 0, `sign ${way.args.join(' ')} ${target.join(' ')}: ${signed.stderr}`);
      const headers = signed.json().headers as Record<string, string>;
      const res = await fetch(`${base}/api/v1/moderate`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"text":"hi"}' });
      assert.equal(res.status, 200, `sign ${way.args.join(' ')}: the printed headers pass the gate`);
    }
  }
  const both = await runCli(['--home', dir, 'request', 'GET', `${base}/healthz`, '--url', base]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /a full URL or --url with a path, not both/);
  const noKey = await runCli(['--home', dir, 'sign', 'GET', '/healthz']);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /no API key id given/);
  assert.match(noKey.stderr, /GUARDCTL_KEY_ID/);
});
