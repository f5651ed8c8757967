/**
 * The split-attention rewrite (src/infer/split-attention.ts) as a graph transformation: which graphs it takes
 * (both attention layouts, every dtype), what the result computes no more (the Concat of the past, the whole
 * presents), which graphs it leaves alone and why, and where the engine applies it. That a rewritten graph
 * answers as the export does is present-delta.test.ts's runner comparison; here the engine's answers are.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { nodeInfo, nameOf, renamedNode } from '../../src/infer/onnx-edit.js';
import { lenField, replaceField, stringField, WIRE_LEN, wireFields } from '../../src/infer/protobuf.js';
import { splitAttention, splitPays } from '../../src/infer/split-attention.js';
import { countingModel } from '../helpers/onnx-builder.js';
import { GUARD_DIR, MT_DIR, assertSameDemoAnswers, guard, mt, startEngine } from '../helpers/infer-engine.js';
import { REAL_DTYPES, realFixture } from '../helpers/real-fixture.js';
import { BATCH_FILL_MS } from '../helpers/wait.js';

const FILES = { fp32: 'model.onnx', fp16: 'model_fp16.onnx', q4: 'model_q4.onnx', int8: 'model_int8.onnx' } as const;

/** The graph's nodes and outputs. */
function graphOf(model: Uint8Array) {
  const top = [...wireFields(model)];
  const g = top.find((f) => f.no === 7 && f.wire === WIRE_LEN)!;
  const fields = [...wireFields(model, g.start, g.end)];
  return {
    field: g,
    fields,
    nodes: fields.filter((f) => f.no === 1 && f.wire === WIRE_LEN).map((f) => nodeInfo(model, f)),
    outputs: fields.filter((f) => f.no === 12 && f.wire === WIRE_LEN).map((f) => nameOf(model, f)),
  };
}

function assertSplit(file: string, layers: number): void {
  const before = fs.readFileSync(file);
  const r = splitAttention(before);
  assert.ok(r.rewritten, `${file} not rewritten: ${!r.rewritten && r.reason}`);
  assert.equal(r.layers, layers);
  const old = graphOf(before);
  const g = graphOf(r.model);
  const presents = Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  assert.deepEqual(r.outputs, presents.map((p) => p.replace('present.', 'present_delta.')));
  assert.deepEqual(g.outputs, old.outputs.map((o) => o.replace('present.', 'present_delta.')), 'the presents became their new positions, in place');
  // Nothing reads a whole past into a copy any more: every past input goes straight to attention's MatMuls
  // (through the reshapes of repeat_kv) and to Shape.
  const pasts = new Set(presents.map((p) => p.replace('present.', 'past_key_values.')));
  const readers = g.nodes.filter((n) => n.inputs.some((i) => pasts.has(i)));
  assert.ok(readers.length >= pasts.size);
  for (const n of readers) assert.ok(['Unsqueeze', 'Shape', 'Transpose', 'MatMul'].includes(n.op), `${n.op} ${n.name} reads a past`);
  assert.equal(g.nodes.filter((n) => n.op === 'Concat' && n.inputs.some((i) => pasts.has(i))).length, 0);
  // No node is left computing a whole present.
  assert.equal(g.nodes.filter((n) => n.outputs.some((o) => o.startsWith('present.'))).length, 0);
}

test('split attention: both demo models (torch exports, repeat_kv by Expand and Reshape) are rewritten', () => {
  assertSplit(`${GUARD_DIR}/onnx/model.onnx`, 4);
  assertSplit(`${MT_DIR}/onnx/model.onnx`, JSON.parse(fs.readFileSync(`${MT_DIR}/config.json`, 'utf8')).num_hidden_layers);
});

for (const dtype of REAL_DTYPES) {
  test(`split attention: the ${dtype} real-format fixture (grouped-query MatMul) is rewritten`, (t) => {
    const dir = realFixture(t, 'moderate');
    if (!dir) return;
    assertSplit(`${dir}/onnx/${FILES[dtype]}`, 2);
  });
}

test('split attention: a graph that reads the cache outside attention is left alone, with the reason', (t) => {
  const dir = realFixture(t, 'moderate');
  if (!dir) return;
  const model = fs.readFileSync(`${dir}/onnx/model.onnx`);
  const g = graphOf(model);
  // One more output: the sum of layer 0's whole key cache, computed from the present.
  const reduce = Buffer.concat(lenField(1, [stringField(1, 'present.0.key'), stringField(2, 'leak'), stringField(3, 'leak'), stringField(4, 'ReduceSum')]));
  const leakOut = Buffer.concat(lenField(12, [stringField(1, 'leak')]));
  const parts = g.fields.map((f) => Buffer.from(model.subarray(f.tagStart, f.end)));
  const leaked = replaceField(model, g.field, 7, [...parts, reduce, leakOut]);
  const r = splitAttention(leaked);
  assert.equal(r.rewritten, false);
  assert.match(!r.rewritten ? r.reason : '', /^ReduceSum leak \(from present\.0\.key\) reads the concatenated cache$/);

  // The counting model (hand-encoded, nodes out of order, the cache summed): refused before anything is read wrong.
  const counting = splitAttention(countingModel('counting.data').onnx);
  assert.equal(counting.rewritten, false);
  assert.match(!counting.rewritten ? counting.reason : '', /topological order/);
});

test('split attention: shape arithmetic of the cache that mixes in a dynamic value is refused, with the reason', () => {
  // The demo graph multiplies the cache's KV-head count by a constant (n_rep) for repeat_kv's target shape; make
  // that factor the mask's length instead, which in a branch would be the wrong sequence's.
  const model = fs.readFileSync(`${GUARD_DIR}/onnx/model.onnx`);
  const g = graphOf(model);
  const mul = g.nodes.find((n) => n.op === 'Mul' && n.outputs[0] === '/m/model/layers.0/self_attn/Mul_5_output_0')!;
  const maskLength = g.nodes.find((n) => n.outputs[0] === '/m/model/Gather_1_output_0')!.outputs[0]!;
  const parts = g.fields.map((f) => (f === mul.field ? renamedNode(model, mul, [mul.inputs[0]!, maskLength], mul.outputs, mul.name) : Buffer.from(model.subarray(f.tagStart, f.end))));
  const r = splitAttention(replaceField(model, g.field, 7, parts));
  assert.deepEqual(r, { rewritten: false, reason: `Mul /m/model/layers.0/self_attn/Mul_5_output_0 (from present.0.key) combines the cache with ${maskLength}, which is not a constant` });
});

test('split attention pays where the KV per position is large: Qwen3-0.6B\'s shape, not the demo models', () => {
  assert.equal(splitPays({ kvHeads: 8, headDim: 128 }), true);
  assert.equal(splitPays({ kvHeads: 2, headDim: 32 }), false);
});

test('engine: the same answers with split attention as with the Concat graph, which the demo models keep by default', async (t) => {
  const tuning = { maxBatch: 2, maxWaitMs: BATCH_FILL_MS };
  const plain = await startEngine(t, [guard(), mt()], tuning);
  const split = await startEngine(t, [guard(), mt()], { ...tuning, splitAttention: true });
  for (const name of ['guard', 'mt']) assert.ok(split.logs.some((l) => new RegExp(`${name}: attention reads the past and the new positions apart \\(4 layers`).test(l.message)), JSON.stringify(split.logs));
  assert.ok(!plain.logs.some((l) => /new positions apart|over the concatenated cache/.test(l.message)), 'the default does not try the split on the demo models');
  await assertSameDemoAnswers(plain.engine, split.engine);
});
