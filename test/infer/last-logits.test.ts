/**
 * The last-position logits rewrite (src/infer/last-logits.ts) against the graphs as exported: the same last
 * logits and the same presents for a left-padded batch prefill and a decode step, and the engine's answers equal
 * with and without it, in one prefill run where the exported graph needed chunks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { lastPositionLogits } from '../../src/infer/last-logits.js';
import { halfToFloat } from '../../src/infer/logits.js';
import { GUARD_DIR, MT_DIR, guard, mt, startEngine, toEnglish, user } from '../helpers/infer-engine.js';
import { REAL_DTYPES, realFixture } from '../helpers/real-fixture.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

interface Config {
  num_hidden_layers: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
}

/** Values as float32 (float16 tensors arrive as Uint16Array bits). */
const floats = (t: ort.Tensor) => (t.type === 'float16' ? halfToFloat(t.data as Uint16Array) : (t.data as Float32Array));

/** Equal, or within `tolerance` of the largest magnitude when the kernels may differ ([b,1,h] vs [b,s,h]). */
function close(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  if (tolerance === 0) return assert.deepEqual(actual, expected, what);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  assert.ok(worst <= tolerance * scale, `${what}: largest difference ${worst} against values up to ${scale}`);
}

/**
 * Runs a left-padded prefill of 2 rows (7 and 5 tokens) and one decode step on the exported graph and on the
 * rewritten one (loaded from bytes as the worker does, external data through the session's folder option).
 */
async function compare(dir: string, file = 'model.onnx', lmHead = /^MatMul /, tolerance = 0): Promise<void> {
  const onnxPath = path.join(dir, 'onnx', file);
  const result = lastPositionLogits(fs.readFileSync(onnxPath));
  assert.ok(result.rewritten, `not rewritten: ${!result.rewritten && result.reason}`);
  assert.match(result.lmHead, lmHead);
  const cfg = JSON.parse(fs.readFileSync(`${dir}/config.json`, 'utf8')) as Config;
  const extra = { session: { model_external_initializers_file_folder_path: path.dirname(onnxPath) } };
  const [original, last] = [await ort.InferenceSession.create(onnxPath), await ort.InferenceSession.create(result.model, { extra })];
  const kvType = original.inputMetadata.find((m) => m.name === 'past_key_values.0.key') as { type?: string } | undefined;
  const kvDtype = kvType?.type === 'float16' ? 'float16' : 'float32';
  try {
    const [rows, seq, vocab] = [2, 7, cfg.vocab_size];
    const pads = [0, 2];
    const ids = BigInt64Array.from({ length: rows * seq }, (_, i) => BigInt(i % seq < pads[Math.floor(i / seq)]! ? 0 : 11 + ((i * 37) % 300)));
    const mask = BigInt64Array.from({ length: rows * seq }, (_, i) => (i % seq < pads[Math.floor(i / seq)]! ? 0n : 1n));
    const positions = BigInt64Array.from({ length: rows * seq }, (_, i) => BigInt(Math.max(0, (i % seq) - pads[Math.floor(i / seq)]!)));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [rows, seq]),
      attention_mask: new ort.Tensor('int64', mask, [rows, seq]),
      position_ids: new ort.Tensor('int64', positions, [rows, seq]),
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      for (const k of ['key', 'value']) feeds[`past_key_values.${l}.${k}`] = new ort.Tensor(kvDtype, kvDtype === 'float16' ? new Uint16Array(0) : new Float32Array(0), [rows, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
    const [a, b] = [await original.run(feeds), await last.run(feeds)];
    assert.deepEqual(a.logits!.dims, [rows, seq, vocab]);
    assert.deepEqual(b.logits!.dims, [rows, 1, vocab]);
    const [la, lb] = [floats(a.logits as ort.Tensor), floats(b.logits as ort.Tensor)];
    for (let r = 0; r < rows; r++) close(lb.subarray(r * vocab, (r + 1) * vocab), la.subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab), tolerance, `row ${r} logits`);
    // The presents do not pass through the lm_head: the same kernels compute them, bit for bit.
    for (const name of original.outputNames.filter((n) => n.startsWith('present.'))) assert.deepEqual(b[name]!.data, a[name]!.data, name);

    // A decode step from those presents: one position either way, so the logits are the same tensor.
    const step: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([42n, 43n]), [rows, 1]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from({ length: rows * (seq + 1) }, (_, i) => (i % (seq + 1) < pads[Math.floor(i / (seq + 1))]! ? 0n : 1n)), [rows, seq + 1]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(pads.map((p) => BigInt(seq - p))), [rows, 1]),
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) for (const k of ['key', 'value']) step[`past_key_values.${l}.${k}`] = a[`present.${l}.${k}`] as ort.Tensor;
    const [da, db] = [await original.run(step), await last.run(step)];
    assert.deepEqual(db.logits!.dims, [rows, 1, vocab]);
    close(floats(db.logits as ort.Tensor), floats(da.logits as ort.Tensor), tolerance, 'decode logits');
  } finally {
    await Promise.all([original.release(), last.release()]);
  }
}

