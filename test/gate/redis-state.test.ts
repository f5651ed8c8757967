import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resolveSettings } from '../../src/daemon/settings.js';
import { RedisGateState } from '../../src/gate/redis-state.js';
import { parseRedisStateUrl } from '../../src/gate/redis-url.js';
import { StateUnavailableError } from '../../src/gate/state.js';
import { startRedis } from '../helpers/redis.js';
import { haveProgram } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';
import { Gate, type GateResult } from '../../src/gate/gate.js';
import { DEFAULT_GATE_OPTIONS } from '../../src/gate/options.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { loadTiers } from '../../src/keys/tiers.js';
import { MemoryKeys } from '../helpers/gate-app.js';
import { stateContract } from './state-contract.js';

// One redis-server for the file; each state gets a prefix of its own, so the tests cannot see each other's keys.
const redis = await startRedis({ skip: () => {}, after: (fn) => after(fn) });
let prefixes = 0;

const POLICY = { limit: 3, windowSec: 60, blockSec: 300 };

async function open(url: string, extra: Partial<ConstructorParameters<typeof RedisGateState>[0]> = {}): Promise<RedisGateState> {
  const state = new RedisGateState({ ...parseRedisStateUrl(url, '--state'), prefix: `t${++prefixes}:`, nonceCapacity: 1000, authFailures: POLICY, ...extra });
  assert.ok(await state.whenUp(60_000), 'connected to the test redis-server');
  return state;
}

