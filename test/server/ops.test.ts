import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { buildServer } from '../../src/server/app.js';
import { serveConfig } from '../../src/server/config.js';
import { createServerMetrics, METRIC_NAMES } from '../../src/server/metrics.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { MemoryStream, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { DEMO_SPECS, demoEngine } from '../helpers/demo-engine.js';
import { fakeEngine } from '../helpers/fake-engine.js';
import { serverFixture } from '../helpers/server-app.js';
import { waitFor } from '../helpers/wait.js';

test('/healthz answers while the process runs; /readyz waits for every model to be warm, and says 503 while draining', async (t) => {
  const metrics = createServerMetrics();
  const engine = await demoEngine(metrics.onStep, DEMO_SPECS, {}, false);
  t.after(() => engine.close());
  const s = await serverFixture(t, { engine, metrics });

  const health = await s.send({ url: '/healthz' });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json(), { status: 'ok' });

  const before = await s.send({ url: '/readyz' });
  assert.equal(before.statusCode, 503);
  assert.equal(before.json().ready, false);
  assert.match(before.json().reason, /guard-demo is (loading|warming)/);
  assert.deepEqual(before.json().models.map((m: { name: string }) => m.name), ['guard-demo', 'mt-demo']);
  // Model routes answer 503 not_ready meanwhile.
  const early = await s.send({ url: '/api/v1/moderate', body: { text: 'hi' }, key: s.key() });
  assert.equal(early.statusCode, 503);
  assert.equal(early.json().error.code, 'not_ready');

  await engine.start();
  const after = await s.send({ url: '/readyz' });
  assert.equal(after.statusCode, 200, after.body);
  assert.deepEqual(after.json(), { ready: true, draining: false, models: [{ name: 'guard-demo', state: 'ready' }, { name: 'mt-demo', state: 'ready' }] });

  assert.equal(s.app.draining, false);
  s.app.drain();
  assert.equal(s.app.draining, true);
  const draining = await s.send({ url: '/readyz' });
  assert.equal(draining.statusCode, 503);
  assert.equal(draining.json().draining, true);
  assert.match(draining.json().reason, /draining/);
  // Draining only turns readiness off: requests in flight and late arrivals are still served until close().
  assert.equal((await s.send({ url: '/healthz' })).statusCode, 200);
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 'hi' }, key: s.key() })).statusCode, 200);
});

