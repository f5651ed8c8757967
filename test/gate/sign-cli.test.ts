import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { REASONS, type ReasonCode } from '../../src/gate/reasons.js';
import { HTTP_ERRORS } from '../../src/server/error-catalogue.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { gateFixture } from '../helpers/gate-app.js';
import { haveProgram, listenLoopback } from '../helpers/system.js';
import { loadVectors, queryString } from '../helpers/vectors.js';

const run = promisify(execFile);
const vectors = loadVectors();
const ORIGIN = 'https://guard.example.com';
const KEY = 'gk_test';

interface Explained {
  headers: Record<string, string>;
  string_to_sign: string;
  curl?: string;
}

for (const [i, v] of vectors.v1.entries()) {
  test(`v1 vector ${i} (${v.method} ${v.path}) through sign --explain --json`, async () => {
    const data = Object.keys(v.params).length ? ['--data', JSON.stringify(v.params)] : [];
    const res = await runCli(
      ['--json', 'sign', v.method, ORIGIN + v.path, ...data, '--key', KEY, '--secret-env', 'VEC_SECRET', '--timestamp', v.timestamp, '--nonce', v.nonce, '--explain'],
      { env: { VEC_SECRET: v.secret } },
    );
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const out = res.json<Explained>();
    assert.equal(out.string_to_sign, v.string_to_sign);
    assert.equal(out.headers['X-Signature'], v.signature);
    assert.deepEqual(out.headers, { 'X-API-Key': KEY, 'X-Timestamp': v.timestamp, 'X-Nonce': v.nonce, 'X-Signature': v.signature });
    assert.ok(!res.stdout.includes(v.secret) && !res.stderr.includes(v.secret), 'the secret leaked into the output');
  });
}

for (const [i, v] of vectors.v2.entries()) {
  test(`v2 vector ${i} (${v.method} ${v.path}, ${v.query.length} query pairs) through sign --v2 --explain --json`, async () => {
    const res = await runCli(
      ['--json', 'sign', v.method, ORIGIN + v.path + queryString(v.query), '--data', v.body, '--v2', '--key', KEY,
        '--secret-env', 'VEC_SECRET', '--timestamp', v.timestamp, '--nonce', v.nonce, '--explain'],
      { env: { VEC_SECRET: v.secret } },
    );
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const out = res.json<Explained>();
    assert.equal(out.string_to_sign, v.string_to_sign);
    assert.equal(out.headers['X-Signature'], v.signature);
    assert.equal(out.headers['X-Content-SHA256'], v.content_sha256);
    assert.equal(out.headers['X-Signature-Version'], '2');
  });
}

test('--secret-file gives the same signature as --secret-env (trailing newline ignored)', async (t) => {
  const v = vectors.v1[0]!;
  const file = path.join(tempDir(t), 'secret');
  fs.writeFileSync(file, `${v.secret}\n`, { mode: 0o600 });
  const res = await runCli(['--json', 'sign', v.method, ORIGIN + v.path, '--data', JSON.stringify(v.params), '--key', KEY,
    '--secret-file', file, '--timestamp', v.timestamp, '--nonce', v.nonce, '--explain']);
  assert.equal(res.code, 0, res.stderr + res.stdout);
  assert.equal(res.json<Explained>().headers['X-Signature'], v.signature);
});

test('human output (headers, --explain, --curl) never contains the secret', async () => {
  const secret = 'gs_very_secret_value_123';
  for (const extra of [[], ['--explain'], ['--curl'], ['--explain', '--curl', '--v2']]) {
    const res = await runCli(['sign', 'POST', `${ORIGIN}/api/v1/moderate?lang=en`, '--data', '{"text":"hi"}', '--key', KEY, '--secret-env', 'S', ...extra],
      { env: { S: secret } });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /X-Signature: [0-9a-f]{64}/);
    assert.ok(!res.stdout.includes(secret) && !res.stderr.includes(secret), `secret in the output of ${extra.join(' ')}`);
  }
});

