import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { GenerateRequest } from '../../src/infer/types.js';
import { MT_DIR, mt, startEngine, toChinese, toEnglish } from '../helpers/infer-engine.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

/**
 * Sampling in the real worker on the demo translator. The demo is so sure of itself that it answers the same at
 * the API's temperatures; these tests use a hotter one (the engine does not cap it: the server does) so that the
 * draws show.
 */
const HOT = 3;
const CATS = toEnglish('我们喜欢猫。我们喜欢狗。');
const PROMPTS = [toEnglish('我们喜欢猫。'), toChinese('We like cats.'), toEnglish('他们看书。'), toChinese('We like dogs. They read books.'), toEnglish('我们喜欢狗。'), toChinese('They read books.'), toEnglish('我们喜欢猫。他们看书。')];

/** A copy of the demo translator whose generation_config.json samples by default. */
function sampledCopy(t: { after(fn: () => unknown): void }, gen: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'guardctl-sampled-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(MT_DIR, dir, { recursive: true });
  writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, pad_token_id: 0, ...gen }));
  return dir;
}

test('sampling on the demo translator: seeds, batches, greedy equivalence and generation_config defaults', async (t) => {
  const dir = sampledCopy(t, { do_sample: true, temperature: HOT, max_new_tokens: 9 });
  // The eight requests of each batch below are sent at once, and maxBatch is 8.
  const rec = await startEngine(t, [mt(), { ...mt('mt-sampled'), dir }], { maxBatch: 8, maxWaitMs: BATCH_FILL_MS });
  const { engine } = rec;
  const gen = (req: Partial<GenerateRequest>) => engine.generate({ model: 'mt', messages: CATS, maxNewTokens: 24, ...req }).then((r) => r.text);
  const greedy = await gen({});

  await t.test('a seed gives the same answer alone and in any row of a batch; different seeds differ', async () => {
    const seeded = { temperature: HOT, seed: 1234 };
    const alone = await gen({ sampling: seeded });
    assert.notEqual(alone, greedy, 'the draw shows at this temperature');
    const others = await Promise.all([1, 2, 3].map((seed) => gen({ sampling: { temperature: HOT, seed } })));
    assert.equal(new Set([alone, ...others]).size, 4, 'each seed draws its own answer');
    for (const row of [0, 3, 7]) {
      const before = rec.steps.length;
      const batch = PROMPTS.map((messages, i) => gen({ messages, sampling: { temperature: HOT, seed: 99 + i } }));
      batch.splice(row, 0, gen({ sampling: seeded }));
      const answers = await Promise.all(batch);
      assert.equal(answers[row], alone, `row ${row} of 8`);
      // However the scheduler admits them (one prefill of eight, or joins between steps), they decode together.
      const widest = Math.max(...rec.steps.slice(before).filter((s) => s.kind === 'decode').map((s) => s.batchSize));
      assert.ok(widest >= 4, `the requests decoded side by side (widest decode step: ${widest} rows)`);
    }
  });

  await t.test('temperature 0, and top_k 1 at any temperature, are greedy', async () => {
    const prompts = [CATS, ...PROMPTS];
    const plain = await Promise.all(prompts.map((messages) => gen({ messages })));
    assert.deepEqual(await Promise.all(prompts.map((messages, i) => gen({ messages, sampling: { temperature: 0, seed: i } }))), plain);
    assert.deepEqual(await Promise.all(prompts.map((messages, i) => gen({ messages, sampling: { temperature: HOT, topK: 1, seed: i } }))), plain);
  });

  await t.test("the model's generation_config.json sets the defaults; a request without sampling stays greedy", async () => {
    const fromConfig = await engine.generate({ model: 'mt-sampled', messages: CATS, maxNewTokens: 24, sampling: { seed: 7 } });
    const explicit = await gen({ sampling: { temperature: HOT, seed: 7 } });
    assert.equal(fromConfig.text, explicit, 'temperature from generation_config.json');
    assert.notEqual(fromConfig.text, greedy);
    assert.equal(await engine.generate({ model: 'mt-sampled', messages: CATS, maxNewTokens: 24 }).then((r) => r.text), greedy, 'moderation-style requests ignore do_sample');
    assert.equal(await engine.generate({ model: 'mt-sampled', messages: CATS, maxNewTokens: 24, sampling: { temperature: 0 } }).then((r) => r.text), greedy);
    const info = engine.models().find((m) => m.name === 'mt-sampled')!;
    assert.equal(info.defaultMaxNewTokens, 9);
    assert.equal(engine.models().find((m) => m.name === 'mt')!.defaultMaxNewTokens, 64);
  });
});
