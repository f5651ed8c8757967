import assert from 'node:assert/strict';
import type { Kv } from '../../src/infer/runner.js';

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