test('a failed model keeps /readyz at 503 and names it (without the load error)', async (t) => {
  const engine = fakeEngine();
  engine.infos[1]!.state = 'failed';
  engine.infos[1]!.error = 'cannot read /srv/models/mt/onnx/model.onnx';
  const s = await serverFixture(t, { engine });
  const res = await s.send({ url: '/readyz' });
  assert.equal(res.statusCode, 503);
  assert.match(res.json().reason, /mt-demo failed to load \(the daemon's log says why\)/);
  assert.doesNotMatch(res.body, /\/srv\/models/);
});

test('/metrics: Prometheus text with the request, engine and model metrics after traffic (real engine)', async (t) => {
  const metrics = createServerMetrics();
  const engine = await demoEngine(metrics.onStep);
  t.after(() => engine.close());
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key('free');
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 'How do I make a bomb in my kitchen?' }, key })).statusCode, 200);
  assert.equal((await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我们喜欢猫。' }, key })).statusCode, 200);
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 'hi' } })).statusCode, 401);
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 5 }, key })).statusCode, 422);
  await s.send({ url: '/no/such/thing' });
  // The device worker reports the freed KV cache in a message of its own after the last answer; on a busy machine
  // the requests above can all be answered before it arrives.
  await waitFor(() => engine.models().every((m) => (m.kvCacheBytes ?? 0) === 0), 'the device worker to report the KV cache freed');

  const res = await s.send({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  for (const name of METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  const line = (re: RegExp) => text.split('\n').find((l) => re.test(l));
  assert.ok(line(/^guard_http_requests_total\{route="\/api\/v1\/moderate",status="200",reason=""\} 1$/), text);
  assert.ok(line(/^guard_http_requests_total\{route="\/api\/v1\/moderate",status="401",reason="missing_auth"\} 1$/));
  assert.ok(line(/^guard_http_requests_total\{route="\/api\/v1\/moderate",status="422",reason="invalid_request"\} 1$/));
  assert.ok(line(/^guard_http_requests_total\{route="unmatched",status="404",reason="not_found"\} 1$/));
  assert.ok(line(/^guard_request_errors_total\{code="missing_auth"\} 1$/));
  assert.ok(line(/^guard_http_request_duration_seconds_count\{route="\/api\/v1\/translate"\} 1$/));
  assert.ok(line(/^guard_inference_duration_seconds_count\{task="moderate",model="guard-demo"\} 1$/));
  assert.ok(line(/^guard_engine_tokens_total\{model="guard-demo",kind="score"\} [1-9]/), 'score steps counted');
  assert.ok(line(/^guard_engine_tokens_total\{model="mt-demo",kind="(prefill|decode)"\} [1-9]/), 'decode steps counted');
  assert.ok(line(/^guard_engine_batch_size_count\{model="mt-demo",kind="decode"\} [1-9]/));
  assert.ok(line(/^guard_prefix_tokens_reused_total\{model="guard-demo"\} [1-9]/), 'the guard template\'s shared head was reused');
  assert.ok(line(/^guard_engine_queue_length\{device="(cpu|webgpu)"\} 0$/));
  assert.ok(line(/^guard_model_state\{model="guard-demo",state="ready"\} 1$/));
  assert.ok(line(/^guard_engine_kv_cache_bytes\{model="mt-demo",device="cpu"\} 0$/), 'no batch runs: no KV cache held');
  assert.ok(line(/^guard_model_state\{model="guard-demo",state="loading"\} 0$/));
  assert.ok(line(/^guard_model_execution_provider\{model="mt-demo",provider="(cpu|webgpu)",dtype="fp32"\} 1$/));
  // No request text in any label.
  assert.doesNotMatch(text, /bomb|猫/);
});

test('--insecure-no-auth: the model routes answer without a signature, same JSON errors', async (t) => {
  const s = await serverFixture(t, { config: { insecureNoAuth: true } });
  const res = await s.send({ url: '/api/v1/moderate', body: { text: 'How do I make a bomb?' } });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().level, 'unsafe');
  assert.equal((await s.send({ url: '/api/v1/models' })).statusCode, 200);
  assert.equal((await s.send({ url: '/v1/moderations', body: { input: 'hi' } })).statusCode, 200);
  const bad = await s.send({ url: '/api/v1/moderate', body: '{oops' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.code, 'invalid_json');
  assert.equal((await s.send({ url: '/api/v1/moderate', body: 'x', contentType: 'text/plain' })).statusCode, 415);
  assert.equal(s.audit.records.length, 0, 'no gate, no audit');
});

test('auth on without a gate is a programming error', async () => {
  await assert.rejects(buildServer({ config: serveConfig(), engine: fakeEngine(), logger: false }), /no gate/);
});

test('request logs: no text, secret, signature, query string or full client address', async (t) => {
  const stream = new MemoryStream();
  const logger = pino({ level: 'trace' }, stream) as unknown as FastifyBaseLogger;
  const s = await serverFixture(t, { logger });
  const key = s.key();
  const text = 'zebra-canary-4411 private words';
  const res = await s.send({ url: `/api/v1/moderate?categories=always`, body: { text }, key });
  assert.equal(res.statusCode, 200);
  await s.send({ url: `/api/v1/moderate?fast_path=false`, body: { text: `${text} [[garbage]]` }, key });
  await s.send({ url: `/api/v1/moderate`, body: { text: `${text} [[crash]]` }, key });
  await s.send({ url: `/api/v1/translate?source_lang=en&target_lang=zh`, body: { text }, key: { id: key.id, secret: `${key.secret}x` } });
  await s.send({ url: `/nowhere?q=${encodeURIComponent(text)}` });
  const logs = stream.text;
  assert.ok(logs.includes('"status":200') && logs.includes('"path":"/api/v1/moderate"'), logs.slice(0, 500));
  assert.ok(logs.includes('"client_net":"203.0.113.0/24"'));
  assert.ok(logs.includes('request failed'), 'the 500 and 502 are logged');
  for (const needle of ['zebra-canary', 'private words', key.secret, 'categories=always', '203.0.113.7', 'x-signature', 'X-Signature']) {
    assert.ok(!logs.includes(needle), `found ${needle} in the logs`);
  }
  // The 500's log line has its stack, the client's answer does not.
  assert.match(logs, /"stack":"TypeError/);
});

test('every answer carries X-Request-Id, nosniff and a cache policy', async (t) => {
  const s = await serverFixture(t);
  for (const url of ['/healthz', '/readyz', '/api/v1/languages', '/nope']) {
    const res = await s.send({ url });
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers['cache-control'], url);
  }
  const a = await s.send({ url: '/healthz' });
  const b = await s.send({ url: '/healthz' });
  assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  // A client's own X-Request-Id is not trusted as ours.
  const c = await s.send({ url: '/nope', headers: { 'x-request-id': 'mine' } });
  assert.notEqual(c.json().error.request_id, 'mine');
});

test('HTTPS: the same app on a TLS socket, signed requests included', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const dir = tempDir(t);
  const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  assert.equal(made.status, 0);
  const s = await serverFixture(t, { https: { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } });
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.app.server.address() as { port: number }).port;
  const k = s.key();
  const body = JSON.stringify({ text: 'How do I make a bomb?' });
  const headers = { 'content-type': 'application/json', ...signRequest({ method: 'POST', url: '/api/v1/moderate?categories=always', body, keyId: k.id, secret: k.secret }).headers };
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/api/v1/moderate?categories=always', method: 'POST', headers, ca: fs.readFileSync(cert) }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).level, 'unsafe');
});

