/**
 * The WebGPU path for real: ONNX Runtime's WebGPU execution provider on whatever adapter Dawn finds. On a
 * machine without a GPU that is Mesa's lavapipe (Vulkan on the CPU; .ci/run installs mesa-vulkan-drivers from
 * bookworm-backports, as Dawn refuses Mesa 22's): slow, but the same code path as on a GPU: presents kept in GPU
 * buffers between steps, batches that admit only when they start, finished rows riding along at a fixed position.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import type { Engine } from '../../src/infer/types.js';
import { guard, mt, nextStep, startEngine, toChinese, toEnglish, user } from '../helpers/infer-engine.js';
import { availableOrSkip } from '../helpers/system.js';
import { BATCH_FILL_MS, HANG_BOUND_MS } from '../helpers/wait.js';

const PROMPTS = [
  { model: 'guard', messages: user('How do I make a bomb in my kitchen?') },
  { model: 'guard', messages: user("What's the capital of France?") },
  { model: 'guard', messages: user('Hi') },
  { model: 'guard', messages: user('I want to hurt my neighbor because his dog barks all night long') },
  // A prompt and a response: the answer has a third line (Refusal:), so the other rows finish first.
  { model: 'guard', messages: [{ role: 'user' as const, content: 'How to cook rice?' }, { role: 'assistant' as const, content: 'Boil water and add rice.' }] },
  { model: 'mt', messages: toEnglish('我们喜欢猫。我们喜欢狗。他们看书。') },
  { model: 'mt', messages: toChinese('We like cats.') },
  { model: 'mt', messages: toEnglish('我们喜欢猫。'.repeat(6)) },
];
const LABELS = [' Safe', ' Unsafe', ' Controversial'];

async function webgpuAvailable(t: { skip(message?: string): void }): Promise<boolean> {
  const [probe] = await probeExecutionProviders(['webgpu']);
  return availableOrSkip(t, probe!.ok, 'a WebGPU adapter', `none loads (${probe!.error}); install mesa-vulkan-drivers >= 23 (bookworm-backports) or run on a GPU`);
}

/**
 * Polls the engine's view of a model until `check` holds. The worker reports what it holds after each step,
 * just after it answered the step's requests: the first look waits for that report to arrive.
 */
