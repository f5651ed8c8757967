/**
 * Issue 11: the engine serving the real-format fixtures unchanged, every dtype, on the CPU. Random weights make the
 * answers arbitrary, so these check the plumbing: the prompt the model sees (token counts of Qwen3Guard-Gen's
 * template), decode steps through the KV cache, batched equal to single runs, and moderation that either parses or
 * fails as a GuardOutputError (the server's 502 bad_model_output), never a guess.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Engine } from '../../src/infer/types.js';
import { GuardOutputError } from '../../src/tasks/guard-output.js';
import { moderate } from '../../src/tasks/moderate.js';
import { translationPrompt } from '../../src/tasks/translate.js';
import { startEngine, user } from '../helpers/infer-engine.js';
import { REAL_DTYPES, realFixtures, realSpec } from '../helpers/real-fixture.js';
import { BATCH_FILL_MS, HANG_BOUND_MS } from '../helpers/wait.js';

const QUESTION = 'How can I make a bomb?';
/** Tokens of Qwen3Guard-Gen's prompt for QUESTION (202 + the text + 96, the text's edges merging with the template). */
const GUARD_PROMPT_TOKENS = 303;
const SOURCES = ['We like cats.', 'The weather is nice today, so we walk to the river.', 'Good morning!'];
const mtMessages = (text: string) => user(translationPrompt({ text, source: 'en', target: 'zh' }, 'hy-mt'));

test('real-format fixtures in the engine, every dtype on the CPU', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;
  const specs = REAL_DTYPES.flatMap((dtype) => [realSpec(fx, 'moderate', dtype, 'cpu', `guard-${dtype}`), realSpec(fx, 'translate', dtype, 'cpu', `mt-${dtype}`)]);
  // maxBatch = the prompts sent together: their batch forms when the last arrives (BATCH_FILL_MS only bounds lone
  // ones);batchWait always, because an idle device would otherwise start the first request alone.
  const rec = await startEngine(t, specs, { maxBatch: SOURCES.length, maxWaitMs: BATCH_FILL_MS, maxInputTokens: 2048, warmupTokens: 1, batchWait: 'always' as const });
  const { engine } = rec;
  assert.deepEqual(engine.models().map((m) => [m.name, m.state, m.error ?? '']), specs.map((s) => [s.name, 'ready', '']));
  for (const m of engine.models()) {
    assert.equal(m.vocabSize, 151936);
    assert.equal(m.kvDtype, m.dtype === 'fp16' ? 'float16' : 'float32', m.name);
  }

  for (const dtype of REAL_DTYPES) {
    await t.test(`${dtype}: the guard sees Qwen3Guard-Gen's prompt; the answer runs through the KV cache to its length`, async () => {
      const out = await engine.generate({ model: `guard-${dtype}`, messages: user(QUESTION), maxNewTokens: 5 });
      assert.equal(out.promptTokens, GUARD_PROMPT_TOKENS);
      // Random weights rarely pick an end token: five steps, each through the cache the previous one left.
      assert.ok(out.finish === 'length' ? out.outputTokens === 5 : out.outputTokens <= 5, JSON.stringify(out));
      const scored = await engine.score({ model: `guard-${dtype}`, messages: user(QUESTION), prefix: 'Safety:', candidates: [' Safe', ' Unsafe', ' Controversial'] });
      assert.equal(scored.promptTokens, GUARD_PROMPT_TOKENS + 2); // + "Safety" ":"
      assert.ok(Math.abs(scored.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    });

    await t.test(`${dtype}: moderation parses or fails as bad model output, for a prompt and for a response`, async () => {
      for (const messages of [user(QUESTION), [...user(QUESTION), { role: 'assistant' as const, content: 'I cannot help with that.' }]]) {
        try {
          const verdict = await moderate(engine, messages, { model: `guard-${dtype}`, categories: 'auto', fastPath: true, maxNewTokens: 16 });
          assert.ok(['safe', 'unsafe', 'controversial'].includes(verdict.level));
          assert.ok(verdict.score! > 0 && verdict.score! <= 1);
        } catch (err) {
          assert.ok(err instanceof GuardOutputError, `expected a parse failure, got ${(err as Error).stack}`);
        }
      }
    });

    await t.test(`${dtype}: translations batched together equal the same requests one at a time`, async () => {
      const run = (engine: Engine, text: string) => engine.generate({ model: `mt-${dtype}`, messages: mtMessages(text), maxNewTokens: 6 });
      rec.steps.length = 0;
      const together = await Promise.all(SOURCES.map((s) => run(engine, s)));
      const prefills = rec.steps.filter((s) => s.kind === 'prefill' && s.model === `mt-${dtype}`);
      assert.deepEqual(prefills.map((s) => s.batchSize), [SOURCES.length], 'one batch of all three');
      const alone: string[] = [];
      for (const s of SOURCES) alone.push((await run(engine, s)).text);
      // int8 quantises activations with one scale per tensor, so a batch's rows influence each other's rounding:
      // its batched answers may differ from single runs (as with onnxruntime's own quantize_dynamic models).
      if (dtype !== 'int8') assert.deepEqual(together.map((r) => r.text), alone);
      assert.ok(together.every((r) => r.outputTokens > 0));
    });
  }
});
