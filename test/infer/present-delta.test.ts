/**
 * Decode without the whole cache through the binding (src/infer/present-delta.ts, kv-append.ts): a Runner that
 * fetches each run's new KV positions and grows the past in reused buffers gives the same logits and the same
 * KV as one fetching whole presents, through a chunked prefill, decode steps, a multi-token extend and a row
 * dropped mid-way; and its steps write into the buffers of the step before last instead of new memory.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { validateGraph } from '../../src/infer/graph.js';
import type { KvArray } from '../../src/infer/kv.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { addPresentDeltas } from '../../src/infer/present-delta.js';
import { Runner, type Kv } from '../../src/infer/runner.js';
import type { Dtype } from '../../src/infer/types.js';
import { realFixtures } from '../helpers/real-fixture.js';

async function runner(dir: string, dtype: Dtype, deltas: boolean): Promise<Runner> {
  const model = loadModelDir(dir, dtype);
  const bytes = fs.readFileSync(model.onnxPath);
  let source: string | Uint8Array = model.onnxPath;
  let options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1 };
  if (deltas) {
    const r = addPresentDeltas(bytes);
    assert.ok(r.rewritten, `not rewritten: ${!r.rewritten && r.reason}`);
    assert.equal(r.outputs.length, 2 * model.config.layers);
    source = r.model;
    options = { ...options, extra: { session: { model_external_initializers_file_folder_path: `${dir}/onnx` } } };
  }
  const session = await ort.InferenceSession.create(source as Uint8Array, options);
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  // A logits budget of 3 positions at this vocabulary: the exported graph's prefill of 9 tokens runs in chunks.
  return new Runner(session, 'cpu', graph, model.config, 2 * 3 * model.config.vocabSize, deltas);
}

const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);

function assertClose(a: readonly Float32Array[], b: readonly Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((row, r) => {
    let worst = 0;
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs(row[i]! - b[r]![i]!));
    assert.ok(worst <= 1e-4, `${what} row ${r}: logits differ by ${worst}`);
  });
}

function assertSameKv(a: Kv, b: Kv, what: string): void {
  assert.equal(a.length, b.length, `${what}: past length`);
  assert.deepEqual(a.lens, b.lens, `${what}: lens`);
  a.tensors.forEach((t, i) => {
    assert.deepEqual(t.dims, b.tensors[i]!.dims, `${what}: dims of tensor ${i}`);
    assert.deepEqual(t.data, b.tensors[i]!.data, `${what}: tensor ${i}`);
  });
}

for (const dtype of ['fp32', 'fp16'] as const) {
  test(`present deltas (${dtype}): same logits and KV as whole presents; steps reuse the buffers of the step before last`, async (t) => {
    const fx = realFixtures(t);
    if (!fx) return;
    const [plain, delta] = [await runner(fx.guard, dtype, false), await runner(fx.guard, dtype, true)];
    try {
      const prompts = [[151644, 872, 198, 9707, 1052, 151645, 198, 151644, 77091], [151644, 872, 198, 14990, 151645, 198]];
      const [pa, pb] = [await plain.prefill(prompts, true), await delta.prefill(prompts, true)];
      assert.ok(pb.runs.length > 1, 'the prefill ran in chunks');
      assertClose(pa.logits, pb.logits, 'prefill');
      let [ka, kb] = [pa.kv!, pb.kv!];
      assertSameKv(ka, kb, 'prefill');
      let tokens = pa.logits.map(argmax);
      const buffers: ArrayBufferLike[] = [];
      for (let step = 0; step < 4; step++) {
        const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
        assertClose(a.logits, b.logits, `step ${step}`);
        [ka, kb] = [a.kv, b.kv];
        assertSameKv(ka, kb, `step ${step}`);
        buffers.push((kb.tensors[0]!.data as KvArray).buffer);
        tokens = a.logits.map(argmax);
      }
      // Ping-pong: step 3 wrote where step 1 did, step 4 where step 2 did (step 1 needed new memory: the
      // prefill's presents have no room to grow).
      assert.equal(buffers[2], buffers[0]);
      assert.equal(buffers[3], buffers[1]);
      assert.notEqual(buffers[1], buffers[0]);

      const [ea, eb] = [await plain.extend(ka, [[tokens[0]!, 11], [tokens[1]!, 12]]), await delta.extend(kb, [[tokens[0]!, 11], [tokens[1]!, 12]])];
      assertClose(ea.logits, eb.logits, 'extend');
      assertSameKv(ea.kv, eb.kv, 'extend');
      // A row leaves (select copies into new arrays); the remaining row goes on decoding.
      [ka, kb] = [plain.select(ea.kv, [1]), delta.select(eb.kv, [1])];
      tokens = [argmax(ea.logits[1]!)];
      for (let step = 0; step < 3; step++) {
        const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
        assertClose(a.logits, b.logits, `after select, step ${step}`);
        [ka, kb] = [a.kv, b.kv];
        assertSameKv(ka, kb, `after select, step ${step}`);
        tokens = a.logits.map(argmax);
      }
    } finally {
      await plain.release();
      await delta.release();
    }
  });
}

test('present deltas: a graph without presents is left alone, with the reason', () => {
  // A ModelProto whose graph (field 7) holds one node and no outputs.
  const node = Buffer.from([0x0a, 0x03, 0x22, 0x01, 0x41]);
  const model = Buffer.concat([Buffer.from([0x3a, node.length]), node]);
  const r = addPresentDeltas(model);
  assert.equal(r.rewritten, false);
  assert.match(!r.rewritten ? r.reason : '', /no present outputs/);
});
