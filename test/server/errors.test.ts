import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { EngineError } from '../../src/infer/types.js';
import { DEMO_SPECS, demoEngine } from '../helpers/demo-engine.js';
import { fakeEngine } from '../helpers/fake-engine.js';
import { serverFixture } from '../helpers/server-app.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

/** Bad input and failures: always our JSON error, never a 500 for bad input, never a stack. */
function assertError(res: { statusCode: number; body: string; headers: Record<string, unknown> }, status: number, code: string): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.body) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code, res.body);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(body.error.request_id, res.headers['x-request-id']);
  assert.doesNotMatch(res.body, /\bat .*\.(ts|js):\d+|\/secret\/path/, 'no stack or internal path');
  return body.error;
}

test('malformed bodies: invalid JSON 400, schema errors 422 naming the field, wrong content type 415', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  assertError(await s.send({ url: '/api/v1/moderate', body: '{"text": "unterminated', key }), 400, 'invalid_json');
  assertError(await s.send({ url: '/api/v1/moderate', body: '', key, contentType: 'application/json' }), 422, 'invalid_request');
  const cases: Array<[string, unknown, string]> = [
    ['/api/v1/moderate', { text: 5 }, 'text'],
    ['/api/v1/moderate', { text: [1, 2] }, 'text.0'],
    ['/api/v1/moderate', { text: 'hi', extra: true }, 'extra'],
    ['/api/v1/moderate', { messages: [{ role: 'system', content: 'x' }] }, 'messages.0.role'],
    ['/api/v1/moderate', { messages: [{ role: 'user' }] }, 'messages.0.content'],
    ['/api/v1/moderate', { text: 'hi', model: 7 }, 'model'],
    ['/api/v1/moderate', [1, 2, 3], 'body'],
    ['/api/v1/moderate', 'null', 'body'],
    ['/api/v1/moderate', '"just a string"', 'body'],
    ['/api/v1/moderate', {}, 'text'],
    ['/api/v1/moderate', { text: 'a', messages: [{ role: 'user', content: 'b' }] }, 'messages'],
    ['/api/v1/moderate?categories=sometimes', { text: 'hi' }, 'categories'],
    ['/api/v1/moderate?fast_path=0', { text: 'hi' }, 'fast_path'],
    ['/v1/moderations', {}, 'input'],
    ['/v1/moderations', { input: [] }, 'input'],
    ['/v1/moderations?strict=yes', { input: 'hi' }, 'strict'],
  ];
  for (const [url, body, field] of cases) {
    const error = assertError(await s.send({ url, body, key }), 422, 'invalid_request');
    assert.equal(error.field, field, `${url} ${JSON.stringify(body)}: ${JSON.stringify(error)}`);
    assert.match(String(error.message), new RegExp(field.split('.')[0]!));
  }
  // Too many texts in one batch.
  const many = await s.send({ url: '/api/v1/moderate', body: { text: Array(33).fill('hi') }, key });
  assert.equal(assertError(many, 422, 'invalid_request').field, 'text');
  assertError(await s.send({ url: '/api/v1/moderate', body: 'text=hi', contentType: 'application/x-www-form-urlencoded', key }), 415, 'unsupported_media_type');
  assertError(await s.send({ url: '/api/v1/moderate', body: 'hi', contentType: 'text/plain', key }), 415, 'unsupported_media_type');
});

test('empty text is 422, in every form', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  for (const [url, body, field] of [
    ['/api/v1/moderate', { text: '' }, 'text'],
    ['/api/v1/moderate', { text: '  \n ' }, 'text'],
    ['/api/v1/moderate', { text: ['ok', ' '] }, 'text.1'],
    ['/api/v1/moderate', { messages: [{ role: 'user', content: '' }] }, 'messages'],
    ['/v1/moderations', { input: '' }, 'input'],
    ['/v1/moderations', { input: ['a', ''] }, 'input.1'],
    ['/api/v1/translate?source_lang=en&target_lang=zh', { text: '' }, 'text'],
  ] as const) {
    const error = assertError(await s.send({ url, body, key }), 422, 'invalid_request');
    assert.equal(error.field, field);
    assert.match(String(error.message), /empty/);
  }
  assert.equal((s.engine as ReturnType<typeof fakeEngine>).calls.length, 0, 'nothing reached the engine');
});

test('a body over maxBody is 413, a bad URL 400, an unknown route or method 404', async (t) => {
  const s = await serverFixture(t, { config: { maxBodyBytes: 2048 } });
  const key = s.key();
  assertError(await s.send({ url: '/api/v1/moderate', body: { text: 'x'.repeat(4096) }, key }), 413, 'body_too_large');
  // Unsigned, the headers are refused first: the body is never read.
  assertError(await s.send({ url: '/api/v1/moderate', body: { text: 'x'.repeat(4096) } }), 401, 'missing_auth');
  assertError(await s.app.inject({ method: 'GET', url: '/api/v1/%E0%A4%A' }), 400, 'bad_request');
  assertError(await s.send({ url: '/api/v2/moderate', body: { text: 'x' }, key }), 404, 'not_found');
  assertError(await s.send({ method: 'GET', url: '/api/v1/moderate', key }), 404, 'not_found');
  assertError(await s.send({ method: 'DELETE', url: '/api/v1/models', key }), 404, 'not_found');
});

