import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admitsWhileRunning, nextTurn, takeBatch } from '../../src/infer/batch-plan.js';
import type { ModelView, PlanLimits, QueuedView } from '../../src/infer/batch-plan.js';

/** The scheduler's decisions, as a pure function: no timers, no worker, no model. Times are made-up numbers. */
const LIMITS: PlanLimits = { maxBatch: 4, maxWaitMs: 5, maxBatchTokens: 1000, continuousAdmission: true };
const q = (id: number, lane: QueuedView['lane'] = 'kv', tokens = 10, arrived = 100): QueuedView => ({ id, lane, tokens, arrived });
const model = (name: string, queue: QueuedView[], running = false, size = 0, reshapes = true): ModelView => ({ name, queue, running, size, reshapes });

test('an idle device starts a lone request at once, whatever the batching window', () => {
  const limits = { ...LIMITS, maxWaitMs: 60_000 };
  assert.deepEqual(nextTurn([model('a', [q(1)])], 0, limits, 100), { kind: 'run', model: 'a', steps: [{ op: 'admit', ids: [1] }], cursor: 0 });
  assert.deepEqual(nextTurn([model('a', [q(1, 'score')])], 0, limits, 100), { kind: 'run', model: 'a', steps: [{ op: 'score', ids: [1] }], cursor: 0 });
});

test('behind a busy device a batch forms for maxWaitMs, or until it is full', () => {
  const busy = model('a', [], true, 1);
  // Model b's request arrived at 100 while a decodes: a runs; b is due at 105.
  const waiting = model('b', [q(7, 'kv', 10, 100)]);
  assert.deepEqual(nextTurn([waiting, busy], 0, LIMITS, 101), { kind: 'run', model: 'a', steps: [{ op: 'decode' }], cursor: 0 });
  assert.deepEqual(nextTurn([waiting, model('a', [], false)], 0, { ...LIMITS, batchWait: 'always' as const }, 101), { kind: 'wait', ms: 4 });
  assert.deepEqual(nextTurn([waiting, busy], 0, LIMITS, 105), { kind: 'run', model: 'b', steps: [{ op: 'admit', ids: [7] }], cursor: 1 });
  // Full in rows: no reason to wait.
  const full = model('b', [1, 2, 3, 4, 5].map((id) => q(id)));
  assert.deepEqual(nextTurn([full, busy], 0, LIMITS, 100), { kind: 'run', model: 'b', steps: [{ op: 'admit', ids: [1, 2, 3, 4] }], cursor: 1 });
  // Full in tokens: 3 rows of 300 fit 1000, a fourth would not.
  const heavy = model('b', [1, 2, 3, 4].map((id) => q(id, 'kv', 300)));
  assert.deepEqual(nextTurn([heavy, busy], 0, LIMITS, 100), { kind: 'run', model: 'b', steps: [{ op: 'admit', ids: [1, 2, 3] }], cursor: 1 });
});

test('the token budget counts padded rows, first come first served, and never starves a long prompt', () => {
  // Padded: 2 rows x 400 = 800 fit; a third row makes 3 x 400 = 1200.
  assert.deepEqual(takeBatch([q(1, 'kv', 400), q(2, 'kv', 10), q(3, 'kv', 10)], 'kv', 8, 1000), [1, 2]);
  // A short prompt behind one that does not fit waits its turn rather than overtaking it.
  assert.deepEqual(takeBatch([q(1, 'kv', 100), q(2, 'kv', 900), q(3, 'kv', 1)], 'kv', 8, 1000), [1]);
  // Longer than the whole budget, alone: it still goes.
  assert.deepEqual(takeBatch([q(1, 'kv', 5000), q(2, 'kv', 1)], 'kv', 8, 1000), [1]);
  // Lanes are separate; the row cap holds.
  assert.deepEqual(takeBatch([q(1, 'score'), q(2, 'kv'), q(3, 'score'), q(4, 'score')], 'score', 2, 1000), [1, 3]);
});

test('a running batch admits new rows only where it reshapes, with continuous admission, below maxBatch', () => {
  const running = (size: number, reshapes: boolean) => model('a', [q(9)], true, size, reshapes);
  assert.equal(admitsWhileRunning(running(1, true), LIMITS), true);
  assert.equal(admitsWhileRunning(running(4, true), LIMITS), false, 'full');
  assert.equal(admitsWhileRunning(running(1, false), LIMITS), false, 'WebGPU batches admit when they start');
  assert.equal(admitsWhileRunning(running(1, true), { ...LIMITS, continuousAdmission: false }), false);
  assert.equal(admitsWhileRunning(model('a', [q(9)]), LIMITS), false, 'nothing is running');
  assert.deepEqual(nextTurn([running(3, true)], 0, LIMITS, 100), {
    kind: 'run', model: 'a', steps: [{ op: 'admit', ids: [9] }, { op: 'decode' }], cursor: 0,
  });
  assert.deepEqual(nextTurn([running(1, false)], 0, LIMITS, 100), { kind: 'run', model: 'a', steps: [{ op: 'decode' }], cursor: 0 });
  // Admission fills the batch up to maxBatch, no further.
  const crowd = model('a', [1, 2, 3, 4].map((id) => q(id)), true, 2);
  assert.deepEqual(nextTurn([crowd], 0, LIMITS, 100), { kind: 'run', model: 'a', steps: [{ op: 'admit', ids: [1, 2] }, { op: 'decode' }], cursor: 0 });
});

test('scores and admissions share a turn; models take turns round robin; nothing queued is idle', () => {
  const mixed = model('a', [q(1, 'score'), q(2, 'kv')]);
  assert.deepEqual(nextTurn([mixed], 0, LIMITS, 100), { kind: 'run', model: 'a', steps: [{ op: 'score', ids: [1] }, { op: 'admit', ids: [2] }], cursor: 0 });
  const a = model('a', [], true, 1);
  const b = model('b', [], true, 1);
  assert.equal((nextTurn([a, b], 0, LIMITS, 100) as { model: string }).model, 'a');
  assert.equal((nextTurn([a, b], 1, LIMITS, 100) as { model: string }).model, 'b');
  assert.deepEqual(nextTurn([model('a', []), model('b', [])], 0, LIMITS, 100), { kind: 'idle' });
  assert.deepEqual(nextTurn([], 0, LIMITS, 100), { kind: 'idle' });
});
