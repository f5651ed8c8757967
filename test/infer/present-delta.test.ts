/**
 * Decode without the whole cache through the binding (src/infer/present-delta.ts, kv-append.ts): a Runner that
 * fetches each run's new KV positions and writes them into free slots of the past gives the same logits and the
 * same KV (positions in use, and their mask) as one fetching whole presents, through a chunked prefill, decode
 * steps, a multi-token extend and a row dropped mid-way; and its steps write in place instead of into new memory.
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
import { assertSamePastLayout } from '../helpers/kv-past.js';
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
    assert.ok(worst <= tolerance.logits, `${what} row ${r}: logits differ by ${worst}`);
  });
}

/**
 * Tolerances: the runs with free slots attend over more (masked) positions than those without, so sums may
 * round differently; fp16 computes in half precision (logits of about 10 have a step of 2^-7).
 */
let tolerance = { logits: 1e-4, kv: 1e-5 };

/** Elements as numbers: float16 travels as its bits (Node 20 has no Float16Array). */
function values(a: KvArray): Float64Array {
  if (a instanceof Float32Array) return Float64Array.from(a);
  return Float64Array.from(a, (h) => {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    return sign * (exp === 0 ? frac * 2 ** -24 : 2 ** (exp - 15) * (1 + frac / 1024));
  });
}

/** b (free slots from b.used on) holds a's positions (a has none free) and masks its free slots out. */
function assertSameKv(a: Kv, b: Kv, what: string, d: number): void {
  assertSamePastLayout(a, b, what);
  a.tensors.forEach((t, i) => {
    const [rows, heads, , dim] = t.dims as number[];
    assert.deepEqual(b.tensors[i]!.dims, [rows, heads, b.length, dim], `${what}: dims of tensor ${i}`);
    const [x, y] = [values(t.data as KvArray), values(b.tensors[i]!.data as KvArray)];
    for (let s = 0; s < rows! * heads!; s++) {
      for (let j = 0; j < a.length * d; j++) {
        const [u, v] = [x[s * a.length * d + j]!, y[s * b.length * d + j]!];
        assert.ok(Math.abs(u - v) <= tolerance.kv * Math.max(1, Math.abs(u)), `${what}: tensor ${i} slab ${s} element ${j}: ${u} vs ${v}`);
      }
    }
  });
}

for (const dtype of ['fp32', 'fp16'] as const) {
  test(`present deltas (${dtype}): same logits and KV as whole presents; steps write into the past's free slots in place`, async (t) => {
    const fx = realFixtures(t);
    if (!fx) return;
    const [plain, delta] = [await runner(fx.guard, dtype, false), await runner(fx.guard, dtype, true)];
    const d = loadModelDir(fx.guard, dtype).config.headDim;
    tolerance = dtype === 'fp16' ? { logits: 0.05, kv: 2 ** -9 } : { logits: 1e-4, kv: 1e-5 };
    try {
      const prompts = [[151644, 872, 198, 9707, 1052, 151645, 198, 151644, 77091], [151644, 872, 198, 14990, 151645, 198]];
      const [pa, pb] = [await plain.prefill(prompts, true), await delta.prefill(prompts, true)];
      assert.ok(pb.runs.length > 1, 'the prefill ran in chunks');
      assertClose(pa.logits, pb.logits, 'prefill');
      let [ka, kb] = [pa.kv!, pb.kv!];
      assertSameKv(ka, kb, 'prefill', d);
      let tokens = pa.logits.map(argmax);
      const buffers: ArrayBufferLike[] = [];
      for (let step = 0; step < 4; step++) {
        const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
        assertClose(a.logits, b.logits, `step ${step}`);
        [ka, kb] = [a.kv, b.kv];
        assertSameKv(ka, kb, `step ${step}`, d);
        buffers.push((kb.tensors[0]!.data as KvArray).buffer);
        tokens = a.logits.map(argmax);
      }
      // The chunked prefill's later chunks left free slots (9 positions used, 13 free): every step wrote into
      // them, in the prefill's own buffer.
      const prefillBuffer = (pb.kv!.tensors[0]!.data as KvArray).buffer;
      assert.ok(pb.kv!.length > pb.kv!.used!, 'the prefill left free slots');
      for (const [step, buffer] of buffers.entries()) assert.equal(buffer, prefillBuffer, `step ${step} wrote in place`);

      const [ea, eb] = [await plain.extend(ka, [[tokens[0]!, 11], [tokens[1]!, 12]]), await delta.extend(kb, [[tokens[0]!, 11], [tokens[1]!, 12]])];
      assertClose(ea.logits, eb.logits, 'extend');
      assertSameKv(ea.kv, eb.kv, 'extend', d);
      // A row leaves (select copies into new arrays); the remaining row goes on decoding.
      [ka, kb] = [plain.select(ea.kv, [1]), delta.select(eb.kv, [1])];
      tokens = [argmax(ea.logits[1]!)];
      for (let step = 0; step < 3; step++) {
        const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
        assertClose(a.logits, b.logits, `after select, step ${step}`);
        [ka, kb] = [a.kv, b.kv];
        assertSameKv(ka, kb, `after select, step ${step}`, d);
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
