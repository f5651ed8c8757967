import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { jsonDeeperThan } from '../../src/gate/json-depth.js';
import { gateFixture } from '../helpers/gate-app.js';
import { serverFixture } from '../helpers/server-app.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * Issue 10, finding 5: on gated routes everything the headers allow is checked before the body is read, the
 * signature before the schema, bodies refused before the signature count as failed authentications, and JSON
 * nesting is bounded before JSON.parse.
 */
const SECRET = 'gs_header_stage_secret';
const DEEP = '['.repeat(524_000);
const FAKE_SIGNATURE = 'ab'.repeat(32);

/** Counts JSON.parse calls on texts longer than `min` while `fn` runs (the body parser's only way to parse). */
async function bigParses<T>(min: number, fn: () => Promise<T>): Promise<{ result: T; parses: number }> {
  const original = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (typeof text === 'string' && text.length > min) parses++;
    return original(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { result: await fn(), parses };
  } finally {
    JSON.parse = original;
  }
}

test('an unsigned 1 MB body of [ is refused by the header stage without parsing, and repeats block the address', async () => {
  const f = await gateFixture();
  const send = () => f.app.inject({ method: 'POST', url: '/api/v1/moderate', payload: DEEP, remoteAddress: '198.51.100.50', headers: { 'content-type': 'application/json' } });
  const { result: first, parses } = await bigParses(100_000, send);
  assert.equal(parses, 0, 'JSON.parse saw the unsigned body');
  assert.equal(first.statusCode, 401);
  assert.equal(first.json().error.code, 'missing_auth');
  const codes: string[] = [];
  for (let i = 0; i < 30; i++) codes.push((await send()).json().error.code);
  const blockedAt = codes.indexOf('auth_throttled');
  assert.ok(blockedAt >= 0, `never throttled: ${codes.join(' ')}`);
  assert.ok(codes.slice(blockedAt).every((c) => c === 'auth_throttled'), codes.join(' '));
});

test('a deep body from a sender whose signature is unchecked is 400 json_too_deep before JSON.parse, and counts', async (t) => {
  // serverFixture (the real server's error answers) never blocks; the gate fixture has the default policy (20 a minute).
  const s = await serverFixture(t);
  const key = s.key();
  const headers = { 'content-type': 'application/json', 'x-api-key': key.id, 'x-timestamp': String(Math.floor(Date.now() / 1000)), 'x-nonce': 'nonce-deep-1', 'x-signature': FAKE_SIGNATURE };
  const { result: res, parses } = await bigParses(100_000, () => s.app.inject({ method: 'POST', url: '/api/v1/moderate', payload: DEEP, headers }));
  assert.equal(parses, 0);
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().error.code, 'json_too_deep');
  assert.match(res.json().error.message, /deeper than 32 levels/);

  const f = await gateFixture();
  const gk = f.keys.add(SECRET);
  const codes: string[] = [];
  for (let i = 0; i < 25; i++) {
    const r = await f.app.inject({ method: 'POST', url: '/api/v1/moderate', payload: DEEP, remoteAddress: '198.51.100.51', headers: { ...headers, 'x-api-key': gk.id, 'x-timestamp': String(Math.floor(f.clock.now / 1000)) } });
    codes.push(r.statusCode === 429 ? r.json().error.code : String(r.statusCode));
  }
  // The 21st failure within the minute starts the block.
  assert.deepEqual(codes, [...Array(21).fill('400'), ...Array(4).fill('auth_throttled')]);
});

test('nesting is measured outside strings only: 32 levels pass, 33 do not', () => {
  const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
  assert.equal(jsonDeeperThan(Buffer.from(nest(32)), 32), false);
  assert.equal(jsonDeeperThan(Buffer.from(nest(33)), 32), true);
  assert.equal(jsonDeeperThan(Buffer.from(`{"a":${nest(31)}}`), 32), false);
  assert.equal(jsonDeeperThan(Buffer.from(`{"a":${nest(32)}}`), 32), true);
  // Brackets in strings, escaped quotes and backslash runs are text.
  assert.equal(jsonDeeperThan(Buffer.from(JSON.stringify({ text: '['.repeat(100) + '\\"[[[' + '\\\\' })), 32), false);
  assert.equal(jsonDeeperThan(Buffer.from(`["\\\\",${nest(32)}]`), 32), true);
  assert.equal(jsonDeeperThan(Buffer.from(JSON.stringify({ text: '中文[[[' })), 2), false);
});

test('a request with an unknown key id is answered before its body is sent', { timeout: HANG_BOUND_MS }, async (t) => {
  const f = await gateFixture();
  f.clock.now = Date.now();
  const gone = f.keys.add(SECRET);
  f.keys.keys.delete(gone.id);
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = f.app.server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  t.after(async () => {
    socket.destroy();
    await f.app.close();
  });
  const head = [
    'POST /api/v1/moderate HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Content-Length: 1000000',
    `X-API-Key: ${gone.id}`, `X-Timestamp: ${Math.floor(Date.now() / 1000)}`, 'X-Nonce: nonce-no-body-1', `X-Signature: ${FAKE_SIGNATURE}`,
  ].join('\r\n');
  // Only the headers: a gate that waited for the body would never answer.
  socket.write(`${head}\r\n\r\n`);
  let answer = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      if (/\r\n\r\n[\s\S]*\}\s*$/.test(answer)) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  assert.match(answer, /^HTTP\/1\.1 401 /);
  assert.match(answer, /"code":"unknown_key"/);
  // The unread body is not waited for: the connection closes after the answer.
  assert.match(answer, /\r\nconnection: close\r\n/i);
  assert.deepEqual(f.audit.records.map((r) => [r.status, r.reason, r.input_bytes]), [[401, 'unknown_key', 0]]);
});