test('--curl prints every header and the exact body, and the command passes the gate', async (t) => {
  if (!haveProgram(t, 'curl')) return;
  const fixture = await gateFixture();
  t.after(() => fixture.app.close());
  fixture.clock.now = Date.now();
  const secret = 'gs_curl_test_secret';
  const key = fixture.keys.add(secret);
  const base = await listenLoopback(fixture.app);
  // A quote, an ampersand, non-ASCII text and a number: the shell quoting and the body signing must survive them all.
  const body = `{"text":"it's \\"A\\" & B — 混元","model":"guard-small","n":1.50}`;
  const url = `${base}/api/v1/moderate?lang=en&x=a%20b`;
  for (const version of [[], ['--v2']]) {
    const res = await runCli(['--json', 'sign', 'POST', url, '--data', body, '--key', key.id, '--secret-env', 'S', '--curl', ...version], { env: { S: secret } });
    assert.equal(res.code, 0, res.stderr + res.stdout);
    const out = res.json<Explained>();
    assert.ok(out.curl?.startsWith('curl '), out.curl);
    for (const [name, value] of Object.entries(out.headers)) assert.ok(out.curl!.includes(`-H '${name}: ${value}'`), `${name} missing from ${out.curl}`);
    assert.ok(out.curl!.includes(`--data-raw '${body.replace(/'/g, `'\\''`)}'`), out.curl);
    const { stdout } = await run('sh', ['-c', `${out.curl} -w '\\n%{http_code}'`]);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), '200', stdout);
    assert.deepEqual(JSON.parse(lines.slice(0, -1).join('\n')), { ok: true, key: key.id, model: 'guard-small' });
    // The same command again is a replay, which the gate refuses: the curl really carried the signed nonce.
    const replay = await run('sh', ['-c', `${out.curl} -w '\\n%{http_code}'`]);
    assert.equal(replay.stdout.trimEnd().split('\n').at(-1), '401', replay.stdout);
  }
});

interface Failure {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  message: RegExp;
}

test('bad input exits 1 or 2 with a message naming the problem', async (t) => {
  const dir = tempDir(t);
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '\n');
  const env = { S: 'gs_x' };
  const base = ['sign', 'POST', `${ORIGIN}/api/v1/moderate`, '--key', KEY];
  const failures: Failure[] = [
    { name: 'no secret', args: base, message: /environment variable GUARDCTL_SECRET is not set or empty/ },
    { name: 'secret but no key id', args: ['sign', 'POST', `${ORIGIN}/api/v1/moderate`, '--secret-env', 'S'], env, message: /a secret is given but no key id/ },
    { name: 'unset variable', args: [...base, '--secret-env', 'NOPE'], message: /environment variable NOPE is not set or empty/ },
    { name: 'empty secret file', args: [...base, '--secret-file', empty], message: /secret file .*empty is empty/ },
    { name: 'missing secret file', args: [...base, '--secret-file', path.join(dir, 'nope')], message: /cannot read the secret file/ },
    { name: 'invalid --data', args: [...base, '--secret-env', 'S', '--data', '{"text": hi}'], env, message: /--data is not valid JSON/ },
    { name: 'neither a path nor a URL', args: ['sign', 'POST', 'api/v1/moderate', '--key', KEY, '--secret-env', 'S'], env, message: /a path starting with "\/" or a full http\(s\) URL/ },
    { name: 'bad --timestamp', args: [...base, '--secret-env', 'S', '--timestamp', '2026-01-01'], env, message: /--timestamp must be Unix seconds/ },
    { name: 'bad --nonce', args: [...base, '--secret-env', 'S', '--nonce', 'no spaces'], env, message: /--nonce may hold only/ },
  ];
  for (const f of failures) {
    const res = await runCli(f.args, { env: f.env });
    assert.ok(res.code === 1 || res.code === 2, `${f.name}: exit ${res.code}`);
    assert.match(res.stderr, f.message, f.name);
    assert.doesNotMatch(res.stdout, /X-Signature/, `${f.name}: printed a signature anyway`);
    assert.doesNotMatch(res.stderr, /internal error|\n\s+at /, `${f.name}: looks like a bug, not a user error`);
  }
});

test('a nonce shorter than 8 characters signs but warns that the daemon refuses it', async () => {
  const args = (nonce: string) => ['sign', 'GET', `${ORIGIN}/api/v1/models`, '--key', KEY, '--secret-env', 'S', '--nonce', nonce];
  const short = await runCli(args('abc123'), { env: { S: 'gs_x' } });
  assert.equal(short.code, 0, short.stderr);
  assert.match(short.stdout, /X-Nonce: abc123/);
  assert.match(short.stderr, /warning: .*shorter than 8 .*refused by the daemon/);
  const ok = await runCli(args('abcd1234'), { env: { S: 'gs_x' } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '');
});

test('docs/signing.md lists every reason code with its status, and its worked example is the vector', () => {
  const doc = fs.readFileSync(new URL('../../docs/signing.md', import.meta.url), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `([a-z_0-9]+)` +\| (\d{3}) +\|/gm)].map((m) => [m[1]!, Number(m[2])]));
  assert.deepEqual(Object.fromEntries(rows), Object.fromEntries(Object.keys(REASONS).map((code) => [code, HTTP_ERRORS[code as ReasonCode].status])));
  const v = vectors.v1[0]!;
  assert.ok(doc.includes(v.string_to_sign.split('\n').join('\n    ')), 'the --explain example is not the first v1 vector');
  assert.ok(doc.includes(`X-Signature: ${v.signature}`));
});
