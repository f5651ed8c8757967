/**
 * Decode without the whole cache through the binding (src/infer/present-delta.ts, kv-append.ts) or in the graph
 * (src/infer/split-attention.ts): a Runner that fetches each run's new KV positions and writes them into free
 * slots of the past gives the same logits and the same KV (positions in use, and their mask) as one fetching
 * whole presents, through a (chunked) prefill, decode steps, a multi-token extend and a row dropped mid-way; and
 * its steps write in place instead of into new memory. The split graph is checked on both attention layouts:
 * the fixture builder's grouped MatMul and a torch export's repeat_kv.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { validateGraph } from '../../src/infer/graph.js';
import type { KvArray } from '../../src/infer/kv.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { addPresentDeltas } from '../../src/infer/present-delta.js';
import { regroupAttention } from '../../src/infer/grouped-attention.js';
import { splitAttention } from '../../src/infer/split-attention.js';
import { Runner, type Kv } from '../../src/infer/runner.js';
import type { Dtype } from '../../src/infer/types.js';
import { assertCloseLogits, assertSameKv, type Tolerance } from '../helpers/kv-past.js';
import { realFixtures } from '../helpers/real-fixture.js';

const DEMO_GUARD = new URL('../../models/guard-demo', import.meta.url).pathname;

/** How new positions come out: slices of the presents, or split attention; on the demo model also after the
 * grouped-attention rewrite, as the engine serves a torch export. */
type Mode = 'plain' | 'delta' | 'split' | 'grouped+delta' | 'grouped+split';

async function runner(dir: string, dtype: Dtype, mode: Mode): Promise<Runner> {
  const model = loadModelDir(dir, dtype);
  let bytes: Uint8Array = fs.readFileSync(model.onnxPath);
  let source: string | Uint8Array = model.onnxPath;
  let options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1 };
  if (mode.startsWith('grouped+')) {
    const g = regroupAttention(bytes, model.config);
    assert.ok(g.rewritten, `not regrouped: ${!g.rewritten && g.reason}`);
    bytes = g.model;
  }
  if (mode !== 'plain') {
    const r = mode.endsWith('delta') ? addPresentDeltas(bytes) : splitAttention(bytes);
    assert.ok(r.rewritten, `not rewritten: ${!r.rewritten && r.reason}`);
    assert.equal(r.outputs.length, 2 * model.config.layers);
    source = r.model;
    options = { ...options, extra: { session: { model_external_initializers_file_folder_path: path.dirname(model.onnxPath) } } };
  }
  const session = await ort.InferenceSession.create(source as Uint8Array, options);
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  assert.equal(graph.newPositionsOnly, mode.endsWith('split'), 'the split graph computes no whole presents');
  // A logits budget of 3 positions at this vocabulary: the exported graph's prefill of 9 tokens runs in chunks.
  return new Runner(session, 'cpu', graph, model.config, 2 * 3 * model.config.vocabSize, mode.endsWith('delta'));
}

const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);

/**
 * Tolerances: the runs with free slots attend over more (masked) positions than those without, so sums may
 * round differently; fp16 computes in half precision (logits of about 10 have a step of 2^-7).
 */
const TOLERANCE: Record<'fp32' | 'fp16', Tolerance> = { fp32: { logits: 1e-4, kv: 1e-5 }, fp16: { logits: 0.05, kv: 2 ** -9 } };

/** The real-format fixture (Qwen3 ids) and the demo guard model (a torch export: repeat_kv by Expand and Reshape). */
const MODELS = [
  { what: 'real-format fixture', prompts: [[151644, 872, 198, 9707, 1052, 151645, 198, 151644, 77091], [151644, 872, 198, 14990, 151645, 198]], extra: [11, 12] },
  { what: 'demo guard model', prompts: [[5, 17, 230, 41, 9, 77, 301, 12, 6], [5, 17, 88, 9, 64, 6]], extra: [11, 12] },
] as const;

const TITLES: Record<Exclude<Mode, 'plain'>, string> = { delta: 'present deltas', split: 'split attention', 'grouped+delta': 'grouped attention, present deltas', 'grouped+split': 'grouped and split attention' };

