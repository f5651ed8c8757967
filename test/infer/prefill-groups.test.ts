/**
 * A CPU prefill larger than the runner's KV budget runs in row groups (runner.ts) and must be the same prefill:
 * the same last logits, the same past (length, lens, mask, keys and values), the same reused-token count, and
 * decode steps from the stacked past give the same logits; with and without a cached head.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { validateGraph } from '../../src/infer/graph.js';
import type { KvArray } from '../../src/infer/kv.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { addPresentDeltas } from '../../src/infer/present-delta.js';
import { lastPositionLogits } from '../../src/infer/last-logits.js';
import { Runner, type Kv } from '../../src/infer/runner.js';
import { realFixtures } from '../helpers/real-fixture.js';

async function runner(dir: string, prefillKvBudget?: number): Promise<Runner> {
  const model = loadModelDir(dir, 'fp32');
  const last = lastPositionLogits(fs.readFileSync(model.onnxPath));
  assert.ok(last.rewritten);
  const deltas = addPresentDeltas(last.model);
  assert.ok(deltas.rewritten);
  const session = await ort.InferenceSession.create(deltas.model, { executionProviders: ['cpu'], intraOpNumThreads: 1, extra: { session: { model_external_initializers_file_folder_path: `${dir}/onnx` } } });
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  return new Runner(session, 'cpu', graph, model.config, undefined, true, prefillKvBudget);
}

const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);

function worstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function assertSamePast(a: Kv, b: Kv, what: string): void {
  assert.equal(b.rows, a.rows, `${what}: rows`);
  assert.equal(b.length, a.length, `${what}: past length`);
  assert.deepEqual(b.lens, a.lens, `${what}: lens`);
  assert.deepEqual(b.mask, a.mask, `${what}: mask`);
  a.tensors.forEach((t, i) => {
    assert.deepEqual(b.tensors[i]!.dims, t.dims, `${what}: dims of tensor ${i}`);
    const d = worstDiff(t.data as KvArray, b.tensors[i]!.data as KvArray);
    assert.ok(d <= 1e-4, `${what}: tensor ${i} differs by ${d}`);
  });
}

test('prefill in row groups: the same logits and past as one run, with and without a cached head, and decoding goes on alike', async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;
  const whole = await runner(fx.guard);
  // One position of one row is 2 x layers x kvHeads x headDim floats: a budget of 1.5 rows of 12 positions
  // makes groups of one row.
  const probe = loadModelDir(fx.guard, 'fp32').config;
  const rowBytes = 12 * 2 * probe.layers * probe.kvHeads * probe.headDim * 4;
  const grouped = await runner(fx.guard, Math.floor(1.5 * rowBytes));
  try {
    const headIds = [151644, 872, 198, 9707, 1052, 11];
    const tails = [[3555, 374, 279, 6722, 151645], [14990, 151645], [40, 1079, 264, 1273, 315, 13, 151645]];
    for (const withHead of [false, true]) {
      if (withHead) for (const r of [whole, grouped]) for (const h of await r.prefillHeads([headIds])) r.prefixes.add(h);
      const prompts = tails.map((tail) => [...headIds, ...tail]);
      const [a, b] = [await whole.prefill(prompts, true), await grouped.prefill(prompts, true)];
      const what = withHead ? 'with a cached head' : 'without a head';
      assert.equal(a.runs.length, 1, `${what}: the default budget prefills in one run`);
      assert.equal(b.runs.length, 3, `${what}: one run per row`);
      assert.equal(b.runs.reduce((n, r) => n + (r.reused ?? 0), 0), a.runs.reduce((n, r) => n + (r.reused ?? 0), 0), `${what}: reused tokens`);
      assert.equal(b.runs.reduce((n, r) => n + r.tokens, 0), a.runs.reduce((n, r) => n + r.tokens, 0), `${what}: prefilled tokens`);
      if (withHead) assert.equal(a.runs[0]!.reused, 3 * headIds.length, 'the head was reused');
      a.logits.forEach((row, r) => assert.ok(worstDiff(row, b.logits[r]!) <= 1e-4, `${what}: prefill logits of row ${r}`));
      let [ka, kb] = [a.kv!, b.kv!];
      assertSamePast(ka, kb, `${what}: prefill`);
      let tokens = a.logits.map(argmax);
      for (let step = 0; step < 3; step++) {
        const [sa, sb] = [await whole.decode(ka, tokens), await grouped.decode(kb, tokens)];
        sa.logits.forEach((row, r) => assert.ok(worstDiff(row, sb.logits[r]!) <= 1e-4, `${what}: step ${step} row ${r}`));
        [ka, kb] = [sa.kv, sb.kv];
        tokens = sa.logits.map(argmax);
      }
      assertSamePast(ka, kb, `${what}: after 3 steps`);
    }
  } finally {
    await whole.release();
    await grouped.release();
  }
});
