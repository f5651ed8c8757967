/**
 * `npm run bench:sampling`: what choosing one token costs per row and decode step at Qwen3's vocabulary (151,936),
 * greedy (argmax, the baseline) against the sampling pipelines of src/infer/sampling.ts, in alternating rounds of
 * the same process. The rows are spread like real logits: a few high, most far below.
 */
import { performance } from 'node:perf_hooks';
import { argmax } from '../src/infer/logits.js';
import { SplitMix64, TokenSampler } from '../src/infer/sampling.js';
import type { SamplingParams } from '../src/infer/sampling.js';

const VOCAB = 151_936;
const ROWS = 4;
const ROUNDS = Number(process.env.GUARDCTL_BENCH_ROUNDS ?? 5);
const PICKS = 10;
const say = (s: string) => process.stdout.write(`${s}\n`);

function rows(): Float32Array[] {
  const rng = new SplitMix64(1);
  return Array.from({ length: ROWS }, () => {
    const row = new Float32Array(VOCAB);
    for (let i = 0; i < VOCAB; i++) {
      const u = rng.nextDouble();
      // Mostly around -4, a tail up to +20: roughly what a decoder's last layer gives.
      row[i] = -4 + 6 * (rng.nextDouble() - 0.5) + (u > 0.999 ? 20 * rng.nextDouble() : 0);
    }
    return row;
  });
}

const prompt = Array.from({ length: 300 }, (_, i) => (i * 7919) % VOCAB);
const base: SamplingParams = { temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1, seed: 1 };
const CASES: Array<[string, SamplingParams | null]> = [
  ['greedy (argmax)', null],
  ['HY-MT card: T 0.7, top_k 20, top_p 0.6, rep 1.05', { ...base, temperature: 0.7, topK: 20, topP: 0.6, repetitionPenalty: 1.05 }],
  ['top_p 0.9 alone', { ...base, topP: 0.9 }],
  ['top_k 50 alone', { ...base, topK: 50 }],
  ['whole distribution (T 1)', base],
];

function time(data: Float32Array[], params: SamplingParams | null): number {
  const samplers = data.map(() => (params ? new TokenSampler(params, prompt) : undefined));
  const started = performance.now();
  for (let k = 0; k < PICKS; k++) {
    data.forEach((row, r) => {
      const copy = row.slice(); // the penalty writes into the row, as it does into a step's logits
      const s = samplers[r];
      if (s) s.record(s.pick(copy));
      else argmax(copy);
    });
  }
  return (performance.now() - started) / (PICKS * data.length);
}

const data = rows();
for (const [, params] of CASES) time(data, params); // warm up the JIT
const sums = CASES.map(() => 0);
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? CASES.map((_, i) => i) : CASES.map((_, i) => CASES.length - 1 - i);
  for (const i of order) sums[i] = sums[i]! + time(data, CASES[i]![1]);
}
say(`choosing a token at vocab ${VOCAB}, ${ROWS} rows x ${PICKS} picks x ${ROUNDS} rounds (ms per row per step, ratio to argmax):`);
CASES.forEach(([name], i) => say(`  ${name.padEnd(52)} ${(sums[i]! / ROUNDS).toFixed(3)} ms  x${(sums[i]! / sums[0]!).toFixed(2)}`));
