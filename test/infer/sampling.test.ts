import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax } from '../../src/infer/logits.js';
import { applyRepetitionPenalty, chooseToken, drawIndex, nucleusSize, SplitMix64, TokenSampler, topKIds } from '../../src/infer/sampling.js';
import type { SamplingParams } from '../../src/infer/sampling.js';
import { parseGenerationDefaults, resolveSampling } from '../../src/infer/generation-config.js';
import { isGuardError } from '../../src/core/errors.js';

const params = (p: Partial<SamplingParams>): SamplingParams => ({ temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1, seed: 0, ...p });
const fixed = (u: number) => () => u;
const logProbs = (probs: number[]) => Float32Array.from(probs, Math.log);

/** A reproducible row of `n` logits, spread like a real model's (a few large, most far below). */
function row(n: number, seed: number, spread = 8): Float32Array {
  const rng = new SplitMix64(seed);
  return Float32Array.from({ length: n }, () => (rng.nextDouble() - 0.5) * spread);
}

/** The textbook pipeline over the row's ids sorted largest first: what chooseToken's heaps and buckets must
 * reproduce exactly (the draw walks the kept tokens in id order). */
function reference(logits: Float32Array, ids: number[], p: SamplingParams, u: number): number {
  const kept = p.topK > 0 ? ids.filter((id) => logits[id]! >= logits[ids[p.topK - 1]!]!) : ids;
  const max = logits[kept[0]!]!;
  // Weights below e^-40 of the largest count as 0 (chooseToken skips their exp).
  const weight = (id: number) => (logits[id]! > max - 40 * p.temperature ? Math.exp((logits[id]! - max) / p.temperature) : 0);
  const w = kept.map(weight);
  const need = p.topP * w.reduce((a, b) => a + b, 0);
  let n = 0;
  for (let mass = 0; n < w.length && (n === 0 || mass < need); n++) mass += w[n]!;
  const nucleus = kept.slice(0, n).sort((a, b) => a - b);
  return nucleus[drawIndex(nucleus.map(weight), u)]!;
}

