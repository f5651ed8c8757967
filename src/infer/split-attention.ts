/**
 * Attention that reads the past and the step's new keys and values as two operands, instead of their
 * concatenation. A decoder export computes present = Concat(past, new) in every layer and attends over that, so
 * each run copies the whole cache inside ONNX Runtime, fetched or not (ONNX Runtime runs every node of the graph
 * whatever the fetches): on Qwen3-0.6B's shape at batch 8 after ~300 tokens that copy is 74 of a 254 ms decode
 * step. present-delta.ts already keeps the copy out of the binding; this rewrite removes it from the graph.
 *
 * Attention is linear in how the keys are split: with K = [Kp; Kn] and V = [Vp; Vn] along the sequence,
 *   scores = Q·Kᵀ = [Q·Kpᵀ, Q·Knᵀ]            (concatenated along the last axis: small, [.., seq, total])
 *   out    = P·V  = P[.., :p]·Vp + P[.., p:]·Vn  (p = the past's length)
 * So the rewrite duplicates what the graph does to the concatenated cache on its way to those two MatMuls (the
 * repeat_kv Unsqueeze/Expand/Reshape and Transpose of a torch export, with the shape arithmetic that feeds them),
 * once for the past and once for the new positions, and splits each MatMul as above. The presents become
 * present_delta.N outputs holding the new positions only, which the runner writes into free slots of the past
 * (runner.ts, kv-append.ts) exactly as it does with present-delta.ts.
 *
 * Only a graph whose every layer matches is rewritten; anything else (an operator on the cache the rewrite does
 * not know, a MatMul that is not attention's, a value of the cache that leaves the attention block) leaves the
 * model as it is, with the reason. A branch of the past must never be empty: torch exports reshape with
 * allowzero=0, where a 0 in the target shape copies another axis. So a runner of a rewritten graph starts a
 * prefill from one masked-out past position (runner.ts: emptyPast).
 */
import { REGROUP_SHAPES } from './grouped-attention.js';
import { deltaName } from './present-delta.js';
import { hasSubgraph, int64Initializer, intAttr, intAttribute, nameOf, newNode, readGraph, renamedNode, renamedUnshaped, tensorName, type NodeInfo } from './onnx-edit.js';
import { replaceField, WIRE_LEN, wireFields } from './protobuf.js';

const PREFIX = 'guardctl_split';

/** Operators that carry the cache (input 0) to attention's MatMuls without mixing its positions. */
const CARRY_OPS = new Set(['Unsqueeze', 'Transpose', 'Expand', 'Reshape', 'Cast', 'Identity']);
/** Operators of the shape arithmetic that reads the cache's shape (its outputs are small int tensors). */
const SHAPE_OPS = new Set(['Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Mul', 'Add', 'Sub', 'Div', 'Equal', 'Where', 'ConstantOfShape', 'Cast', 'Slice', 'Identity']);
/** Operators allowed between the scores' MatMul and its Softmax, and between a Softmax and the values' MatMul. */
const ELEMENTWISE = new Set(['Mul', 'Div', 'Add', 'Sub', 'Where', 'Cast', 'Identity']);

/**
 * Whether the split is worth its nodes for a model: it adds about six small nodes per layer (a fixed cost per
 * run, tens of µs) and saves a copy of rows x positions x kvHeads x headDim x 2 elements per layer. Measured with
 * onnxruntime-node on this project's 2-core machine: on the demo models (2 KV heads of 32) it made runs 5-16%
 * slower; on Qwen3-0.6B's shape (8 of 128) a batch-8 decode step after 320 positions took 186 ms against 237,
 * batch 1 and prefills the same within the noise (0.97-1.02x).
 */
export function splitPays(config: { kvHeads: number; headDim: number }): boolean {
  return config.kvHeads * config.headDim >= 512;
}

export type SplitAttentionResult = { rewritten: true; model: Buffer; outputs: string[]; layers: number } | { rewritten: false; reason: string };

type Kind = 'cache' | 'shape';
type Split = { node: NodeInfo; side: 'scores' | 'values'; concat: NodeInfo };