test('the rewritten guard demo graph gives the exported one\'s last logits and presents', () => compare(GUARD_DIR));
test('the rewritten translator demo graph gives the exported one\'s last logits and presents', () => compare(MT_DIR));

// The real-format fixtures (issue 11): the real 151,936-token vocabulary, and the lm_head as each dtype has it.
const LM_HEADS = { fp32: /^MatMul /, fp16: /^MatMul /, q4: /^MatMulNBits /, int8: /^MatMulInteger / } as const;
const FILES = { fp32: 'model.onnx', fp16: 'model_fp16.onnx', q4: 'model_q4.onnx', int8: 'model_int8.onnx' } as const;
for (const dtype of REAL_DTYPES) {
  test(`the rewritten ${dtype} real-format fixture (${FILES[dtype]}) gives the exported graph's last logits and presents`, async (t) => {
    const dir = realFixture(t, 'moderate');
    if (!dir) return;
    // Bit-identical on this machine's CPU; a tolerance because another CPU's kernels may block [b,1,h] differently.
    await compare(dir, FILES[dtype], LM_HEADS[dtype], 1e-5);
  });
}

test('a file that is not an ONNX model is left alone with a reason, not rewritten', () => {
  const truncated = fs.readFileSync(`${GUARD_DIR}/onnx/model.onnx`).subarray(0, 5000);
  assert.throws(() => lastPositionLogits(truncated), /runs past its message/);
  assert.deepEqual(lastPositionLogits(Buffer.from([0x08, 0x07])), { rewritten: false, reason: 'the file holds no graph' });
});

test('engine: the same answers with and without the rewrite, in one prefill run instead of chunks', async (t) => {
  const prompts = [
    { model: 'guard', messages: user('How do I make a bomb in my kitchen?') },
    { model: 'guard', messages: user("What's the capital of France?") },
    { model: 'mt', messages: toEnglish('我们喜欢猫。我们喜欢狗。他们看书。') },
  ];
  // A logits budget of 2 rows x 2 positions of the 4,096-token vocabulary: the exported graphs need chunks.
  const tuning = { maxBatch: 2, maxWaitMs: BATCH_FILL_MS, logitsBudget: 4 * 4096 };
  const full = await startEngine(t, [guard(), mt()], { ...tuning, fullLogits: true });
  const last = await startEngine(t, [guard(), mt()], tuning);
  assert.ok(last.logs.some((l) => /guard: logits computed for the last position only \(lm_head MatMul/.test(l.message)), JSON.stringify(last.logs));
  assert.ok(!full.logs.some((l) => /last position only/.test(l.message)));
  full.steps.length = 0;
  last.steps.length = 0;
  const run = (engine: typeof full.engine) => Promise.all(prompts.map((p) => engine.generate({ ...p, maxNewTokens: 24 })));
  const [a, b] = [await run(full.engine), await run(last.engine)];
  assert.deepEqual(b.map((r) => r.text), a.map((r) => r.text));
  const prefills = (s: typeof full.steps) => s.filter((e) => e.kind === 'prefill').length;
  // Three requests make at most three batches: more prefill events than that are chunks.
  assert.ok(prefills(full.steps) > 3, `the exported graphs prefilled in chunks: ${prefills(full.steps)}`);
  assert.ok(prefills(last.steps) <= 3, `one run per batch with the rewrite: ${prefills(last.steps)}`);
});
