/**
 * A CPU prefill larger than the runner's KV budget runs in row groups (runner.ts), and decode steps write their
 * new positions into free slots of the past (kv-append.ts). Against a runner that does neither (one run per
 * prefill, whole presents fetched, no free slots): the same last logits, the same past (positions in use, lens,
 * mask), the same reused-token count, and the same logits after decode steps, an admission (merge) and a row
 * dropped (select); with and without a cached head; on the last-logits graph and on the graph as exported
 * (logits for every position, prefilled in sequence chunks), with groups of unequal size; with present deltas
 * and with split attention.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { validateGraph } from '../../src/infer/graph.js';
import type { KvArray } from '../../src/infer/kv.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { addPresentDeltas } from '../../src/infer/present-delta.js';
import { splitAttention } from '../../src/infer/split-attention.js';
import { lastPositionLogits } from '../../src/infer/last-logits.js';
import { DEFAULT_LOGITS_BUDGET, Runner, type Kv } from '../../src/infer/runner.js';
import { assertSamePastLayout } from '../helpers/kv-past.js';
import { realFixtures } from '../helpers/real-fixture.js';

interface Choice {
  /** The graph as exported: logits for every position. */
  full?: boolean;
  deltas: boolean;
  /** New positions from split attention (split-attention.ts) rather than slices of the presents. */
  split?: boolean;
  prefillKvBudget?: number;
  logitsBudget?: number;
}

async function runner(dir: string, c: Choice): Promise<Runner> {
  const model = loadModelDir(dir, 'fp32');
  let bytes: Uint8Array = fs.readFileSync(model.onnxPath);
  if (!c.full) {
    const last = lastPositionLogits(bytes);
    assert.ok(last.rewritten);
    bytes = last.model;
  }
  if (c.deltas) {
    const deltas = c.split ? splitAttention(bytes) : addPresentDeltas(bytes);
    assert.ok(deltas.rewritten);
    bytes = deltas.model;
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, extra: { session: { model_external_initializers_file_folder_path: `${dir}/onnx` } } });
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  return new Runner(session, 'cpu', graph, model.config, c.logitsBudget ?? DEFAULT_LOGITS_BUDGET, c.deltas, c.prefillKvBudget);
}

const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);

function assertCloseLogits(a: readonly Float32Array[], b: readonly Float32Array[], what: string): void {
  assert.equal(b.length, a.length, `${what}: rows`);
  a.forEach((row, r) => {
    let worst = 0;
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs(row[i]! - b[r]![i]!));
    assert.ok(worst <= 1e-4, `${what}: logits of row ${r} differ by ${worst}`);
  });
}

/** b holds a's positions (a has no free slots) and masks its own free slots out. */
function assertSamePast(a: Kv, b: Kv, what: string, d: number): void {
  assertSamePastLayout(a, b, what);
  // Positions a row attends to only: what padding holds depends on how it was computed, and is never read.
  a.tensors.forEach((t, i) => {
    const [x, y] = [t.data as KvArray, b.tensors[i]!.data as KvArray];
    const heads = t.dims[1] as number;
    let worst = 0;
    for (let s = 0; s < a.rows * heads; s++) {
      const row = Math.floor(s / heads);
      for (let p = 0; p < a.length; p++) {
        if (!a.mask[row * a.length + p]) continue;
        for (let j = 0; j < d; j++) worst = Math.max(worst, Math.abs(x[(s * a.length + p) * d + j]! - y[(s * b.length + p) * d + j]!));
      }
    }
    assert.ok(worst <= 1e-4, `${what}: tensor ${i} differs by ${worst}`);
  });
}

/** Greedy steps on both, comparing logits; returns both pasts and the next tokens. */
async function stepBoth(ref: Runner, sub: Runner, ka: Kv, kb: Kv, tokens: number[], steps: number, what: string): Promise<[Kv, Kv, number[]]> {
  for (let step = 0; step < steps; step++) {
    const [sa, sb] = [await ref.decode(ka, tokens), await sub.decode(kb, tokens)];
    assertCloseLogits(sa.logits, sb.logits, `${what}, step ${step}`);
    [ka, kb] = [sa.kv, sb.kv];
    tokens = sa.logits.map(argmax);
  }
  return [ka, kb, tokens];
}