export function splitAttention(model: Uint8Array): SplitAttentionResult {
  const view = readGraph(model, 13, '');
  if ('reason' in view) return { rewritten: false, reason: view.reason };
  const { field: graphField, fields: graph, nodes, outputs: graphOutputs } = view;
  const presents = graph.filter((f) => f.no === 12 && f.wire === WIRE_LEN && nameOf(model, f).startsWith('present.'));
  if (presents.length === 0) return { rewritten: false, reason: 'the graph has no present outputs' };

  // Nodes must come in topological order (the ONNX spec requires it) for one forward pass to see every use.
  const defined = new Set<string>(['', ...graph.filter((f) => (f.no === 11 || f.no === 5) && f.wire === WIRE_LEN).map((f) => (f.no === 5 ? tensorName(model, f) : nameOf(model, f)))]);
  for (const n of nodes) {
    if (n.inputs.some((i) => !defined.has(i))) return { rewritten: false, reason: `node ${n.op} reads a value defined after it (nodes not in topological order)` };
    n.outputs.forEach((o) => defined.add(o));
  }
  // present.N = Concat(past_key_values.N, new, axis 2) for every present. Torch exports may pass the past
  // through a one-input Concat first, a copy of the whole past that other nodes read too (for the mask's
  // length): every reader reads the past itself instead, and the copy goes.
  const alias = new Map<string, string>();
  const dropped = new Set<NodeInfo>();
  for (const n of nodes) {
    const input = n.inputs[0];
    if (!input || !(n.op === 'Identity' || (n.op === 'Concat' && n.inputs.length === 1)) || graphOutputs.has(n.outputs[0]!)) continue;
    const root = alias.get(input) ?? input;
    if (!/^past_key_values\./.test(root)) continue;
    alias.set(n.outputs[0]!, root);
    dropped.add(n);
  }
  const renamed = new Set(nodes.filter((n) => n.inputs.some((i) => alias.has(i))));
  for (const n of renamed) n.inputs = n.inputs.map((i) => alias.get(i) ?? i);
  const producer = new Map<string, NodeInfo>();
  const consumers = new Map<string, NodeInfo[]>();
  for (const n of nodes) {
    if (dropped.has(n)) continue;
    n.outputs.forEach((o) => producer.set(o, n));
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const concats = new Map<string, NodeInfo>();
  for (const p of presents) {
    const name = nameOf(model, p);
    const c = producer.get(name);
    const past = name.replace(/^present\./, 'past_key_values.');
    const axis = c && intAttribute(model, c, 'axis');
    if (!c || c.op !== 'Concat' || c.domain !== '' || c.inputs.length !== 2 || c.inputs[0] !== past || (axis !== 2 && axis !== -2)) {
      return { rewritten: false, reason: `${name} is not Concat(${past}, new positions) along axis 2` };
    }
    concats.set(c.outputs[0]!, c);
  }

  // Initializers and Constant nodes' outputs.
  const constants = new Set<string>([...graph.filter((f) => f.no === 5 && f.wire === WIRE_LEN).map((f) => tensorName(model, f)), ...nodes.filter((n) => n.op === 'Constant').flatMap((n) => n.outputs)]);

  // Which values derive from which layer's concatenated cache, in node order: the cache itself as carried
  // towards attention, or shape arithmetic read off it.
  const taint = new Map<string, { kind: Kind; concat: NodeInfo }>();
  for (const [out, c] of concats) taint.set(out, { kind: 'cache', concat: c });
  const duplicated = new Set<NodeInfo>();
  const splits = new Map<NodeInfo, Split>();
  for (const n of nodes) {
    if (dropped.has(n)) continue;
    const tainted = n.inputs.map((i) => taint.get(i));
    const first = tainted.find((t) => t !== undefined);
    if (!first || concats.has(n.outputs[0]!)) continue;
    const where = `${n.op} ${n.outputs[0] ?? ''} (from ${first.concat.outputs[0]})`;
    if (tainted.some((t) => t && t.concat !== first.concat)) return { rewritten: false, reason: `${where} mixes two layers' caches` };
    if (n.domain !== '' || hasSubgraph(model, n)) return { rewritten: false, reason: `${where} is not a plain ONNX operator` };
    const cacheAt = tainted.flatMap((t, i) => (t?.kind === 'cache' ? [i] : []));
    if (n.op === 'MatMul' && cacheAt.length > 0) {
      if (cacheAt.join() !== '1' || tainted[0]) return { rewritten: false, reason: `${where} multiplies the cache from the left` };
      const side = attentionSide(n);
      if (!side) return { rewritten: false, reason: `${where} is not attention's scores or values MatMul (no Softmax next to it)` };
      splits.set(n, { node: n, side, concat: first.concat });
      continue;
    }
    // A duplicated node's other inputs must be constants: a dynamic one (the mask's length, say) would carry
    // the whole sequence's length into a branch that holds part of it.
    const dynamic = n.inputs.find((i, k) => !tainted[k] && i !== '' && !constants.has(i));
    if (dynamic !== undefined) return { rewritten: false, reason: `${where} combines the cache with ${dynamic}, which is not a constant` };
    let kind: Kind;
    if (cacheAt.length > 0) {
      if (n.op === 'Shape') kind = 'shape';
      else if (CARRY_OPS.has(n.op) && cacheAt.join() === '0') {
        // A reshape of the cache must take its target from the cache's own shape arithmetic, so that each
        // branch reshapes to its own length.
        if ((n.op === 'Reshape' || n.op === 'Expand') && tainted[1]?.kind !== 'shape') return { rewritten: false, reason: `${where} has a target shape that does not come from the cache` };
        kind = 'cache';
      } else return { rewritten: false, reason: `${where} reads the concatenated cache` };
    } else {
      // Reshaping shape arithmetic is more shape arithmetic; reshaping anything else by the cache's shape is not.
      const reshapes = n.op === 'Reshape' || n.op === 'Expand';
      if (reshapes ? tainted[0]?.kind !== 'shape' : !SHAPE_OPS.has(n.op)) return { rewritten: false, reason: `${where} uses the cache's shape outside the attention block` };
      kind = 'shape';
    }
    for (const o of n.outputs) {
      if (graphOutputs.has(o)) return { rewritten: false, reason: `${where} is a graph output` };
      taint.set(o, { kind, concat: first.concat });
    }
    duplicated.add(n);
  }
  for (const c of concats.values()) {
    const side = c.outputs[0]!.endsWith('.key') ? 'scores' : 'values';
    const uses = [...splits.values()].filter((s) => s.concat === c);
    if (uses.length === 0 || uses.some((s) => s.side !== side)) return { rewritten: false, reason: `${c.outputs[0]} is not read by attention's ${side} MatMul alone` };
  }

  /** The scores MatMul's output goes, through elementwise operators, into a Softmax over the last axis; the
   * values MatMul's left operand comes from one. */
  function attentionSide(m: NodeInfo): 'scores' | 'values' | undefined {
    let v = m.outputs[0]!;
    for (let depth = 0; depth < 6; depth++) {
      const next = consumers.get(v) ?? [];
      if (next.length !== 1) break;
      const n = next[0]!;
      if (n.op === 'Softmax') return softmaxLast(n) ? 'scores' : undefined;
      if (!ELEMENTWISE.has(n.op) && !keepsLastAxis(n)) break;
      v = n.outputs[0]!;
    }
    let p = producer.get(m.inputs[0]!);
    for (let depth = 0; p && depth < 6; depth++) {
      if (p.op === 'Softmax') return softmaxLast(p) ? 'values' : undefined;
      if (p.op !== 'Cast' && p.op !== 'Identity' && !keepsLastAxis(p)) break;
      p = producer.get(p.inputs[0]!);
    }
    return undefined;
  }
  /** grouped-attention.ts's reshapes around attention's MatMuls copy the last axis (keys) as it is. */
  function keepsLastAxis(n: NodeInfo): boolean {
    return n.op === 'Reshape' && REGROUP_SHAPES.has(n.inputs[1] ?? '');
  }
  function softmaxLast(n: NodeInfo): boolean {
    const axis = intAttribute(model, n, 'axis');
    return axis === undefined || axis === -1;
  }

  // Each branch's names: the past input and the new positions for the concatenation, suffixed names after it.
  const branch = (name: string, b: 'past' | 'new'): string => {
    const c = concats.get(name);
    if (c) return b === 'past' ? c.inputs[0]! : c.inputs[1]!;
    return taint.has(name) ? `${name}/${PREFIX}_${b}` : name;
  };
  const [zero, end, last, seqAxis] = ['zero', 'end', 'last', 'seq_axis'].map((n) => `${PREFIX}/${n}`) as [string, string, string, string];
  const parts: Buffer[] = [];
  let id = 0;
  const fresh = (what: string) => `${PREFIX}/${what}_${id++}`;
  const nodeAt = new Map(nodes.map((n) => [n.field.tagStart, n]));
  for (const f of graph) {
    if (f.no === 12 && f.wire === WIRE_LEN && concats.has(nameOf(model, f))) {
      parts.push(renamedUnshaped(model, f, deltaName(nameOf(model, f))));
      continue;
    }
    // value_info of values no longer computed (the rewrite renames them per branch).
    if (f.no === 13 && f.wire === WIRE_LEN && (taint.has(nameOf(model, f)) || alias.has(nameOf(model, f)))) continue;
    const n = f.no === 1 && f.wire === WIRE_LEN ? nodeAt.get(f.tagStart)! : undefined;
    if (!n) {
      parts.push(Buffer.from(model.subarray(f.tagStart, f.end)));
      continue;
    }
    const c = concats.get(n.outputs[0]!);
    if (dropped.has(n)) continue;
    if (c === n) {
      // The new positions are the output the runner fetches.
      parts.push(newNode('Identity', [c.inputs[1]!], [deltaName(c.outputs[0]!)], fresh('delta')));
    } else if (duplicated.has(n)) {
      for (const b of ['past', 'new'] as const) parts.push(renamedNode(model, n, n.inputs.map((i) => branch(i, b)), n.outputs.map((o) => branch(o, b)), fresh(`${n.op}_${b}`)));
    } else if (splits.has(n)) {
      const { side, concat } = splits.get(n)!;
      const [a, b] = [n.inputs[0]!, n.inputs[1]!];
      const [outPast, outNew] = [fresh('past'), fresh('new')];
      if (side === 'scores') {
        parts.push(newNode('MatMul', [a, branch(b, 'past')], [outPast], fresh('MatMul')), newNode('MatMul', [a, branch(b, 'new')], [outNew], fresh('MatMul')));
        parts.push(newNode('Concat', [outPast, outNew], [n.outputs[0]!], fresh('Concat'), [intAttr('axis', -1)]));
      } else {
        // The probabilities' first p columns weigh the past, the rest the new positions.
        const [shape, p, probsPast, probsNew] = [fresh('shape'), fresh('p'), fresh('probs_past'), fresh('probs_new')];
        parts.push(newNode('Shape', [concat.inputs[0]!], [shape], fresh('Shape')), newNode('Gather', [shape, seqAxis], [p], fresh('Gather'), [intAttr('axis', 0)]));
        parts.push(newNode('Slice', [a, zero, p, last], [probsPast], fresh('Slice')), newNode('Slice', [a, p, end, last], [probsNew], fresh('Slice')));
        parts.push(newNode('MatMul', [probsPast, branch(b, 'past')], [outPast], fresh('MatMul')), newNode('MatMul', [probsNew, branch(b, 'new')], [outNew], fresh('MatMul')));
        parts.push(newNode('Add', [outPast, outNew], [n.outputs[0]!], fresh('Add')));
      }
    } else if (renamed.has(n)) parts.push(renamedNode(model, n, n.inputs, n.outputs, n.name));
    else parts.push(Buffer.from(model.subarray(f.tagStart, f.end)));
  }
  parts.push(int64Initializer(zero, 0n), int64Initializer(end, 2n ** 63n - 1n), int64Initializer(last, -1n), int64Initializer(seqAxis, 2n));
  const outputs = [...concats.keys()].map(deltaName);
  return { rewritten: true, model: replaceField(model, graphField, 7, parts), outputs, layers: concats.size / 2 };
}
