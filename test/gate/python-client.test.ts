import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers/cli.js';
import { gateFixture } from '../helpers/gate-app.js';
import { serverFixture } from '../helpers/server-app.js';
import { haveProgram, listenLoopback } from '../helpers/system.js';
import { loadVectors, VECTORS_PATH } from '../helpers/vectors.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const CLIENT_DIR = fileURLToPath(new URL('../../docs/clients/', import.meta.url));
const CLIENT = path.join(CLIENT_DIR, 'guardctl_client.py');

interface PyRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function python(args: string[], input = ''): Promise<PyRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONIOENCODING: 'utf-8' } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_BOUND_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

test('--selftest reproduces every vector, and fails on a wrong one', async (t) => {
  if (!haveProgram(t, 'python3')) return;
  const good = await python([CLIENT, '--selftest', VECTORS_PATH]);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const vectors = loadVectors();
  const total = vectors.v1.length + vectors.v2.length;
  assert.match(good.stdout, new RegExp(`${total}/${total} vectors reproduced`));

  // One changed byte in one vector's expected signature must make the self-test fail.
  const bad = structuredClone(vectors);
  bad.v2[0]!.signature = bad.v2[0]!.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const file = path.join(tempDir(t), 'vectors.json');
  fs.writeFileSync(file, JSON.stringify(bad));
  const failed = await python([CLIENT, '--selftest', file]);
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  assert.match(failed.stdout, /FAIL v2/);
});

/** Runs requests through signed_request; prints one JSON line per request: [status, body]. */
const DRIVER = `
import json, sys
sys.path.insert(0, sys.argv[1])
from guardctl_client import signed_request
args = json.load(sys.stdin)
for r in args["requests"]:
    extra = {"version": r["version"]} if "version" in r else {}
    try:
        status, headers, body = signed_request(args["base"], args["key"], r.get("secret", args["secret"]), r["method"],
                                               r["path"], query=r.get("query"), body=r.get("body"), **extra)
    except ValueError as err:
        status, body = "refused", str(err)
    print(json.dumps([status, body], ensure_ascii=False))
`;

interface PyRequest {
  method: string;
  path: string;
  query?: Record<string, string> | [string, string][];
  body?: unknown;
  version?: 1 | 2;
  secret?: string;
  /** signed_request refuses to sign it (version 1 would not cover it). */
  refused?: RegExp;
}

test('signed_request passes the real gate over HTTP with v2 (the default) and seed-style v1', async (t) => {
  if (!haveProgram(t, 'python3')) return;
  const fixture = await gateFixture({ debug: true });
  t.after(() => fixture.app.close());
  fixture.clock.now = Date.now();
  const secret = 'gs_python_client_secret';
  const key = fixture.keys.add(secret);
  const base = await listenLoopback(fixture.app);
  // Booleans, numbers with a significant text form, nested values, non-ASCII text, query values that need encoding.
  const seed = { text: 'A & B = C? 混元 "quoted"', model: 'guard-small', stream: false, strict: true, temperature: 0.5, max: 100 };
  const body = { ...seed, meta: { a: [1, 2] }, none: null };
  const requests: PyRequest[] = [
    { method: 'POST', path: '/api/v1/moderate', body },
    { method: 'POST', path: '/api/v1/moderate', query: { lang: 'zh', q: 'a b&c=d~*' }, body },
    { method: 'POST', path: '/api/v1/translate', body: '{"text": "A & B = C?"}' },
    { method: 'GET', path: '/api/v1/models', query: [['b', '2'], ['a', 'é ü']] },
    // Version 1: seed-style bodies (top-level strings, numbers, booleans) and plain queries.
    { method: 'POST', path: '/api/v1/moderate', body: seed, version: 1 },
    { method: 'POST', path: '/api/v1/moderate', query: { lang: 'zh', q: 'a b c~*' }, body: seed, version: 1 },
    { method: 'POST', path: '/api/v1/translate', query: [['target_lang', 'en'], ['x', '%41+']], body: '{"text": "1.50 exact bytes", "n": 1.50}', version: 1 },
    { method: 'GET', path: '/api/v1/models', version: 1 },
    { method: 'GET', path: '/api/v1/models', query: { page: '2' }, version: 1 },
    // Version 1 does not cover these: the client refuses to sign them.
    { method: 'POST', path: '/api/v1/moderate', body, version: 1, refused: /'meta' is dict, which version 1 does not sign/ },
    { method: 'POST', path: '/api/v1/moderate', query: { q: 'a b&c=d' }, body: seed, version: 1, refused: /'&c=', which version 1 signs like a separate parameter/ },
    // Must fail: a wrong secret, for both versions.
    { method: 'POST', path: '/api/v1/moderate', body: seed, secret: 'gs_wrong', version: 1 },
    { method: 'POST', path: '/api/v1/moderate', body, secret: 'gs_wrong' },
  ];
  const res = await python(['-c', DRIVER, CLIENT_DIR], JSON.stringify({ base, key: key.id, secret, requests }));
  assert.equal(res.code, 0, res.stderr);
  const answers = res.stdout.trim().split('\n').map((line) => JSON.parse(line) as [number, any]);
  assert.equal(answers.length, requests.length, res.stdout);
  for (const [i, [status, answer]] of answers.entries()) {
    const r = requests[i]!;
    const what = `request ${i} (${r.method} ${r.path} v${r.version ?? 2}): ${JSON.stringify(answer)}`;
    if (r.refused) {
      assert.equal(status, 'refused', what);
      assert.match(answer, r.refused, what);
    } else if (r.secret) {
      assert.equal(status, 401, what);
      assert.equal(answer.error.code, 'bad_signature', what);
    } else {
      assert.equal(status, 200, what);
      assert.equal(answer.ok, true, what);
      assert.equal(answer.key, key.id, what);
    }
  }
});

test('signed_request refuses a name in both the query and the body (the server would answer 400)', async (t) => {
  if (!haveProgram(t, 'python3')) return;
  const script = `
import sys
sys.path.insert(0, sys.argv[1])
from guardctl_client import signed_request
try:
    signed_request("http://127.0.0.1:9", "gk_x", "gs_x", "POST", "/api/v1/moderate", query={"text": "a"}, body={"text": "b"}, version=1)
except ValueError as err:
    print("refused:", err)
`;
  const res = await python(['-c', script, CLIENT_DIR]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /refused: parameter 'text' appears in both the query and the body/);
});

test('a body over the server\'s limit raises GuardctlError with the server\'s 413 body_too_large, not a broken pipe', async (t) => {
  if (!haveProgram(t, 'python3')) return;
  const s = await serverFixture(t, { config: { maxBodyBytes: 64 * 1024 } });
  const key = s.key();
  const base = await listenLoopback(s.app);
  const script = `
import json, sys
sys.path.insert(0, sys.argv[1])
from guardctl_client import signed_request, GuardctlError
args = json.load(sys.stdin)
try:
    signed_request(args["base"], args["key"], args["secret"], "POST", "/api/v1/moderate", body={"text": "x" * (8 * 1024 * 1024)})
    print(json.dumps(["no error"]))
except GuardctlError as err:
    print(json.dumps([err.status, err.code, err.message]))
`;
  const res = await python(['-c', script, CLIENT_DIR], JSON.stringify({ base, key: key.id, secret: key.secret }));
  assert.equal(res.code, 0, res.stderr);
  const [status, code, message] = JSON.parse(res.stdout.trim()) as [number, string, string];
  assert.equal(status, 413, res.stdout);
  assert.equal(code, 'body_too_large');
  assert.match(message, /at most 65536 bytes \(64k, guardctl serve --max-body\)/);
});
