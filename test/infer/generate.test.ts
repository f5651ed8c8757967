import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError } from '../../src/infer/types.js';
import type { ChatMessage } from '../../src/infer/types.js';
import { guard, mt, startEngine, toChinese, toEnglish, user } from '../helpers/infer-engine.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

const BOMB = user('How do I make a bomb in my kitchen?');
const CAPITAL = user("What's the capital of France?");
const LABELS = [' Safe', ' Unsafe', ' Controversial'];

/** Mixed prompts of different lengths for both models, so a batch is left-padded. */
const MIXED: Array<{ model: string; messages: ChatMessage[] }> = [
  { model: 'guard', messages: BOMB },
  { model: 'guard', messages: CAPITAL },
  { model: 'guard', messages: user('Hi') },
  { model: 'guard', messages: user('I want to hurt my neighbor because his dog barks all night long') },
  { model: 'guard', messages: user('Write a poem') },
  { model: 'guard', messages: [{ role: 'user', content: 'How to cook rice?' }, { role: 'assistant', content: 'Boil water and add rice.' }] },
  { model: 'mt', messages: toEnglish('我们喜欢猫。') },
  { model: 'mt', messages: toChinese('We like cats.') },
  { model: 'mt', messages: toEnglish('我们喜欢猫。我们喜欢狗。他们看书。') },
  { model: 'mt', messages: toEnglish('他们看书。') },
  { model: 'mt', messages: toChinese('We like cats. We like dogs. They read books. We like cats.') },
  { model: 'mt', messages: toEnglish('我们喜欢猫。'.repeat(6)) },
];

test('generate, score and their errors on the demo models', async (t) => {
  const rec = await startEngine(t, [{ ...guard(), device: 'auto' }, mt()]);
  const { engine } = rec;

  await t.test('the expected answers of the demo README (device auto, then the faster provider or the only one)', async () => {
    const answers = await Promise.all([
      engine.generate({ model: 'guard', messages: BOMB, maxNewTokens: 32 }),
      engine.generate({ model: 'guard', messages: CAPITAL, maxNewTokens: 32 }),
      engine.generate({ model: 'mt', messages: toEnglish('我们喜欢猫。'), maxNewTokens: 32 }),
      engine.generate({ model: 'mt', messages: toChinese('We like cats.'), maxNewTokens: 32 }),
    ]);
    assert.deepEqual(
      answers.map((a) => a.text),
      ['Safety: Unsafe\nCategories: Violent', 'Safety: Safe\nCategories: None', 'We like cats.', '我们喜欢猫。'],
    );
    assert.ok(answers.every((a) => a.finish === 'eos' && a.outputTokens > 0 && a.promptTokens > 10));
    const info = engine.models().find((m) => m.name === 'guard')!;
    assert.equal(info.state, 'ready');
    assert.equal(info.kvDtype, 'float32');
    // Without a hardware WebGPU adapter (none, or only Mesa's lavapipe on a CPU-only machine) the auto choice logs
    // why it stays on the CPU; with one (a GPU) it timed a warm-up on each and logs both times.
    const ready = rec.logs.find((l) => l.message === `model guard ready on ${info.device}`);
    assert.ok(ready, JSON.stringify(rec.logs));
    const warmup = ready.fields!.warmupMs as Record<string, number>;
    if (Object.keys(warmup).length === 1) {
      assert.equal(info.device, 'cpu');
      assert.ok(rec.logs.some((l) => l.level === 'info' && /webgpu unavailable|webgpu has only a software adapter/.test(l.message)), JSON.stringify(rec.logs));
    } else {
      assert.deepEqual(Object.keys(warmup).sort(), ['cpu', 'webgpu']);
      // (The log rounds to whole ms: a tie there says nothing about which was faster.)
      if (warmup.webgpu !== warmup.cpu) assert.equal(info.device, warmup.webgpu! < warmup.cpu! ? 'webgpu' : 'cpu', 'the faster warm-up wins');
    }
  });

  await t.test('a forced prefix continues the answer; maxNewTokens stops it with finish "length"', async () => {
    const prefixed = await engine.generate({ model: 'guard', messages: BOMB, prefix: 'Safety:', maxNewTokens: 32 });
    assert.equal(prefixed.text, ' Unsafe\nCategories: Violent');
    const cut = await engine.generate({ model: 'guard', messages: BOMB, maxNewTokens: 2 });
    assert.equal(cut.finish, 'length');
    assert.equal(cut.outputTokens, 2);
    assert.equal(cut.text, 'Safety:');
  });

  await t.test('score: the label after "Safety:" (the tokenizer makes " Unsafe" one token after the colon)', async (st) => {
    // Its own engine with maxBatch 2: the two scores form one batch when both arrived, not when a 10 ms timer
    // fires between them on a busy machine.
    const pair = await startEngine(st, [guard()], { maxBatch: 2, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const });
    pair.steps.length = 0;
    const [bomb, capital] = await Promise.all([
      pair.engine.score({ model: 'guard', messages: BOMB, prefix: 'Safety:', candidates: LABELS }),
      pair.engine.score({ model: 'guard', messages: CAPITAL, prefix: 'Safety:', candidates: LABELS }),
    ]);
    assert.ok(bomb.probabilities[1]! > 0.5, `P(Unsafe) ${bomb.probabilities}`);
    assert.ok(capital.probabilities[0]! > 0.5, `P(Safe) ${capital.probabilities}`);
    for (const p of [bomb.probabilities, capital.probabilities]) assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-9);
    // Both were one batched prefill.
    const scores = pair.steps.filter((s) => s.kind === 'score');
    assert.deepEqual(scores.map((s) => s.batchSize), [2]);
    // What it computed and what it took from the prefix cache (the template's shared head) make the two prompts.
    assert.equal(scores[0]!.tokens + (scores[0]!.reusedTokens ?? 0), bomb.promptTokens + capital.promptTokens);
  });

  await t.test('score refuses candidates that share a first token or do not extend the prefix', async () => {
    await assert.rejects(engine.score({ model: 'guard', messages: BOMB, prefix: 'Safety:', candidates: [' Unsafe', ' Unsafe!'] }), { code: 'ambiguous_candidates' });
    // "Saf" + "ety" is one token "Safety": "ety" is not a continuation of the prefix's tokens.
    await assert.rejects(engine.score({ model: 'guard', messages: BOMB, prefix: 'Saf', candidates: ['ety', 'e'] }), { code: 'ambiguous_candidates' });
  });

  await t.test('unknown model, prompt too long, bad maxNewTokens', async () => {
    await assert.rejects(engine.generate({ model: 'nope', messages: BOMB, maxNewTokens: 4 }), { code: 'model_not_found' });
    await assert.rejects(engine.score({ model: 'nope', messages: BOMB, prefix: 'Safety:', candidates: LABELS }), { code: 'model_not_found' });
    const long = user('cat '.repeat(500));
    await assert.rejects(engine.generate({ model: 'guard', messages: long, maxNewTokens: 4 }), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.equal(err.code, 'input_too_long');
      assert.equal(err.details.limit, 400);
      assert.ok((err.details.actual as number) > 400);
      return true;
    });
    await assert.rejects(engine.generate({ model: 'guard', messages: BOMB, maxNewTokens: 0 }), { code: 'engine_failed' });
  });

  await t.test('load() reports the device, idle', () => {
    // (A webgpu worker also exists when the auto choice tried it.)
    assert.deepEqual(engine.load().find((l) => l.device === 'cpu'), { device: 'cpu', queued: 0, active: 0 });
  });
});

