import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mt, nextStep, startEngine, toChinese, toEnglish, user } from '../helpers/infer-engine.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

// The longest answer the translator gives (8 tokens + EOS: 8 decode steps) and one of the shortest (2 tokens).
const LONG = toEnglish('我们喜欢猫。'.repeat(8));
const LONG_ANSWER = 'We like cats. We like cats.';
const SHORT = toChinese('We like cats.');
const SHORT_ANSWER = '我们喜欢猫。';

// A prompt the translator answers with a run of words and no EOS: maxNewTokens decode steps, a window wide enough
// for the main thread to act between two of them on a busy machine (8 steps, LONG's, were not).
const RUNAWAY = user('xyz '.repeat(30));
const RUNAWAY_TOKENS = 200;

// A prefill's prompt: the tokens it computed and those it took from the prefix cache.
const promptOf = (e: { tokens: number; reusedTokens?: number }) => e.tokens + (e.reusedTokens ?? 0);
const isPrefill = (tokens: number) => (e: { kind: string; tokens: number; reusedTokens?: number }) => e.kind === 'prefill' && promptOf(e) === tokens;

test('continuous admission: a request arriving mid-decode joins the batch and finishes first', async (t) => {
  const rec = await startEngine(t, [mt()], { maxBatch: 8, maxWaitMs: 0 });
  const { engine } = rec;
  // The long answer alone, to compare with the one that shared its batch.
  const alone = await engine.generate({ model: 'mt', messages: RUNAWAY, maxNewTokens: RUNAWAY_TOKENS });
  assert.deepEqual([alone.outputTokens, alone.finish], [RUNAWAY_TOKENS, 'length']);
  rec.steps.length = 0; // the warm-up's
  const order: string[] = [];
  const longDone = engine.generate({ model: 'mt', messages: RUNAWAY, maxNewTokens: RUNAWAY_TOKENS }).then((r) => (order.push('long'), r));
  // Sent from inside the step callback of the long request's prefill: it arrives while the long one decodes.
  let shortDone!: Promise<Awaited<typeof longDone>>;
  await nextStep(rec, (e) => e.kind === 'prefill', () => {
    shortDone = engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 64 }).then((r) => (order.push('short'), r));
  });
  const [long, short] = await Promise.all([longDone, shortDone]);
  assert.equal(long.text, alone.text);
  assert.equal(short.text, SHORT_ANSWER);
  assert.deepEqual(order, ['short', 'long']);
  // The short one was prefilled on its own, then decoded in the same batch as the long one.
  assert.equal(rec.steps.filter((e) => e.kind === 'prefill').length, 2);
  assert.ok(rec.steps.some((e) => e.kind === 'decode' && e.batchSize === 2), JSON.stringify(rec.steps));
  assert.equal(rec.steps.at(-1)!.batchSize, 1, 'the finished row left the batch');
});

test('with continuous admission off, a request arriving mid-decode waits for the batch to end', async (t) => {
  const rec = await startEngine(t, [mt()], { maxBatch: 8, maxWaitMs: 0, continuousAdmission: false });
  const order: string[] = [];
  const longDone = rec.engine.generate({ model: 'mt', messages: LONG, maxNewTokens: 64 }).then((r) => (order.push('long'), r));
  let shortDone!: Promise<unknown>;
  await nextStep(rec, (e) => e.kind === 'prefill', () => {
    shortDone = rec.engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 64 }).then((r) => order.push('short'));
  });
  await Promise.all([longDone, shortDone]);
  assert.deepEqual(order, ['long', 'short']);
  assert.ok(rec.steps.every((e) => e.batchSize === 1));
});