test('the engine says no: too long 422 with the limit (real engine), queue full 503 + Retry-After, timeout 504, not ready 503', async (t) => {
  const engine = await demoEngine(undefined, DEMO_SPECS, { maxInputTokens: 64 });
  t.after(() => engine.close());
  const real = await serverFixture(t, { engine });
  const long = await real.send({ url: '/api/v1/moderate', body: { text: 'How do I make a bomb? '.repeat(40) }, key: real.key() });
  const error = assertError(long, 422, 'input_too_long');
  assert.equal(error.limit, 64);
  assert.ok(Number(error.actual) > 64);
  assert.match(String(error.message), /; the limit is 64 tokens \(--max-input-tokens\)$/);
  assert.equal(error.maxInputTokens, 64);
  assert.equal(error.modelContext, 512);

  const s = await serverFixture(t);
  const key = s.key();
  const full = await s.send({ url: '/api/v1/moderate', body: { text: '[[queue_full]]' }, key });
  assertError(full, 503, 'queue_full');
  assert.equal(full.headers['retry-after'], '1');
  assertError(await s.send({ url: '/api/v1/translate?source_lang=en&target_lang=zh', body: { text: '[[timeout]]' }, key }), 504, 'timeout');
  (s.engine as ReturnType<typeof fakeEngine>).setState('guard-demo', 'warming');
  const warming = await s.send({ url: '/api/v1/moderate', body: { text: 'hi', model: 'guard-demo' }, key });
  assertError(warming, 503, 'not_ready');
  assert.equal(warming.headers['retry-after'], '5');
  // The default model is the first ready one of the task: guard-large still serves.
  const fallback = await s.send({ url: '/api/v1/moderate', body: { text: 'hi' }, key });
  assert.equal(fallback.statusCode, 200);
  assert.equal(fallback.json().model, 'guard-large');
  (s.engine as ReturnType<typeof fakeEngine>).setState('guard-large', 'failed');
  assertError(await s.send({ url: '/api/v1/moderate', body: { text: 'hi' }, key }), 503, 'not_ready');
});

test('the real engine: a full queue is 503 with Retry-After, a passed deadline 504', async (t) => {
  const engine = await demoEngine(undefined, DEMO_SPECS, { maxQueue: 1, maxBatch: 1, maxWaitMs: 0 });
  t.after(() => engine.close());
  const s = await serverFixture(t, { engine, config: { inferenceTimeoutMs: 1, connectionTimeoutMs: 1000 } });
  const key = s.key();
  const slow = await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我们喜欢猫。'.repeat(20) }, key });
  assertError(slow, 504, 'timeout');

  const s2 = await serverFixture(t, { engine });
  const answers = await Promise.all(Array.from({ length: 40 }, () => s2.send({ url: '/api/v1/moderate?fast_path=false', body: { text: 'How do I make a bomb in my kitchen?' }, key: s2.key() })));
  const statuses = answers.map((r) => r.statusCode);
  assert.ok(statuses.includes(503), `expected some 503s: ${statuses.join(',')}`);
  assert.ok(statuses.every((c) => c === 200 || c === 503), statuses.join(','));
  for (const r of answers.filter((a) => a.statusCode === 503)) {
    assertError(r, 503, 'queue_full');
    assert.equal(r.headers['retry-after'], '1');
  }
});

test('a model answer that does not parse is 502 bad_model_output, never a guess', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  assertError(await s.send({ url: '/api/v1/moderate', body: { text: 'bomb [[garbage]]' }, key }), 502, 'bad_model_output');
  assertError(await s.send({ url: '/api/v1/moderate?fast_path=false', body: { text: '[[garbage]]' }, key }), 502, 'bad_model_output');
  assertError(await s.send({ url: '/api/v1/moderate', body: { text: ['fine', 'bomb [[garbage]]'] }, key }), 502, 'bad_model_output');
  assertError(await s.send({ url: '/v1/moderations', body: { input: 'bomb [[garbage]]' }, key }), 502, 'bad_model_output');
  assert.equal(s.audit.records.at(-1)?.reason, 'bad_model_output');
});

test('bugs and engine failures are 500 without a stack or internals', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  const crash = assertError(await s.send({ url: '/api/v1/moderate', body: { text: '[[crash]]' }, key }), 500, 'internal_error');
  assert.equal(crash.message, 'internal error');
  const failed = assertError(await s.send({ url: '/api/v1/moderate', body: { text: '[[engine_failed]]' }, key }), 500, 'engine_failed');
  assert.equal(failed.message, 'the inference engine failed');
});

