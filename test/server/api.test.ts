import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Engine } from '../../src/infer/types.js';
import { createServerMetrics, type ServerMetrics } from '../../src/server/metrics.js';
import { OPENAI_KEYS } from '../../src/tasks/openai-moderation.js';
import { DEMO_SPECS, demoEngine } from '../helpers/demo-engine.js';
import { serverFixture } from '../helpers/server-app.js';

/** The API routes on the demo models, through the real gate with signed requests. */
let engine: Engine;
let metrics: ServerMetrics;
before(async () => {
  metrics = createServerMetrics();
  // A second copy of the guard under a large size class, for the tiers' model access.
  engine = await demoEngine(metrics.onStep, [...DEMO_SPECS, { name: 'guard-large', task: 'moderate', dir: 'models/guard-demo', size: 'large', device: 'cpu' }]);
});
after(() => engine.close());

const BOMB = 'How do I make a bomb in my kitchen?';
const FRANCE = "What's the capital of France?";

test('moderation: one text, fast path by default', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key('free');
  const unsafe = await s.send({ url: '/api/v1/moderate', body: { text: BOMB }, key });
  assert.equal(unsafe.statusCode, 200, unsafe.body);
  const u = unsafe.json();
  assert.equal(u.level, 'unsafe');
  assert.deepEqual(u.categories, ['Violent']);
  assert.equal(u.model, 'guard-demo');
  assert.equal(typeof u.score, 'number');
  assert.ok(u.score > 0.34 && u.score <= 1);
  assert.equal(typeof u.latency_ms, 'number');
  assert.equal(u.refusal, undefined);

  const safe = (await s.send({ url: '/api/v1/moderate', body: { text: FRANCE }, key })).json();
  assert.deepEqual([safe.level, safe.categories], ['safe', []]);
  assert.equal(typeof safe.score, 'number');
  // The gate saw and audited the model the request used.
  assert.deepEqual(s.audit.records.map((r) => [r.route, r.model, r.status]), [['/api/v1/moderate', 'guard-demo', 200], ['/api/v1/moderate', 'guard-demo', 200]]);
});

test('moderation: ?categories=always, ?fast_path=false, explicit model', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const always = await s.send({ url: '/api/v1/moderate?categories=always', body: { text: FRANCE, model: 'guard-demo' }, key });
  assert.equal(always.statusCode, 200, always.body);
  assert.deepEqual([always.json().level, always.json().categories], ['safe', []]);
  assert.equal(typeof always.json().score, 'number');

  const full = await s.send({ url: '/api/v1/moderate?fast_path=false', body: { text: BOMB }, key });
  assert.equal(full.statusCode, 200, full.body);
  assert.deepEqual([full.json().level, full.json().categories], ['unsafe', ['Violent']]);
  assert.equal(full.json().score, undefined, 'the full decode has no score');
});

test('moderation: a batch of texts', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const res = await s.send({ url: '/api/v1/moderate', body: { text: [FRANCE, BOMB, FRANCE] }, key: s.key() });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.model, 'guard-demo');
  assert.equal(typeof body.latency_ms, 'number');
  assert.deepEqual(body.results.map((r: { level: string; categories: string[] }) => [r.level, r.categories]), [['safe', []], ['unsafe', ['Violent']], ['safe', []]]);
  assert.ok(body.results.every((r: { model?: string }) => r.model === undefined));
});

test('moderation: a full batch of texts emits no listener-leak warning (one abort listener per text in flight)', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const texts = Array.from({ length: 32 }, (_, i) => (i % 2 ? BOMB : FRANCE));
  const res = await s.send({ url: '/api/v1/moderate', body: { text: texts }, key: s.key() });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().results.length, 32);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
});

test('moderation: a prompt and a response (refusal field)', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const messages = [{ role: 'user', content: BOMB }, { role: 'assistant', content: "Sorry, I can't help with that." }];
  const res = await s.send({ url: '/api/v1/moderate', body: { messages }, key });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.ok(['yes', 'no'].includes(body.refusal), res.body);
  assert.ok(['safe', 'unsafe', 'controversial'].includes(body.level));
  assert.ok(Array.isArray(body.categories));

  const promptOnly = await s.send({ url: '/api/v1/moderate', body: { messages: [{ role: 'user', content: BOMB }] }, key });
  assert.equal(promptOnly.statusCode, 200, promptOnly.body);
  assert.equal(promptOnly.json().level, 'unsafe');
  assert.equal(promptOnly.json().refusal, undefined);

  const wrongShape = await s.send({ url: '/api/v1/moderate', body: { messages: [{ role: 'assistant', content: 'hi' }] }, key });
  assert.equal(wrongShape.statusCode, 422);
  assert.equal(wrongShape.json().error.code, 'invalid_request');
});

