import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Engine } from '../../src/infer/types.js';
import { demoEngine } from '../helpers/demo-engine.js';
import { serverFixture } from '../helpers/server-app.js';

/** The sampling parameters of /api/v1/translate, through the real gate, on the demo translator (vocabulary 4,096). */
let engine: Engine;
before(async () => {
  engine = await demoEngine();
});
after(() => engine.close());

const URL = '/api/v1/translate?source_lang=zh&target_lang=en';

test('each sampling parameter out of range is a 422 naming the field and the allowed range', async (t) => {
  const s = await serverFixture(t, { engine, config: { maxNewTokens: 200 } });
  const key = s.key();
  const cases: Array<[string, unknown, number, number, RegExp]> = [
    ['temperature', 2.5, 0, 2, /^temperature must be a number from 0 to 2 \(0 decodes greedily\)$/],
    ['temperature', -0.1, 0, 2, /from 0 to 2/],
    ['temperature', '0.7', 0, 2, /from 0 to 2/],
    ['top_p', 0, 0, 1, /^top_p must be a number above 0 and at most 1 \(1 is off\)$/],
    ['top_p', 1.01, 0, 1, /above 0 and at most 1/],
    ['top_k', 4097, -1, 4096, /^top_k must be a whole number from 1 to 4096 \(the model's vocabulary\), or 0 or -1 for off$/],
    ['top_k', 2.5, -1, 4096, /from 1 to 4096/],
    ['top_k', -2, -1, 4096, /from 1 to 4096/],
    ['repetition_penalty', 0, 0, 2, /^repetition_penalty must be a number above 0 and at most 2 \(1 is off\)$/],
    ['repetition_penalty', 2.5, 0, 2, /above 0 and at most 2/],
    ['seed', -1, 0, Number.MAX_SAFE_INTEGER, /^seed must be a whole number from 0 to 9007199254740991$/],
    ['seed', 1.5, 0, Number.MAX_SAFE_INTEGER, /from 0 to 9007199254740991/],
    ['seed', true, 0, Number.MAX_SAFE_INTEGER, /from 0 to 9007199254740991/],
    ['max_tokens', 0, 1, 200, /^max_tokens must be a whole number from 1 to 200 \(this server's --max-new-tokens\)$/],
    ['max_tokens', 201, 1, 200, /from 1 to 200/],
  ];
  for (const [field, value, min, max, message] of cases) {
    const res = await s.send({ url: URL, body: { text: '我们喜欢猫。', [field]: value }, key });
    assert.equal(res.statusCode, 422, `${field}=${JSON.stringify(value)}: ${res.body}`);
    const error = res.json().error;
    assert.deepEqual([error.code, error.field, error.min, error.max], ['invalid_request', field, min, max], res.body);
    assert.match(error.message, message);
  }
});

test('sampling parameters in range reach the engine: a seed repeats, max_tokens cuts, greedy by default', async (t) => {
  const s = await serverFixture(t, { engine });
  const key = s.key();
  const send = async (extra: Record<string, unknown>) => {
    const res = await s.send({ url: URL, body: { text: '我们喜欢猫。我们喜欢狗。他们看书。', ...extra }, key });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().result as string;
  };
  const greedy = await send({});
  assert.ok(greedy.length > 10, greedy);
  // Every parameter at once, at the ends of their ranges and with nulls (OpenAI-style clients send them).
  const hot = { temperature: 2, top_p: 1, top_k: -1, repetition_penalty: 1, seed: 2 ** 53 - 1, max_tokens: null };
  assert.equal(await send(hot), await send(hot), 'the same seed, the same answer');
  assert.equal(await send({ temperature: 0, seed: 1, top_k: 4096 }), greedy);
  const cut = await send({ max_tokens: 3 });
  assert.ok(cut.length > 0 && cut.length < greedy.length && greedy.startsWith(cut), cut);
});
