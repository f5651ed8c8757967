import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthFailurePolicy, GateState, LimitOutcome } from '../../src/gate/state.js';

/** What each backend is built with; the clock is the test's. */
export interface ContractSetup {
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  clock: () => number;
}

const POLICY: AuthFailurePolicy = { limit: 3, windowSec: 60, blockSec: 300 };
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const A = 'gk_key_a';
const B = 'gk_key_b';

/**
 * The behaviour every GateState backend must share (memory, SQLite, Redis): run by each backend's test
 * file with a factory that builds a fresh state on the given fake clock.
 */
export function stateContract(backend: string, make: (t: { after(fn: () => void): void }, setup: ContractSetup) => GateState | Promise<GateState>): void {
  const fresh = async (t: { after(fn: () => void): void }, nonceCapacity = 1000) => {
    const clock = { now: T0 };
    const state = await make(t, { nonceCapacity, authFailures: POLICY, clock: () => clock.now });
    t.after(() => state.close());
    return { state, clock };
  };

  test(`${backend}: a nonce is single-use per key until its lifetime ends`, async (t) => {
    const { state, clock } = await fresh(t);
    assert.equal(await state.recordNonce(A, 'nonce-0001', 10_000, 100), 'ok');
    assert.equal(await state.recordNonce(A, 'nonce-0001', 10_000, 100), 'replayed');
    assert.equal(await state.recordNonce(B, 'nonce-0001', 10_000, 100), 'ok', 'nonces are per key');
    clock.now += 9_999;
    assert.equal(await state.recordNonce(A, 'nonce-0001', 10_000, 100), 'replayed');
    clock.now += 1;
    assert.equal(await state.recordNonce(A, 'nonce-0001', 10_000, 100), 'ok');
  });

  test(`${backend}: a forgotten nonce (its request was refused) counts as new`, async (t) => {
    const { state } = await fresh(t);
    assert.equal(await state.recordNonce(A, 'nonce-0002', 10_000, 100), 'ok');
    await state.forgetNonce(A, 'nonce-0002');
    assert.equal(await state.recordNonce(A, 'nonce-0002', 10_000, 100), 'ok');
    await state.forgetNonce(A, 'never-recorded');
  });

  test(`${backend}: one key holds at most its share; other keys keep their room; the store refuses when full`, async (t) => {
    const { state, clock } = await fresh(t, 10);
    for (let i = 0; i < 3; i++) assert.equal(await state.recordNonce(A, `a-nonce-${i}`, 10_000, 3), 'ok');
    assert.equal(await state.recordNonce(A, 'a-nonce-x', 10_000, 3), 'key_full');
    // A forgotten nonce gives its room back.
    await state.forgetNonce(A, 'a-nonce-0');
    assert.equal(await state.recordNonce(A, 'a-nonce-y', 10_000, 3), 'ok');
    for (let i = 0; i < 7; i++) assert.equal(await state.recordNonce(B, `b-nonce-${i}`, 10_000, 10), 'ok');
    assert.equal(await state.recordNonce(B, 'b-nonce-x', 10_000, 10), 'full', 'a live nonce is never forgotten early');
    clock.now += 10_000;
    assert.equal(await state.recordNonce(B, 'b-nonce-x', 10_000, 10), 'ok', 'expired nonces make room');
    for (let i = 0; i < 3; i++) assert.equal(await state.recordNonce(A, `a-nonce-late-${i}`, 10_000, 3), 'ok');
  });

  test(`${backend}: the token bucket (fake clock) admits at most burst + rate*t over any interval and reaches the steady rate`, async (t) => {
    const { state, clock } = await fresh(t);
    // Finding 7: --rate 5/s --burst 10, 200 requests at 20/s let 75 through before; a token bucket admits 10 + 5t.
    const accepted: number[] = [];
    for (let i = 0; i < 200; i++) {
      clock.now = T0 + i * 50;
      if ((await state.consumeRate(A, 5, 10)).allowed) accepted.push(clock.now);
    }
    // 200 requests over 9.95 s: 10 + 5 * 9.95 -> 59 at most; the steady rate is reached, so no fewer.
    assert.equal(accepted.length, 59);
    for (let i = 0; i < accepted.length; i++) {
      for (let j = i; j < accepted.length; j++) {
        const seconds = (accepted[j]! - accepted[i]!) / 1000;
        assert.ok(j - i + 1 <= 10 + 5 * seconds + 1e-9, `${j - i + 1} accepted within ${seconds} s`);
      }
    }
    // Per second of the run: the burst, then exactly the rate.
    const perSecond = Array.from({ length: 10 }, (_, s) => accepted.filter((at) => at >= T0 + s * 1000 && at < T0 + (s + 1) * 1000).length);
    assert.deepEqual(perSecond.slice(2), Array(8).fill(5));
    assert.ok(perSecond[0]! <= 15 && perSecond[0]! >= 10, `first second ${perSecond[0]}`);
  });

  test(`${backend}: a burst, then a refusal that says when, and a refused request takes nothing`, async (t) => {
    const { state, clock } = await fresh(t);
    let last: LimitOutcome | undefined;
    const remaining: number[] = [];
    for (let i = 0; i < 10; i++) {
      last = await state.consumeRate(A, 5, 10);
      assert.ok(last.allowed);
      remaining.push(last.remaining);
    }
    assert.deepEqual(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    last = await state.consumeRate(A, 5, 10);
    assert.equal(last.allowed, false);
    assert.equal(last.resetMs, 200);
    for (let i = 0; i < 50; i++) assert.equal((await state.consumeRate(A, 5, 10)).allowed, false);
    clock.now += 200;
    assert.ok((await state.consumeRate(A, 5, 10)).allowed, 'refusals did not push the next token further away');
    assert.equal((await state.consumeRate(A, 5, 10)).allowed, false);
    assert.ok((await state.consumeRate(B, 5, 10)).allowed, 'buckets are per key');
    // Rates below one per second work too (one request per 2 s).
    assert.ok((await state.consumeRate('gk_slow', 0.5, 1)).allowed);
    assert.equal((await state.consumeRate('gk_slow', 0.5, 1)).allowed, false);
    clock.now += 2000;
    assert.ok((await state.consumeRate('gk_slow', 0.5, 1)).allowed);
  });

  test(`${backend}: the daily quota counts per key and UTC day`, async (t) => {
    const { state } = await fresh(t);
    const day1 = Date.UTC(2026, 0, 1, 23, 59, 0);
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await state.consumeQuota(A, 3, day1));
    assert.deepEqual(outcomes.map((o) => [o.allowed, o.remaining]), [[true, 2], [true, 1], [true, 0], [false, 0]]);
    assert.equal(outcomes[3]!.resetMs, 60_000);
    assert.ok((await state.consumeQuota(B, 3, day1)).allowed);
    assert.ok((await state.consumeQuota(A, 3, Date.UTC(2026, 0, 2, 0, 0, 1))).allowed);
    assert.equal((await state.consumeQuota(A, 0, day1)).allowed, false);
  });

  test(`${backend}: failed authentications block an address for a while`, async (t) => {
    const { state, clock } = await fresh(t);
    for (let i = 0; i < 3; i++) assert.equal(await state.recordAuthFailure('198.51.100.7'), 0);
    assert.equal(await state.authBlockedFor('198.51.100.7'), 0);
    assert.equal(await state.recordAuthFailure('198.51.100.7'), 300_000);
    assert.equal(await state.authBlockedFor('198.51.100.7'), 300_000);
    assert.equal(await state.authBlockedFor('198.51.100.8'), 0);
    clock.now += 299_000;
    assert.equal(await state.authBlockedFor('198.51.100.7'), 1000);
    clock.now += 1000;
    assert.equal(await state.authBlockedFor('198.51.100.7'), 0);
    // A new window: failures spread wider than the window never block.
    for (let i = 0; i < 10; i++) {
      clock.now += 61_000;
      assert.equal(await state.recordAuthFailure('198.51.100.9'), 0);
    }
  });

  test(`${backend}: concurrency slots`, async (t) => {
    const { state } = await fresh(t);
    assert.ok(await state.acquireSlot(A, 2));
    assert.ok(await state.acquireSlot(A, 2));
    assert.equal(await state.acquireSlot(A, 2), false);
    assert.ok(await state.acquireSlot(B, 2));
    await state.releaseSlot(A);
    assert.ok(await state.acquireSlot(A, 2));
  });
}
