import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { GuardError } from '../../src/core/errors.js';
import { openGateState } from '../../src/gate/open-state.js';
import { SqliteGateState } from '../../src/gate/sqlite-state.js';
import { tempDir } from '../helpers/cli.js';
import { stateContract } from './state-contract.js';

stateContract('sqlite', (t, setup) => SqliteGateState.open({ file: path.join(tempDir(t), 'gate-state.db'), ...setup }));

const POLICY = { limit: 1, windowSec: 60, blockSec: 300 };

test('sqlite: nonces, buckets, quotas and blocks survive closing and reopening the file', async (t) => {
  const file = path.join(tempDir(t), 'home', 'gate-state.db');
  const clock = { now: Date.UTC(2026, 0, 1, 12, 0, 0) };
  const open = () => SqliteGateState.open({ file, nonceCapacity: 100, authFailures: POLICY, clock: () => clock.now });
  let state = open();
  assert.equal(await state.recordNonce('gk_a', 'nonce-keep', 60_000, 10), 'ok');
  for (let i = 0; i < 10; i++) state.consumeRate('gk_a', 1, 10);
  for (let i = 0; i < 2; i++) await state.consumeQuota('gk_a', 2, clock.now);
  await state.recordAuthFailure('203.0.113.9');
  assert.ok((await state.recordAuthFailure('203.0.113.9')) > 0);
  // What was not waited for (buckets, failures) is committed at the next turn, or at close.
  state.close();
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);

  clock.now += 1000;
  state = open();
  t.after(() => state.close());
  assert.equal(await state.recordNonce('gk_a', 'nonce-keep', 60_000, 10), 'replayed');
  assert.equal(state.heldBy('gk_a'), 1, 'the per-key count is rebuilt from the file');
  assert.equal(state.consumeRate('gk_a', 1, 10).allowed, true, 'one token came back in the second');
  assert.equal(state.consumeRate('gk_a', 1, 10).allowed, false, 'the bucket was not refilled by the restart');
  assert.equal((await state.consumeQuota('gk_a', 2, clock.now)).allowed, false);
  assert.ok(state.authBlockedFor('203.0.113.9') > 0);
});

test('sqlite: expired rows are deleted a few per write, and at start', async (t) => {
  const file = path.join(tempDir(t), 'gate-state.db');
  const clock = { now: Date.UTC(2026, 0, 1, 12, 0, 0) };
  const open = () => SqliteGateState.open({ file, nonceCapacity: 10_000, authFailures: POLICY, clock: () => clock.now });
  const rows = () => {
    const reader = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return reader.prepare('SELECT COUNT(*) FROM nonces').pluck().get();
    } finally {
      reader.close();
    }
  };
  let state = open();
  for (let i = 0; i < 100; i++) state.recordNonce('gk_a', `old-nonce-${i}`, 1000, 1000);
  await state.durable();
  clock.now += 1000;
  for (let i = 0; i < 10; i++) state.recordNonce('gk_b', `new-nonce-${i}`, 1000, 1000);
  await state.durable();
  assert.equal(state.heldBy('gk_a'), 0, 'memory forgets expired nonces at once');
  state.close();
  assert.equal(rows(), 100 - 40 + 10, 'four expired rows went with each of the ten writes');
  state = open();
  state.close();
  assert.equal(rows(), 10, 'and the rest at start');
  state = open();
  t.after(() => state.close());
  assert.equal(state.heldBy('gk_b'), 10);
});

test('sqlite: expired rows leave the file at most once a second, four per nonce written since the last sweep', async (t) => {
  const file = path.join(tempDir(t), 'gate-state.db');
  const clock = { now: Date.UTC(2026, 0, 1, 12, 0, 0) };
  const state = SqliteGateState.open({ file, nonceCapacity: 10_000, authFailures: POLICY, clock: () => clock.now });
  t.after(() => state.close());
  const rows = () => state.storedNonces();
  const commit = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) state.recordNonce('gk_a', `${prefix}-${i}`, 1000, 10_000);
    await state.durable();
  };
  await commit('old-nonce', 100);
  clock.now += 1000;
  await commit('first', 5);
  assert.equal(rows(), 100 - 20 + 5, 'the first commit of a second sweeps');
  clock.now += 999;
  await commit('second', 5);
  await commit('third', 5);
  assert.equal(rows(), 85 + 10, 'later commits within that second sweep nothing');
  clock.now += 1;
  await commit('fourth', 1);
  assert.equal(rows(), 95 + 1 - 4 * 11, 'the next sweep makes up for every nonce written since');
});

test('sqlite: nonces recorded in one turn of the event loop are committed together; until then a second record is a replay', async (t) => {
  const file = path.join(tempDir(t), 'gate-state.db');
  const state = SqliteGateState.open({ file, nonceCapacity: 1000, authFailures: POLICY });
  t.after(() => state.close());
  const answers = Array.from({ length: 50 }, (_, i) => state.recordNonce('gk_a', `turn-nonce-${i}`, 60_000, 1000));
  assert.deepEqual(answers, Array(50).fill('ok'));
  // Until it commits, a second record of the same nonce is already a replay; a forgotten one writes nothing.
  assert.equal(state.recordNonce('gk_a', 'turn-nonce-0', 60_000, 1000), 'replayed');
  state.forgetNonce('gk_a', 'turn-nonce-49');
  await state.durable();
  assert.equal(state.recordNonce('gk_a', 'turn-nonce-1', 60_000, 1000), 'replayed', 'now from the file');
  state.close();
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  t.after(() => reader.close());
  assert.equal(reader.prepare('SELECT COUNT(*) FROM nonces').pluck().get(), 49);
});

test('sqlite: a damaged file, or one another daemon holds, is a GUARD_E_STATE error naming the file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'gate-state.db');
  fs.writeFileSync(file, Buffer.alloc(8192, 'garbage!'), { mode: 0o600 });
  const open = () => SqliteGateState.open({ file, nonceCapacity: 10, authFailures: POLICY });
  assert.throws(open, (err: unknown) => err instanceof GuardError && err.code === 'GUARD_E_STATE'
    && err.message.includes(file) && /move it aside/.test(err.hint ?? ''));
  fs.rmSync(file);
  const first = open();
  t.after(() => first.close());
  assert.throws(open, (err: unknown) => err instanceof GuardError && err.code === 'GUARD_E_STATE' && /in use by another guardctl serve/.test(err.message));
});

test('--state: sqlite opens <home>/gate-state.db; memory says, with a warning, what a restart loses', async (t) => {
  const home = tempDir(t);
  const warnings: string[] = [];
  const options = { nonceCapacity: 10, authFailures: POLICY };
  const durable = openGateState('sqlite', home, options, (m) => warnings.push(m));
  t.after(() => durable.close());
  assert.equal(durable.describe, path.join(home, 'gate-state.db'));
  assert.ok(fs.existsSync(durable.describe));
  assert.equal(warnings.length, 0);
  const memory = openGateState('memory', home, options, (m) => warnings.push(m));
  assert.equal(memory.describe, 'memory');
  assert.match(warnings.join('\n'), /--state memory: .*lost on restart/);
});
