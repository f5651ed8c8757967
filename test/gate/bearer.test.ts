import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Gate, type GateRequest } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS, parseTrusted } from '../../src/gate/options.js';
import { loadTiers } from '../../src/keys/tiers.js';
import { bearerToken, newSecret } from '../../src/keys/token.js';
import { MemoryKeys } from '../helpers/gate-app.js';

// Issue 14.1: where a bearer credential is accepted, and what it is refused for, at the gate itself.

function setup(tiersSection?: Record<string, unknown>) {
  const keys = new MemoryKeys();
  const state = new MemoryGateState({ nonceCapacity: 1000, authFailures: { limit: 1000, windowSec: 60, blockSec: 1 } });
  const options = { ...DEFAULT_GATE_OPTIONS, trustedProxies: parseTrusted(['10.0.0.2/32'], 'test') };
  const gate = new Gate({ keys, state, tiers: loadTiers(tiersSection), options });
  const check = (token: string, peerIp: string, extra: Partial<GateRequest> & { headers?: Record<string, string> } = {}) =>
    gate.check({ method: 'GET', path: '/v1/models', rawQuery: '', peerIp, ...extra, headers: { authorization: `Bearer ${token}`, ...extra.headers } });
  return { keys, state, check };
}

test('a bearer credential is accepted over TLS, from loopback, or via a proxy that says https; refused otherwise', async () => {
  const { keys, check } = setup();
  const secret = newSecret();
  const key = keys.add(secret, { allowBearer: true });
  const token = bearerToken(key.id, secret);
  const cases: Array<[string, string, Partial<GateRequest> & { headers?: Record<string, string> }, string]> = [
    ['loopback, no proxy', '127.0.0.1', {}, 'ok'],
    ['IPv6 loopback', '::1', {}, 'ok'],
    ['another machine, plain HTTP', '198.51.100.4', {}, 'bearer_insecure_transport'],
    ['another machine, TLS to the daemon', '198.51.100.4', { tls: true }, 'ok'],
    ['another machine claiming https itself (untrusted header)', '198.51.100.4', { headers: { 'x-forwarded-proto': 'https' } }, 'bearer_insecure_transport'],
    ['trusted proxy, client elsewhere, https', '10.0.0.2', { headers: { 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' } }, 'ok'],
    ['trusted proxy, client elsewhere, no X-Forwarded-Proto', '10.0.0.2', { headers: { 'x-forwarded-for': '203.0.113.5' } }, 'bearer_insecure_transport'],
    ['trusted proxy, client elsewhere, http', '10.0.0.2', { headers: { 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'http' } }, 'bearer_insecure_transport'],
    ['local proxy (not listed) saying https', '127.0.0.1', { headers: { 'x-forwarded-proto': 'https' } }, 'ok'],
    ['local proxy saying http', '127.0.0.1', { headers: { 'x-forwarded-proto': 'http' } }, 'bearer_insecure_transport'],
    // The address a proxy names is not where the secret came from: a plain-HTTP request relayed by a proxy is refused.
    ['trusted proxy naming a loopback client, no X-Forwarded-Proto', '10.0.0.2', { headers: { 'x-forwarded-for': '127.0.0.1' } }, 'bearer_insecure_transport'],
    ['local proxy (not listed) relaying another client, no X-Forwarded-Proto', '127.0.0.1', { headers: { 'x-forwarded-for': '203.0.113.9' } }, 'bearer_insecure_transport'],
    ['local proxy relaying with Forwarded only', '127.0.0.1', { headers: { forwarded: 'for=203.0.113.9' } }, 'bearer_insecure_transport'],
  ];
  for (const [what, peer, extra, expected] of cases) {
    const result = await check(token, peer, extra);
    assert.equal(result.ok ? 'ok' : result.code, expected, what);
    if (result.ok) result.release();
  }
});

test('bearer refusals: no opt-in, wrong secret, revoked, malformed; a tier may opt in for all its keys', async () => {
  const { keys, check } = setup({ research: { models: ['*'], allow_bearer: true } });
  const secret = newSecret();
  const plain = keys.add(secret);
  assert.equal(((await check(bearerToken(plain.id, secret), '127.0.0.1')) as { code: string }).code, 'bearer_not_allowed');
  const viaTier = keys.add(secret, { tier: 'research' });
  assert.equal((await check(bearerToken(viaTier.id, secret), '127.0.0.1')).ok, true);

  const flagged = keys.add(secret, { allowBearer: true });
  assert.equal(((await check(bearerToken(flagged.id, newSecret()), '127.0.0.1')) as { code: string }).code, 'bad_bearer');
  assert.equal(((await check(`${flagged.id}:${secret}`, '127.0.0.1')) as { code: string }).code, 'malformed_auth');
  keys.keys.get(flagged.id)!.record.status = 'revoked';
  assert.equal(((await check(bearerToken(flagged.id, secret), '127.0.0.1')) as { code: string }).code, 'revoked_key');
});

test('a signed request is never read as a bearer one, and a bearer request needs no nonce (replays pass: the documented weakness)', async () => {
  const { keys, check } = setup();
  const secret = newSecret();
  const key = keys.add(secret, { allowBearer: true });
  const token = bearerToken(key.id, secret);
  // With X-API-Key present the request is a signed one: the Authorization header is not a way around a signature.
  const signedAttempt = await check(token, '127.0.0.1', { headers: { 'x-api-key': key.id } });
  assert.equal(signedAttempt.ok ? 'ok' : signedAttempt.code, 'missing_auth');
  for (let i = 0; i < 3; i++) {
    const again = await check(token, '127.0.0.1');
    assert.equal(again.ok, true);
    if (again.ok) again.release();
  }
});