test('prefill in row groups and steps into free slots: the same answers as one run and whole presents, through admission and a dropped row', async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;
  const config = loadModelDir(fx.guard, 'fp32').config;
  const d = config.headDim;
  // One position of one row is 2 x layers x kvHeads x headDim floats; prompts here are 12 positions at most.
  const rowBytes = 12 * 2 * config.layers * config.kvHeads * config.headDim * 4;
  const ref = await runner(fx.guard, { deltas: false });
  const subjects: Array<[string, Runner, number]> = [
    // Groups of one row, one run each.
    ['last-logits graph, groups of 1', await runner(fx.guard, { deltas: true, prefillKvBudget: Math.floor(1.5 * rowBytes) }), 3],
    // Groups of 2 + 1 whose prefill runs in chunks of 3 positions (the budget of a full group), so later chunks
    // grow a past with free slots: both groups must come out alike.
    ['exported graph, groups of 2 + 1, chunked', await runner(fx.guard, { full: true, deltas: true, prefillKvBudget: Math.floor(2.5 * rowBytes), logitsBudget: 2 * 3 * config.vocabSize }), 2],
    // The same with split attention, whose prefills start from one masked-out past slot.
    ['split attention, groups of 1', await runner(fx.guard, { deltas: true, split: true, prefillKvBudget: Math.floor(1.5 * rowBytes) }), 3],
    ['split attention on the exported graph, groups of 2 + 1, chunked', await runner(fx.guard, { full: true, deltas: true, split: true, prefillKvBudget: Math.floor(2.5 * rowBytes), logitsBudget: 2 * 3 * config.vocabSize }), 2],
  ];
  try {
    const headIds = [151644, 872, 198, 9707, 1052, 11];
    const tails = [[3555, 374, 279, 6722, 151645], [14990, 151645], [40, 1079, 264, 1273, 315, 13, 151645]];
    const extra = [[...headIds, 1573, 151645]];
    for (const withHead of [false, true]) {
      if (withHead) for (const r of [ref, ...subjects.map((s) => s[1])]) for (const h of await r.prefillHeads([headIds])) r.prefixes.add(h);
      const prompts = tails.map((tail) => [...headIds, ...tail]);
      const a = await ref.prefill(prompts, true);
      assert.equal(a.runs.length, 1, 'the reference prefills in one run');
      if (withHead) assert.equal(a.runs[0]!.reused, 3 * headIds.length, 'the head was reused');
      for (const [name, sub, groups] of subjects) {
        const what = `${name}, ${withHead ? 'with a cached head' : 'without a head'}`;
        const b = await sub.prefill(prompts, true);
        assert.ok(b.runs.length >= groups, `${what}: ${groups} groups at least (${b.runs.length} runs)`);
        assert.equal(b.runs.reduce((n, r) => n + (r.reused ?? 0), 0), a.runs[0]!.reused ?? 0, `${what}: reused tokens`);
        assert.equal(b.runs.reduce((n, r) => n + r.tokens, 0), a.runs[0]!.tokens, `${what}: prefilled tokens`);
        assertCloseLogits(a.logits, b.logits, `${what}: prefill`);
        const copy = (kv: Kv, r: Runner) => r.select(kv, [0, 1, 2]);
        let [ka, kb] = [copy(a.kv!, ref), b.kv!];
        assertSamePast(ka, kb, `${what}: prefill`, d);
        // The batch's past was made with free slots: the first steps write into it rather than into new memory.
        assert.ok(kb.length > kb.used!, `${what}: the grouped prefill's past has free slots`);
        const prefilled = (kb.tensors[0]!.data as KvArray).buffer;
        let tokens: number[];
        [ka, kb, tokens] = await stepBoth(ref, sub, ka, kb, a.logits.map(argmax), 3, what);
        assertSamePast(ka, kb, `${what}: after 3 steps`, d);
        assert.equal((kb.tensors[0]!.data as KvArray).buffer, prefilled, `${what}: the steps wrote in place`);
        // Admission: one more prompt prefilled and merged into the running batch (the subject's past has free
        // slots, the newcomer's may too).
        const [na, nb] = [await ref.prefill(extra, true), await sub.prefill(extra, true)];
        [ka, kb] = [ref.merge(ka, na.kv!), sub.merge(kb, nb.kv!)];
        assertSamePast(ka, kb, `${what}: after a merge`, d);
        [ka, kb, tokens] = await stepBoth(ref, sub, ka, kb, [...tokens, argmax(na.logits[0]!)], 2, `${what}, after a merge`);
        // A finished row leaves.
        [ka, kb] = [ref.select(ka, [0, 2, 3]), sub.select(kb, [0, 2, 3])];
        assertSamePast(ka, kb, `${what}: after a select`, d);
        await stepBoth(ref, sub, ka, kb, [tokens[0]!, tokens[2]!, tokens[3]!], 2, `${what}, after a select`);
      }
      // The reference's own past was copied for the subjects' comparisons; it is not reused.
    }
  } finally {
    await ref.release();
    for (const [, sub] of subjects) await sub.release();
  }
});