test('OpenAI-compatible /v1/moderations', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const one = await s.send({ url: '/v1/moderations', body: { input: BOMB }, key });
  assert.equal(one.statusCode, 200, one.body);
  const body = one.json();
  assert.match(body.id, /^modr-[0-9a-f]{24}$/);
  assert.equal(body.model, 'guard-demo');
  assert.equal(body.results.length, 1);
  const r = body.results[0];
  assert.equal(r.flagged, true);
  assert.equal(r.categories.violence, true);
  assert.equal(r.categories.Violent, true);
  assert.equal(r.categories.sexual, false);
  for (const k of OPENAI_KEYS) {
    assert.equal(typeof r.categories[k], 'boolean');
    assert.equal(typeof r.category_scores[k], 'number');
  }
  assert.ok(r.category_scores.violence > 0.34);

  const many = await s.send({ url: '/v1/moderations?strict=true', body: { input: [FRANCE, BOMB], model: 'guard-demo' }, key });
  assert.equal(many.statusCode, 200, many.body);
  assert.deepEqual(many.json().results.map((x: { flagged: boolean }) => x.flagged), [false, true]);

  const objects = await s.send({ url: '/v1/moderations', body: { input: [{ type: 'text', text: 'x' }] }, key });
  assert.equal(objects.statusCode, 422);
  assert.equal(objects.json().error.field, 'input.0');
});

test('translation zh->en and en->zh on the by-target template', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const zhEn = await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我们喜欢猫。' }, key });
  assert.equal(zhEn.statusCode, 200, zhEn.body);
  assert.deepEqual({ ...(zhEn.json() as object), latency_ms: 0 }, { result: 'We like cats.', model: 'mt-demo', source_lang: 'zh', target_lang: 'en', latency_ms: 0 });
  const enZh = await s.send({ url: '/api/v1/translate?source_lang=en&target_lang=zh', body: { text: 'We like cats.', model: 'mt-demo' }, key });
  assert.equal(enZh.statusCode, 200, enZh.body);
  assert.equal(enZh.json().result, '我们喜欢猫。');
  // Languages may also come in the body (signed there), never in both places.
  const inBody = await s.send({ url: '/api/v1/translate', body: { text: '我们喜欢猫。', source_lang: 'zh', target_lang: 'en' }, key });
  assert.equal(inBody.statusCode, 200, inBody.body);
  assert.equal(inBody.json().result, 'We like cats.');
});

test('translation input errors are 422 naming the field', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const cases: Array<[string, unknown, number, string, string]> = [
    ['/api/v1/translate?source_lang=xx&target_lang=en', { text: '猫' }, 422, 'unsupported_language', 'source_lang'],
    ['/api/v1/translate?source_lang=zh&target_lang=klingon', { text: '猫' }, 422, 'unsupported_language', 'target_lang'],
    ['/api/v1/translate?source_lang=zh&target_lang=zh', { text: '猫' }, 422, 'invalid_request', 'target_lang'],
    ['/api/v1/translate?target_lang=en', { text: '猫' }, 422, 'invalid_request', 'source_lang'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '   ' }, 422, 'invalid_request', 'text'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', {}, 422, 'invalid_request', 'text'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '猫', terms: { a: 1 } }, 422, 'invalid_request', 'terms.a'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '猫', preserve_format: 'yes' }, 422, 'invalid_request', 'preserve_format'],
    ['/api/v1/translate?source_lang=zh&target_lang=en&tone=formal', { text: '猫' }, 422, 'invalid_request', 'tone'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '猫', model: 'guard-demo' }, 422, 'wrong_task', 'model'],
    ['/api/v1/translate?source_lang=zh&target_lang=en', { text: '猫', model: 'no-such-model' }, 404, 'model_not_found', 'model'],
  ];
  for (const [url, body, status, code, field] of cases) {
    const res = await s.send({ url, body, key });
    assert.equal(res.statusCode, status, `${url} ${JSON.stringify(body)}: ${res.body}`);
    const error = res.json().error;
    assert.deepEqual([error.code, error.field], [code, field], res.body);
    assert.equal(typeof error.message, 'string');
    assert.equal(error.request_id, res.headers['x-request-id']);
  }
});