test('SplitMix64 gives the published sequence', () => {
  const zero = new SplitMix64(0);
  assert.deepEqual([zero.next(), zero.next(), zero.next()], [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  const fortyTwo = new SplitMix64(42);
  assert.deepEqual([fortyTwo.next(), fortyTwo.next()], [0xbdd732262feb6e95n, 0x28efe333b266f103n]);
  assert.equal(new SplitMix64(0).nextDouble(), Number(0xe220a8397b1dcdafn >> 11n) / 2 ** 53);
});

test("repetition penalty is transformers': positive logits divided, negative multiplied, each seen token once", () => {
  const logits = Float32Array.from([2, -1, 0.5, -3, 4, 0]);
  applyRepetitionPenalty(logits, new Set([0, 1, 1, 3, 5]), 2);
  assert.deepEqual([...logits], [1, -2, 0.5, -6, 4, 0]);
  // It changes the greedy choice: 4 unseen beats 5 seen at penalty 1.5 (5 / 1.5 = 3.33).
  const greedy = Float32Array.from([5, 4]);
  assert.equal(chooseToken(greedy, params({ temperature: 0, repetitionPenalty: 1.5 }), [0], () => assert.fail('greedy draws nothing')), 1);
  assert.ok(Math.abs(greedy[0]! - 5 / 1.5) < 1e-6);
});

test('top_k keeps the k largest plus ties with the k-th, largest first, without sorting the row', () => {
  const v = Float32Array.from([1, 3, 3, 2, 0, NaN]);
  assert.deepEqual(topKIds(v, 1), [1, 2], 'the tie with the first is kept, as transformers keeps values >= the k-th');
  assert.deepEqual(topKIds(v, 2), [1, 2]);
  assert.deepEqual(topKIds(v, 3), [1, 2, 3]);
  assert.deepEqual(topKIds(v, 10), [1, 2, 3, 0, 4], 'NaN never ranks');
  const big = row(151_936, 7);
  const sorted = Array.from(big.keys()).sort((a, b) => big[b]! - big[a]! || a - b);
  assert.deepEqual(topKIds(big, 20), sorted.slice(0, 20));
});

test('top_p keeps the smallest prefix holding top_p of the mass (at least one token)', () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  assert.equal(nucleusSize(probs.map((p) => p * 3), 0.75), 2, 'weights need not be normalised');
  assert.equal(nucleusSize(probs, 0.85), 3);
  assert.equal(nucleusSize(probs, 0.1), 1);
  assert.equal(nucleusSize(probs, 1), 4);
  // Drawing inside the nucleus {0.5, 0.3}, renormalised to 0.625 / 0.375.
  const logits = logProbs(probs);
  assert.equal(chooseToken(logits, params({ topP: 0.75 }), undefined, fixed(0.6)), 0);
  assert.equal(chooseToken(logits, params({ topP: 0.75 }), undefined, fixed(0.7)), 1);
  assert.equal(chooseToken(logits, params({ topP: 0.75 }), undefined, fixed(0.99)), 1, 'never outside the nucleus');
  // Temperature comes first: at 2 the distribution flattens to .379/.294/.208/.120 and the nucleus takes three.
  assert.equal(chooseToken(logits, params({ topP: 0.75, temperature: 2 }), undefined, fixed(0.99)), 2);
});

test('temperature 0 and top_k 1 are greedy; the whole distribution is drawn in proportion', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const logits = row(4096, seed);
    const best = argmax(logits);
    assert.equal(chooseToken(logits, params({ temperature: 0 }), undefined, () => assert.fail('greedy draws nothing')), best);
    assert.equal(chooseToken(logits, params({ topK: 1, temperature: 1.3 }), undefined, fixed(seed / 21)), best);
  }
  const counts = [0, 0, 0];
  const rng = new SplitMix64(3);
  const logits = logProbs([0.5, 0.3, 0.2]);
  for (let i = 0; i < 20_000; i++) counts[chooseToken(logits, params({}), undefined, () => rng.nextDouble())]!++;
  const freq = counts.map((c) => c / 20_000);
  [0.5, 0.3, 0.2].forEach((p, i) => assert.ok(Math.abs(freq[i]! - p) < 0.02, `token ${i}: ${freq[i]} vs ${p}`));
});

test('on a 151,936-wide row the heaps choose exactly what a full sort chooses', () => {
  const cases: Array<[string, Partial<SamplingParams>, number]> = [
    ['HY-MT defaults', { temperature: 0.7, topK: 20, topP: 0.6 }, 8],
    ['top_p alone, peaked', { temperature: 1, topP: 0.9 }, 24],
    // A flat row: the nucleus holds thousands of tokens, so the heap has to widen several times.
    ['top_p alone, flat', { temperature: 1, topP: 0.95 }, 0.5],
    ['top_k alone', { temperature: 1.5, topK: 50 }, 8],
  ];
  for (const [name, p, spread] of cases) {
    const logits = row(151_936, 11, spread);
    const sorted = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
    for (const u of [0, 0.1, 0.37, 0.5, 0.83, 0.999]) {
      assert.equal(chooseToken(logits.slice(), params(p), undefined, fixed(u)), reference(logits, sorted, params(p), u), `${name}, u=${u}`);
    }
  }
});

test('masked (-Infinity) and NaN logits are never drawn', () => {
  const logits = new Float32Array(151_936).fill(-Infinity);
  logits[5] = NaN;
  logits[70_000] = 1;
  logits[150_000] = 1.5;
  for (const p of [{ topP: 0.9 }, { topP: 1 }, { topK: 3 }, { topK: 3, topP: 0.5 }]) {
    for (const u of [0, 0.5, 0.999]) {
      const token = chooseToken(logits.slice(), params(p), undefined, fixed(u));
      assert.ok(token === 70_000 || token === 150_000, `${JSON.stringify(p)} u=${u}: ${token}`);
    }
  }
});

