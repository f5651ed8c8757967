/**
 * Choosing the next token from one row's logits, in the device worker (the vocabulary row never leaves it), with
 * the logits processors of transformers' generate() in its order: repetition penalty, then temperature, top_k,
 * top_p, then one draw. Temperature 0 is greedy (the repetition penalty still applies, as in transformers).
 *
 * Each request draws from its own generator keyed by its seed, one number per token, so a seeded request picks the
 * same tokens alone or in any row of any batch: nothing here depends on the other rows.
 *
 * Real vocabularies are ~150k wide and no step sorts one: top_k keeps a k-element heap, and top_p without top_k
 * sums the mass per value bucket and sorts only the bucket where the nucleus ends. `npm run bench:sampling`
 * measures each pipeline against argmax.
 */
import { argmax } from './logits.js';

export interface SamplingParams {
  /** 0 decodes greedily. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 is off. */
  topP: number;
  /** Most candidates kept; 0 is off. */
  topK: number;
  /** > 0; 1 is off. */
  repetitionPenalty: number;
  /** Keys the request's generator: 0 to 2^53 - 1. */
  seed: number;
}

const MASK = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, passes BigCrush, trivially seeded from any integer. */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: number | bigint) {
    this.state = BigInt(seed) & MASK;
  }

  next(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }

  /** Uniform in [0, 1), from the top 53 bits. */
  nextDouble(): number {
    return Number(this.next() >> 11n) / 2 ** 53;
  }
}

/**
 * transformers' RepetitionPenaltyLogitsProcessor, in place: each token seen once or more has its logit divided by
 * the penalty when positive and multiplied by it when negative.
 */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of seen) {
    const v = logits[id];
    if (v === undefined) continue;
    logits[id] = v < 0 ? v * penalty : v / penalty;
  }
}

/** a ranks before b: larger value, then lower id (torch's order for ties, and a fixed one). */
const before = (values: Float32Array, a: number, b: number) => values[a]! > values[b]! || (values[a] === values[b] && a < b);

/**
 * The ids of the k largest values, largest first, plus every id tied with the k-th (transformers keeps values
 * >= the k-th largest). A min-heap of k ids: O(n log k), no sort of the row. NaN never ranks.
 */
export function topKIds(values: Float32Array, k: number): number[] {
  const n = values.length;
  if (k >= n) return sortedIds(values, Array.from({ length: n }, (_, i) => i));
  const heap: number[] = [];
  const worse = (a: number, b: number) => before(values, b, a); // heap root: the worst kept
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(values[i])) continue;
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!worse(heap[c]!, heap[p]!)) break;
        [heap[c], heap[p]] = [heap[p]!, heap[c]!];
        c = p;
      }
    } else if (k > 0 && before(values, i, heap[0]!)) {
      heap[0] = i;
      down(0);
    }
  }
  if (heap.length === 0) return [];
  const kth = values[heap[0]!]!;
  const kept = new Set(heap);
  for (let i = 0; i < n; i++) if (values[i] === kth && !kept.has(i)) heap.push(i);
  return sortedIds(values, heap);
}

function sortedIds(values: Float32Array, ids: number[]): number[] {
  return ids.filter((i) => !Number.isNaN(values[i])).sort((a, b) => (before(values, a, b) ? -1 : before(values, b, a) ? 1 : 0));
}

/**
 * How many of `weights` (largest first) the nucleus keeps: a token stays while the weight before it is below
 * topP of the total (transformers drops those whose ascending cumulative mass is <= 1 - top_p); at least one stays.
 */
export function nucleusSize(weights: readonly number[], topP: number): number {
  const need = topP * weights.reduce((a, b) => a + b, 0);
  let mass = 0;
  for (let i = 0; i < weights.length; i++) {
    if (i > 0 && mass >= need) return i;
    mass += weights[i]!;
  }
  return weights.length;
}

/** The index whose cumulative weight first exceeds u * total (u in [0, 1)). */
export function drawIndex(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i]!;
  const target = u * total;
  let mass = 0;
  let last = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    mass += weights[i]!;
    last = i;
    if (target < mass) return i;
  }
  return last;
}

/**
 * The next token from one row's logits (modified in place by the repetition penalty). `seen`: the prompt and the
 * tokens generated so far; `u`: the request's next uniform draw, unused when greedy. The draw walks the kept
 * tokens in id order: any fixed order gives the same distribution, and this one needs no sort.
 */
