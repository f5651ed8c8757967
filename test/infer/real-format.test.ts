/**
 * Issue 11: the real-format fixtures (scripts/fixtures) as graphs. Each dtype computes Qwen3's forward (checked
 * against an independent numpy forward of the same weights), keeps the optimum tensor contract, and the engine's
 * own Runner gets the same logits through the KV cache, left padding and batching as from one plain prefill.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { validateGraph } from '../../src/infer/graph.js';
import { halfToFloat } from '../../src/infer/logits.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { Runner } from '../../src/infer/runner.js';
import { REAL_DTYPES, realFixtures, reference } from '../helpers/real-fixture.js';
import type { RealDtype } from '../helpers/real-fixture.js';

/** Largest |a - b| a dtype may show against numpy: float32 and q4 (dequantised exactly) agree to rounding; float16
 * rounds every activation; int8 quantises activations per tensor (logits reach about 35), numpy does not. */
const TOLERANCE: Record<RealDtype, number> = { fp32: 1e-3, q4: 1e-3, fp16: 0.1, int8: 5 };

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const argmax = (a: Float32Array) => a.reduce((best, x, i) => (x > a[best]! ? i : best), 0);

async function open(dir: string, dtype: RealDtype) {
  const model = loadModelDir(dir, dtype);
  const session = await ort.InferenceSession.create(model.onnxPath, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  return { model, session, graph, runner: new Runner(session, 'cpu', graph, model.config) };
}

test('real-format fixtures: every dtype is Qwen3 math in the optimum contract, and the engine\'s KV plumbing keeps it', async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;

  await t.test('layout: the files an onnx-community export has, fp32 with external data, the real vocabulary', () => {
    const fp32 = loadModelDir(fx.guard, 'fp32');
    assert.deepEqual(fp32.externalData, [path.join(fx.guard, 'onnx', 'model.onnx_data')]);
    assert.equal(fp32.config.vocabSize, 151936);
    assert.equal(fp32.tokenizerVocab, 151669); // Qwen3's tokenizer.json: the config pads the vocabulary above it
    assert.deepEqual(fp32.config.eosIds, [151645, 151643]);
    for (const dtype of REAL_DTYPES) assert.equal(path.basename(loadModelDir(fx.mt, dtype).onnxPath), dtype === 'fp32' ? 'model.onnx' : `model_${dtype}.onnx`);
  });

  for (const dtype of REAL_DTYPES) {
    await t.test(`${dtype}: logits equal numpy's Qwen3 forward; element types and present shapes as exported`, async () => {
      const { model, session, graph, runner } = await open(fx.guard, dtype);
      t.after(() => runner.release());
      const ref = reference(fx, dtype);
      const half = dtype === 'fp16';
      assert.equal(graph.kvDtype, half ? 'float16' : 'float32');
      assert.equal(graph.logitsDtype, half ? 'float16' : 'float32');
      assert.ok(graph.hasPositionIds);
      const n = ref.ids.length;
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ref.ids, BigInt), [1, n]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(ref.ids, (_, i) => BigInt(i)), [1, n]),
      };
      for (const name of graph.pastNames) feeds[name] = new ort.Tensor(graph.kvDtype, half ? new Uint16Array(0) : new Float32Array(0), [1, model.config.kvHeads, 0, model.config.headDim]);
      const out = await session.run(feeds);
      const logits = out.logits!;
      assert.equal(logits.type, graph.logitsDtype);
      assert.deepEqual(logits.dims, [1, n, 151936]);
      for (const name of graph.presentNames) {
        assert.equal(out[name]!.type, graph.kvDtype, name);
        assert.deepEqual(out[name]!.dims, [1, model.config.kvHeads, n, model.config.headDim], name);
      }
      const data = logits.data as Float32Array | Uint16Array;
      const lastRow = data.subarray((n - 1) * 151936, n * 151936);
      const last = half ? halfToFloat(lastRow as Uint16Array) : (lastRow as Float32Array);
      const diff = maxDiff(last, ref.logits);
      assert.ok(diff < TOLERANCE[dtype], `${dtype}: max |onnx - numpy| = ${diff}`);
      if (dtype !== 'int8') assert.equal(argmax(last), argmax(ref.logits));
    });

    await t.test(`${dtype}: prefill then decode steps through the KV cache, left-padded in a batch, equal one prefill`, async () => {
      const { runner } = await open(fx.guard, dtype);
      t.after(() => runner.release());
      const { ids } = reference(fx, dtype);
      const whole = await runner.prefill([ids], false);
      // Row 0 stops two tokens short and decodes them; row 1 is shorter (left-padded) and decodes alongside.
      const other = [151644, 872, 198, 13048];
      const pre = await runner.prefill([ids.slice(0, -2), other], true);
      assert.deepEqual(pre.kv!.lens, [ids.length - 2, other.length]);
      const step1 = await runner.decode(pre.kv!, [ids.at(-2)!, 11]);
      const step2 = await runner.decode(step1.kv, [ids.at(-1)!, 12]);
      assert.deepEqual(step2.kv.lens, [ids.length, other.length + 2]);
      assert.equal(step2.kv.length, ids.length);
      assert.deepEqual(step2.kv.tensors[0]!.dims, [2, 2, ids.length, 16]);
      const alone = await runner.prefill([[...other, 11, 12]], false);
      // int8 quantises activations per tensor: a batch's scale covers its rows together, so rows drift apart more.
      const tol = dtype === 'int8' ? TOLERANCE.int8 : dtype === 'fp16' ? TOLERANCE.fp16 : 1e-3;
      for (const [got, want, what] of [[step2.logits[0]!, whole.logits[0]!, 'row 0'], [step2.logits[1]!, alone.logits[0]!, 'row 1 (left-padded)']] as const) {
        const diff = maxDiff(got, want);
        assert.ok(diff < tol, `${dtype} ${what}: max |decode - prefill| = ${diff}`);
        if (dtype !== 'int8') assert.equal(argmax(got), argmax(want), `${dtype} ${what}: greedy choice`);
      }
    });
  }
});
