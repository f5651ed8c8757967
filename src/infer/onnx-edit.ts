/**
 * What the in-memory graph rewrites (last-logits.ts, present-delta.ts, split-attention.ts) read and write of an
 * ONNX model on top of protobuf.ts: nodes with their inputs, outputs and attributes, names, small int64
 * initializers, and output declarations. Fields a rewrite does not change are copied byte for byte.
 */
import { lenField, readVarint, stringField, text, varintField, WIRE_LEN, WIRE_VARINT, wireFields, type WireField } from './protobuf.js';

/** A model's graph as a rewrite reads it: the GraphProto field, its fields, its nodes, the default opset. */
export interface GraphView {
  field: WireField;
  fields: WireField[];
  nodes: NodeInfo[];
  /** The graph's output names (ValueInfoProto, field 12). */
  outputs: Set<string>;
  opset: number;
}

/** The model's graph, or why there is none to rewrite. */
export function readGraph(model: Uint8Array, minOpset: number, why: string): GraphView | { reason: string } {
  const top = [...wireFields(model)];
  const field = top.find((f) => f.no === 7 && f.wire === WIRE_LEN);
  if (!field) return { reason: 'the file holds no graph' };
  const opset = defaultOpset(model, top);
  if (opset < minOpset) return { reason: `the graph imports an opset below ${minOpset}${why ? ` (${why})` : ''}` };
  const fields = [...wireFields(model, field.start, field.end)];
  const nodes = fields.filter((f) => f.no === 1 && f.wire === WIRE_LEN).map((f) => nodeInfo(model, f));
  const outputs = new Set(fields.filter((f) => f.no === 12 && f.wire === WIRE_LEN).map((f) => nameOf(model, f)));
  return { field, fields, nodes, outputs, opset };
}

export interface NodeInfo {
  field: WireField;
  inputs: string[];
  outputs: string[];
  op: string;
  domain: string;
  name: string;
}

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7. */
export function nodeInfo(buf: Uint8Array, field: WireField): NodeInfo {
  const n: NodeInfo = { field, inputs: [], outputs: [], op: '', domain: '', name: '' };
  for (const f of wireFields(buf, field.start, field.end)) {
    if (f.wire !== WIRE_LEN) continue;
    if (f.no === 1) n.inputs.push(text(buf, f));
    else if (f.no === 2) n.outputs.push(text(buf, f));
    else if (f.no === 3) n.name = text(buf, f);
    else if (f.no === 4) n.op = text(buf, f);
    else if (f.no === 7) n.domain = text(buf, f);
  }
  return n;
}

/** Field 1 of a message: the name of a ValueInfoProto, of a NodeProto's first input, of an AttributeProto. */
export function nameOf(buf: Uint8Array, field: WireField): string {
  for (const f of wireFields(buf, field.start, field.end)) if (f.no === 1 && f.wire === WIRE_LEN) return text(buf, f);
  return '';
}

/** An initializer's name (TensorProto field 8). */
export function tensorName(buf: Uint8Array, f: { start: number; end: number }): string {
  for (const g of wireFields(buf, f.start, f.end)) if (g.no === 8 && g.wire === WIRE_LEN) return text(buf, g);
  return '';
}

/** A varint read as a signed int64 (negative values take ten bytes, which a float cannot hold exactly). */
function signedVarint(buf: Uint8Array, pos: number): bigint {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++]!;
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return BigInt.asIntN(64, value);
    shift += 7n;
  }
}

/** The int attribute (AttributeProto name 1, i 3) `name` of a node, or undefined when absent. */
export function intAttribute(buf: Uint8Array, node: NodeInfo, name: string): number | undefined {
  for (const f of wireFields(buf, node.field.start, node.field.end)) {
    if (f.no !== 5 || f.wire !== WIRE_LEN || nameOf(buf, f) !== name) continue;
    for (const g of wireFields(buf, f.start, f.end)) if (g.no === 3 && g.wire === WIRE_VARINT) return Number(signedVarint(buf, g.start));
  }
  return undefined;
}

/** The ints attribute (AttributeProto ints 8, packed or not) `name` of a node, or undefined when absent. */
export function intsAttribute(buf: Uint8Array, node: NodeInfo, name: string): number[] | undefined {
  for (const f of wireFields(buf, node.field.start, node.field.end)) {
    if (f.no !== 5 || f.wire !== WIRE_LEN || nameOf(buf, f) !== name) continue;
    const out: number[] = [];
    for (const g of wireFields(buf, f.start, f.end)) {
      if (g.no !== 8) continue;
      if (g.wire === WIRE_VARINT) out.push(Number(signedVarint(buf, g.start)));
      else if (g.wire === WIRE_LEN) for (let pos = g.start; pos < g.end; pos = readVarint(buf, pos)[1]) out.push(Number(signedVarint(buf, pos)));
    }
    return out;
  }
  return undefined;
}

/** The values of an int64 TensorProto (data_type 7; raw_data 9 or int64_data 7), or undefined for another type. */
function int64Tensor(buf: Uint8Array, start: number, end: number): number[] | undefined {
  let type = 0;
  const out: number[] = [];
  for (const f of wireFields(buf, start, end)) {
    if (f.no === 2 && f.wire === WIRE_VARINT) type = readVarint(buf, f.start)[0];
    else if (f.no === 9 && f.wire === WIRE_LEN) for (let pos = f.start; pos + 8 <= f.end; pos += 8) out.push(Number(Buffer.from(buf.buffer, buf.byteOffset + pos, 8).readBigInt64LE()));
    else if (f.no === 7 && f.wire === WIRE_LEN) for (let pos = f.start; pos < f.end; pos = readVarint(buf, pos)[1]) out.push(Number(signedVarint(buf, pos)));
    else if (f.no === 7 && f.wire === WIRE_VARINT) out.push(Number(signedVarint(buf, f.start)));
  }
  return type === 7 ? out : undefined;
}