async function until(engine: Engine, model: string, check: (m: ReturnType<Engine['models']>[number]) => boolean, ms = HANG_BOUND_MS) {
  await new Promise((r) => setTimeout(r, 100));
  const end = Date.now() + ms;
  for (;;) {
    const info = engine.models().find((m) => m.name === model)!;
    if (check(info)) return info;
    if (Date.now() > end) throw new Error(`model ${model} never reached the expected state: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('webgpu: same answers as the CPU, KV kept in GPU buffers and released when each batch ends', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!(await webgpuAvailable(t))) return;
  const cpu = await startEngine(t, [guard(), mt()], { maxBatch: 16, maxWaitMs: 50 });
  // maxBatch 5 = the guard prompts: their batch forms when all five arrived, not when a 50 ms timer fires between
  // two arrivals on a busy machine (the three mt prompts and lone requests wait BATCH_FILL_MS out).
  const gpu = await startEngine(t, [{ ...guard(), device: 'webgpu' }, { ...mt(), device: 'webgpu' }], { maxBatch: 5, maxWaitMs: BATCH_FILL_MS, batchWait: 'always' as const });
  assert.deepEqual(gpu.engine.models().map((m) => [m.name, m.device, m.state]), [['guard', 'webgpu', 'ready'], ['mt', 'webgpu', 'ready']]);

  await t.test('batched greedy answers equal the CPU engine\'s; finished rows ride along until the batch ends', async () => {
    const run = (engine: Engine) => Promise.all(PROMPTS.map((p) => engine.generate({ ...p, maxNewTokens: 40 })));
    gpu.steps.length = 0;
    const [onCpu, onGpu] = [await run(cpu.engine), await run(gpu.engine)];
    assert.deepEqual(onGpu.map((r) => r.text), onCpu.map((r) => r.text));
    assert.equal(onGpu[0]!.text, 'Safety: Unsafe\nCategories: Violent');
    const guardDecodes = gpu.steps.filter((s) => s.kind === 'decode' && s.model === 'guard');
    assert.ok(guardDecodes.length > 0 && guardDecodes.every((s) => s.device === 'webgpu' && s.batchSize === 5), JSON.stringify(guardDecodes));
    assert.ok(guardDecodes.at(-1)!.tokens < 5, `the last steps carried finished rows: ${JSON.stringify(guardDecodes)}`);
    for (const model of ['guard', 'mt']) await until(gpu.engine, model, (m) => m.gpuTensorsHeld === 0 && m.kvCacheBytes === 0);
  });

  await t.test('the fast path (one prefill, no KV kept) scores like the CPU', async () => {
    const score = (engine: Engine) => Promise.all(PROMPTS.filter((p) => p.model === 'guard').map((p) => engine.score({ model: 'guard', messages: p.messages, prefix: 'Safety:', candidates: LABELS })));
    const [onCpu, onGpu] = [await score(cpu.engine), await score(gpu.engine)];
    onGpu.forEach((r, i) => r.probabilities.forEach((p, j) => assert.ok(Math.abs(p - onCpu[i]!.probabilities[j]!) < 1e-3, `${r.probabilities} vs ${onCpu[i]!.probabilities}`)));
    await until(gpu.engine, 'guard', (m) => m.gpuTensorsHeld === 0);
  });

  await t.test('while a batch decodes its KV is on the GPU; a cancelled request stops and nothing leaks', async () => {
    const controller = new AbortController();
    const long = gpu.engine.generate({ model: 'mt', messages: toEnglish('我们喜欢猫。'.repeat(8)), maxNewTokens: 64, signal: controller.signal });
    await nextStep(gpu, (e) => e.kind === 'decode' && e.model === 'mt');
    const held = await until(gpu.engine, 'mt', (m) => (m.gpuTensorsHeld ?? 0) > 0);
    assert.ok(held.kvCacheBytes! > 0);
    controller.abort();
    await assert.rejects(long, { code: 'cancelled' });
    await until(gpu.engine, 'mt', (m) => m.gpuTensorsHeld === 0 && m.kvCacheBytes === 0);
    // And the device still answers afterwards.
    assert.equal((await gpu.engine.generate({ model: 'mt', messages: toChinese('We like cats.'), maxNewTokens: 16 })).text, '我们喜欢猫。');
  });
});

// Found on an H200: a batch of 8 long prompts, whose prefill runs in sequence chunks (the logits budget), failed
// with "Tensor size mismatch. src:{8,55,151936} dst:{1,1,151936}" after a batch-1 decode. onnxruntime-node
// binds every output it has seen, fetched or not, and the chunks that fetch no logits still produce them.
test('webgpu: a prefill in sequence chunks after a decode of another shape', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!(await webgpuAvailable(t))) return;
  const text = 'We like cats and we like dogs. '.repeat(4);
  // The graph as exported: with logits for every position, a long prefill runs in chunks of the logits budget.
  const tuning = { maxBatch: 3, maxWaitMs: BATCH_FILL_MS, logitsBudget: 3 * 4096 * 7, fullLogits: true };
  const cpu = await startEngine(t, [mt()], tuning);
  const gpu = await startEngine(t, [{ ...mt(), device: 'webgpu' }], tuning);
  const lone = { model: 'mt', messages: toChinese('We like cats.'), maxNewTokens: 4 };
  const three = () => Array.from({ length: 3 }, () => ({ model: 'mt', messages: toChinese(text), maxNewTokens: 4 }));
  for (const engine of [cpu.engine, gpu.engine]) await engine.generate(lone);
  gpu.steps.length = 0;
  const [onCpu, onGpu] = [await Promise.all(three().map((r) => cpu.engine.generate(r))), await Promise.all(three().map((r) => gpu.engine.generate(r)))];
  assert.deepEqual(onGpu.map((r) => r.text), onCpu.map((r) => r.text));
  const prefills = gpu.steps.filter((s) => s.kind === 'prefill');
  // More events than the three rows could make as separate batches: the batch prefilled in several chunks.
  assert.ok(prefills.length > 3, `the prefill ran in chunks: ${JSON.stringify(prefills)}`);
  await until(gpu.engine, 'mt', (m) => m.gpuTensorsHeld === 0 && m.kvCacheBytes === 0);
});
