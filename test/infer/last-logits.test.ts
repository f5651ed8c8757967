/**
 * The last-position logits rewrite (src/infer/last-logits.ts) against the graphs as exported: the same last
 * logits and the same presents for a left-padded batch prefill and a decode step, and the engine's answers equal
 * with and without it, in one prefill run where the exported graph needed chunks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { lastPositionLogits } from '../../src/infer/last-logits.js';
import { GUARD_DIR, MT_DIR, guard, mt, startEngine, toEnglish, user } from '../helpers/infer-engine.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

interface Config {
  num_hidden_layers: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
}

/** Runs a left-padded prefill of 2 rows (7 and 5 tokens) and one decode step on both sessions. */
async function compare(dir: string): Promise<void> {
  const path = `${dir}/onnx/model.onnx`;
  const result = lastPositionLogits(fs.readFileSync(path));
  assert.ok(result.rewritten, `not rewritten: ${!result.rewritten && result.reason}`);
  assert.match(result.lmHead, /^MatMul /);
  const cfg = JSON.parse(fs.readFileSync(`${dir}/config.json`, 'utf8')) as Config;
  const [original, last] = [await ort.InferenceSession.create(path), await ort.InferenceSession.create(result.model)];
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
      for (const k of ['key', 'value']) feeds[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), [rows, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
    const [a, b] = [await original.run(feeds), await last.run(feeds)];
    assert.deepEqual(a.logits!.dims, [rows, seq, vocab]);
    assert.deepEqual(b.logits!.dims, [rows, 1, vocab]);
    const [la, lb] = [a.logits!.data as Float32Array, b.logits!.data as Float32Array];
    for (let r = 0; r < rows; r++) assert.deepEqual(lb.subarray(r * vocab, (r + 1) * vocab), la.subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab));
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
    assert.deepEqual(db.logits!.data, da.logits!.data);
  } finally {
    await Promise.all([original.release(), last.release()]);
  }
}

test('the rewritten guard demo graph gives the exported one\'s last logits and presents', () => compare(GUARD_DIR));
test('the rewritten translator demo graph gives the exported one\'s last logits and presents', () => compare(MT_DIR));

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
