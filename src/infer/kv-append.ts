/**
 * The past grown by a run's new positions (present-delta.ts) without copying the whole cache every step. A past
 * [rows, kvHeads, length, headDim] is fed to ONNX Runtime whole, so a step cannot append to it in place: each
 * (row, head) slab's stride is its length. Instead a grown past gets free slots at the end of every slab, masked
 * out for every row, and the next steps write their new positions into those slots in place. Attention does not
 * care where in the past a position sits (its rotary position was applied when it was computed, and position
 * ids are counted from the mask), so a slot holds a position as well as the end of the slab would.
 *
 * A step then moves its new positions only; once the slots are used up, one step copies the past into a larger
 * buffer. The cost is attention over the free slots too, which are masked: at most an eighth more positions.
 */
import type { KvArray } from './kv.js';

/** Free slots a grown past gets: an eighth of the positions it holds, at least 16. */
export function roomFor(used: number): number {
  return Math.max(16, Math.ceil(used / 8));
}

/** Writes added ([slabs, seq, d]) into positions [at, at + seq) of every slab of kv ([slabs, length, d]), in place. */
export function writePositions(kv: KvArray, length: number, added: KvArray, seq: number, at: number, slabs: number, d: number): KvArray {
  for (let s = 0; s < slabs; s++) kv.set(added.subarray(s * seq * d, (s + 1) * seq * d), (s * length + at) * d);
  return kv;
}

/**
 * A new [slabs, length, d] buffer: each slab's first `used` positions of past ([slabs, pastLen, d]), then its
 * seq positions of added, then zeros up to length.
 */
export function grownPast(past: KvArray, pastLen: number, used: number, added: KvArray, seq: number, slabs: number, d: number, length: number): KvArray {
  const out = new (past.constructor as new (n: number) => KvArray)(slabs * length * d);
  for (let s = 0; s < slabs; s++) {
    out.set(past.subarray(s * pastLen * d, (s * pastLen + used) * d), s * length * d);
    out.set(added.subarray(s * seq * d, (s + 1) * seq * d), (s * length + used) * d);
  }
  return out;
}
