import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GenerateRequest } from '../../src/infer/types.js';
import { demoEngine } from '../helpers/demo-engine.js';
import { fakeEngine } from '../helpers/fake-engine.js';
import { serverFixture } from '../helpers/server-app.js';
import { openSseClient, parseSse } from '../helpers/sse-client.js';
import { listenLoopback } from '../helpers/system.js';

const URL_ZH_EN = '/api/v1/translate?source_lang=zh&target_lang=en&stream=true';

test('stream=true answers server-sent deltas and a final event with the plain answer\'s fields', async (t) => {
  const f = await serverFixture(t);
  const key = f.key();
  const res = await f.send({ url: URL_ZH_EN, body: { text: '我们喜欢猫。' }, key });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.headers['x-accel-buffering'], 'no');
  const events = parseSse(res.body);
  const deltas = events.filter((e) => e.event === 'delta').map((e) => (JSON.parse(e.data) as { text: string }).text);
  assert.ok(deltas.length >= 2, `several deltas: ${res.body}`);
  const last = events.at(-1)!;
  assert.equal(last.event, 'done');
  const done = JSON.parse(last.data) as Record<string, unknown>;
  assert.deepEqual(Object.keys(done).sort(), ['latency_ms', 'model', 'result', 'source_lang', 'target_lang']);
  assert.equal(done.result, 'We like cats.');
  assert.equal(deltas.join(''), done.result);
  const plain = await f.send({ url: URL_ZH_EN.replace('&stream=true', ''), body: { text: '我们喜欢猫。' }, key });
  assert.equal(plain.json().result, done.result);
});

test('errors before the first byte stay JSON errors with their status; after it they are an error event', async (t) => {
  const f = await serverFixture(t);
  const key = f.key();
  const bad = await f.send({ url: '/api/v1/translate?source_lang=xx&target_lang=en&stream=true', body: { text: 'a' }, key });
  assert.equal(bad.statusCode, 422);
  assert.equal(bad.json().error.code, 'unsupported_language');
  const busy = await f.send({ url: URL_ZH_EN, body: { text: '[[queue_full]]' }, key });
  assert.equal(busy.statusCode, 503);
  assert.match(busy.headers['content-type'] as string, /^application\/json/);
  const field = await f.send({ url: URL_ZH_EN, body: { text: 'a', style: ' ' }, key });
  assert.equal(field.statusCode, 422);
  assert.equal(field.json().error.field, 'style');
  const stream = await f.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en&stream=maybe', body: { text: 'a' }, key });
  assert.equal(stream.statusCode, 422);
  assert.equal(stream.json().error.field, 'stream');

  const mid = await f.send({ url: URL_ZH_EN, body: { text: '[[fail_mid_stream]]' }, key });
  assert.equal(mid.statusCode, 200);
  const events = parseSse(mid.body);
  assert.deepEqual(events.map((e) => e.event), ['delta', 'error']);
  const { error } = JSON.parse(events[1]!.data) as { error: { code: string; message: string; request_id: string } };
  assert.equal(error.code, 'timeout');
  assert.equal(error.request_id, mid.headers['x-request-id']);
  assert.equal(f.audit.records.at(-1)?.reason, 'timeout');
});

test('stream=true is part of what is signed', async (t) => {
  const f = await serverFixture(t);
  const key = f.key();
  const { signRequest } = await import('../../src/gate/sign-request.js');
  const body = JSON.stringify({ text: '我们喜欢猫。' });
  const signedPlain = signRequest({ method: 'POST', url: URL_ZH_EN.replace('&stream=true', ''), body, keyId: key.id, secret: key.secret, version: 2 }).headers;
  const res = await f.app.inject({ method: 'POST', url: URL_ZH_EN, payload: body, headers: { 'content-type': 'application/json', ...signedPlain } });
  assert.equal(res.statusCode, 401);
  assert.match(res.headers['content-type'] as string, /^application\/json/);
  const v1 = await f.send({ url: URL_ZH_EN, body: { text: '我们喜欢猫。' }, key, version: 1 });
  assert.equal(v1.statusCode, 200);
  assert.equal(parseSse(v1.body).at(-1)?.event, 'done');
});

test('a client that goes away mid-stream cancels the generation', async (t) => {
  const engine = fakeEngine();
  let signal: AbortSignal | undefined;
  const generate = engine.generate.bind(engine);
  engine.generate = (req: GenerateRequest) => {
    signal = req.signal;
    return generate(req);
  };
  const f = await serverFixture(t, { engine });
  const origin = await listenLoopback(f.app);
  const client = await openSseClient(origin, URL_ZH_EN, { text: 'slow [[trickle]]' }, f.key());
  assert.equal(client.response.statusCode, 200);
  const first = await client.next();
  assert.equal(first?.event, 'delta');
  const aborted = new Promise<void>((resolve) => (signal!.aborted ? resolve() : signal!.addEventListener('abort', () => resolve(), { once: true })));
  client.destroy();
  await aborted;
  assert.equal(signal!.aborted, true);
});

test('the real engine streams the demo translation: deltas join to the plain answer', async (t) => {
  const engine = await demoEngine();
  t.after(() => engine.close());
  const f = await serverFixture(t, { engine });
  const key = f.key();
  for (const [url, text] of [[URL_ZH_EN, '我们喜欢猫。我们喜欢狗。'], ['/api/v1/translate?source_lang=en&target_lang=zh&stream=true', 'We like cats. We like dogs.']] as const) {
    const res = await f.send({ url, body: { text }, key });
    assert.equal(res.statusCode, 200);
    const events = parseSse(res.body);
    const deltas = events.filter((e) => e.event === 'delta').map((e) => (JSON.parse(e.data) as { text: string }).text);
    const done = JSON.parse(events.at(-1)!.data) as { result: string };
    assert.ok(deltas.length >= 2, `streamed in pieces: ${res.body}`);
    for (const d of deltas) assert.ok(!d.includes('\uFFFD'));
    assert.equal(deltas.join(''), done.result);
    const plain = await f.send({ url: url.replace('&stream=true', ''), body: { text }, key });
    assert.equal(plain.json().result, done.result);
  }
});
