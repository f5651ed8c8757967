/**
 * Grouped-query attention without repeat_kv. A torch export of a GQA decoder (Qwen3, Llama, ...) gives every query
 * head its own copy of the keys and values it shares: transformers' repeat_kv becomes Unsqueeze(axis 2) ->
 * Expand -> Reshape of the whole cache in every layer and every run, a copy of it n_rep times over, fed by about
 * twenty nodes of shape arithmetic (Shape, Gather, Unsqueeze, Concat, Equal, Where...). On the demo models those
 * nodes are about half of what ONNX Runtime runs per step, each a fixed cost of microseconds.
 *
 * The same attention reads the shared cache directly once the query heads are grouped by the KV head they use:
 * query head h reads KV head h / n_rep, so a [b, heads, s, d] query is a [b, kvHeads, n_rep * s, d] tensor as it
 * lies in memory, and MatMul against the [b, kvHeads, T, d] cache gives every head's scores at once. So for each
 * attention MatMul fed by repeat_kv the rewrite reshapes its left operand to [b, kvHeads, -1, last] and its
 * output back to [b, heads, -1, last] (constant targets; 0 copies the batch and the last axis), feeds the cache
 * itself (transposed for the keys), and drops the repeat_kv nodes and the shape arithmetic only they used.
 * Every other byte is copied. A graph without the pattern is left as it is, with the reason.
 */
import { hasSubgraph, int64Constant, int64sInitializer, intsAttr, intsAttribute, nameOf, newNode, readGraph, renamedNode, tensorName, type GraphView, type NodeInfo } from './onnx-edit.js';
import { replaceField, WIRE_LEN } from './protobuf.js';

const PREFIX = 'guardctl_regroup';
/** The regroup's reshape targets: both keep the last axis (0 copies it), which split-attention.ts relies on. */
export const REGROUP_SHAPES = new Set([`${PREFIX}/group_shape`, `${PREFIX}/head_shape`]);

export type RegroupResult = { rewritten: true; model: Buffer; matmuls: number; removed: number } | { rewritten: false; reason: string };

interface Chain {
  cache: string;
  /** The repeat_kv nodes (Unsqueeze, Expand, Reshape, and the keys' Transpose). */
  nodes: NodeInfo[];
  transposed: boolean;
}

