/**
 * The grouped-attention rewrite (src/infer/grouped-attention.ts): on the demo models (torch exports, repeat_kv by
 * Unsqueeze, Expand and Reshape) the rewritten graph gives the export's logits and presents with a past and left
 * padding, runs without repeat_kv and its shape arithmetic, and the engine answers the same; graphs without the
 * pattern are left as they are, with the reason.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { regroupAttention } from '../../src/infer/grouped-attention.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { readGraph } from '../../src/infer/onnx-edit.js';
import { splitAttention } from '../../src/infer/split-attention.js';
// @ts-expect-error: a plain .mjs script without types
import { findPython } from '../../scripts/fixtures/build.mjs';
import { GUARD_DIR, MT_DIR, assertSameDemoAnswers, guard, mt, startEngine } from '../helpers/infer-engine.js';
import { realFixture } from '../helpers/real-fixture.js';
import { availableOrSkip } from '../helpers/system.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

const BUILDER = new URL('../../scripts/fixtures/qwen3_decoder.py', import.meta.url).pathname;

/** Runs both graphs on a left-padded batch of 2 rows with a past of 5 positions and 3 new ones. */
async function compare(dir: string): Promise<void> {
  const md = loadModelDir(dir, 'fp32');
  const { layers, kvHeads, headDim } = md.config;
  const bytes = fs.readFileSync(md.onnxPath);
  const r = regroupAttention(bytes, md.config);
  assert.ok(r.rewritten, `not rewritten: ${!r.rewritten && r.reason}`);
  assert.equal(r.matmuls, 2 * layers, 'every layer\'s scores and values MatMul');
  const before = readGraph(bytes, 0, '');
  const after = readGraph(r.model, 0, '');
  assert.ok(!('reason' in before) && !('reason' in after));
  assert.equal(before.nodes.filter((n) => n.op === 'Expand').length >= 2 * layers, true, 'the export repeats the cache');
  // No repeat_kv left, and with it about a third of the graph's nodes (the shape arithmetic they used).
  assert.equal(after.nodes.filter((n) => n.op === 'Expand' && n.name.includes('self_attn')).length, 0);
  assert.equal(after.nodes.length, before.nodes.length - r.removed + 2 * r.matmuls + layers, 'two reshapes per MatMul and one transpose of the keys per layer added');
  assert.ok(r.removed > before.nodes.length / 4, `${r.removed} of ${before.nodes.length} nodes removed`);

  const [P, S, rows] = [5, 3, 2];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 6n, 7n, 8n, 9n, 10n]), [rows, S]),
    // Row 1 starts with two pads.
    attention_mask: new ort.Tensor('int64', BigInt64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1].map(BigInt)), [rows, P + S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from([5, 6, 7, 3, 4, 5].map(BigInt)), [rows, S]),
  };
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  for (let i = 0; i < layers; i++) for (const kind of ['key', 'value']) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', Float32Array.from({ length: rows * kvHeads * P * headDim }, random), [rows, kvHeads, P, headDim]);
  const [a, b] = [await ort.InferenceSession.create(md.onnxPath, { intraOpNumThreads: 1 }), await ort.InferenceSession.create(r.model, { intraOpNumThreads: 1 })];
  try {
    const [oa, ob] = [await a.run(feeds), await b.run(feeds)];
    for (const name of a.outputNames) {
      const [x, y] = [oa[name]!.data as Float32Array, ob[name]!.data as Float32Array];
      assert.deepEqual(ob[name]!.dims, oa[name]!.dims, name);
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      assert.ok(worst <= 1e-5, `${name} differs by ${worst}`);
    }
  } finally {
    await Promise.all([a.release(), b.release()]);
  }
}

test('grouped attention: the guard demo graph without repeat_kv gives the export\'s logits and presents', () => compare(GUARD_DIR));
test('grouped attention: the translator demo graph without repeat_kv gives the export\'s logits and presents', () => compare(MT_DIR));

