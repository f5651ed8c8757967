import assert from 'node:assert/strict';
import type { KvArray } from '../../src/infer/kv.js';
import type { Kv } from '../../src/infer/runner.js';

/** How far two runs' logits and KV elements may differ (relative for KV elements above 1). */
export interface Tolerance {
  logits: number;
  kv: number;
}

/**
 * The bookkeeping of a past with free slots (kv-append.ts) against a reference without any: the same rows, lens
 * and positions in use, each row's mask over those positions, and every free slot masked out. The tensors are the
 * caller's to compare (how exactly depends on what the two runs computed alike).
 */
export function assertSamePastLayout(a: Kv, b: Kv, what: string): void {
  assert.equal(a.used ?? a.length, a.length, `${what}: the reference has no free slots`);
  assert.equal(b.rows, a.rows, `${what}: rows`);
  assert.equal(b.used ?? b.length, a.length, `${what}: positions in use`);
  assert.deepEqual(b.lens, a.lens, `${what}: lens`);
  for (let r = 0; r < a.rows; r++) {
    assert.deepEqual(b.mask.subarray(r * b.length, r * b.length + a.length), a.mask.subarray(r * a.length, (r + 1) * a.length), `${what}: mask of row ${r}`);
    assert.ok(b.mask.subarray(r * b.length + a.length, (r + 1) * b.length).every((m) => m === 0), `${what}: free slots of row ${r} masked out`);
  }
}

/** Rows of logits within tolerance of each other. */
export function assertCloseLogits(a: readonly Float32Array[], b: readonly Float32Array[], what: string, tolerance: Tolerance): void {
  assert.equal(a.length, b.length);
  a.forEach((row, r) => {
    let worst = 0;
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs(row[i]! - b[r]![i]!));
    assert.ok(worst <= tolerance.logits, `${what} row ${r}: logits differ by ${worst}`);
  });
}

/** Elements as numbers: float16 travels as its bits (Node 20 has no Float16Array). */
function values(a: KvArray): Float64Array {
  if (a instanceof Float32Array) return Float64Array.from(a);
  return Float64Array.from(a, (h) => {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    return sign * (exp === 0 ? frac * 2 ** -24 : 2 ** (exp - 15) * (1 + frac / 1024));
  });
}

/**
 * b (free slots from b.used on) holds a's positions (a has none free) and masks its free slots out. Positions a
 * row masks out (its padding) are not compared: no query ever reads them, and their values are whatever a pad
 * token's attention over nothing it may see gave, which depends on how many masked keys there were.
 */
export function assertSameKv(a: Kv, b: Kv, what: string, d: number, tolerance: Tolerance): void {
  assertSamePastLayout(a, b, what);
  a.tensors.forEach((t, i) => {
    const [rows, heads, , dim] = t.dims as number[];
    assert.deepEqual(b.tensors[i]!.dims, [rows, heads, b.length, dim], `${what}: dims of tensor ${i}`);
    const [x, y] = [values(t.data as KvArray), values(b.tensors[i]!.data as KvArray)];
    for (let s = 0; s < rows! * heads!; s++) {
      const row = Math.floor(s / heads!);
      for (let j = 0; j < a.length * d; j++) {
        if (a.mask[row * a.length + Math.floor(j / d)] === 0) continue;
        const [u, v] = [x[s * a.length * d + j]!, y[s * b.length * d + j]!];
        assert.ok(Math.abs(u - v) <= tolerance.kv * Math.max(1, Math.abs(u)), `${what}: tensor ${i} slab ${s} element ${j}: ${u} vs ${v}`);
      }
    }
  });
}