export function regroupAttention(model: Uint8Array, config: { heads?: number; kvHeads: number }): RegroupResult {
  const heads = config.heads;
  if (!heads || heads === config.kvHeads || heads % config.kvHeads !== 0) return { rewritten: false, reason: `no grouped-query attention (${heads ?? '?'} query heads, ${config.kvHeads} KV heads)` };
  const view = readGraph(model, 13, 'Unsqueeze axes as an input');
  if ('reason' in view) return { rewritten: false, reason: view.reason };
  const { nodes } = view;
  const graph: GraphView = view;
  // Values an If or Loop body reads are invisible to the consumer map below.
  if (nodes.some((n) => hasSubgraph(model, n))) return { rewritten: false, reason: 'the graph has control flow (If, Loop, Scan)' };
  const rep = heads / config.kvHeads;
  const { outputs } = view;
  const consumers = new Map<string, NodeInfo[]>();
  const producer = new Map<string, NodeInfo>();
  for (const n of nodes) {
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
    for (const o of n.outputs) producer.set(o, n);
  }
  const only = (value: string, op: string): NodeInfo | undefined => {
    const c = consumers.get(value) ?? [];
    return c.length === 1 && c[0]!.op === op && c[0]!.inputs[0] === value && !outputs.has(value) ? c[0] : undefined;
  };

  // Each attention MatMul fed by repeat_kv of a layer's cache (present.N, or the past where there is none).
  const fed = new Map<NodeInfo, Chain>();
  let partial: string | undefined;
  for (const u of nodes) {
    const cache = u.inputs[0];
    if (u.op !== 'Unsqueeze' || !cache || !/^(present|past_key_values)\.\d+\.(key|value)$/.test(cache)) continue;
    const expand = only(u.outputs[0]!, 'Expand');
    const reshape = expand && only(expand.outputs[0]!, 'Reshape');
    const axes = int64Constant(model, view, u.inputs[1] ?? '');
    if (!expand || !reshape || axes?.join() !== '2') {
      partial ??= `${cache} is unsqueezed but not repeated by Expand and Reshape on axis 2`;
      continue;
    }
    // The graph's own repeat count, where its Expand target spells it out (torch: [b, kvHeads, n_rep, T, d]),
    // must be config.json's: otherwise the query heads would be grouped wrongly, silently.
    const repeat = repeatCount(expand);
    if (repeat !== undefined && repeat !== rep) return { rewritten: false, reason: `${cache} is repeated ${repeat} times, but config.json has ${heads} query heads for ${config.kvHeads} KV heads` };
    const isKey = cache.endsWith('.key');
    const readers = consumers.get(reshape.outputs[0]!) ?? [];
    const chainNodes = [u, expand, reshape];
    const matmuls: NodeInfo[] = [];
    // The values' MatMul reads the repeated cache as its right operand; the keys' reads its transpose.
    const attention = (m: NodeInfo, value: string) => m.op === 'MatMul' && m.inputs[1] === value && m.inputs[0] !== value;
    let ok = readers.length > 0 && !outputs.has(reshape.outputs[0]!);
    for (const r of readers) {
      if (!isKey && attention(r, reshape.outputs[0]!)) matmuls.push(r);
      else if (isKey && r.op === 'Transpose' && intsAttribute(model, r, 'perm')?.join() === '0,1,3,2' && !outputs.has(r.outputs[0]!)) {
        const after = consumers.get(r.outputs[0]!) ?? [];
        ok &&= after.length > 0 && after.every((m) => attention(m, r.outputs[0]!));
        chainNodes.push(r);
        matmuls.push(...after);
      } else ok = false;
    }
    if (!ok) {
      partial ??= `the repeated ${cache} is read by something other than attention's MatMul`;
      continue;
    }
    for (const m of matmuls) fed.set(m, { cache, nodes: chainNodes, transposed: isKey });
  }
  if (fed.size === 0) return { rewritten: false, reason: partial ?? 'no repeat_kv (Unsqueeze, Expand, Reshape of the cache) feeds attention' };

  // What goes: the repeat_kv nodes, then whatever computed only for them (their shape arithmetic). A rewritten
  // MatMul still reads its left operand, and its cache (through the new Transpose for the keys).
  const dropped = new Set<NodeInfo>([...fed.values()].flatMap((c) => c.nodes));
  const rewrittenReads = new Set([...fed].flatMap(([m, c]) => [m.inputs[0]!, c.cache]));
  const used = (value: string) => outputs.has(value) || rewrittenReads.has(value) || (consumers.get(value) ?? []).some((c) => !dropped.has(c) && !fed.has(c));
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes) {
      if (dropped.has(n) || fed.has(n) || n.outputs.length === 0 || n.outputs.some(used)) continue;
      // Only what the dropped nodes read can have become unused; anything else unused was so in the export.
      if (!n.outputs.some((o) => (consumers.get(o) ?? []).some((c) => dropped.has(c)))) continue;
      dropped.add(n);
      changed = true;
    }
  }

  const [groupShape, headShape] = [`${PREFIX}/group_shape`, `${PREFIX}/head_shape`];
  const parts: Buffer[] = [];
  let id = 0;
  const fresh = (what: string) => `${PREFIX}/${what}_${id++}`;
  const droppedValues = new Set([...dropped].flatMap((n) => n.outputs));
  // Initializers only the dropped nodes read (repeat_kv's constant dims) go too: ONNX Runtime warns of each.
  const keptReads = new Set([...nodes.filter((n) => !dropped.has(n)).flatMap((n) => n.inputs), ...rewrittenReads]);
  // An initializer also declared as a graph input (keep_initializers_as_inputs) stays: the input would dangle.
  const inputs = new Set(view.fields.filter((f) => f.no === 11 && f.wire === WIRE_LEN).map((f) => nameOf(model, f)));
  const orphans = new Set([...dropped].flatMap((n) => n.inputs).filter((i) => !keptReads.has(i) && !outputs.has(i) && !inputs.has(i)));
  const byField = new Map(nodes.map((n) => [n.field.tagStart, n]));
  for (const f of view.fields) {
    const n = f.no === 1 && f.wire === WIRE_LEN ? byField.get(f.tagStart) : undefined;
    if (n && dropped.has(n)) continue;
    if (f.no === 13 && f.wire === WIRE_LEN && droppedValues.has(nameOf(model, f))) continue;
    if (f.no === 5 && f.wire === WIRE_LEN && orphans.has(tensorName(model, f))) continue;
    const chain = n && fed.get(n);
    if (!n || !chain) {
      parts.push(Buffer.from(model.subarray(f.tagStart, f.end)));
      continue;
    }
    const [grouped, product] = [fresh('grouped'), fresh('product')];
    parts.push(newNode('Reshape', [n.inputs[0]!, groupShape], [grouped], fresh('Reshape')));
    let cache = chain.cache;
    if (chain.transposed) {
      const t = fresh('keys');
      parts.push(newNode('Transpose', [cache], [t], fresh('Transpose'), [intsAttr('perm', [0, 1, 3, 2])]));
      cache = t;
    }
    parts.push(renamedNode(model, n, [grouped, cache], [product], n.name));
    parts.push(newNode('Reshape', [product, headShape], [n.outputs[0]!], fresh('Reshape')));
  }
  parts.push(int64sInitializer(groupShape, [0, config.kvHeads, -1, 0]), int64sInitializer(headShape, [0, heads, -1, 0]));

  /** The constant repeat count in an Expand's target (torch: Concat of [b, kvHeads, n_rep, T, d], possibly behind
   * the Where/Reshape that ONNX export wraps it in), or undefined where the graph does not spell it out. */
  function repeatCount(expand: NodeInfo): number | undefined {
    let n = producer.get(expand.inputs[1] ?? '');
    for (let depth = 0; n && depth < 4 && n.op !== 'Concat'; depth++) n = producer.get(n.op === 'Where' ? n.inputs[2]! : n.inputs[0]!);
    if (!n || n.op !== 'Concat' || n.inputs.length !== 5) return undefined;
    const value = int64Constant(model, graph, n.inputs[2]!);
    return value?.length === 1 ? value[0] : undefined;
  }
  return { rewritten: true, model: replaceField(model, view.field, 7, parts), matmuls: fed.size, removed: dropped.size };
}