test('a model route of the wrong task or an unknown model', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const key = s.key();
  const wrong = await s.send({ url: '/api/v1/moderate', body: { text: 'hi', model: 'mt-demo' }, key });
  assert.equal(wrong.statusCode, 422);
  assert.equal(wrong.json().error.code, 'wrong_task');
  const unknown = await s.send({ url: '/v1/moderations', body: { input: 'hi', model: 'gpt-4o' }, key });
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().error.code, 'model_not_found');
  // Unsigned requests learn nothing about models: the gate answers first.
  const unsigned = await s.send({ url: '/api/v1/moderate', body: { text: 'hi', model: 'gpt-4o' } });
  assert.equal(unsigned.statusCode, 401);
  assert.equal(unsigned.json().error.code, 'missing_auth');
});

test('GET /api/v1/models (gated) and /api/v1/languages (open)', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const unsigned = await s.send({ url: '/api/v1/models' });
  assert.equal(unsigned.statusCode, 401);
  const res = await s.send({ url: '/api/v1/models', key: s.key('free') });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.deepEqual(body.tasks.sort(), ['moderate', 'translate']);
  const guard = body.models.find((m: { name: string }) => m.name === 'guard-demo');
  assert.deepEqual({ ...guard, max_context: 0, device: null }, {
    name: 'guard-demo', task: 'moderate', size: 'small', dtype: 'fp32', device: null, state: 'ready', max_context: 0, allowed: true,
  });
  assert.ok(['cpu', 'webgpu'].includes(guard.device));
  assert.equal(body.models.find((m: { name: string }) => m.name === 'mt-demo').translate_template, 'by-target');
  assert.ok(body.devices.length >= 1);
  assert.equal(typeof body.devices[0].queued, 'number');

  const langs = await s.send({ url: '/api/v1/languages' });
  assert.equal(langs.statusCode, 200);
  const list = langs.json().languages;
  assert.equal(list.length, 38);
  assert.deepEqual(list[0], { code: 'zh', english: 'Chinese', chinese: '中文' });
  assert.equal(list.find((l: { code: string }) => l.code === 'yue').variant, true);
});

test('tier model access: free keys get small models only, pro keys large ones too', async (t) => {
  const s = await serverFixture(t, { engine, metrics });
  const free = s.key('free');
  const pro = s.key('pro');
  const denied = await s.send({ url: '/api/v1/moderate', body: { text: BOMB, model: 'guard-large' }, key: free });
  assert.equal(denied.statusCode, 403, denied.body);
  assert.equal(denied.json().error.code, 'model_not_allowed');
  const openai = await s.send({ url: '/v1/moderations', body: { input: BOMB, model: 'guard-large' }, key: free });
  assert.equal(openai.statusCode, 403);
  const allowed = await s.send({ url: '/api/v1/moderate', body: { text: BOMB, model: 'guard-large' }, key: pro });
  assert.equal(allowed.statusCode, 200, allowed.body);
  assert.deepEqual([allowed.json().model, allowed.json().level], ['guard-large', 'unsafe']);
  // The default model (the first ready one of the task) is small: free keys use it.
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: BOMB }, key: free })).statusCode, 200);
  // The model list tells each key what it may use.
  const list = (await s.send({ url: '/api/v1/models', key: free })).json().models;
  assert.deepEqual(list.map((m: { name: string; allowed: boolean }) => [m.name, m.allowed]), [['guard-demo', true], ['mt-demo', true], ['guard-large', false]]);
  assert.deepEqual(s.audit.records.map((r) => [r.model, r.status, r.reason, r.tier]), [
    ['guard-large', 403, 'model_not_allowed', 'free'], ['guard-large', 403, 'model_not_allowed', 'free'], ['guard-large', 200, null, 'pro'],
    ['guard-demo', 200, null, 'free'], [null, 200, null, 'free'],
  ]);
});

test('the gate limits apply to model routes: rate limit 429 with Retry-After', async (t) => {
  const s = await serverFixture(t, { engine, metrics, tiers: { tiny: { models: ['*'], rate: 1, burst: 1 } } });
  const key = s.key('tiny');
  const first = await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我们喜欢猫。' }, key });
  assert.equal(first.statusCode, 200, first.body);
  const second = await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我们喜欢猫。' }, key });
  assert.equal(second.statusCode, 429);
  assert.equal(second.json().error.code, 'rate_limited');
  assert.ok(Number(second.headers['retry-after']) >= 1);
});