/** The int64 values of a constant: an initializer (TensorProto name 8) or a Constant node's `value`. */
export function int64Constant(buf: Uint8Array, view: GraphView, name: string): number[] | undefined {
  for (const f of view.fields) {
    if (f.no !== 5 || f.wire !== WIRE_LEN) continue;
    for (const g of wireFields(buf, f.start, f.end)) if (g.no === 8 && g.wire === WIRE_LEN && text(buf, g) === name) return int64Tensor(buf, f.start, f.end);
  }
  const node = view.nodes.find((n) => n.op === 'Constant' && n.outputs[0] === name);
  if (!node) return undefined;
  for (const f of wireFields(buf, node.field.start, node.field.end)) {
    if (f.no !== 5 || f.wire !== WIRE_LEN || nameOf(buf, f) !== 'value') continue;
    for (const g of wireFields(buf, f.start, f.end)) if (g.no === 5 && g.wire === WIRE_LEN) return int64Tensor(buf, g.start, g.end);
  }
  return undefined;
}

/** A 1-D int64 initializer of the given values (TensorProto: dims 1, data_type 2 = INT64, name 8, raw_data 9). */
export function int64sInitializer(name: string, values: readonly (number | bigint)[]): Buffer {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return Buffer.concat(lenField(5, [varintField(1, values.length), varintField(2, 7), stringField(8, name), Buffer.concat(lenField(9, raw))]));
}

/** Whether the node carries any attribute of type GRAPH or GRAPHS (If, Loop, Scan): values flow into those unseen. */
export function hasSubgraph(buf: Uint8Array, node: NodeInfo): boolean {
  for (const f of wireFields(buf, node.field.start, node.field.end)) {
    if (f.no !== 5 || f.wire !== WIRE_LEN) continue;
    for (const g of wireFields(buf, f.start, f.end)) if ((g.no === 6 || g.no === 11) && g.wire === WIRE_LEN) return true;
  }
  return false;
}

/** The default-domain opset the model imports (ModelProto.opset_import), or 0. */
export function defaultOpset(buf: Uint8Array, model: readonly WireField[]): number {
  for (const f of model) {
    if (f.no !== 8 || f.wire !== WIRE_LEN) continue;
    let domain = '';
    let version = 0;
    for (const g of wireFields(buf, f.start, f.end)) {
      if (g.no === 1 && g.wire === WIRE_LEN) domain = text(buf, g);
      else if (g.no === 2) version = readVarint(buf, g.start)[0];
    }
    if (domain === '' || domain === 'ai.onnx') return version;
  }
  return 0;
}

/** A 1-D int64 initializer of one element. */
export function int64Initializer(name: string, value: bigint): Buffer {
  return int64sInitializer(name, [value]);
}

/** An AttributeProto of type INT (20: 2) for a new node. */
export function intAttr(name: string, value: number): Buffer {
  return Buffer.concat(lenField(5, [stringField(1, name), varintField(3, BigInt(value)), varintField(20, 2)]));
}

/** An AttributeProto of type INTS (20: 7) for a new node. */
export function intsAttr(name: string, values: readonly number[]): Buffer {
  return Buffer.concat(lenField(5, [stringField(1, name), ...values.map((v) => varintField(8, BigInt(v))), varintField(20, 7)]));
}

/** A default-domain GraphProto.node (field 1) with the given inputs, outputs, name and attributes. */
export function newNode(op: string, inputs: readonly string[], outputs: readonly string[], name: string, attrs: readonly Buffer[] = []): Buffer {
  return Buffer.concat(lenField(1, [...inputs.map((i) => stringField(1, i)), ...outputs.map((o) => stringField(2, o)), stringField(3, name), stringField(4, op), ...attrs]));
}

/** A copy of a node with its inputs, outputs and name replaced (op, attributes and domain kept as they are). */
export function renamedNode(buf: Uint8Array, node: NodeInfo, inputs: readonly string[], outputs: readonly string[], name: string): Buffer {
  const kept = [...wireFields(buf, node.field.start, node.field.end)].filter((f) => f.no > 3).map((f) => Buffer.from(buf.subarray(f.tagStart, f.end)));
  return Buffer.concat(lenField(1, [...inputs.map((i) => stringField(1, i)), ...outputs.map((o) => stringField(2, o)), stringField(3, name), ...kept]));
}

/** ValueInfoProto under a new name, its tensor type kept without the shape (for an output whose axes differ). */
export function renamedUnshaped(buf: Uint8Array, vi: WireField, name: string): Buffer {
  const parts: Buffer[] = [stringField(1, name)];
  for (const f of wireFields(buf, vi.start, vi.end)) {
    if (f.no !== 2 || f.wire !== WIRE_LEN) continue;
    // TypeProto.tensor_type (1) -> TypeProto.Tensor { elem_type 1, shape 2 }: drop the shape.
    const typeParts: Buffer[] = [];
    for (const t of wireFields(buf, f.start, f.end)) {
      if (t.no !== 1 || t.wire !== WIRE_LEN) continue;
      const tensor = [...wireFields(buf, t.start, t.end)].filter((g) => g.no !== 2).map((g) => Buffer.from(buf.subarray(g.tagStart, g.end)));
      typeParts.push(...lenField(1, tensor));
    }
    parts.push(...lenField(2, typeParts));
  }
  return Buffer.concat(lenField(12, parts));
}