test('a TokenSampler is a function of its seed: same seed same tokens, and the penalty sees prompt and output', () => {
  const run = (seed: number) => {
    const s = new TokenSampler(params({ temperature: 1, seed, repetitionPenalty: 1.3 }), [1, 2, 3]);
    return Array.from({ length: 32 }, (_, i) => {
      const t = s.pick(row(256, 100 + i, 2));
      s.record(t);
      return t;
    });
  };
  assert.deepEqual(run(5), run(5));
  assert.notDeepEqual(run(5), run(6));
  // Seen tokens: penalised on the next pick (greedy here, to read it off).
  const s = new TokenSampler(params({ temperature: 0, repetitionPenalty: 2 }), [0]);
  assert.equal(s.pick(Float32Array.from([3, 2, 1])), 1, 'the prompt token 0 is penalised: 1.5 < 2');
  s.record(1);
  assert.equal(s.pick(Float32Array.from([2.2, 2, 1.2])), 2, 'and so is the generated token 1 (1.1, 1, 1.2)');
});

test('generation_config.json defaults: greedy unless do_sample, request values win, bad values are refused', () => {
  const hy = parseGenerationDefaults('g.json', { do_sample: true, temperature: 0.7, top_p: 0.6, top_k: 20, repetition_penalty: 1.05, max_new_tokens: 2048 });
  assert.deepEqual(hy, { doSample: true, temperature: 0.7, topP: 0.6, topK: 20, repetitionPenalty: 1.05 });
  assert.deepEqual(resolveSampling({ seed: 9 }, hy, 151_936), { temperature: 0.7, topP: 0.6, topK: 20, repetitionPenalty: 1.05, seed: 9 });
  assert.deepEqual(resolveSampling({ seed: 9, temperature: 1, topK: 0 }, hy, 151_936), { temperature: 1, topP: 0.6, topK: 0, repetitionPenalty: 1.05, seed: 9 });
  const seeds = new Set(Array.from({ length: 5 }, () => resolveSampling({}, hy, 151_936)!.seed));
  assert.equal(seeds.size, 5, 'an unseeded request gets a fresh seed');
  // The demo models: do_sample false, so greedy (no sampler at all) unless the request sets a temperature.
  const demo = parseGenerationDefaults('g.json', { do_sample: false, max_new_tokens: 64 });
  assert.equal(resolveSampling({}, demo, 4096), undefined);
  assert.equal(resolveSampling({ topP: 0.5, seed: 1 }, demo, 4096), undefined);
  assert.deepEqual(resolveSampling({ temperature: 0.8, seed: 1 }, demo, 4096), { temperature: 0.8, topP: 1, topK: 0, repetitionPenalty: 1, seed: 1 });
  assert.deepEqual(resolveSampling({ repetitionPenalty: 1.2, seed: 1 }, demo, 4096), { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1.2, seed: 1 });
  assert.deepEqual(parseGenerationDefaults('g.json', undefined), { doSample: false });
  assert.equal(resolveSampling({ seed: 1 }, { doSample: true, topK: 5000 }, 4096)!.topK, 0, 'a top_k beyond the vocabulary is off');
  for (const [key, value] of [['top_p', 0], ['top_p', 1.5], ['temperature', -1], ['top_k', 2.5], ['repetition_penalty', 0], ['do_sample', 'yes']] as const) {
    assert.throws(() => parseGenerationDefaults('/m/generation_config.json', { [key]: value }), (err: unknown) => {
      assert.ok(isGuardError(err) && err.code === 'GUARD_E_CONFIG');
      assert.match((err as Error).message, new RegExp(`^/m/generation_config.json: ${key} must be .*found ${JSON.stringify(value)}`));
      return true;
    });
  }
});
