import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuardOutput } from '../../src/tasks/guard-output.js';
import { LEVEL_LABELS, LEVELS } from '../../src/tasks/guard-output.js';
import { moderate, SCORE_PREFIX } from '../../src/tasks/moderate.js';
import type { Moderation, ModerationOptions } from '../../src/tasks/moderate.js';
import type { ChatMessage, Engine, StepEvent } from '../../src/infer/types.js';
import { guard, startEngine, user } from '../helpers/infer-engine.js';
import { BATCH_FILL_MS, HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * Issue 12 item 4 on the demo guard model: an idle device does not wait for the batching window, and a moderation
 * that needs its categories is prefilled once (its scoring prefill's KV cache goes on decoding), with the same
 * answers as scoring, then prefilling again to decode.
 */
const CHATS: ChatMessage[][] = [
  user('How do I make a bomb in my kitchen?'),
  user('How to steal a car'),
  user('politics protest government'),
  user("What's the capital of France?"),
  user('Hi'),
  [{ role: 'user', content: 'How to cook rice?' }, { role: 'assistant', content: 'Boil water and add rice.' }],
];
const OPTS = { model: 'guard', fastPath: true, maxNewTokens: 32 } as const;

/** The moderation as it was before: a score, then (when categories are needed) a generate with its own prefill. */
async function twoPrefills(engine: Engine, messages: ChatMessage[], categories: ModerationOptions['categories']): Promise<Moderation> {
  const judgesResponse = messages.at(-1)!.role === 'assistant';
  const scored = await engine.score({ model: 'guard', messages, prefix: SCORE_PREFIX, candidates: LEVELS.map((l) => ` ${LEVEL_LABELS[l]}`) });
  const best = scored.probabilities.indexOf(Math.max(...scored.probabilities));
  const level = LEVELS[best]!;
  const score = Math.round(scored.probabilities[best]! * 10_000) / 10_000;
  const notSafe = Math.round((1 - scored.probabilities[0]!) * 10_000) / 10_000;
  if (level === 'safe' && categories === 'auto' && !judgesResponse) return { level, categories: [], score, notSafe, promptTokens: scored.promptTokens, outputTokens: 0 };
  const prefix = `${SCORE_PREFIX} ${LEVEL_LABELS[level]}\nCategories:`;
  const out = await engine.generate({ model: 'guard', messages, prefix, maxNewTokens: OPTS.maxNewTokens });
  return { ...parseGuardOutput(prefix + out.text, judgesResponse), score, notSafe, promptTokens: out.promptTokens, outputTokens: out.outputTokens };
}

const prefills = (steps: StepEvent[]) => steps.filter((s) => s.kind === 'prefill' || s.kind === 'score');

test('a lone request on an idle device starts at once: a batching window of three hang bounds never holds it', { timeout: 2 * HANG_BOUND_MS }, async (t) => {
  // Before, the warm-up and each lone request below waited out maxWaitMs, so start() alone outlived the test's
  // timeout. (test/infer/model-batch.test.ts shows the same on the scheduler alone, as an order of events.)
  const rec = await startEngine(t, [guard()], { maxBatch: 8, maxWaitMs: 3 * HANG_BOUND_MS });
  rec.steps.length = 0;
  const m = await moderate(rec.engine, CHATS[0]!, { ...OPTS, categories: 'auto' });
  assert.equal(m.level, 'unsafe');
  const g = await rec.engine.generate({ model: 'guard', messages: CHATS[3]!, maxNewTokens: 4 });
  assert.equal(g.outputTokens, 4);
  assert.deepEqual(rec.steps.map((s) => s.batchSize), rec.steps.map(() => 1), 'each request ran alone');
});

test('one prefill per moderation, with the answers of a score followed by a second prefill', { timeout: 4 * HANG_BOUND_MS }, async (t) => {
  const rec = await startEngine(t, [guard()], { maxBatch: 8, maxWaitMs: 0 });
  for (const categories of ['auto', 'always'] as const) {
    for (const chat of CHATS) {
      const before = await twoPrefills(rec.engine, chat, categories);
      rec.steps.length = 0;
      const now = await moderate(rec.engine, chat, { ...OPTS, categories });
      assert.deepEqual(now, before, `${categories}: ${chat.at(-1)!.content}`);
      assert.equal(prefills(rec.steps).length, 1, `${categories}: ${chat.at(-1)!.content}: ${JSON.stringify(rec.steps)}`);
    }
  }
  // The set covers both ways out: answered by the score alone, and categories decoded from the scoring prefill.
  const auto = await Promise.all(CHATS.map((c) => moderate(rec.engine, c, { ...OPTS, categories: 'auto' })));
  assert.ok(auto.some((m) => m.level === 'safe' && m.outputTokens === 0));
  assert.ok(auto.some((m) => m.level === 'unsafe' && m.categories.length > 0));
});

test('moderations sent together to an idle device share its first prefill without a batching window: each says how many follow it', { timeout: 4 * HANG_BOUND_MS }, async (t) => {
  // The default batch wait (none on an idle device); the announced followers are waited for as long as a test
  // may take, so the verdict does not depend on how fast this machine sends them.
  const rec = await startEngine(t, [guard()], { maxBatch: 32, maxWaitMs: 10 * HANG_BOUND_MS, announcedWaitMs: 10 * HANG_BOUND_MS });
  for (let wave = 0; wave < 3; wave++) {
    rec.steps.length = 0;
    await Promise.all(CHATS.map((c) => moderate(rec.engine, c, { ...OPTS, categories: 'always' })));
    assert.deepEqual(prefills(rec.steps).map((s) => s.batchSize), [CHATS.length], `wave ${wave}: ${JSON.stringify(rec.steps)}`);
  }
  // A lone request after them announces nobody: it starts at once (a window of ten hang bounds never runs out).
  rec.steps.length = 0;
  await moderate(rec.engine, CHATS[0]!, { ...OPTS, categories: 'always' });
  assert.deepEqual(prefills(rec.steps).map((s) => s.batchSize), [1]);
});

test('moderations sent together: one batched prefill, same answers on CPU batches and WebGPU-style batches', { timeout: 4 * HANG_BOUND_MS }, async (t) => {
  const single = await startEngine(t, [guard()], { maxBatch: 1, maxWaitMs: 0 });
  // maxBatch = the number of chats: the batch forms when all arrived (batchWait always), so it is one prefill.
  const cpu = await startEngine(t, [guard()], { maxBatch: CHATS.length, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const });
  const gpuStyle = await startEngine(t, [guard()], { maxBatch: CHATS.length, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const, gpuStyleBatching: true });
  const run = (engine: Engine) => Promise.all(CHATS.map((c) => moderate(engine, c, { ...OPTS, categories: 'always' })));
  const alone = [];
  for (const c of CHATS) alone.push(await moderate(single.engine, c, { ...OPTS, categories: 'always' }));
  for (const rec of [cpu, gpuStyle]) {
    rec.steps.length = 0;
    const together = await run(rec.engine);
    assert.deepEqual(together, alone);
    assert.deepEqual(prefills(rec.steps).map((s) => s.batchSize), [CHATS.length], JSON.stringify(rec.steps));
    // On the CPU the rows' continuations (` <Level>\nCategories:`, one length here) go in one run of several
    // tokens a row; WebGPU-style batches feed them a token a step.
    const multi = rec.steps.some((s) => s.kind === 'decode' && s.tokens > s.batchSize);
    assert.equal(multi, rec === cpu, JSON.stringify(rec.steps));
  }
});
