import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commonPadding, concatMasks, selectMask } from '../../src/infer/kv.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { PrefixCache, sharedHeads } from '../../src/infer/prefix-cache.js';
import { ChatTokenizer } from '../../src/infer/tokenizer.js';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import type { ChatMessage, Engine, ModelSpec } from '../../src/infer/types.js';
import type { EngineOptions } from '../../src/infer/types.js';
import { moderate, SCORE_PREFIX } from '../../src/tasks/moderate.js';
import { GUARD_DIR, guard, mt, nextStep, startEngine, toChinese, toEnglish, user } from '../helpers/infer-engine.js';
import type { Recorded } from '../helpers/infer-engine.js';
import { availableOrSkip } from '../helpers/system.js';
import { BATCH_FILL_MS, HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * Issue 12 item 1: the prompt head every request of a model shares is prefilled once at load, and batches start
 * from its KV. Answers must not change: greedy texts equal and score probabilities within 1e-4 of an engine
 * without the cache, alone and batched, with rows of different lengths (padding between the head and each
 * row's own tokens), admission into a running batch, cancellation, and on WebGPU.
 */
const CHATS: ChatMessage[][] = [
  user('How do I make a bomb in my kitchen?'),
  user('Hi'),
  user('I want to hurt my neighbor because his dog barks all night long'),
  [{ role: 'user', content: 'How to cook rice?' }, { role: 'assistant', content: 'Boil water and add rice.' }],
  user("What's the capital of France?"),
];
const LABELS = [' Safe', ' Unsafe', ' Controversial'];
const reused = (rec: Recorded) => rec.steps.reduce((n, s) => n + (s.reusedTokens ?? 0), 0);

function closeTo(actual: number[][], expected: number[][], what: string): void {
  actual.forEach((row, i) => row.forEach((p, j) => assert.ok(Math.abs(p - expected[i]![j]!) < 1e-4, `${what}: row ${i} candidate ${j}: ${p} vs ${expected[i]![j]}`)));
}

test('kv masks with holes: merging pads on the left, dropping rows cuts only what is padding for all', () => {
  // a: 2 rows of a 2-token head, then padding, then their own tokens ([head][pad][own]), length 5.
  const a = Uint8Array.from([1, 1, 0, 0, 1, /**/ 1, 1, 1, 1, 1]);
  // b: 1 left-padded row, length 3.
  const b = Uint8Array.from([0, 1, 1]);
  const joined = concatMasks(a, 2, 5, b, 1, 3);
  assert.deepEqual([...joined], [1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1]);
  // The hole inside row 0 is not leading padding: keeping rows 0 and 2 cuts nothing, row 2 alone cuts 3.
  assert.equal(commonPadding(joined, 5, [0, 2]), 0);
  assert.equal(commonPadding(joined, 5, [2]), 3);
  assert.deepEqual([...selectMask(joined, 5, [2, 0], 0)], [0, 0, 0, 1, 1, 1, 1, 0, 0, 1]);
  assert.deepEqual([...selectMask(joined, 5, [2], 3)], [1, 1]);
});

test('shared heads of the guard template: one per conversation shape and their common part; prompts are checked token by token', () => {
  const dir = loadModelDir(GUARD_DIR, 'fp32');
  const tok = new ChatTokenizer(dir);
  const heads = sharedHeads((m) => tok.render(m), (t) => tok.encode(t));
  assert.equal(heads.length, 3, JSON.stringify(heads));
  const cache = new PrefixCache();
  for (const ids of heads) cache.add({ ids, kv: [] });
  for (const chat of CHATS) {
    const ids = tok.encode(tok.render(chat, SCORE_PREFIX));
    const head = cache.match([ids])!;
    // The longest head of the chat's own shape: the shape's whole common prefix but the margin token.
    assert.equal(head.ids.length, heads[chat.length === 2 ? 0 : 1]!.length, chat.at(-1)!.content);
    assert.deepEqual(ids.slice(0, head.ids.length), head.ids);
  }
  // A batch of both shapes shares the shorter common head.
  const both = [CHATS[0]!, CHATS[3]!].map((c) => tok.encode(tok.render(c)));
  assert.equal(cache.match(both)!.ids.length, heads[2]!.length);
  // Token by token: a prompt that differs in the head's last token (a merge across the boundary) gets none, and
  // so does a prompt that is the head and nothing more (its prefill would have no token of its own).
  const shortest = heads[2]!;
  assert.equal(cache.match([[...shortest.slice(0, -1), shortest.at(-1)! + 1, 5]]), undefined);
  assert.equal(cache.match([shortest]), undefined);
  assert.equal(cache.match([[...shortest, 7]])!.ids, shortest);
});

test('cpu: same answers with and without the prefix cache, alone and batched, and the reused tokens are counted', { timeout: 6 * HANG_BOUND_MS }, async (t) => {
  const batch = { maxBatch: CHATS.length, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const };
  const variants: [string, Partial<EngineOptions> & { maxBatch: number; maxWaitMs: number }][] = [
    ['alone', { maxBatch: 1, maxWaitMs: 0 }],
    ['batched', batch],
    ['batched, webgpu-style', { ...batch, gpuStyleBatching: true }],
  ];
  for (const [name, options] of variants) {
    const off = await startEngine(t, [guard()], { ...options, prefixCache: false });
    const on = await startEngine(t, [guard()], options);
    assert.equal(off.engine.models()[0]!.prefixTokens, undefined);
    assert.deepEqual(on.engine.models()[0]!.prefixTokens!.length, 3);
    const answers = async (rec: Recorded) => {
      rec.steps.length = 0;
      const run = <T>(f: (c: ChatMessage[]) => Promise<T>): Promise<T[]> =>
        name === 'alone' ? CHATS.reduce(async (acc, c) => [...(await acc), await f(c)], Promise.resolve([] as T[])) : Promise.all(CHATS.map(f));
      const scores = await run((c) => rec.engine.score({ model: 'guard', messages: c, prefix: SCORE_PREFIX, candidates: LABELS }));
      const texts = await run((c) => rec.engine.generate({ model: 'guard', messages: c, maxNewTokens: 24 }));
      const moderations = await run((c) => moderate(rec.engine, c, { model: 'guard', fastPath: true, maxNewTokens: 32, categories: 'always' }));
      return { probabilities: scores.map((s) => s.probabilities), texts: texts.map((g) => g.text), moderations };
    };
    const [without, withCache] = [await answers(off), await answers(on)];
    assert.deepEqual(withCache.texts, without.texts, name);
    closeTo(withCache.probabilities, without.probabilities, name);
    assert.deepEqual(withCache.moderations.map((m) => [m.level, m.categories, m.refusal]), without.moderations.map((m) => [m.level, m.categories, m.refusal]), name);
    assert.equal(reused(off), 0);
    // Every prefill started from a head: what it computed plus what it reused is the whole prompt.
    const prefills = (rec: Recorded) => rec.steps.filter((s) => s.kind !== 'decode');
    assert.ok(prefills(on).every((s) => (s.reusedTokens ?? 0) > 0), JSON.stringify(prefills(on)));
    const total = (rec: Recorded) => prefills(rec).reduce((n, s) => n + s.tokens + (s.reusedTokens ?? 0), 0);
    assert.equal(total(on), total(off), name);
  }
});

// The translator's template starts every turn with its role: a system prompt changes the head, so those prompts
// are prefilled in full, and a batch that mixes them with plain ones too.
const LONG = user('xyz '.repeat(30));
const MT_PROMPTS = [toEnglish('我们喜欢猫。我们喜欢狗。他们看书。'), toChinese('We like cats.'), LONG, toEnglish('我们喜欢猫。'.repeat(3))];

test('cpu: admission into a running batch, a cancellation in the middle, and prompts without the head', { timeout: 6 * HANG_BOUND_MS }, async (t) => {
  const scenario = async (rec: Recorded) => {
    rec.steps.length = 0;
    const controller = new AbortController();
    // Rows of different lengths prefilled together (holes between head and text), one of them cancelled
    // mid-decode; two more admitted while the batch decodes, merged into it.
    const first = MT_PROMPTS.map((messages, i) => rec.engine.generate({ model: 'mt', messages, maxNewTokens: i === 2 ? 200 : 48, ...(i === 2 ? { signal: controller.signal } : {}) }));
    const cancelled = assert.rejects(first[2]!, { code: 'cancelled' });
    let later!: Promise<string[]>;
    await nextStep(rec, (e) => e.kind === 'prefill' && e.batchSize === MT_PROMPTS.length, () => {
      later = Promise.all([toChinese('We like dogs.'), toEnglish('他们看书。')].map((messages) => rec.engine.generate({ model: 'mt', messages, maxNewTokens: 48 }).then((r) => r.text)));
    });
    // The runaway row (200 tokens) is still decoding when they are admitted; it is cancelled after the first
    // step of the merged batch.
    await nextStep(rec, (e) => e.kind === 'prefill');
    const merged = await nextStep(rec, (e) => e.kind === 'decode', () => controller.abort());
    assert.ok(merged.batchSize >= 2, `the admitted rows joined the running batch: ${JSON.stringify(merged)}`);
    await cancelled;
    const texts = await Promise.all([first[0]!, first[1]!, first[3]!].map((p) => p.then((r) => r.text)));
    // With a system prompt (no head), alone and in a batch with a plain prompt.
    const system: ChatMessage[] = [{ role: 'system', content: 'You translate.' }, ...toEnglish('我们喜欢猫。')];
    const mixed = await Promise.all([system, MT_PROMPTS[1]!].map((messages) => rec.engine.generate({ model: 'mt', messages, maxNewTokens: 24 }).then((r) => r.text)));
    return { texts, later: await later, mixed };
  };
  // The first four arrive together and form one batch (batchWait always: an idle device waits BATCH_FILL_MS for them);
  // there is room for the later two beside them.
  const options = { maxBatch: MT_PROMPTS.length + 2, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const };
  const off = await startEngine(t, [mt()], { ...options, prefixCache: false });
  const on = await startEngine(t, [mt()], options);
  assert.ok(on.engine.models()[0]!.prefixTokens!.length > 0);
  const [without, withCache] = [await scenario(off), await scenario(on)];
  assert.deepEqual(withCache, without);
  // The batch holding the system prompt was prefilled in full; the others reused the head.
  const prefills = on.steps.filter((e) => e.kind === 'prefill');
  assert.equal(prefills.filter((e) => !e.reusedTokens).length, 1, JSON.stringify(prefills));
  assert.ok(reused(on) > 0);
});

async function webgpuAvailable(t: { skip(message?: string): void }): Promise<boolean> {
  const [probe] = await probeExecutionProviders(['webgpu']);
  return availableOrSkip(t, probe!.ok, 'a WebGPU adapter', `none loads (${probe!.error}); install mesa-vulkan-drivers >= 23 (bookworm-backports) or run on a GPU`);
}

test('webgpu: the head prefilled on the GPU once gives the answers of an engine without it, and no GPU buffer leaks', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!(await webgpuAvailable(t))) return;
  const spec: ModelSpec = { ...guard(), device: 'webgpu' };
  const options = { maxBatch: CHATS.length, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const };
  const off = await startEngine(t, [spec], { ...options, prefixCache: false });
  const on = await startEngine(t, [spec], options);
  const run = async (engine: Engine) => {
    const scores = await Promise.all(CHATS.map((c) => engine.score({ model: 'guard', messages: c, prefix: SCORE_PREFIX, candidates: LABELS })));
    const texts = await Promise.all(CHATS.map((c) => engine.generate({ model: 'guard', messages: c, maxNewTokens: 24 })));
    const alone = await engine.generate({ model: 'guard', messages: CHATS[0]!, maxNewTokens: 24 });
    return { probabilities: scores.map((s) => s.probabilities), texts: [...texts.map((g) => g.text), alone.text] };
  };
  on.steps.length = 0;
  const [without, withCache] = [await run(off.engine), await run(on.engine)];
  assert.deepEqual(withCache.texts, without.texts);
  closeTo(withCache.probabilities, without.probabilities, 'webgpu');
  assert.ok(on.steps.filter((s) => s.kind !== 'decode').every((s) => (s.reusedTokens ?? 0) > 0), JSON.stringify(on.steps));
  // Each batch's GPU buffers are released when it ends: the head's KV is uploaded per batch, never held there.
  for (const rec of [off, on]) {
    const deadline = Date.now() + HANG_BOUND_MS;
    while (rec.engine.models()[0]!.gpuTensorsHeld !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rec.engine.models()[0]!.gpuTensorsHeld, 0);
  }
});
