import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { v1Problem } from '../../src/gate/v1-coverage.js';
import { serverFixture, type ServerFixture, type TestKey } from '../helpers/server-app.js';

/**
 * Issue 10, finding 6: a version 1 signature covers the query and the body's top-level scalars only, so a body
 * swapped for another with the same signed string was accepted. Under version 1 the server now acts on nothing
 * the string does not cover; each swap of the abuse run is refused under version 1 and accepted under version 2.
 */

/** Sends `sent` under the headers a client computed for `signed` (the swap), as the abuse run did. */
async function swap(s: ServerFixture, key: TestKey, url: string, signed: string, sent: string, version: 1 | 2) {
  const { headers } = signRequest({ method: 'POST', url, body: signed, keyId: key.id, secret: key.secret, version });
  return s.app.inject({ method: 'POST', url, payload: sent, remoteAddress: '203.0.113.7', headers: { 'content-type': 'application/json', ...headers } });
}

const SWAPS: Array<[string, string, unknown, unknown]> = [
  ['moderate text array', '/api/v1/moderate', { text: ['hello there', 'nice cats'] }, { text: ['How to build a bomb', 'nice cats'] }],
  ['moderate messages', '/api/v1/moderate', { messages: [{ role: 'user', content: 'hello' }] }, { messages: [{ role: 'user', content: 'kill' }] }],
  ['/v1/moderations input array', '/v1/moderations', { input: ['hello there', 'cats'] }, { input: ['make a bomb!', 'cats'] }],
  ['translate terms', '/api/v1/translate?source_lang=zh&target_lang=en', { text: '猫', terms: { 猫: 'cat' } }, { text: '猫', terms: { 猫: 'dog' } }],
];

test('v1: each body swap of the abuse run is refused with v1_unsigned_member; v2 accepts the same bodies', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  for (const [what, url, signed, sent] of SWAPS) {
    const swapped = await swap(s, key, url, JSON.stringify(signed), JSON.stringify(sent), 1);
    assert.equal(swapped.statusCode, 401, `${what}: ${swapped.body}`);
    assert.equal(swapped.json().error.code, 'v1_unsigned_member', what);
    assert.match(swapped.json().error.message, /version 2 \(X-Signature-Version: 2\)/);
    // The honest request is refused the same way under version 1 ...
    const honest = await s.send({ url, body: sent, key, version: 1 });
    assert.equal(honest.json().error.code, 'v1_unsigned_member', what);
    // ... and accepted under version 2, which refuses the swap.
    assert.equal((await s.send({ url, body: sent, key, version: 2 })).statusCode, 200, what);
    assert.equal((await swap(s, key, url, JSON.stringify(signed), JSON.stringify(sent), 2)).json().error.code, 'content_sha256_mismatch', what);
  }
  // A v1-refused request does not count towards the address block: its sender holds the key.
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 'hello' }, key, version: 1 })).statusCode, 200);
});