if (!redis) {
  test('redis state: redis-server is needed', (t) => {
    haveProgram(t, 'redis-server');
  });
} else {
  stateContract('redis', async (t, setup) => {
    const state = await open(redis.url, setup);
    t.after(() => void state.close());
    return state;
  });

  test('redis: two daemons (two connections) share nonces, buckets, quotas, slots and blocks', async (t) => {
    const prefix = `shared${++prefixes}:`;
    const a = await open(redis.url, { prefix });
    const b = await open(redis.url, { prefix });
    t.after(() => Promise.all([a.close(), b.close()]));
    assert.equal(await a.recordNonce('gk_a', 'nonce-shared', 60_000, 10), 'ok');
    assert.equal(await b.recordNonce('gk_a', 'nonce-shared', 60_000, 10), 'replayed');
    assert.ok((await a.consumeRate('gk_a', 1, 1)).allowed);
    assert.equal((await b.consumeRate('gk_a', 1, 1)).allowed, false);
    const now = Date.now();
    assert.ok((await a.consumeQuota('gk_a', 1, now)).allowed);
    assert.equal((await b.consumeQuota('gk_a', 1, now)).allowed, false);
    assert.ok(await a.acquireSlot('gk_a', 1));
    assert.equal(await b.acquireSlot('gk_a', 1), false);
    await a.releaseSlot('gk_a');
    assert.ok(await b.acquireSlot('gk_a', 1));
    for (let i = 0; i < 4; i++) await (i % 2 ? a : b).recordAuthFailure('198.51.100.1');
    assert.ok(a.authBlockedFor('198.51.100.1') > 0, 'the daemon that set the block knows it at once');
    // The other learns it from the block's message, and answers from memory (no round trip) from then on.
    await waitFor(() => b.authBlockedFor('198.51.100.1') > 0, 'daemon B heard of the block');
    assert.ok((await b.blockedInRedis('198.51.100.1')) > 0);
  });

  test('redis: one script per admission gives the gate the verdicts, headers and leftovers of the step-by-step scripts', async (t) => {
    const clock = { now: Date.UTC(2026, 0, 1, 23, 59, 58) };
    const keys = new MemoryKeys();
    const secret = 'gs_redis_admit_secret';
    const key = keys.add(secret, { overrides: { rate: 1, burst: 3, concurrency: 2, daily: 5 } });
    const open2 = () => open(redis.url, { prefix: `admit${++prefixes}:`, clock: () => clock.now });
    const once = await open2();
    const stepwise = await open2();
    // Without admit() the gate runs the one-step scripts: up to six round trips.
    Object.defineProperty(stepwise, 'admit', { value: undefined });
    t.after(() => Promise.all([once.close(), stepwise.close()]));
    const gates = [once, stepwise].map((state) => new Gate({ keys, state, tiers: loadTiers(undefined), options: DEFAULT_GATE_OPTIONS, now: () => clock.now }));
    const body = JSON.stringify({ text: 'hello' });
    let n = 0;
    const send = async (opts: { nonce?: string; ip?: string } = {}) => {
      const nonce = opts.nonce ?? `admit-nonce-${++n}`;
      const { headers } = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: key.id, secret, nonce, timestamp: String(Math.floor(clock.now / 1000)) });
      const lower = Object.fromEntries(Object.entries({ ...headers, 'content-type': 'application/json' }).map(([k, v]) => [k.toLowerCase(), v]));
      const results: GateResult[] = [];
      for (const gate of gates) {
        results.push(await gate.check({
          method: 'POST', path: '/api/v1/moderate', rawQuery: '', headers: lower, body: Buffer.from(body), json: JSON.parse(body),
          peerIp: opts.ip ?? '203.0.113.10', model: () => ({ name: 'guard-small', size: 'small' }),
        }));
      }
      const [a, b] = results.map((r) => (r.ok ? { ok: true, headers: r.headers } : { ok: false, code: r.code, headers: r.headers }));
      assert.deepEqual(a, b, `request ${nonce}`);
      return results;
    };
    const codes: string[] = [];
    const held: GateResult[][] = [];
    const track = (results: GateResult[]) => {
      codes.push(results[0]!.ok ? 'ok' : results[0]!.code);
      if (results[0]!.ok) held.push(results);
    };
    const releaseAll = () => held.splice(0).forEach((rs) => rs.forEach((r) => r.ok && r.release()));
    track(await send());
    track(await send());
    track(await send({ nonce: 'admit-refused' })); // concurrency: its nonce is forgotten
    releaseAll();
    await waitFor(async () => (await once.slots(key.id)).size === 0 && (await stepwise.slots(key.id)).size === 0, 'slots released');
    track(await send()); // the bucket (burst 3) is empty now
    clock.now += 1000;
    track(await send({ nonce: 'admit-refused' })); // its earlier refusal spent nothing: not a replay
    track(await send({ nonce: 'admit-refused' })); // now it is
    releaseAll();
    await waitFor(async () => (await once.slots(key.id)).size === 0 && (await stepwise.slots(key.id)).size === 0, 'slots released');
    for (let i = 0; i < 3; i++) {
      clock.now += 1000; // past midnight at the second: a new day, a new count
      track(await send());
      releaseAll();
      await waitFor(async () => (await once.slots(key.id)).size === 0 && (await stepwise.slots(key.id)).size === 0, 'slots released');
    }
    assert.deepEqual(codes, ['ok', 'ok', 'concurrency_limited', 'rate_limited', 'ok', 'replayed_nonce', 'ok', 'ok', 'ok']);

    // The daily quota: 5 a day, the 6th refused, holding neither nonce nor slot.
    for (let i = 0; i < 2; i++) {
      clock.now += 1000;
      track(await send());
      releaseAll();
    }
    clock.now += 1000;
    const [refused] = await send({ nonce: 'admit-over-quota' });
    assert.deepEqual(codes.slice(-2), ['ok', 'ok']);
    assert.equal(refused!.ok ? 'ok' : refused!.code, 'quota_exhausted');
    await waitFor(async () => (await once.slots(key.id)).size === 0, 'slots released');
    assert.equal(await once.recordNonce(key.id, 'admit-over-quota', 60_000, 100), 'ok', 'the refused request forgot its nonce');

    // An address blocked by another daemon whose message this one missed (a reconnect): a signed request is
    // refused at admission all the same, and the header stage knows the address from then on.
    const other = await open(redis.url, { prefix: (once as unknown as { p: string }).p, clock: () => clock.now });
    t.after(() => other.close());
    for (let i = 0; i < 4; i++) await other.recordAuthFailure('198.51.100.99');
    const known = (once as unknown as { blocks: Map<string, number> }).blocks;
    await waitFor(() => known.has('198.51.100.99'), 'the block message');
    known.clear();
    const nonce = 'admit-blocked';
    const { headers } = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: key.id, secret, nonce, timestamp: String(Math.floor(clock.now / 1000)) });
    const lower = Object.fromEntries(Object.entries({ ...headers, 'content-type': 'application/json' }).map(([k, v]) => [k.toLowerCase(), v]));
    const blocked = await gates[0]!.check({
      method: 'POST', path: '/api/v1/moderate', rawQuery: '', headers: lower, body: Buffer.from(body), json: JSON.parse(body), peerIp: '198.51.100.99',
    });
    assert.equal(blocked.ok ? 'ok' : blocked.code, 'auth_throttled');
    assert.equal(blocked.ok ? '' : blocked.headers['Retry-After'], '300');
    assert.equal(once.authBlockedFor('198.51.100.99'), 300_000);
    assert.equal(await once.recordNonce(key.id, nonce, 60_000, 100), 'ok', 'a blocked request records no nonce');
  });

  test('redis: a slot held by a connection that vanished comes back at the end of its lease; a live one is renewed', async (t) => {
    const prefix = `lease${++prefixes}:`;
    const clock = { now: Date.UTC(2026, 0, 1) };
    const dead = await open(redis.url, { prefix, leaseMs: 5_000, clock: () => clock.now });
    const live = await open(redis.url, { prefix, leaseMs: 5_000, clock: () => clock.now });
    t.after(() => live.close());
    assert.ok(await dead.acquireSlot('gk_a', 1));
    // Gone without a word (what kill -9 leaves): no release, no heartbeat.
    const conns = dead as unknown as { redis: { disconnect(): void }; listener: { disconnect(): void } };
    conns.redis.disconnect();
    conns.listener.disconnect();
    assert.equal(await live.acquireSlot('gk_a', 1), false);
    clock.now += 4_999;
    assert.equal(await live.acquireSlot('gk_a', 1), false);
    clock.now += 1;
    assert.ok(await live.acquireSlot('gk_a', 1), 'the lease ended');
    const [lease] = [...(await live.slots('gk_a')).values()];
    assert.equal(lease, clock.now + 5_000);
    clock.now += 4_000;
    await (live as unknown as { renew(): Promise<void> }).renew();
    assert.equal([...(await live.slots('gk_a')).values()][0], clock.now + 5_000, 'the heartbeat extends the lease of a slot still held');
  });

  test('redis: Redis stopped -> every operation fails fast with StateUnavailableError and health says why; back by itself after a restart', async (t) => {
    const state = await open(redis.url);
    t.after(() => state.close());
    assert.deepEqual(state.health(), { backend: 'redis', up: true, errors: 0 });
    await redis.stop();
    await assert.rejects(state.recordNonce('gk_a', 'nonce-down', 60_000, 10), StateUnavailableError);
    await assert.rejects(state.consumeRate('gk_a', 1, 1), StateUnavailableError);
    await assert.rejects(state.consumeQuota('gk_a', 1, Date.now()), StateUnavailableError);
    await assert.rejects(state.acquireSlot('gk_a', 1), StateUnavailableError);
    await assert.rejects(state.blockedInRedis('192.0.2.1'), (err: unknown) => err instanceof StateUnavailableError
      && err.message.includes(`redis://127.0.0.1:${redis.port}`));
    await assert.rejects(state.admit({
      keyId: 'gk_a', ip: '192.0.2.1', nonce: 'nonce-down-2', ttlMs: 60_000, nonceShare: 10, rate: null, concurrency: 1, daily: null, now: Date.now(),
    }), StateUnavailableError);
    await assert.rejects(state.recordAuthFailure('192.0.2.1'), StateUnavailableError);
    const down = state.health();
    assert.equal(down.up, false);
    assert.ok(down.errors >= 7);
    assert.match(down.reason ?? '', new RegExp(`gate state redis://127.0.0.1:${redis.port} unavailable`));
    await redis.start();
    assert.ok(await state.whenUp(60_000), 'ioredis reconnected');
    // The scripts were lost with the server: EVALSHA falls back to EVAL.
    assert.equal(await state.recordNonce('gk_a', 'nonce-back', 60_000, 10), 'ok');
    assert.equal(state.health().up, true);
  });

  test('redis: URL parsing keeps the password out of what is shown, and reads lease, timeout and prefix', () => {
    const u = parseRedisStateUrl('rediss://gate:s3cret@redis.internal:6380/2?lease=10s&timeout=500ms&prefix=prod:', '--state');
    assert.equal(u.describe, 'rediss://redis.internal:6380/2');
    assert.equal(u.connect, 'rediss://gate:s3cret@redis.internal:6380/2');
    assert.deepEqual([u.leaseMs, u.timeoutMs, u.prefix], [10_000, 500, 'prod:']);
    assert.deepEqual([parseRedisStateUrl('redis://h', 'x').leaseMs, parseRedisStateUrl('redis://h', 'x').timeoutMs], [30_000, 2_000]);
    assert.throws(() => parseRedisStateUrl('redis://u:pw@h/db?x=1', 'GUARDCTL_STATE'), (err: Error) => /GUARDCTL_STATE/.test(err.message) && !err.message.includes('pw'));
    assert.throws(() => parseRedisStateUrl('redis://h?color=1', '--state'), /unknown parameter "color"/);
    // The serve setting: flag > GUARDCTL_STATE > gate.state, a URL checked where it is given.
    assert.equal(resolveSettings({}, { GUARDCTL_STATE: 'redis://10.0.0.5:6379/0' }, {}, 'f.yaml').state, 'redis://10.0.0.5:6379/0');
    assert.equal(resolveSettings({}, {}, {}, 'f.yaml', { state: 'rediss://gate:pw@r:6380' }).state, 'rediss://gate:pw@r:6380');
    assert.throws(() => resolveSettings({}, {}, {}, 'f.yaml', { state: 'redis://u:pw@r/x' }), (err: Error) => /gate\.state in f\.yaml/.test(err.message) && !err.message.includes('pw'));
  });
}