test('grouped attention: graphs without repeat_kv, or without grouped heads, are left alone with the reason', (t) => {
  const demo = fs.readFileSync(`${GUARD_DIR}/onnx/model.onnx`);
  assert.deepEqual(regroupAttention(demo, { heads: 2, kvHeads: 2 }), { rewritten: false, reason: 'no grouped-query attention (2 query heads, 2 KV heads)' });
  assert.deepEqual(regroupAttention(demo, { kvHeads: 2 }), { rewritten: false, reason: 'no grouped-query attention (? query heads, 2 KV heads)' });
  // A config.json that disagrees with the graph's repeat count (2) would group the heads wrongly: refused.
  assert.deepEqual(regroupAttention(demo, { heads: 8, kvHeads: 2 }), { rewritten: false, reason: 'present.0.key is repeated 2 times, but config.json has 8 query heads for 2 KV heads' });
  const dir = realFixture(t, 'moderate');
  if (!dir) return;
  // The fixture builder groups the query heads itself: its cache is unsqueezed, then transposed, never repeated.
  const r = regroupAttention(fs.readFileSync(`${dir}/onnx/model.onnx`), loadModelDir(dir, 'fp32').config);
  assert.deepEqual(r, { rewritten: false, reason: 'present.0.key is unsqueezed but not repeated by Expand and Reshape on axis 2' });
});

test('engine: the same answers with grouped attention (the default on CPU) as with the exported graph', async (t) => {
  const tuning = { maxBatch: 2, maxWaitMs: BATCH_FILL_MS };
  const exported = await startEngine(t, [guard(), mt()], { ...tuning, groupedAttention: false });
  const grouped = await startEngine(t, [guard(), mt()], tuning);
  assert.ok(grouped.logs.some((l) => /guard: grouped-query attention reads the shared cache \(8 MatMuls; \d+ nodes of repeat_kv and its shape arithmetic removed\)/.test(l.message)), JSON.stringify(grouped.logs));
  assert.ok(!exported.logs.some((l) => /grouped-query/.test(l.message)));
  await assertSameDemoAnswers(exported.engine, grouped.engine);
});

test('grouped and split attention on a repeat_kv graph at the Qwen3 vocabulary: numpy\'s logits, as the export gives them', async (t) => {
  // The fixture builder's torch-style variant (what bench:real's GUARDCTL_BENCH_ATTENTION=repeat_kv measures at
  // real size), built small: each rewrite must keep the export's answer to the reference sequence.
  const python = (findPython as () => string | undefined)();
  if (!availableOrSkip(t, python !== undefined, 'python3 with onnx and numpy (python3-onnx, python3-numpy)', 'no python3 imports onnx and numpy')) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-repeat-kv-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const built = spawnSync(python!, [BUILDER, '--onnx-dir', `${dir}/onnx`, '--reference-dir', dir, '--dtypes', 'fp32', '--attention', 'repeat_kv'], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const { ids, config } = JSON.parse(fs.readFileSync(`${dir}/reference.json`, 'utf8')) as { ids: number[]; config: { layers: number; heads: number; kv_heads: number; head_dim: number; vocab: number } };
  const reference = new Float32Array(fs.readFileSync(`${dir}/reference_fp32.bin`).buffer.slice(0));
  const exported = fs.readFileSync(`${dir}/onnx/model.onnx`);
  const grouped = regroupAttention(exported, { heads: config.heads, kvHeads: config.kv_heads });
  assert.ok(grouped.rewritten, !grouped.rewritten ? grouped.reason : '');
  assert.equal(grouped.matmuls, 2 * config.layers);
  const split = splitAttention(grouped.model);
  assert.ok(split.rewritten, !split.rewritten ? split.reason : '');
  for (const [what, model, past] of [['exported', exported, 0], ['grouped', grouped.model, 0], ['grouped + split', split.model, 1]] as const) {
    const session = await ort.InferenceSession.create(model, { logSeverityLevel: 2, extra: { session: { model_external_initializers_file_folder_path: `${dir}/onnx` } } });
    try {
      const n = ids.length;
      // The split graph is fed as the runner feeds it: one masked-out past slot.
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from([...Array<number>(past).fill(0), ...Array<number>(n).fill(1)].map(BigInt)), [1, past + n]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, n]),
      };
      for (let i = 0; i < config.layers; i++) for (const kind of ['key', 'value']) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(config.kv_heads * past * config.head_dim), [1, config.kv_heads, past, config.head_dim]);
      const logits = (await session.run(feeds)).logits!.data as Float32Array;
      const last = logits.subarray(logits.length - config.vocab);
      let worst = 0;
      for (let i = 0; i < config.vocab; i++) worst = Math.max(worst, Math.abs(last[i]! - reference[i]!));
      assert.ok(worst <= 1e-4, `${what}: logits differ from numpy's by ${worst}`);
    } finally {
      await session.release();
    }
  }
});
