/**
 * Decode without copying the whole cache out of ONNX Runtime every step. onnxruntime-node 1.30 copies every
 * fetched CPU output into a fresh ArrayBuffer, pre-allocated outputs included (it fills the given buffer, then
 * copies that): at batch 8 after ~300 tokens on Qwen3-0.6B's shape that is 577 MB of presents per step, about
 * half the step, most of it page faults on new memory.
 *
 * So on CPU the graph gets, for each present.N.key/value, an extra output present_delta.N.key/value: its last
 * sequence_length positions (Slice on axis 2), which are exactly the step's new keys and values because a
 * decoder's present is Concat(past, new) along that axis. The runner fetches only those and writes them into
 * free slots of the past in place (runner.ts, kv-append.ts), so the per-step traffic through the binding is the
 * new positions.
 * Every other byte of the model is copied unchanged; a graph without presents is served as it is.
 */
import { int64Initializer, nameOf, renamedUnshaped } from './onnx-edit.js';
import { lenField, replaceField, stringField, WIRE_LEN, wireFields } from './protobuf.js';

export const deltaName = (present: string) => present.replace(/^present\./, 'present_delta.');
const PREFIX = 'guardctl_present_delta';

export type PresentDeltaResult = { rewritten: true; model: Buffer; outputs: string[] } | { rewritten: false; reason: string };

function node(op: string, inputs: string[], output: string): Buffer {
  return Buffer.concat(lenField(1, [...inputs.map((i) => stringField(1, i)), stringField(2, output), stringField(3, `${PREFIX}/${output}`), stringField(4, op)]));
}

/** Adds present_delta.* outputs (the new positions of each present) to a decoder graph, in memory. */
export function addPresentDeltas(model: Uint8Array): PresentDeltaResult {
  const top = [...wireFields(model)];
  const graphField = top.find((f) => f.no === 7 && f.wire === WIRE_LEN);
  if (!graphField) return { rewritten: false, reason: 'the file holds no graph' };
  const graph = [...wireFields(model, graphField.start, graphField.end)];
  const presents = graph.filter((f) => f.no === 12 && f.wire === WIRE_LEN && nameOf(model, f).startsWith('present.'));
  if (presents.length === 0) return { rewritten: false, reason: 'the graph has no present outputs' };
  if (graph.some((f) => f.no === 12 && f.wire === WIRE_LEN && nameOf(model, f).startsWith('present_delta.'))) return { rewritten: false, reason: 'the graph has present_delta outputs already' };

  // seq = Shape(input_ids)[1] (Gather, not Shape's start/end: those need opset 15); starts = -seq.
  const [shape, index, seq, starts, ends, axes] = ['shape', 'index', 'seq', 'starts', 'ends', 'axes'].map((n) => `${PREFIX}/${n}`) as [string, string, string, string, string, string];
  const added: Buffer[] = [node('Shape', ['input_ids'], shape), node('Gather', [shape, index], seq), node('Neg', [seq], starts)];
  const outputs: Buffer[] = [];
  const names: string[] = [];
  for (const p of presents) {
    const present = nameOf(model, p);
    const delta = deltaName(present);
    added.push(node('Slice', [present, starts, ends, axes], delta));
    outputs.push(renamedUnshaped(model, p, delta));
    names.push(delta);
  }
  const parts: Buffer[] = graph.map((f) => Buffer.from(model.buffer, model.byteOffset + f.tagStart, f.end - f.tagStart));
  parts.push(...added, ...outputs, int64Initializer(index, 1n), int64Initializer(ends, 2n ** 63n - 1n), int64Initializer(axes, 2n));
  const out = replaceField(model, graphField, 7, parts);
  return { rewritten: true, model: out, outputs: names };
}
