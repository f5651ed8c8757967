/**
 * KV-cache bookkeeping for a batch, and the CPU-side reshuffles continuous admission needs.
 *
 * Each past tensor is [rows, kvHeads, length, headDim], and the batch keeps its attention mask beside it, one byte
 * per row and position. Rows are padded, but not only on the left: a row whose prompt starts with a cached shared
 * head (prefix-cache.ts) holds the head, then padding, then the rest of its prompt, because the head's KV is the
 * same for every row and its suffixes differ in length. So the mask is stored, not derived: every step appends a
 * 1 per row, merging two batches pads the shorter one's mask and KV on the left, dropping rows cuts the leading
 * positions that are padding for every remaining row, and each row's next position id is its count of ones
 * (lens[r]), as position ids are the cumulative sum of the mask. None of this changes any row's positions or what
 * it attends to.
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
  /** Real (unpadded) tokens per row: the ones in its mask, and its next position id. */
  lens: number[];
  /** [rows, length]: 1 where the position holds a real token of the row, 0 on padding. */
  mask: Uint8Array;
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

/** The attention mask a run feeds: the stored [rows, length] mask, then `extra` new (real) positions per row. */
export function extendMask(mask: Uint8Array, rows: number, length: number, extra: number): BigInt64Array {
  const width = length + extra;
  const out = new BigInt64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < length; j++) if (mask[r * length + j]) out[r * width + j] = 1n;
    out.fill(1n, r * width + length, (r + 1) * width);
  }
  return out;
}

/** The stored form of a mask a run was fed ([rows, length] of 0 and 1). */
export function storedMask(mask: BigInt64Array): Uint8Array {
  return Uint8Array.from(mask, (v) => (v === 0n ? 0 : 1));
}

/** Rows of a, then rows of b, left-padded to max(aLen, bLen) with zeros, as concatRows pads their KV. */
export function concatMasks(a: Uint8Array, aRows: number, aLen: number, b: Uint8Array, bRows: number, bLen: number): Uint8Array {
  const length = Math.max(aLen, bLen);
  const out = new Uint8Array((aRows + bRows) * length);
  for (let r = 0; r < aRows; r++) out.set(a.subarray(r * aLen, (r + 1) * aLen), r * length + length - aLen);
  for (let r = 0; r < bRows; r++) out.set(b.subarray(r * bLen, (r + 1) * bLen), (aRows + r) * length + length - bLen);
  return out;
}

/** The given rows' masks without the first `trim` positions, as selectRows cuts their KV. */
export function selectMask(mask: Uint8Array, length: number, rows: readonly number[], trim: number): Uint8Array {
  const out = new Uint8Array(rows.length * (length - trim));
  rows.forEach((row, i) => out.set(mask.subarray(row * length + trim, (row + 1) * length), i * (length - trim)));
  return out;
}

/** Leading positions that are padding for every one of the given rows: they can be cut from the front of the past. */
export function commonPadding(mask: Uint8Array, length: number, rows: readonly number[]): number {
  let trim = length;
  for (const row of rows) {
    const first = mask.subarray(row * length, (row + 1) * length).indexOf(1);
    trim = Math.min(trim, first < 0 ? length : first);
  }
  return rows.length === 0 ? 0 : trim;
}

/** The mask of left-padded rows: (length - lens[r]) zeros, then lens[r] ones. */
export function leftPaddedMask(lens: readonly number[], length: number): Uint8Array {
  const mask = new Uint8Array(lens.length * length);
  lens.forEach((len, r) => mask.fill(1, r * length + (length - len), (r + 1) * length));
  return mask;
}
