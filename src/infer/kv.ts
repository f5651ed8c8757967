/**
 * KV-cache bookkeeping for a batch, and the CPU-side reshuffles continuous admission needs.
 *
 * Each past tensor is [rows, kvHeads, length, headDim], and the batch keeps its attention mask beside it, one byte
 * per row and position. Rows are padded, but not only on the left: a row whose prompt starts with a cached shared
 * head (prefix-cache.ts) holds the head, then padding, then the rest of its prompt, because the head's KV is the
 * same for every row and its suffixes differ in length; and a CPU past may end in free slots that later steps
 * fill (kv-append.ts). So the mask is stored, not derived: every step adds a 1 per row (at the end, or in the next
 * free slot), merging two batches pads the shorter one's mask and KV on the left and leaves free slots out,
 * dropping rows cuts the leading positions that are padding for every remaining row, and each row's next position
 * id is its count of ones (lens[r]), as position ids are the cumulative sum of the mask. None of this changes any
 * row's positions or what it attends to.
 */
/** float32, or float16 as Uint16Array bits (Node 20, 22) or Float16Array values (Node 24+): copied as they are. */
export type KvArray = Float32Array | Uint16Array;

export interface KvShape {
  kvHeads: number;
  headDim: number;
}

export interface KvState<T> {
  rows: number;
  /** Past length shared by all rows (padding included): the positions the tensors hold. */
  length: number;
  /**
   * Positions in use, where a decode step on the CPU left free slots to write the next ones into in place
   * (runner.ts): [used, length) is masked out for every row. Absent: all of them.
   */
  used?: number;
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
 * Rows of a, then rows of b, in one buffer of past length max(aUsed, bUsed): the shorter side is left-padded
 * with zeros (its mask is 0 there, so the values are never attended to). Each side's positions from its `used`
 * to its length are free slots, left out.
 */
export function concatRows(a: KvArray, aRows: number, aLen: number, b: KvArray, bRows: number, bLen: number, shape: KvShape, aUsed = aLen, bUsed = bLen): { data: KvArray; length: number } {
  const length = Math.max(aUsed, bUsed);
  const out = alloc(a, (aRows + bRows) * shape.kvHeads * length * shape.headDim);
  copySlabs(a, aRows, aLen, aUsed, out, 0, length, shape);
  copySlabs(b, bRows, bLen, bUsed, out, aRows, length, shape);
  return { data: out, length };
}

/**
 * The given rows (in that order), without the first `trim` positions of the past (padding for all of them) and
 * without the free slots from `used` on.
 */
export function selectRows(src: KvArray, srcLen: number, rows: readonly number[], trim: number, shape: KvShape, used = srcLen): { data: KvArray; length: number } {
  const length = used - trim;
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

/** Copies the first `used` positions of `rows` rows of past length srcLen into out (past length outLen) at row
 * `atRow`, right-aligned. */
function copySlabs(src: KvArray, rows: number, srcLen: number, used: number, out: KvArray, atRow: number, outLen: number, shape: KvShape): void {
  const slab = srcLen * shape.headDim;
  const keep = used * shape.headDim;
  const outSlab = outLen * shape.headDim;
  const pad = (outLen - used) * shape.headDim;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < shape.kvHeads; h++) {
      const from = (r * shape.kvHeads + h) * slab;
      out.set(src.subarray(from, from + keep), ((atRow + r) * shape.kvHeads + h) * outSlab + pad);
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

/** Rows of a, then rows of b, left-padded to max(aUsed, bUsed) with zeros, as concatRows pads their KV. */
export function concatMasks(a: Uint8Array, aRows: number, aLen: number, b: Uint8Array, bRows: number, bLen: number, aUsed = aLen, bUsed = bLen): Uint8Array {
  const length = Math.max(aUsed, bUsed);
  const out = new Uint8Array((aRows + bRows) * length);
  for (let r = 0; r < aRows; r++) out.set(a.subarray(r * aLen, r * aLen + aUsed), r * length + length - aUsed);
  for (let r = 0; r < bRows; r++) out.set(b.subarray(r * bLen, r * bLen + bUsed), (aRows + r) * length + length - bUsed);
  return out;
}

/** The given rows' masks without the first `trim` positions and the free slots from `used` on, as selectRows cuts
 * their KV. */
export function selectMask(mask: Uint8Array, length: number, rows: readonly number[], trim: number, used = length): Uint8Array {
  const out = new Uint8Array(rows.length * (used - trim));
  rows.forEach((row, i) => out.set(mask.subarray(row * length + trim, row * length + used), i * (used - trim)));
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
