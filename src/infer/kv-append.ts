/**
 * The past grown by a run's new positions (present-delta.ts), written into a buffer the caller reuses, so a
 * decode step neither receives the whole cache from ONNX Runtime nor touches fresh memory for it: each step
 * writes into the buffers the step before last read from.
 */
import type { KvArray, KvShape } from './kv.js';

/** Positions of room a new buffer gets beyond what it holds, so that the next steps fit without another one. */
export const HEADROOM_POSITIONS = 64;

/**
 * [rows, kvHeads, pastLen + seq, headDim]: each (row, head) slab of past, then that slab's seq new positions
 * from added ([rows, kvHeads, seq, headDim]). Written into `into` when it is large enough, else into a new
 * buffer with HEADROOM_POSITIONS to spare. The result is a view from offset 0.
 */
export function appendPositions(past: KvArray, pastLen: number, added: KvArray, seq: number, rows: number, shape: KvShape, into?: ArrayBuffer): KvArray {
  const slabs = rows * shape.kvHeads;
  const d = shape.headDim;
  const length = pastLen + seq;
  const Ctor = past.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => KvArray;
  const bytes = slabs * length * d * past.BYTES_PER_ELEMENT;
  const buffer = into && into.byteLength >= bytes && into !== past.buffer && into !== added.buffer ? into : new ArrayBuffer(slabs * (length + HEADROOM_POSITIONS) * d * past.BYTES_PER_ELEMENT);
  const out = new Ctor(buffer, 0, slabs * length * d);
  for (let s = 0; s < slabs; s++) {
    out.set(past.subarray(s * pastLen * d, (s + 1) * pastLen * d), s * length * d);
    out.set(added.subarray(s * seq * d, (s + 1) * seq * d), s * length * d + pastLen * d);
  }
  return out;
}