test('limits: abort, deadline, queue_full, close', async (t) => {
  // close() lets admitted requests finish within closeGraceMs: a hang's bound, so a slow one still finishes.
  const rec = await startEngine(t, [mt()], { maxBatch: 1, maxWaitMs: 0, maxQueue: 2, closeGraceMs: HANG_BOUND_MS });
  const { engine } = rec;
  rec.steps.length = 0;
  const longTokens = (await engine.generate({ model: 'mt', messages: LONG, maxNewTokens: 64 })).promptTokens;
  const fullDecodes = rec.steps.filter((e) => e.kind === 'decode').length;
  assert.equal(fullDecodes, 8);
  rec.steps.length = 0;
  const runaway = await engine.generate({ model: 'mt', messages: RUNAWAY, maxNewTokens: RUNAWAY_TOKENS });
  const runawayDecodes = rec.steps.filter((e) => e.kind === 'decode').length;

  await t.test('an aborted request stops consuming decode steps and rejects with cancelled', async () => {
    rec.steps.length = 0;
    const controller = new AbortController();
    const done = engine.generate({ model: 'mt', messages: RUNAWAY, maxNewTokens: RUNAWAY_TOKENS, signal: controller.signal });
    await nextStep(rec, isPrefill(runaway.promptTokens), () => controller.abort());
    await assert.rejects(done, { code: 'cancelled' });
    // The next request runs after the aborted one left the device (maxBatch 1): count the steps before it.
    const after = await engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 8 });
    const nextPrefill = rec.steps.findIndex(isPrefill(after.promptTokens));
    const decodes = rec.steps.slice(0, nextPrefill).filter((e) => e.kind === 'decode').length;
    assert.ok(decodes < runawayDecodes, `the aborted request ran ${decodes} decode steps of ${runawayDecodes}`);
    assert.deepEqual(engine.load(), [{ device: 'cpu', queued: 0, active: 0 }]);
  });

  await t.test('an aborted request still waiting is removed from the queue', async () => {
    rec.steps.length = 0;
    const controller = new AbortController();
    const first = engine.generate({ model: 'mt', messages: LONG, maxNewTokens: 64 });
    const waiting = engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 64, signal: controller.signal });
    assert.equal(engine.load()[0]!.queued, 2);
    controller.abort();
    await assert.rejects(waiting, { code: 'cancelled' });
    assert.equal((await first).text, LONG_ANSWER);
    // Only the long request was ever prefilled.
    assert.deepEqual(rec.steps.filter((e) => e.kind === 'prefill').map(promptOf), [longTokens]);
    await assert.rejects(engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 4, signal: controller.signal }), { code: 'cancelled' });
  });

  await t.test('deadlines: passed before start, and passed while queued', async () => {
    await assert.rejects(engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 4, deadline: Date.now() - 1 }), { code: 'timeout' });
    const first = engine.generate({ model: 'mt', messages: LONG, maxNewTokens: 64 });
    const late = engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 64, deadline: Date.now() + 2 });
    await assert.rejects(late, { code: 'timeout' });
    await first;
    const scored = engine.score({ model: 'mt', messages: SHORT, prefix: '', candidates: ['我', '你'], deadline: Date.now() - 1 });
    await assert.rejects(scored, { code: 'timeout' });
  });

  await t.test('queue_full beyond maxQueue waiting requests', async () => {
    const accepted = [0, 1].map(() => engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 8 }));
    await assert.rejects(engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 8 }), (err: { code: string; details: Record<string, unknown> }) => {
      assert.equal(err.code, 'queue_full');
      assert.equal(err.details.maxQueue, 2);
      return true;
    });
    for (const r of await Promise.all(accepted)) assert.equal(r.text, SHORT_ANSWER);
  });

  await t.test('close(): the waiting request is cancelled, the admitted one finishes, later ones are refused', async () => {
    const admitted = engine.generate({ model: 'mt', messages: RUNAWAY, maxNewTokens: RUNAWAY_TOKENS });
    await nextStep(rec, isPrefill(runaway.promptTokens));
    const waiting = engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 8 });
    const closed = engine.close();
    await assert.rejects(waiting, { code: 'cancelled' });
    assert.equal((await admitted).text, runaway.text);
    await closed;
    await assert.rejects(engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 8 }), { code: 'not_ready' });
  });
});

test('answers a step finishes reach the main thread together: their callers\' next requests share one prefill', async (t) => {
  // groupAnswersAfterMs 0 groups after every step, as the engine does after slow steps (a real model's); the
  // announced wait is long, so only arrivals end it, never the clock.
  const rec = await startEngine(t, [mt()], { maxBatch: 8, maxWaitMs: 0, groupAnswersAfterMs: 0, announcedWaitMs: HANG_BOUND_MS });
  const { engine } = rec;
  rec.steps.length = 0; // the warm-up's
  // Four callers, each sending its next request as soon as its answer comes: the same prompt, so every round's
  // four rows finish in the same decode step.
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let round = 0; round < 3; round++) assert.equal((await engine.generate({ model: 'mt', messages: SHORT, maxNewTokens: 64 })).text, SHORT_ANSWER);
  }));
  assert.deepEqual(rec.steps.filter((e) => e.kind === 'prefill').map((e) => e.batchSize), [4, 4, 4], JSON.stringify(rec.steps));
});