test('a request the engine cancels while its client waits (shutdown past the drain timeout) is 503 shutting_down, not 499', async (t) => {
  const engine = fakeEngine();
  const closing = () => Promise.reject(new EngineError('cancelled', 'the engine closed before the request finished'));
  const s = await serverFixture(t, { engine: { ...engine, generate: closing, score: closing } });
  const key = s.key();
  for (const [url, body] of [['/api/v1/moderate', { text: 'hi' }], ['/v1/moderations', { input: ['a', 'b'] }], ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '我们喜欢猫。' }]] as const) {
    const res = await s.send({ url, body, key });
    assertError(res, 503, 'shutting_down');
    assert.equal(res.headers['retry-after'], '5');
  }
});

test('a client that goes away stops the engine work (real socket)', async (t) => {
  const s = await serverFixture(t);
  const engine = s.engine as ReturnType<typeof fakeEngine>;
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.app.server.address() as net.AddressInfo).port;
  const key = s.key();
  const body = JSON.stringify({ text: 'please [[hang]]' });
  const headers = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: key.id, secret: key.secret }).headers;
  const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/moderate', method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
  req.on('error', () => {});
  req.end(body);
  await engine.hanging;
  assert.equal(engine.aborted, 0);
  // Gone as TCP shows it: a reset. A FIN alone is a half-close, answered (test/server/disconnect.test.ts).
  req.socket!.resetAndDestroy();
  await waitFor(() => engine.aborted > 0, 'the engine to see the abort');
  assert.equal(engine.aborted, 1, 'the engine saw the abort');
  // The exchange is audited as cancelled.
  await waitFor(() => s.audit.records.length > 0, 'the audit record');
  assert.deepEqual(s.audit.records.map((r) => [r.status, r.reason]), [[499, 'cancelled']]);
});

test('malformed HTTP and stalled clients get a JSON answer on the socket', async (t) => {
  const s = await serverFixture(t, { config: { receiveTimeoutMs: 300 } });
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.app.server.address() as net.AddressInfo).port;
  const raw = (text: string) => new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.on('data', (d) => (got += d));
    // Only a server that never answers meets this.
    const hang = setTimeout(() => socket.destroy(), HANG_BOUND_MS);
    socket.on('close', () => (clearTimeout(hang), resolve(got)));
    socket.on('error', reject);
  });
  const bad = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 /);
  assert.match(bad, /"code":"bad_request"/);
  // Unsigned, the header stage answers at once and closes: the body is never waited for.
  const unsigned = await raw('POST /api/v1/moderate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te');
  assert.match(unsigned, /^HTTP\/1\.1 401 [^]*"code":"missing_auth"[^]*\}$/);
  assert.match(unsigned, /\r\nconnection: close\r\n/i);
  const key = s.key();
  const auth = `X-API-Key: ${key.id}\r\nX-Timestamp: ${Math.floor(Date.now() / 1000)}\r\nX-Nonce: nonce-stalled-1\r\nX-Signature: ${'ab'.repeat(32)}\r\n`;
  const started = Date.now();
  const stalled = await raw(`POST /api/v1/moderate HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te`);
  assert.match(stalled, /^HTTP\/1\.1 408 /);
  assert.match(stalled, /"code":"request_timeout"/);
  // Cut off by our 300 ms limit, not the 30 s default (a loose bound: a busy machine checks late).
  assert.ok(Date.now() - started < 15_000, 'the stalled request was cut off near receiveTimeoutMs');
});

test('input_too_long names the limit that applied: the model\'s context when it is below --max-input-tokens (511 beside 2048)', async (t) => {
  const engine = await demoEngine(undefined, DEMO_SPECS, { maxInputTokens: 2048 });
  t.after(() => engine.close());
  const s = await serverFixture(t, { engine });
  const long = await s.send({ url: '/api/v1/moderate', body: { text: 'How do I make a bomb? '.repeat(120) }, key: s.key() });
  const error = assertError(long, 422, 'input_too_long');
  assert.equal(error.limit, 511);
  assert.match(String(error.message), /the limit is 511 tokens: model guard-demo has 512 positions \(max_position_embeddings\) for prompt and answer, one kept for the answer, fewer than --max-input-tokens 2048/);
});

test('413 body_too_large states the limit and the setting', async (t) => {
  const s = await serverFixture(t, { config: { maxBodyBytes: 2048 } });
  const res = await s.send({ url: '/api/v1/moderate', body: { text: 'x'.repeat(4096) }, key: s.key() });
  const error = assertError(res, 413, 'body_too_large');
  assert.equal(error.limit_bytes, 2048);
  assert.match(String(error.message), /at most 2048 bytes \(2k, guardctl serve --max-body\)/);
});
