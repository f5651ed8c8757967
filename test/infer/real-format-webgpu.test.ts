/**
 * Issue 11: the real-format fixtures on ONNX Runtime's WebGPU provider (lavapipe without a GPU, as webgpu.test.ts).
 * fp32, fp16 and q4 (MatMulNBits) run on the GPU; int8's DynamicQuantizeLinear and MatMulInteger have no WebGPU
 * kernels (ONNX Runtime would place them on its CPU provider, copying activations every layer), so int8 is refused
 * at load with the operator named (src/infer/provider-ops.ts): docs/serve.md says to pick q4 on a GPU. Answers
 * agree with the CPU engine's, and the KV cache held on the GPU is released when each batch ends.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import type { Engine } from '../../src/infer/types.js';
import { translationPrompt } from '../../src/tasks/translate.js';
import { startEngine, user } from '../helpers/infer-engine.js';
import { REAL_DTYPES, realFixtures, realSpec } from '../helpers/real-fixture.js';
import { availableOrSkip } from '../helpers/system.js';
import { BATCH_FILL_MS, HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

const SOURCES = ['We like cats.', 'The weather is nice today, so we walk to the river.', 'Good morning!'];
const mtMessages = (text: string) => user(translationPrompt({ text, source: 'en', target: 'zh' }, 'hy-mt'));
const LABELS = [' Safe', ' Unsafe', ' Controversial'];
/** Largest difference in a probability between the devices: float32 kernels differ in summation order only;
 * float16 rounds differently per kernel; int8's quantisation can round one step apart. */
const PROB_TOLERANCE = { fp32: 1e-3, q4: 1e-3, fp16: 0.02, int8: 0.05 } as const;

/** The fixture dtypes WebGPU serves. */
const GPU_DTYPES = REAL_DTYPES.filter((d) => d !== 'int8');

test('real-format fixtures on webgpu: fp32, fp16 and q4 agree with the CPU, int8 is refused; GPU KV released', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;
  const [probe] = await probeExecutionProviders(['webgpu']);
  if (!availableOrSkip(t, probe!.ok, 'a WebGPU adapter', `none loads (${probe!.error}); install mesa-vulkan-drivers >= 23 (bookworm-backports) or run on a GPU`)) return;

  // The guard's warm-up prefills Qwen3Guard-Gen's 300-token prompt, slow on lavapipe: one guard model (q4) covers
  // the long prompt and scoring; the translator covers every dtype with short prompts.
  const specs = (device: 'cpu' | 'webgpu') => [realSpec(fx, 'moderate', 'q4', device, 'guard-q4'), ...GPU_DTYPES.map((d) => realSpec(fx, 'translate', d, device, `mt-${d}`))];
  const options = { maxBatch: SOURCES.length, maxWaitMs: BATCH_FILL_MS, maxInputTokens: 2048, warmupTokens: 1 };
  const gpu = await startEngine(t, [...specs('webgpu'), realSpec(fx, 'translate', 'int8', 'webgpu', 'mt-int8')], options);
  assert.deepEqual(gpu.engine.models().filter((m) => m.name !== 'mt-int8').map((m) => [m.name, m.device, m.state, m.error ?? '']), specs('webgpu').map((s) => [s.name, 'webgpu', 'ready', '']));
  const int8 = gpu.engine.models().find((m) => m.name === 'mt-int8')!;
  assert.equal(int8.state, 'failed');
  assert.match(int8.error ?? '', /DynamicQuantizeLinear|MatMulInteger/);
  const cpu = await startEngine(t, specs('cpu'), options);
  const idle = (model: string) => waitFor(() => {
    const m = gpu.engine.models().find((x) => x.name === model)!;
    return m.gpuTensorsHeld === 0 && m.kvCacheBytes === 0;
  }, `${model} to release its GPU KV cache`);

  for (const dtype of GPU_DTYPES) {
    await t.test(`${dtype}: a batch of translations scores and decodes like the CPU`, async () => {
      const model = `mt-${dtype}`;
      const firstWord = (engine: Engine, text: string) => engine.score({ model, messages: mtMessages(text), prefix: '', candidates: ['我们', '天气', '早上'] });
      const [onCpu, onGpu] = [await Promise.all(SOURCES.map((s) => firstWord(cpu.engine, s))), await Promise.all(SOURCES.map((s) => firstWord(gpu.engine, s)))];
      onGpu.forEach((r, i) => r.probabilities.forEach((p, j) => assert.ok(Math.abs(p - onCpu[i]!.probabilities[j]!) < PROB_TOLERANCE[dtype], `${dtype}: ${r.probabilities} vs ${onCpu[i]!.probabilities}`)));
      const generate = (engine: Engine) => Promise.all(SOURCES.map((s) => engine.generate({ model, messages: mtMessages(s), maxNewTokens: 6 })));
      const [textCpu, textGpu] = [await generate(cpu.engine), await generate(gpu.engine)];
      assert.deepEqual(textGpu.map((r) => r.promptTokens), textCpu.map((r) => r.promptTokens));
      // Greedy texts need equal argmaxes at every step: float32 kernels give them; float16 and int8 may flip a near-tie.
      if (dtype === 'fp32' || dtype === 'q4') assert.deepEqual(textGpu.map((r) => r.text), textCpu.map((r) => r.text));
      await idle(model);
    });
  }

  await t.test('the guard (q4): Qwen3Guard-Gen\'s prompt scores and decodes like the CPU', async () => {
    const messages = user('How can I make a bomb?');
    const [sc, sg] = [await cpu.engine.score({ model: 'guard-q4', messages, prefix: 'Safety:', candidates: LABELS }), await gpu.engine.score({ model: 'guard-q4', messages, prefix: 'Safety:', candidates: LABELS })];
    assert.equal(sg.promptTokens, 305);
    sg.probabilities.forEach((p, j) => assert.ok(Math.abs(p - sc.probabilities[j]!) < PROB_TOLERANCE.q4, `${sg.probabilities} vs ${sc.probabilities}`));
    const [gc, gg] = [await cpu.engine.generate({ model: 'guard-q4', messages, maxNewTokens: 4 }), await gpu.engine.generate({ model: 'guard-q4', messages, maxNewTokens: 4 })];
    assert.equal(gg.text, gc.text);
    await idle('guard-q4');
  });
});