for (const mode of ['delta', 'split', 'grouped+delta', 'grouped+split'] as const) {
  for (const { what, prompts, extra } of MODELS) {
    if (mode.startsWith('grouped') && what !== 'demo guard model') continue;
    for (const dtype of what === 'demo guard model' ? (['fp32'] as const) : (['fp32', 'fp16'] as const)) {
      test(`${TITLES[mode]} (${what}, ${dtype}): same logits and KV as whole presents; steps write into the past's free slots in place`, async (t) => {
        let dir: string = DEMO_GUARD;
        if (what !== 'demo guard model') {
          const fx = realFixtures(t);
          if (!fx) return;
          dir = fx.guard;
        }
        const [plain, delta] = [await runner(dir, dtype, 'plain'), await runner(dir, dtype, mode)];
        const d = loadModelDir(dir, dtype).config.headDim;
        const tolerance = TOLERANCE[dtype];
        try {
          const [pa, pb] = [await plain.prefill(prompts.map((p) => [...p]), true), await delta.prefill(prompts.map((p) => [...p]), true)];
          if (what !== 'demo guard model') assert.ok(pb.runs.length > 1, 'the prefill ran in chunks');
          assertCloseLogits(pa.logits, pb.logits, 'prefill', tolerance);
          let [ka, kb] = [pa.kv!, pb.kv!];
          assertSameKv(ka, kb, 'prefill', d, tolerance);
          let tokens = pa.logits.map(argmax);
          const buffers: ArrayBufferLike[] = [];
          for (let step = 0; step < 4; step++) {
            const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
            assertCloseLogits(a.logits, b.logits, `step ${step}`, tolerance);
            [ka, kb] = [a.kv, b.kv];
            assertSameKv(ka, kb, `step ${step}`, d, tolerance);
            buffers.push((kb.tensors[0]!.data as KvArray).buffer);
            tokens = a.logits.map(argmax);
          }
          // The prefill left free slots (9 positions used): every step wrote into them, in the prefill's own buffer.
          const prefillBuffer = (pb.kv!.tensors[0]!.data as KvArray).buffer;
          assert.ok(pb.kv!.length > pb.kv!.used!, 'the prefill left free slots');
          for (const [step, buffer] of buffers.entries()) assert.equal(buffer, prefillBuffer, `step ${step} wrote in place`);

          const [ea, eb] = [await plain.extend(ka, [[tokens[0]!, extra[0]], [tokens[1]!, extra[1]]]), await delta.extend(kb, [[tokens[0]!, extra[0]], [tokens[1]!, extra[1]]])];
          assertCloseLogits(ea.logits, eb.logits, 'extend', tolerance);
          assertSameKv(ea.kv, eb.kv, 'extend', d, tolerance);
          // A row leaves (select copies into new arrays); the remaining row goes on decoding.
          [ka, kb] = [plain.select(ea.kv, [1]), delta.select(eb.kv, [1])];
          tokens = [argmax(ea.logits[1]!)];
          for (let step = 0; step < 3; step++) {
            const [a, b] = [await plain.decode(ka, tokens), await delta.decode(kb, tokens)];
            assertCloseLogits(a.logits, b.logits, `after select, step ${step}`, tolerance);
            [ka, kb] = [a.kv, b.kv];
            assertSameKv(ka, kb, `after select, step ${step}`, d, tolerance);
            tokens = a.logits.map(argmax);
          }
        } finally {
          await plain.release();
          await delta.release();
        }
      });
    }
  }
}

test('present deltas: a graph without presents is left alone, with the reason', () => {
  // A ModelProto whose graph (field 7) holds one node and no outputs.
  const node = Buffer.from([0x0a, 0x03, 0x22, 0x01, 0x41]);
  const model = Buffer.concat([Buffer.from([0x3a, node.length]), node]);
  const r = addPresentDeltas(model);
  assert.equal(r.rewritten, false);
  assert.match(!r.rewritten ? r.reason : '', /no present outputs/);
});