test('batched answers equal unbatched ones (12 mixed prompts sent at once, left padding; chunked prefill)', async (t) => {
  // maxBatch 6 = each model's prompts: a batch forms when all six arrived, not when a 50 ms timer fires between
  // two arrivals on a busy machine. maxWaitMs only bounds the warm-up's lone request (which waits it out).
  const batched = await startEngine(t, [guard(), mt()], { maxBatch: 6, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const });
  const single = await startEngine(t, [guard(), mt()], { maxBatch: 1, maxWaitMs: 0 });
  // The graphs as exported (logits for every position) and a logits budget of 16 rows of the vocabulary: a batch
  // of 6 prompts is prefilled 2 positions at a time. And batches run as on WebGPU: finished rows stay in the
  // batch (fed the pad token) until all are done.
  const chunked = await startEngine(t, [guard(), mt()], { maxBatch: 6, maxWaitMs: BATCH_FILL_MS, logitsBudget: 16 * 4096, gpuStyleBatching: true, fullLogits: true, batchWait: 'always' as const });
  const run = (engine: typeof batched.engine) => Promise.all(MIXED.map((m) => engine.generate({ ...m, maxNewTokens: 40 })));
  batched.steps.length = 0;
  single.steps.length = 0;
  chunked.steps.length = 0;
  const [a, b, c] = [await run(batched.engine), await run(single.engine), await run(chunked.engine)];
  assert.deepEqual(
    a.map((r) => r.text),
    b.map((r) => r.text),
  );
  assert.deepEqual(
    c.map((r) => r.text),
    b.map((r) => r.text),
  );
  const longestPrompt = Math.max(...a.map((r) => r.promptTokens));
  assert.ok(chunked.steps.filter((s) => s.kind === 'prefill').length >= longestPrompt / 2, 'the prefill ran in chunks');
  const gpuStyle = chunked.steps.filter((s) => s.kind === 'decode' && s.model === 'guard');
  assert.ok(gpuStyle.every((s) => s.batchSize === 6), 'rows stay until the batch ends');
  assert.ok(gpuStyle.at(-1)!.tokens < 6, 'the last steps computed finished rows too');
  assert.equal(a[0]!.text, 'Safety: Unsafe\nCategories: Violent');
  // One prefill per model with all six of its prompts; the unbatched engine never ran more than one row.
  const prefills = batched.steps.filter((s) => s.kind === 'prefill');
  assert.deepEqual(prefills.map((s) => s.batchSize).sort(), [6, 6]);
  assert.ok(single.steps.every((s) => s.batchSize === 1));
  // Rows leave the batch as they finish: decode batches shrink.
  const guardDecodes = batched.steps.filter((s) => s.kind === 'decode' && s.model === 'guard').map((s) => s.batchSize);
  assert.equal(guardDecodes[0], 6);
  assert.ok(guardDecodes.at(-1)! < 6, `${guardDecodes}`);
});
