/**
 * Reading logits: the last position of each row, float16 bits widened to float32, greedy argmax and the softmax
 * over a few candidate ids. Float16 tensors arrive as Uint16Array bit patterns (Node 20 has no Float16Array).
 */

/** float16 bit pattern -> float32, for all 65536 patterns (256 KB, built on first use). */
let halfTable: Float32Array | undefined;

function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // subnormal
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

export function halfToFloat(bits: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/**
 * The logits of the last position of each row, as float32. `data` is the logits output [rows, seq, vocab];
 * only rows*vocab values are widened when it is float16. onnxruntime-common hands float16 tensors out as
 * Uint16Array bit patterns where the runtime has no Float16Array (Node 20, 22) and as Float16Array values where it
 * has one (Node 24+): both are read.
 */
export function lastPositionLogits(data: Float32Array | Uint16Array, rows: number, seq: number, vocab: number): Float32Array[] {
  if (data.length !== rows * seq * vocab) {
    throw new Error(`logits have ${data.length} values, expected ${rows}x${seq}x${vocab} (config.json vocab_size ${vocab})`);
  }
  const out: Float32Array[] = [];
  for (let r = 0; r < rows; r++) {
    const start = (r * seq + seq - 1) * vocab;
    const slice = data.subarray(start, start + vocab);
    out.push(slice instanceof Float32Array ? slice : slice instanceof Uint16Array ? halfToFloat(slice) : Float32Array.from(slice as ArrayLike<number>));
  }
  return out;
}

/** Greedy choice: the first index of the largest value (ties go to the lower id, as torch.argmax does). */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Softmax restricted to `ids`, in their order (numerically stable). */
export function softmaxOver(values: Float32Array, ids: readonly number[]): number[] {
  const picked = ids.map((id) => values[id]!);
  const max = Math.max(...picked);
  const exps = picked.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
