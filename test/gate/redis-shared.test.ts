import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { RedisGateState } from '../../src/gate/redis-state.js';
import { StateUnavailableError } from '../../src/gate/state.js';
import { parseRedisStateUrl } from '../../src/gate/redis-url.js';
import { fakeEngine, type FakeEngine } from '../helpers/fake-engine.js';
import { MemoryKeys } from '../helpers/gate-app.js';
import { startRedis, type RunningRedis } from '../helpers/redis.js';
import { serverFixture, type ServerFixture } from '../helpers/server-app.js';
import { runCli, tempDir } from '../helpers/cli.js';

/*
 * Three daemons in one process (each its own app, engine and Redis connection, one key store) sharing one real
 * redis-server: what needs an engine that holds requests on demand. test/daemon/redis-pool.test.ts runs the
 * real daemon processes.
 */

interface Daemon {
  s: ServerFixture;
  engine: FakeEngine;
  state: RedisGateState;
}

async function daemons(t: { after(fn: () => unknown): void }, redis: RunningRedis, n: number, prefix: string): Promise<{ keys: MemoryKeys; pool: Daemon[] }> {
  const keys = new MemoryKeys();
  const pool: Daemon[] = [];
  for (let i = 0; i < n; i++) {
    const state = new RedisGateState({ ...parseRedisStateUrl(`${redis.url}?prefix=${prefix}`, '--state'), nonceCapacity: 100_000, authFailures: { limit: 1000, windowSec: 60, blockSec: 1 } });
    t.after(() => state.close());
    assert.ok(await state.whenUp(60_000));
    const engine = fakeEngine();
    await engine.start();
    pool.push({ s: await serverFixture(t, { engine, state, keys }), engine, state });
  }
  return { keys, pool };
}

const MODERATE = '/api/v1/moderate';

test('redis, three daemons: --concurrency 2 holds across them; a slot freed on one is taken on another', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { pool: [a, b, c] } = await daemons(t, redis, 3, 'conc:');
  const key = a!.s.key('enterprise', { overrides: { concurrency: 2 } });
  const heldA = a!.s.send({ url: MODERATE, key, body: { text: 'wait [[held]]' } });
  const heldB = b!.s.send({ url: MODERATE, key, body: { text: 'wait [[held]]' } });
  await Promise.all([a!.engine.held, b!.engine.held]);
  for (const d of [c!, a!, b!]) {
    const refused = await d.s.send({ url: MODERATE, key, body: { text: 'hello' } });
    assert.equal(refused.statusCode, 429, refused.body);
    assert.equal(refused.json().error.code, 'concurrency_limited');
  }
  a!.engine.release();
  assert.equal((await heldA).statusCode, 200);
  const onC = await c!.s.send({ url: MODERATE, key, body: { text: 'hello' } });
  assert.equal(onC.statusCode, 200, 'the slot daemon A gave back is free on daemon C');
  b!.engine.release();
  assert.equal((await heldB).statusCode, 200);
  assert.equal((await a!.state.slots(key.id)).size, 0, 'every slot went back');
});

test('redis down: model routes answer 503 state_unavailable (none unchecked), /readyz and /metrics say why, doctor too; all back after a restart', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { pool: [a] } = await daemons(t, redis, 1, 'down:');
  const home = tempDir(t);
  const key = a!.s.key();
  assert.equal((await a!.s.send({ url: MODERATE, key, body: { text: 'hello' } })).statusCode, 200);
  assert.equal((await a!.s.send({ url: '/readyz' })).statusCode, 200);

  await redis.stop();
  for (let i = 0; i < 20; i++) {
    const res = await a!.s.send({ url: MODERATE, key, body: { text: 'hello' } });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().error.code, 'state_unavailable');
    assert.equal(res.headers['retry-after'], '1');
  }
  // Unsigned requests too: the address block cannot be checked either.
  assert.equal((await a!.s.send({ url: MODERATE, body: { text: 'hello' } })).json().error.code, 'state_unavailable');
  const ready = await a!.s.send({ url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(ready.json().state, { backend: 'redis', up: false });
  assert.match(ready.json().reason, new RegExp(`gate state redis://127.0.0.1:${redis.port} unavailable`));
  const metrics = (await a!.s.send({ url: '/metrics' })).body;
  assert.match(metrics, /^guard_state_up\{backend="redis"\} 0$/m);
  assert.match(metrics, /^guard_state_errors_total\{backend="redis"\} ([2-9]\d|\d{3,})$/m);
  assert.ok(a!.s.audit.records.filter((r) => r.reason === 'state_unavailable').length >= 20, 'audited with the reason');

  const doctor = await runCli(['--home', home, '--json', 'doctor'], { env: { GUARDCTL_STATE: redis.url } });
  const check = doctor.json<{ checks: Array<{ name: string; ok: boolean; detail: string }> }>().checks.find((c) => c.name === 'gate state');
  assert.equal(check?.ok, false);
  assert.match(check!.detail, /unavailable.*503 state_unavailable/);

  await redis.start();
  assert.ok(await a!.state.whenUp(60_000));
  const back = await a!.s.send({ url: MODERATE, key, body: { text: 'hello' } });
  assert.equal(back.statusCode, 200, back.body);
  assert.equal((await a!.s.send({ url: '/readyz' })).statusCode, 200);
  assert.match((await a!.s.send({ url: '/metrics' })).body, /^guard_state_up\{backend="redis"\} 1$/m);
  const doctorUp = await runCli(['--home', home, '--json', 'doctor'], { env: { GUARDCTL_STATE: redis.url } });
  assert.equal(doctorUp.json<{ checks: Array<{ name: string; ok: boolean }> }>().checks.find((c) => c.name === 'gate state')?.ok, true);
});

test('a state that fails after a slot was taken: 503 state_unavailable, and the slot goes back', async (t) => {
  // A memory state whose quota step fails as a Redis that vanished between two scripts would.
  class Vanishing extends MemoryGateState {
    failQuota = true;
    override consumeQuota(keyId: string, daily: number, now: number) {
      if (this.failQuota) throw new StateUnavailableError('the gate state redis://127.0.0.1:1 did not answer: gone');
      return super.consumeQuota(keyId, daily, now);
    }
  }
  const state = new Vanishing({ nonceCapacity: 1000, authFailures: { limit: 1000, windowSec: 60, blockSec: 1 } });
  const s = await serverFixture(t, { state });
  const key = s.key('enterprise', { overrides: { concurrency: 1, daily: 10 } });
  const failed = await s.send({ url: MODERATE, key, body: { text: 'hello' } });
  assert.equal(failed.statusCode, 503, failed.body);
  assert.equal(failed.json().error.code, 'state_unavailable');
  state.failQuota = false;
  const next = await s.send({ url: MODERATE, key, body: { text: 'hello' } });
  assert.equal(next.statusCode, 200, `the failed request gave its only slot back: ${next.body}`);
});