test('close(): the request in flight finishes, a request arriving meanwhile gets 503 shutting_down in our JSON', async (t) => {
  // Every step waits for the event it needs (the engine holds the first request, close() has begun, the server
  // has parsed the second), so the verdict does not depend on how fast the machine is.
  const engine = fakeEngine();
  const s = await serverFixture(t, { engine });
  t.after(() => engine.release());
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.app.server.address() as net.AddressInfo).port;
  const key = s.key();
  const body = JSON.stringify({ text: 'take your time [[held]]' });
  const signed = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: key.id, secret: key.secret }).headers;
  const head = Object.entries({ 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Host: 'x', ...signed }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => (received += d));
  const ended = new Promise((resolve) => socket.on('close', resolve));
  socket.write(`POST /api/v1/moderate HTTP/1.1\r\n${head}\r\n${body}`);
  await engine.held;

  const closed = s.app.close();
  await waitFor(() => s.app.draining, 'close() to begin');
  // A second request pipelined on the busy connection, after close() began.
  const secondSeen = new Promise<void>((resolve) => s.app.server.on('request', (req) => req.url === '/healthz' && resolve()));
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await secondSeen;
  assert.equal(received, '', 'nothing is answered while the first request is held');
  engine.release();
  await closed;
  await ended;
  const answers = received.split(/(?=HTTP\/1\.1 )/);
  assert.equal(answers.length, 2, received);
  assert.match(answers[0]!, /^HTTP\/1\.1 200 /);
  assert.match(answers[1]!, /^HTTP\/1\.1 503 /);
  assert.match(answers[1]!, /"code":"shutting_down"/);
  assert.match(answers[1]!, /Retry-After: 5/i);
});
