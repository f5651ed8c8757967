import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import OpenAI from 'openai';
import { pino } from 'pino';
import { EngineError, type GenerateRequest } from '../../src/infer/types.js';
import { bearerToken, newKeyId, newSecret } from '../../src/keys/token.js';
import { StopMatcher } from '../../src/tasks/chat.js';
import { MemoryStream } from '../helpers/cli.js';
import { fakeEngine } from '../helpers/fake-engine.js';
import { serverFixture } from '../helpers/server-app.js';

// Issue 14.1: /v1/chat/completions behaviour that needs a controlled engine: cancellation, stop sequences, refusals.

test('a client that disconnects mid-stream cancels the generation', async (t) => {
  const engine = fakeEngine();
  let aborted!: () => void;
  const cancelled = new Promise<void>((r) => (aborted = r));
  // Sends one piece, then decodes "forever": only the client going away can end it.
  engine.generate = (req: GenerateRequest) => new Promise((_resolve, reject) => {
    req.onText?.('Hel', 1);
    req.signal!.addEventListener('abort', () => {
      aborted();
      reject(new EngineError('cancelled', 'cancelled'));
    }, { once: true });
  });
  const f = await serverFixture(t, { engine, config: { insecureNoAuth: true } });
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = f.app.server.address() as AddressInfo;
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none', maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: 'mt-demo', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let text = '';
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (text === 'Hel') break; // ends the iteration and aborts the response
  }
  await cancelled;
});

test('stop sequences end the answer before them, also when they arrive split across pieces', async (t) => {
  const engine = fakeEngine();
  let signal: AbortSignal | undefined;
  engine.generate = (req: GenerateRequest) => new Promise((resolve, reject) => {
    signal = req.signal;
    req.signal!.addEventListener('abort', () => reject(Object.assign(new EngineError('cancelled', 'cancelled'), { details: { promptTokens: 7 } })), { once: true });
    for (const [i, piece] of ['Hello wo', 'rld. EN', 'D more'].entries()) req.onText?.(piece, i + 1);
    resolve({ text: 'Hello world. END more', promptTokens: 7, outputTokens: 3, finish: 'eos', queueMs: 0, engineMs: 0 });
  });
  const f = await serverFixture(t, { engine, config: { insecureNoAuth: true } });
  const body = { model: 'mt-demo', messages: [{ role: 'user', content: 'hi' }], stop: ['END', 'xyz'] };
  const r = await f.send({ url: '/v1/chat/completions', body });
  assert.equal(r.statusCode, 200, r.body);
  const json = r.json();
  assert.equal(json.choices[0].message.content, 'Hello world. ');
  assert.equal(json.choices[0].finish_reason, 'stop');
  assert.deepEqual(json.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
  assert.equal(signal?.aborted, true, 'the generation was stopped');

  const s = await f.send({ url: '/v1/chat/completions', body: { ...body, stream: true } });
  const events = s.body.split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6))).map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, 'Hello world. ');
});

test('requests the server cannot honour are refused by name; errors before the stream are JSON', async (t) => {
  const f = await serverFixture(t, { config: { insecureNoAuth: true } });
  const base = { model: 'mt-demo', messages: [{ role: 'user', content: 'hi' }] };
  const cases: Array<[Record<string, unknown>, number, string, string]> = [
    [{ n: 2 }, 422, 'n', 'n must be 1'],
    [{ max_tokens: 4, max_completion_tokens: 5 }, 422, 'max_completion_tokens', 'differ'],
    [{ max_completion_tokens: 0 }, 422, 'max_completion_tokens', 'max_completion_tokens must be a whole number'],
    [{ temperature: 3 }, 422, 'temperature', 'temperature must be'],
    [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 422, 'stop', 'at most 4'],
    [{ messages: [{ role: 'tool', content: 'x' }] }, 422, 'messages.0.role', 'tool and function messages'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 422, 'messages.0.content.0', '"image_url" content parts'],
    [{ model: 'nope' }, 404, 'model', 'no model is named'],
    [{ stream: true, presence_penalty: 1 }, 422, 'presence_penalty', 'not supported'],
  ];
  for (const [extra, status, field, message] of cases) {
    const r = await f.send({ url: '/v1/chat/completions', body: { ...base, ...extra } });
    assert.equal(r.statusCode, status, `${JSON.stringify(extra)}: ${r.body}`);
    assert.match(r.headers['content-type'] as string, /application\/json/);
    assert.equal(r.json().error.field, field, JSON.stringify(extra));
    // OpenAI's error object: message, type, param, code.
    assert.equal(r.json().error.param, field);
    assert.equal(r.json().error.type, status === 404 ? 'not_found_error' : 'invalid_request_error');
    assert.ok(r.json().error.message.includes(message), r.json().error.message);
  }
});

test('a bearer credential from another machine over plain HTTP is refused before its key is looked up', async (t) => {
  const f = await serverFixture(t);
  // serverFixture injects from 203.0.113.7 without TLS; a well-formed but unknown credential.
  const r = await f.send({ url: '/v1/models', headers: { authorization: `Bearer ${bearerToken(newKeyId(), newSecret())}` } });
  assert.equal(r.statusCode, 403, r.body);
  assert.equal(r.json().error.code, 'bearer_insecure_transport');
  assert.equal(r.json().error.type, 'permission_error');
  const bad = await f.send({ url: '/v1/models', headers: { authorization: 'Bearer not-a-credential' } });
  assert.equal(bad.statusCode, 401);
  assert.equal(bad.json().error.code, 'malformed_auth');
});

test('StopMatcher holds back only what may still become a stop sequence', () => {
  const m = new StopMatcher(['</end>']);
  assert.equal(m.push('abc</'), 'abc');
  assert.equal(m.push('en'), '');
  assert.equal(m.push('x'), '</enx');
  assert.equal(m.push('tail</end>gone'), 'tail');
  assert.equal(m.stopped, true);
  assert.equal(m.push('more'), '');
});

test('a failure after the stream began is an error event, and the server logs it once as its own failure, on chat and translate alike', async (t) => {
  const stream = new MemoryStream();
  const f = await serverFixture(t, { config: { insecureNoAuth: true }, logger: pino({ level: 'info' }, stream) as unknown as FastifyBaseLogger });
  const chat = await f.send({ url: '/v1/chat/completions', body: { model: 'mt-demo', stream: true, messages: [{ role: 'user', content: '[[fail_mid_stream]]' }] } });
  assert.equal(chat.statusCode, 200);
  const last = JSON.parse(chat.body.split('\n\n').filter(Boolean).at(-1)!.slice(6)) as { error: { code: string } };
  assert.equal(last.error.code, 'timeout');
  const translate = await f.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en&stream=true', body: { text: '[[fail_mid_stream]]' } });
  assert.equal(translate.statusCode, 200);
  assert.match(translate.body, /event: error/);
  const failed = stream.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; err?: { code: string }; reqId?: string })
    .filter((l) => l.msg === 'stream failed');
  assert.deepEqual(failed.map((l) => [l.level, l.err?.code]), [[50, 'timeout'], [50, 'timeout']], 'one error line per failed stream');
  assert.deepEqual(new Set(failed.map((l) => l.reqId)), new Set([chat.headers['x-request-id'], translate.headers['x-request-id']]));
});
