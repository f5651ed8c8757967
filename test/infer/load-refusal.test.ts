/**
 * Load-time refusals of files the engine cannot use, on tiny decoder graphs built by python3-onnx at test time:
 * each refusal names the tensor or operator and says what to use instead, before ONNX Runtime is asked (which
 * for bfloat16 only says "Unsupported data type: 16").
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { GuardError } from '../../src/core/errors.js';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { tempDir } from '../helpers/cli.js';
import { startEngine, user } from '../helpers/infer-engine.js';
import { availableOrSkip } from '../helpers/system.js';
import { pythonWithOnnx, writeTinyModelDir } from '../helpers/tiny-decoder.js';

function refused(dir: string, message: RegExp[], hint: RegExp, details?: Record<string, unknown>): void {
  assert.throws(
    () => loadModelDir(dir),
    (err: unknown) => {
      assert.ok(err instanceof GuardError, String(err));
      assert.equal(err.code, 'GUARD_E_CONFIG');
      for (const p of message) assert.match(err.message, p);
      assert.match(err.hint ?? '', hint);
      if (details) for (const [k, v] of Object.entries(details)) assert.deepEqual(err.details?.[k], v);
      return true;
    },
  );
}

function editConfig(dir: string, change: Record<string, unknown>): void {
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...change }));
}

test('tensors the engine cannot feed or read are refused by loadModelDir, naming the tensor', (t) => {
  const python = pythonWithOnnx(t);
  if (!python) return;
  const root = tempDir(t, 'guardctl-refusal-');
  const tiny = (name: string, variant: Parameters<typeof writeTinyModelDir>[2], opts = {}) => writeTinyModelDir(python, path.join(root, name), variant, opts);

  refused(tiny('bf16', 'bf16'), [/past_key_values\.0\.key has element type bfloat16/, /only float32 and float16/], /model_fp16\.onnx/, { tensor: 'past_key_values.0.key', type: 'bfloat16' });
  refused(tiny('int32', 'int32-ids'), [/input input_ids is int32, expected int64/], /optimum/, { tensor: 'input_ids' });
  refused(tiny('no-past', 'no-past'), [/input past_key_values\.1\.value is missing/], /num_hidden_layers|export/, { tensor: 'past_key_values.1.value' });
  // Graph and config from different exports: the logits are 8192 wide, config.json says 4096.
  const wide = tiny('wide', 'fp32', { vocab: 8192 });
  editConfig(wide, { vocab_size: 4096 });
  refused(wide, [/vocabulary mismatch/, /logits have 8192 entries but config\.json vocab_size is 4096/], /different exports/);
  // A tokenizer larger than the model's vocabulary cannot be served; a smaller one (Qwen3: 151669 < 151936) can.
  refused(tiny('small-model', 'fp32', { vocab: 4000 }), [/vocabulary mismatch/, /tokenizer\.json has 4096 tokens but .*vocab_size is 4000/], /different exports/);
  const padded = loadModelDir(tiny('padded', 'fp32', { vocab: 4200 }));
  assert.equal(padded.config.vocabSize, 4200);
  assert.equal(padded.tokenizerVocab, 4096);
  assert.ok(padded.graph.ops.has(':Gather') && padded.graph.ops.has(':MatMul'), JSON.stringify([...padded.graph.ops]));
  // Initializers listed among the inputs (IR < 4) are weights, not inputs the engine must feed.
  const legacy = loadModelDir(tiny('init-inputs', 'init-inputs'));
  assert.deepEqual(legacy.graph.inputs.slice(0, 3).map((i) => i.name), ['input_ids', 'attention_mask', 'position_ids']);
  assert.ok(!legacy.graph.inputs.some((i) => i.name === 'embed' || i.name === 'lm_head'));
});

test('operators: int8 (MatMulInteger) serves on the CPU and is refused on webgpu; custom-domain operators nowhere', async (t) => {
  const python = pythonWithOnnx(t);
  if (!python) return;
  const root = tempDir(t, 'guardctl-refusal-');
  const int8 = writeTinyModelDir(python, path.join(root, 'int8'), 'int8');
  const custom = writeTinyModelDir(python, path.join(root, 'custom'), 'custom-op');
  const unknown = writeTinyModelDir(python, path.join(root, 'unknown'), 'unknown-op');
  const [webgpu] = await probeExecutionProviders(['webgpu']);
  const spec = (name: string, dir: string, device: 'cpu' | 'webgpu' | 'auto') => ({ name, task: 'moderate' as const, dir, size: 'small' as const, device });
  const { engine, logs } = await startEngine(t, [spec('int8-cpu', int8, 'cpu'), spec('int8-gpu', int8, 'webgpu'), spec('int8-auto', int8, 'auto'), spec('custom', custom, 'cpu'), spec('unknown', unknown, 'cpu')]);
  const byName = Object.fromEntries(engine.models().map((m) => [m.name, m]));

  assert.equal(byName['int8-cpu']!.state, 'ready');
  const out = await engine.generate({ model: 'int8-cpu', messages: user('Hi'), maxNewTokens: 3 });
  assert.equal(out.outputTokens, 3);
  assert.equal(byName.custom!.state, 'failed');
  assert.match(byName.custom!.error!, /operator ai\.example\.custom\.Scale from a custom domain/);
  // A com.microsoft operator this ORT does not have: ORT's own refusal, said with the operator and what to do.
  assert.equal(byName.unknown!.state, 'failed');
  assert.match(byName.unknown!.error!, /cannot be loaded on cpu: operator com\.microsoft\.NoSuchOp is not available in onnxruntime-node/);
  assert.match(byName.unknown!.error!, /\(use an export made for ONNX Runtime/);
  assert.ok(logs.some((l) => l.level === 'error' && /unknown failed to load/.test(l.message)));
  if (!availableOrSkip(t, webgpu!.ok, 'a WebGPU adapter', webgpu!.error ?? '')) return;
  assert.equal(byName['int8-gpu']!.state, 'failed');
  assert.match(byName['int8-gpu']!.error!, /uses operator DynamicQuantizeLinear \(1 node\), MatMulInteger \(1 node\), which the webgpu provider lacks/);
  assert.match(byName['int8-gpu']!.error!, /\(on webgpu use the fp16, q4f16 or q4 export \(--dtype\); int8\/uint8\/quantized exports are for --device cpu\)/);
  // auto: the webgpu load is refused with the reason logged, and the model serves on the CPU.
  assert.deepEqual([byName['int8-auto']!.state, byName['int8-auto']!.device], ['ready', 'cpu']);
  // auto goes to the CPU either way: refused on a hardware WebGPU adapter for its int8 operators, or never tried
  // where the only adapter is a software one (lavapipe here), which auto does not use.
  assert.ok(logs.some((l) => (l.level === 'warn' && /int8-auto does not load on webgpu: .*MatMulInteger/.test(l.message))
    || (l.level === 'info' && /int8-auto: webgpu has only a software adapter/.test(l.message))), JSON.stringify(logs));
});

test('the webgpu operator list matches this ONNX Runtime: the int8 graph needs the CPU, the fp32 one does not', async (t) => {
  const python = pythonWithOnnx(t);
  if (!python) return;
  const [webgpu] = await probeExecutionProviders(['webgpu']);
  if (!availableOrSkip(t, webgpu!.ok, 'a WebGPU adapter', webgpu!.error ?? '')) return;
  const root = tempDir(t, 'guardctl-refusal-');
  // With CPU fallback disabled ORT refuses a session that would place any node on the CPU.
  const webgpuOnly = async (dir: string) => {
    try {
      const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'), { executionProviders: ['webgpu'], logSeverityLevel: 4, extra: { session: { disable_cpu_ep_fallback: '1' } } });
      await session.release();
      return 'webgpu';
    } catch (err) {
      assert.match((err as Error).message, /assigned to the default CPU EP/);
      return 'needs cpu';
    }
  };
  assert.equal(await webgpuOnly(writeTinyModelDir(python, path.join(root, 'fp32'), 'fp32')), 'webgpu');
  assert.equal(await webgpuOnly(writeTinyModelDir(python, path.join(root, 'int8'), 'int8')), 'needs cpu');
});
