/**
 * Logits only where they are read. Decoder exports compute `logits` for every position of the input, but the
 * engine reads the last position only (greedy decoding, sampling and the moderation fast path all look at the
 * next token). With a 151,936-token vocabulary that waste dominates a prefill: 32 prompts of 308 tokens make
 * about 6 GB of float32 logits, and ONNX Runtime runs the lm_head for all of them whether `logits` is fetched or
 * not.
 *
 * So before the session is created, the graph is rewritten in memory: the input of the lm_head (the MatMul,
 * MatMulNBits or MatMulInteger that `logits` comes from, through any Cast/Mul/Add on the way) is sliced to its
 * last position, [batch, seq, hidden] -> [batch, 1, hidden], and the declared `logits` output becomes
 * [batch, 1, vocab]. Left padding puts every row's last real token at the last position, so nothing else
 * changes. Every other byte of the model is copied unchanged, and the weights, inline or external, are not
 * touched. A graph that does not match the pattern is served as it is (the worker says so at load).
 */
import { int64Initializer, nameOf, readGraph, type NodeInfo } from './onnx-edit.js';
import { lenField, replaceField, stringField, varintField, WIRE_LEN, wireFields, type WireField } from './protobuf.js';

/** The operators whose first input is the hidden state that the lm_head projects. */
const LM_HEAD_OPS = new Set(['MatMul', 'MatMulNBits', 'MatMulInteger', 'FusedMatMul']);
/** Per-position operators that may sit between the lm_head and `logits` (casts, scales, soft-capping). */
const PASS_OPS = new Set(['Cast', 'Identity', 'Mul', 'Div', 'Add', 'Sub', 'Tanh']);
const PREFIX = 'guardctl_last_position';

export type LastLogitsResult =
  | { rewritten: true; model: Buffer; lmHead: string; hidden: string }
  | { rewritten: false; reason: string };

/** The node with its first input renamed (other fields copied as they are). */
function withFirstInput(buf: Uint8Array, node: WireField, input: string): Buffer {
  const parts: Buffer[] = [];
  let replaced = false;
  for (const f of wireFields(buf, node.start, node.end)) {
    if (!replaced && f.no === 1 && f.wire === WIRE_LEN) {
      parts.push(stringField(1, input));
      replaced = true;
    } else parts.push(Buffer.from(buf.subarray(f.tagStart, f.end)));
  }
  return Buffer.concat(lenField(1, parts));
}

/**
 * Copies a message, handing each field to `edit`: a Buffer replaces the field, null drops it, undefined keeps
 * it. Used to reach the one dimension of the logits' declared shape that changes.
 */
function editMessage(buf: Uint8Array, start: number, end: number, edit: (f: WireField) => Buffer | null | undefined): Buffer {
  const parts: Buffer[] = [];
  for (const f of wireFields(buf, start, end)) {
    const e = edit(f);
    if (e === undefined) parts.push(Buffer.from(buf.subarray(f.tagStart, f.end)));
    else if (e !== null) parts.push(e);
  }
  return Buffer.concat(parts);
}

/** ValueInfoProto `logits` with its second dimension (the sequence) declared as 1. */
function logitsValueInfo(buf: Uint8Array, vi: WireField): Buffer {
  const nested = (f: WireField, no: number, inner: (g: WireField) => Buffer | null | undefined) =>
    f.no === no && f.wire === WIRE_LEN ? Buffer.concat(lenField(no, editMessage(buf, f.start, f.end, inner))) : undefined;
  let dim = 0;
  const payload = editMessage(buf, vi.start, vi.end, (type) =>
    nested(type, 2, (tensor) =>
      nested(tensor, 1, (shape) =>
        nested(shape, 2, (d) => {
          if (d.no !== 1) return undefined;
          // Dimension: dim_value 1 | dim_param 2 (| denotation 3); the sequence axis is the second one.
          return dim++ === 1 ? Buffer.concat(lenField(1, varintField(1, 1))) : undefined;
        }),
      ),
    ),
  );
  return Buffer.concat(lenField(12, payload));
}

/**
 * Rewrites an ONNX decoder in memory so that `logits` holds the last position only. Returns why not when the
 * graph does not need it (an export with num_logits_to_keep, or logits already of one position) or does not
 * match the pattern.
 */
export function lastPositionLogits(model: Uint8Array): LastLogitsResult {
  const view = readGraph(model, 10, 'no Slice with tensor inputs');
  if ('reason' in view) return { rewritten: false, reason: view.reason };
  const { field: graphField, fields: graph, nodes } = view;
  const inputs = graph.filter((f) => f.no === 11 && f.wire === WIRE_LEN).map((f) => nameOf(model, f));
  if (inputs.some((n) => n === 'num_logits_to_keep' || n === 'logits_to_keep')) return { rewritten: false, reason: 'the export has its own num_logits_to_keep input' };
  const logitsOut = graph.find((f) => f.no === 12 && f.wire === WIRE_LEN && nameOf(model, f) === 'logits');
  if (!logitsOut) return { rewritten: false, reason: 'the graph has no logits output' };

  const producer = new Map<string, NodeInfo>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);

  // From logits back to the lm_head, through per-position operators only, a few steps at most.
  const find = (name: string, depth: number): NodeInfo | undefined => {
    const n = producer.get(name);
    if (!n || depth > 6) return undefined;
    if (LM_HEAD_OPS.has(n.op) && (n.domain === '' || n.domain === 'ai.onnx' || n.domain === 'com.microsoft')) return n;
    if (!PASS_OPS.has(n.op)) return undefined;
    for (const i of n.inputs) {
      const found = i ? find(i, depth + 1) : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const lmHead = find('logits', 0);
  if (!lmHead) return { rewritten: false, reason: `no MatMul-family lm_head found behind logits (it comes from ${producer.get('logits')?.op ?? 'no node'})` };
  const hidden = lmHead.inputs[0];
  if (!hidden) return { rewritten: false, reason: 'the lm_head has no input' };

  const names = new Set<string>([...producer.keys(), ...inputs]);
  const unique = (base: string) => {
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  };
  const sliced = unique(`${PREFIX}/hidden`);
  const [starts, ends, axes] = [unique(`${PREFIX}/starts`), unique(`${PREFIX}/ends`), unique(`${PREFIX}/axes`)];
  // Slice(hidden, [-1], [INT64_MAX], [1]): keeps the rank, so the lm_head sees [batch, 1, hidden].
  const slice = Buffer.concat(lenField(1, [stringField(1, hidden), stringField(1, starts), stringField(1, ends), stringField(1, axes), stringField(2, sliced), stringField(3, `${PREFIX}/Slice`), stringField(4, 'Slice')]));

  const parts: Buffer[] = [];
  for (const f of graph) {
    if (f === lmHead.field) parts.push(slice, withFirstInput(model, f, sliced));
    else if (f === logitsOut) parts.push(logitsValueInfo(model, f));
    else parts.push(Buffer.from(model.buffer, model.byteOffset + f.tagStart, f.end - f.tagStart));
  }
  parts.push(int64Initializer(starts, -1n), int64Initializer(ends, 2n ** 63n - 1n), int64Initializer(axes, 1n));
  const out = replaceField(model, graphField, 7, parts);
  return { rewritten: true, model: out, lmHead: `${lmHead.op} ${lmHead.outputs[0] ?? ''}`.trim(), hidden };
}