test('v1: a value holding &NAME= for a name the route reads is refused, and its signature cannot be reused', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  const ambiguous = JSON.stringify({ model: 'guard-demo&text=hi' });
  const plain = JSON.stringify({ model: 'guard-demo', text: 'hi' });
  // Both bodies sign the same version 1 string: model=guard-demo&text=hi.
  const { headers, stringToSign } = signRequest({ method: 'POST', url: '/api/v1/moderate', body: ambiguous, keyId: key.id, secret: key.secret, version: 1 });
  assert.equal(stringToSign, signRequest({ method: 'POST', url: '/api/v1/moderate', body: plain, keyId: key.id, secret: key.secret, version: 1, nonce: headers['X-Nonce'], timestamp: headers['X-Timestamp'] }).stringToSign);
  const send = (payload: string) => s.app.inject({ method: 'POST', url: '/api/v1/moderate', payload, remoteAddress: '203.0.113.7', headers: { 'content-type': 'application/json', ...headers } });
  const first = await send(ambiguous);
  assert.equal(first.statusCode, 401, first.body);
  assert.equal(first.json().error.code, 'v1_ambiguous_param');
  assert.match(first.json().error.message, /member "model" holds "&text="/);
  // The swap that the string also reads as: its nonce is spent.
  const swapped = await send(plain);
  assert.equal(swapped.statusCode, 401, swapped.body);
  assert.equal(swapped.json().error.code, 'replayed_nonce');
  // Version 2 tells the two apart: the plain body is served, the other passes the gate and the route finds no text.
  assert.equal((await s.send({ url: '/api/v1/moderate', body: plain, key, version: 2 })).statusCode, 200);
  const v2 = await s.send({ url: '/api/v1/moderate', body: ambiguous, key, version: 2 });
  assert.deepEqual([v2.statusCode, v2.json().error.field], [422, 'text']);

  // Query values too; '&' in ordinary text stays valid.
  const query = `/api/v1/translate?source_lang=${encodeURIComponent('zh&target_lang=en')}`;
  assert.equal((await s.send({ url: query, body: { text: '猫' }, key, version: 1 })).json().error.code, 'v1_ambiguous_param');
  for (const text of ['Tom & Jerry', 'A & B = C?', 'a&unknown=1', 'x &text = y']) {
    const res = await s.send({ url: '/api/v1/translate?source_lang=en&target_lang=zh', body: { text }, key, version: 1 });
    assert.equal(res.statusCode, 200, `${text}: ${res.body}`);
  }
  assert.equal((await s.send({ url: '/api/v1/translate?source_lang=en&target_lang=zh', body: { text: 'see &context=x' }, key, version: 1 })).json().error.code, 'v1_ambiguous_param');
});

test('v1: seed-style bodies pass; null, non-object and non-JSON bodies are refused', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  const ok = [
    ['/api/v1/moderate', { text: 'hello' }],
    ['/api/v1/moderate?categories=always', { text: 'hello', model: 'guard-demo' }],
    ['/api/v1/translate', { text: '混元翻译模型支持多种语言互译', source_lang: 'zh', target_lang: 'en', preserve_format: true }],
    ['/v1/moderations', { input: 'hello', model: 'guard-demo' }],
  ] as const;
  for (const [url, body] of ok) assert.equal((await s.send({ url, body, key, version: 1 })).statusCode, 200, url);
  assert.equal((await s.send({ url: '/api/v1/models', key, version: 1 })).statusCode, 200);
  for (const body of [{ text: 'hi', model: null }, ['hi'], '"hi"']) {
    const res = await s.send({ url: '/api/v1/moderate', body, key, version: 1 });
    assert.equal(res.json().error.code, 'v1_unsigned_member', JSON.stringify(body));
  }
  const text = await s.send({ url: '/api/v1/moderate', body: 'text=hi', contentType: 'text/plain', key, version: 1 });
  assert.equal(text.json().error.code, 'v1_unsigned_member');
});

test('v1Problem: names the member, never its value', () => {
  const names = new Set(['text', 'model']);
  assert.equal(v1Problem([], { json: { text: 'a', n: 1.5, b: true }, present: true }, names), undefined);
  assert.equal(v1Problem([], { json: undefined, present: false }, names), undefined);
  assert.deepEqual(v1Problem([], { json: { 'a=b': 'c' }, present: true }, names)?.code, 'v1_ambiguous_param');
  const p = v1Problem([], { json: { text: ['secret words'] }, present: true }, names)!;
  assert.equal(p.code, 'v1_unsigned_member');
  assert.doesNotMatch(p.detail, /secret words/);
  // Without a declared list, any name without spaces counts.
  assert.equal(v1Problem([['q', 'a b&c=d']], { json: undefined, present: false })?.code, 'v1_ambiguous_param');
  assert.equal(v1Problem([['q', 'a & c = d']], { json: undefined, present: false }), undefined);
  // Linear in the value's length, whatever its '&'s.
  assert.equal(v1Problem([], { json: { text: '&'.repeat(1_000_000) }, present: true }, names), undefined);
});
