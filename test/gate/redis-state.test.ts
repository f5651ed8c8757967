import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resolveSettings } from '../../src/daemon/settings.js';
import { RedisGateState } from '../../src/gate/redis-state.js';
import { parseRedisStateUrl } from '../../src/gate/redis-url.js';
import { StateUnavailableError } from '../../src/gate/state.js';
import { startRedis } from '../helpers/redis.js';
import { haveProgram } from '../helpers/system.js';
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
    assert.ok((await a.authBlockedFor('198.51.100.1')) > 0);
  });

  test('redis: a slot held by a connection that vanished comes back at the end of its lease; a live one is renewed', async (t) => {
    const prefix = `lease${++prefixes}:`;
    const clock = { now: Date.UTC(2026, 0, 1) };
    const dead = await open(redis.url, { prefix, leaseMs: 5_000, clock: () => clock.now });
    const live = await open(redis.url, { prefix, leaseMs: 5_000, clock: () => clock.now });
    t.after(() => live.close());
    assert.ok(await dead.acquireSlot('gk_a', 1));
    // Gone without a word (what kill -9 leaves): no release, no heartbeat.
    (dead as unknown as { redis: { disconnect(): void } }).redis.disconnect();
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
    await assert.rejects(state.authBlockedFor('192.0.2.1'), (err: unknown) => err instanceof StateUnavailableError
      && err.message.includes(`redis://127.0.0.1:${redis.port}`));
    const down = state.health();
    assert.equal(down.up, false);
    assert.ok(down.errors >= 5);
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