test('invalid JSON from a sender whose signature is unchecked counts as a failed authentication', async () => {
  const f = await gateFixture({ authFailures: { limit: 3, windowSec: 60, blockSec: 120 } });
  const key = f.keys.add(SECRET);
  const send = (nonce: string) => f.app.inject({
    method: 'POST', url: '/api/v1/moderate', payload: '{"text":', remoteAddress: '198.51.100.52',
    headers: { 'content-type': 'application/json', 'x-api-key': key.id, 'x-timestamp': String(Math.floor(f.clock.now / 1000)), 'x-nonce': nonce, 'x-signature': FAKE_SIGNATURE },
  });
  for (let i = 0; i < 4; i++) assert.equal((await send(`nonce-bad-json-${i}`)).statusCode, 400);
  const blocked = await send('nonce-bad-json-9');
  assert.equal(blocked.statusCode, 429);
  assert.equal(blocked.json().error.code, 'auth_throttled');
  // A signed request from the same address is throttled too; other addresses are not.
  assert.equal((await f.send({ keyId: key.id, secret: SECRET, remoteAddress: '198.51.100.52' })).statusCode, 429);
  assert.equal((await f.send({ keyId: key.id, secret: SECRET, remoteAddress: '198.51.100.53' })).statusCode, 200);
  assert.deepEqual(f.audit.records.slice(0, 4).map((r) => [r.status, r.reason, r.key_id]), Array(4).fill([400, 'invalid_json', null]));
});

test('200 invalid unsigned requests from one address end with 429 auth_throttled', async () => {
  const f = await gateFixture();
  const key = f.keys.add(SECRET);
  const ts = () => String(Math.floor(f.clock.now / 1000));
  const kinds: Array<(i: number) => Record<string, string>> = [
    () => ({}),
    (i) => ({ 'x-api-key': key.id, 'x-timestamp': ts(), 'x-nonce': `nonce-inv-${i}`, 'x-signature': FAKE_SIGNATURE }),
    (i) => ({ 'x-api-key': 'gk_not_a_key', 'x-timestamp': ts(), 'x-nonce': `nonce-inv-${i}`, 'x-signature': FAKE_SIGNATURE }),
    (i) => ({ 'x-api-key': key.id, 'x-timestamp': '1', 'x-nonce': `nonce-inv-${i}`, 'x-signature': FAKE_SIGNATURE }),
  ];
  // Every body is invalid; the header kinds rotate underneath them.
  const payloads = ['{"text":', DEEP.slice(0, 1000)];
  const codes: string[] = [];
  for (let i = 0; i < 200; i++) {
    const res = await f.app.inject({
      method: 'POST', url: '/api/v1/moderate', payload: payloads[Math.floor(i / kinds.length) % payloads.length], remoteAddress: '198.51.100.54',
      headers: { 'content-type': 'application/json', ...kinds[i % kinds.length]!(i) },
    });
    codes.push(res.statusCode === 429 ? res.json().error.code : String(res.statusCode));
  }
  assert.equal(codes.at(-1), 'auth_throttled');
  const first = codes.indexOf('auth_throttled');
  assert.ok(first > 0 && first <= 21, `throttled from request ${first}: ${codes.slice(0, 30).join(' ')}`);
  assert.ok(codes.slice(first).every((c) => c === 'auth_throttled'));
});

test('the signature is checked before the schema: an unsigned body never reaches the validator', async (t) => {
  const s = await serverFixture(t);
  const key = s.key();
  const wrong = { id: key.id, secret: 'gs_not_the_secret' };
  const res = await s.send({ url: '/api/v1/moderate', body: { text: 5, extra: [1] }, key: wrong });
  assert.equal(res.statusCode, 401);
  assert.equal(res.json().error.code, 'bad_signature');
  // Correctly signed, the same body gets the schema's answer.
  const signed = await s.send({ url: '/api/v1/moderate', body: { text: 5 }, key });
  assert.equal(signed.statusCode, 422);
  assert.equal(signed.json().error.code, 'invalid_request');
});

test('a key used from outside its allow-list counts towards the address block', async () => {
  const f = await gateFixture({ authFailures: { limit: 2, windowSec: 60, blockSec: 120 } });
  const key = f.keys.add(SECRET, { allowIps: ['192.0.2.0/24'] });
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push((await f.send({ keyId: key.id, secret: SECRET, remoteAddress: '198.51.100.55' })).statusCode);
  assert.deepEqual(codes, [403, 403, 403, 429]);
});