export function chooseToken(logits: Float32Array, params: SamplingParams, seen: Iterable<number> | undefined, u: () => number): number {
  if (seen) applyRepetitionPenalty(logits, seen, params.repetitionPenalty);
  if (params.temperature === 0) return argmax(logits);
  const draw = u();
  const t = params.temperature;
  const topK = params.topK > 0 && params.topK < logits.length ? params.topK : 0;
  if (topK === 0) return drawFromRow(logits, t, params.topP, draw);
  // Softmax over the top_k candidates only: what top_p sees after transformers' top_k filter.
  const ids = topKIds(logits, topK);
  if (ids.length === 0) return argmax(logits);
  const max = logits[ids[0]!]!;
  const weight = (id: number) => Math.exp((logits[id]! - max) / t);
  const kept = ids.slice(0, params.topP < 1 ? nucleusSize(ids.map(weight), params.topP) : ids.length).sort((a, b) => a - b);
  return kept[drawIndex(kept.map(weight), draw)]!;
}

/** Below e^-40 of the largest, a token's weight is taken as 0: all of them together are under 1e-11 of the mass at
 * 151,936 tokens, and a peaked row (most tokens far below the top) skips most of its exp calls. */
const NEGLIGIBLE = -40;

/** The weights and value buckets of the whole row, reused between calls (one worker thread, one call at a time). */
let weights = new Float64Array(0);
let bucketIds = new Uint16Array(0);

/** Buckets of the value range that top_p without top_k sums its mass in, so only one bucket is ever sorted. */
const BUCKETS = 4096;

/**
 * top_p (or nothing) over the whole row: one pass for the maximum, one for the weights (and their buckets), one
 * to collect the bucket where the nucleus ends (sorted: a few dozen tokens), one for the draw.
 */
function drawFromRow(logits: Float32Array, t: number, topP: number, draw: number): number {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  if (!Number.isFinite(max)) return argmax(logits);
  if (weights.length < n) {
    weights = new Float64Array(n);
    bucketIds = new Uint16Array(n);
  }
  const w = weights;
  // Anything at or below `floor` weighs 0 (NaN too: every comparison with it is false) and sits in bucket 0.
  const floor = max + NEGLIGIBLE * t;
  const scale = BUCKETS / (max - floor);
  const mass = new Float64Array(BUCKETS);
  let z = 0;
  for (let i = 0; i < n; i++) {
    const v = logits[i]!;
    if (v > floor) {
      const x = Math.exp((v - max) / t);
      const k = Math.min(BUCKETS - 1, Math.floor((v - floor) * scale));
      w[i] = x;
      bucketIds[i] = k;
      mass[k] = mass[k]! + x;
      z += x;
    } else {
      w[i] = 0;
      bucketIds[i] = 0;
    }
  }
  // Kept: value above `cut`, or equal to it with an id up to `lastId`; the nucleus ends in bucket b.
  let cut = -Infinity;
  let lastId = n;
  let kept = z;
  if (topP < 1) {
    const need = topP * z;
    let above = 0;
    let b = BUCKETS - 1;
    for (; b > 0 && above + mass[b]! < need; b--) above += mass[b]!;
    const ids: number[] = [];
    for (let i = 0; i < n; i++) if (bucketIds[i] === b && w[i]! > 0) ids.push(i);
    ids.sort((x, y) => logits[y]! - logits[x]! || x - y);
    kept = above;
    for (const id of ids) {
      kept += w[id]!;
      cut = logits[id]!;
      lastId = id;
      if (kept >= need) break;
    }
  }
  const target = draw * kept;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const x = w[i]!;
    if (x === 0) continue;
    const v = logits[i]!;
    if (v < cut || (v === cut && i > lastId)) continue;
    acc += x;
    last = i;
    if (target < acc) return i;
  }
  return last >= 0 ? last : argmax(logits);
}

/** One request's sampler in the worker: its generator, and the tokens its repetition penalty looks at. */
export class TokenSampler {
  private readonly rng: SplitMix64;
  private readonly seen: Set<number> | undefined;

  constructor(
    readonly params: SamplingParams,
    prompt: readonly number[],
  ) {
    this.rng = new SplitMix64(params.seed);
    this.seen = params.repetitionPenalty !== 1 ? new Set(prompt) : undefined;
  }

  pick(logits: Float32Array): number {
    return chooseToken(logits, this.params, this.seen, () => this.rng.nextDouble());
  }

  record(token: number): void {
    this.seen?.add(token);
  }
}
