/**
 * KV-cache bookkeeping for a batch, and the CPU-side reshuffles continuous admission needs.
 *
 * Each past tensor is [rows, kvHeads, length, headDim]. Rows are left-padded: row r's real tokens are the last
 * lens[r] positions, so its attention mask is (length - lens[r]) zeros then lens[r] ones, and its next position
 * id is lens[r]. With that invariant a batch never needs a stored mask: merging two batches pads the shorter one
 * on the left, dropping rows may trim positions that are padding for every remaining row, and neither changes
 * any row's positions or what it attends to.
 */
/** float32, or float16 as Uint16Array bits (Node 20, 22) or Float16Array values (Node 24+): copied as they are. */
export type KvArray = Float32Array | Uint16Array;

export interface KvShape {
  kvHeads: number;
  headDim: number;
}

export interface KvState<T> {
  rows: number;
  /** Past length shared by all rows (padding included). */
  length: number;
  /** Real (unpadded) tokens per row, right-aligned in the past. */
  lens: number[];
  /** Past tensors in pastNames order. */
  tensors: T[];
}

/** A zeroed array of like's own type, so that elements are copied, never converted. */
function alloc(like: KvArray, n: number): KvArray {
  return new (like.constructor as new (length: number) => KvArray)(n);
}

/**
 * Rows of a, then rows of b, in one buffer of past length max(aLen, bLen): the shorter side is left-padded
 * with zeros (its mask is 0 there, so the values are never attended to).
 */
export function concatRows(a: KvArray, aRows: number, aLen: number, b: KvArray, bRows: number, bLen: number, shape: KvShape): { data: KvArray; length: number } {
  const length = Math.max(aLen, bLen);
  const out = alloc(a, (aRows + bRows) * shape.kvHeads * length * shape.headDim);
  copySlabs(a, aRows, aLen, 0, out, 0, length, shape);
  copySlabs(b, bRows, bLen, 0, out, aRows, length, shape);
  return { data: out, length };
}

/** The given rows (in that order), without the first `trim` positions of the past (padding for all of them). */
export function selectRows(src: KvArray, srcLen: number, rows: readonly number[], trim: number, shape: KvShape): { data: KvArray; length: number } {
  const length = srcLen - trim;
  const out = alloc(src, rows.length * shape.kvHeads * length * shape.headDim);
  const slab = srcLen * shape.headDim;
  const keep = length * shape.headDim;
  rows.forEach((row, i) => {
    for (let h = 0; h < shape.kvHeads; h++) {
      const from = (row * shape.kvHeads + h) * slab + trim * shape.headDim;
      out.set(src.subarray(from, from + keep), (i * shape.kvHeads + h) * keep);
    }
  });
  return { data: out, length };
}

/** Copies `rows` rows of past length srcLen into out (past length outLen) at row `atRow`, right-aligned. */
function copySlabs(src: KvArray, rows: number, srcLen: number, fromRow: number, out: KvArray, atRow: number, outLen: number, shape: KvShape): void {
  const slab = srcLen * shape.headDim;
  const outSlab = outLen * shape.headDim;
  const pad = (outLen - srcLen) * shape.headDim;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < shape.kvHeads; h++) {
      const from = ((fromRow + r) * shape.kvHeads + h) * slab;
      out.set(src.subarray(from, from + slab), ((atRow + r) * shape.kvHeads + h) * outSlab + pad);
    }
  }
}

/** Attention mask [rows, length + extra] for the invariant above, extra new (real) positions per row. */
export function maskFor(lens: readonly number[], length: number, extra: number): BigInt64Array {
  const width = length + extra;
  const mask = new BigInt64Array(lens.length * width);
  lens.forEach((len, r) => mask.fill(1n, r * width + (length - len), (r + 1) * width));
  return mask;
}

/** Positions every remaining row treats as padding: they can be cut from the front of the past. */
export function commonPadding(lens: readonly number[], length: number): number {
  return lens.length === 0 ? 0 : length - Math.max(...lens);
}
