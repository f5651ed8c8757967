import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { concatRows, extendMask, leftPaddedMask, selectRows } from '../../src/infer/kv.js';
import { halfToFloat, lastPositionLogits } from '../../src/infer/logits.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { ChatTokenizer } from '../../src/infer/tokenizer.js';
import type { ModelSpec } from '../../src/infer/types.js';
import { tempDir } from '../helpers/cli.js';
import { GUARD_DIR, nextStep, startEngine, user } from '../helpers/infer-engine.js';
import { writeCountingModelDir } from '../helpers/onnx-builder.js';

const counting = (dir: string): ModelSpec => ({ name: 'counting', task: 'moderate', dir, size: 'small', dtype: 'fp16', device: 'cpu' });

test('kv reshuffles keep each row right-aligned (Uint16Array, as float16 caches are)', () => {
  const shape = { kvHeads: 2, headDim: 1 };
  // a: 1 row, past 2 (values 1..4 as [head0: 1 2][head1: 3 4]); b: 2 rows, past 3.
  const a = Uint16Array.from([1, 2, 3, 4]);
  const b = Uint16Array.from([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  const joined = concatRows(a, 1, 2, b, 2, 3, shape);
  assert.equal(joined.length, 3);
  assert.ok(joined.data instanceof Uint16Array);
  assert.deepEqual([...joined.data], [0, 1, 2, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  // Keep rows 2 and 0, trimming the first position (padding for both).
  const picked = selectRows(joined.data, 3, [2, 0], 1, shape);
  assert.equal(picked.length, 2);
  assert.deepEqual([...picked.data], [12, 13, 15, 16, 1, 2, 3, 4]);
  assert.deepEqual([...extendMask(leftPaddedMask([1, 3], 3), 2, 3, 1)].map(Number), [0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...halfToFloat(Uint16Array.from([0x3c00, 0xc000, 0x4900, 0x0001, 0x7c00]))], [1, -2, 10, 2 ** -24, Infinity]);
});

test('float16 tensors as value arrays (onnxruntime returns Float16Array where the runtime has one, Node >= 24)', () => {
  // Float16Array where this Node has it; elsewhere a Float64Array stands in: values, not bit patterns.
  const Values = ((globalThis as { Float16Array?: typeof Float64Array }).Float16Array ?? Float64Array) as typeof Float64Array;
  const logits = Values.from([0, 1.5, -2, 3, 0.25, 10]);
  const rows = lastPositionLogits(logits as unknown as Uint16Array, 2, 1, 3);
  assert.deepEqual(rows.map((r) => [...r]), [[0, 1.5, -2], [3, 0.25, 10]]);
  // KV reshuffles copy the elements as they are, in an array of the same type.
  const shape = { kvHeads: 1, headDim: 1 };
  const joined = concatRows(Values.from([1.5]) as unknown as Uint16Array, 1, 1, Values.from([2.5, 3.5]) as unknown as Uint16Array, 1, 2, shape);
  assert.ok(joined.data instanceof Values);
  assert.deepEqual([...joined.data], [0, 1.5, 2.5, 3.5]);
  const picked = selectRows(joined.data, 2, [0], 1, shape);
  assert.ok(picked.data instanceof Values);
  assert.deepEqual([...picked.data], [1.5]);
});

test('a float16 model with external data: loads, batches, merges KV caches, scores', async (t) => {
  const dir = path.join(tempDir(t, 'guardctl-fp16-'), 'counting');
  writeCountingModelDir(dir, GUARD_DIR);
  const loaded = loadModelDir(dir, 'fp16');
  assert.deepEqual(loaded.externalData, [path.join(dir, 'onnx', 'model_fp16.onnx_data')]);
  assert.throws(() => loadModelDir(dir), (err: GuardError) => /model\.onnx is missing \(dtype fp32\)/.test(err.message) && /model_fp16\.onnx/.test(err.hint ?? ''));

  const prompts = ['Hi', 'Hello there, how are you doing today?', 'x', 'A longer message with many more words in it than the others'];
  const run = async (opts: { maxBatch: number; maxWaitMs: number }) => {
    const rec = await startEngine(t, [counting(dir)], opts);
    assert.equal(rec.engine.models()[0]!.kvDtype, 'float16');
    rec.steps.length = 0;
    // Two now, two more while those decode (continuous admission merges float16 caches), different budgets.
    const first = prompts.slice(0, 2).map((p, i) => rec.engine.generate({ model: 'counting', messages: user(p), maxNewTokens: 150 + 50 * i }));
    await nextStep(rec, (e) => e.kind === 'decode');
    const later = prompts.slice(2).map((p, i) => rec.engine.generate({ model: 'counting', messages: user(p), maxNewTokens: 5 + 9 * i }));
    const results = await Promise.all([...first, ...later]);
    return { rec, results };
  };
  const batched = await run({ maxBatch: 8, maxWaitMs: 20 });
  const single = await run({ maxBatch: 1, maxWaitMs: 0 });
  assert.deepEqual(
    batched.results.map((r) => r.text),
    single.results.map((r) => r.text),
  );
  assert.deepEqual(
    batched.results.map((r) => [r.outputTokens, r.finish]),
    single.results.map((r) => [r.outputTokens, r.finish]),
  );
  // Long enough (the model reaches EOS, token 2, only by chance) for the later requests to join mid-decode.
  assert.ok(batched.results.every((r, i) => r.finish === 'eos' || r.outputTokens === [150, 200, 5, 14][i]), JSON.stringify(batched.results));
  assert.ok(batched.rec.steps.some((e) => e.kind === 'decode' && e.batchSize >= 3), 'later requests joined the running batch');

  // The model puts logit 10 on its prediction and 0 elsewhere: the softmax of float16 logits is exactly known.
  // The candidate is the generated token's text, for a prompt where that text tokenizes back to the same token.
  const { engine } = batched.rec;
  const tok = new ChatTokenizer(loaded);
  let checked = 0;
  for (const content of ['Hi', 'Hello', 'x', 'What is this?', 'Tell me more', 'ok', 'Why?', 'cats']) {
    const next = await engine.generate({ model: 'counting', messages: user(content), prefix: 'Safety:', maxNewTokens: 1 });
    const prompt = tok.render(user(content), 'Safety:');
    if (tok.encode(prompt + next.text).length !== next.promptTokens + 1) continue;
    const score = await engine.score({ model: 'counting', messages: user(content), prefix: 'Safety:', candidates: [next.text, ' Unsafe', ' Safe'] });
    if (score.probabilities[0]! < 0.5) continue; // its text happens to start with another token
    const expected = Math.exp(10) / (Math.exp(10) + 2);
    assert.ok(Math.abs(score.probabilities[0]! - expected) < 1e-9, `${score.probabilities}`);
    checked++;
  }
  assert.ok(checked > 0, 'no prompt gave a round-tripping token');
});

test('a missing external data file is named before ONNX Runtime is asked', (t) => {
  const dir = path.join(tempDir(t, 'guardctl-fp16-'), 'counting');
  writeCountingModelDir(dir, GUARD_DIR);
  rmSync(path.join(dir, 'onnx', 'model_fp16.onnx_data'));
  assert.throws(
    () => loadModelDir(dir, 'fp16'),
    (err: GuardError) => err.code === 'GUARD_E_CONFIG' && /model_fp16\.onnx keeps its weights in .*model_fp16\.onnx_data, which is missing/.test(err.message),
  );
});
