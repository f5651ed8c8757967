/**
 * Reads an ONNX model's outline without loading it: the external data files it refers to, the operators it uses
 * and its declared inputs and outputs. Exports above 2 GB keep their weights in `model.onnx_data` (or
 * `model.onnx.data`) next to the graph; ONNX Runtime resolves those paths relative to the model file, but when
 * one is missing it fails deep inside session creation with a message that does not say which model directory
 * is broken. Reading the protobuf ourselves lets the loader name the file, the tensor or the operator.
 *
 * Only ModelProto.graph (7) -> GraphProto nodes (1), initializers (5: external_data 13), inputs (11) and outputs
 * (12) are walked; everything else, raw weights included, is skipped by offset, so a multi-gigabyte file costs a
 * few thousand small reads.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { readVarint, WIRE_LEN, WIRE_VARINT, wireFields, type ByteSource, type WireField } from './protobuf.js';

/** Positional reader over a file with a small read-ahead buffer. */
class FileReader implements ByteSource {
  private buf = Buffer.alloc(64 * 1024);
  private bufStart = 0;
  private bufLen = 0;

  constructor(private readonly fd: number) {}

  private fill(pos: number): void {
    this.bufStart = pos;
    this.bufLen = readSync(this.fd, this.buf, 0, this.buf.length, pos);
  }

  byte(pos: number): number {
    if (pos < this.bufStart || pos >= this.bufStart + this.bufLen) {
      this.fill(pos);
      if (this.bufLen === 0) throw new Error(`unexpected end of file at byte ${pos}`);
    }
    return this.buf[pos - this.bufStart]!;
  }

  bytes(pos: number, len: number): Buffer {
    const out = Buffer.alloc(len);
    const got = readSync(this.fd, out, 0, len, pos);
    if (got !== len) throw new Error(`unexpected end of file at byte ${pos + got}`);
    return out;
  }
}

/** ONNX TensorProto.DataType numbers, named as ONNX Runtime's Node binding names them (ValueMetadata.type). */
const ELEM_TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64',
  12: 'uint32', 13: 'uint64', 14: 'complex64', 15: 'complex128', 16: 'bfloat16', 17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2',
  20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1',
};

/** A graph input or output as declared in the file: the same shape as ORT's ValueMetadata (graph.ts reads both). */
export interface DeclaredValue {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: Array<number | string>;
}

export interface OnnxSummary {
  /** The distinct `location` values of the initializers stored outside the model file, in order of appearance. */
  externalData: string[];
  /** Operators used, as `domain:op_type` ('' is the default ONNX domain) -> number of nodes, subgraphs included. */
  ops: Map<string, number>;
  inputs: DeclaredValue[];
  outputs: DeclaredValue[];
}

const utf8 = (r: FileReader, f: WireField) => r.bytes(f.start, f.end - f.start).toString('utf8');

/** The string fields `wanted` of a message, by field number (the last occurrence wins, as in protobuf). */
function stringFields(r: FileReader, msg: WireField, wanted: readonly number[] = [1, 2]): Record<number, string | undefined> {
  const out: Record<number, string> = {};
  for (const f of wireFields(r, msg.start, msg.end)) if (f.wire === WIRE_LEN && wanted.includes(f.no)) out[f.no] = utf8(r, f);
  return out;
}

/** ValueInfoProto: name (1), type (2) -> TypeProto.tensor_type (1) -> elem_type (1), shape (2) -> dim (1). */
function declaredValue(r: FileReader, vi: WireField): DeclaredValue {
  const out: DeclaredValue = { name: '', isTensor: false };
  for (const f of wireFields(r, vi.start, vi.end)) {
    if (f.no === 1 && f.wire === WIRE_LEN) out.name = utf8(r, f);
    if (f.no !== 2 || f.wire !== WIRE_LEN) continue;
    for (const t of wireFields(r, f.start, f.end)) {
      if (t.no !== 1 || t.wire !== WIRE_LEN) continue;
      out.isTensor = true;
      for (const tt of wireFields(r, t.start, t.end)) {
        if (tt.no === 1 && tt.wire === WIRE_VARINT) {
          const n = readVarint(r, tt.start)[0];
          out.type = ELEM_TYPES[n] ?? `elem_type ${n}`;
        } else if (tt.no === 2 && tt.wire === WIRE_LEN) {
          out.shape = [];
          for (const dim of wireFields(r, tt.start, tt.end)) {
            if (dim.no !== 1 || dim.wire !== WIRE_LEN) continue;
            let d: number | string = '?';
            for (const v of wireFields(r, dim.start, dim.end)) {
              if (v.no === 1 && v.wire === WIRE_VARINT) d = readVarint(r, v.start)[0];
              else if (v.no === 2 && v.wire === WIRE_LEN) d = utf8(r, v);
            }
            out.shape.push(d);
          }
        }
      }
    }
  }
  return out;
}

/** NodeProto op_type (4) and domain (7); AttributeProto g (6) and graphs (11) hold subgraphs (If, Loop, Scan). */
function scanNode(r: FileReader, node: WireField, ops: Map<string, number>): void {
  for (const f of wireFields(r, node.start, node.end)) {
    if (f.no !== 5 || f.wire !== WIRE_LEN) continue;
    for (const a of wireFields(r, f.start, f.end)) if ((a.no === 6 || a.no === 11) && a.wire === WIRE_LEN) scanGraph(r, a, ops);
  }
  const { 4: op = '', 7: domain = '' } = stringFields(r, node, [4, 7]);
  const key = `${domain === 'ai.onnx' ? '' : domain}:${op}`;
  ops.set(key, (ops.get(key) ?? 0) + 1);
}

function scanGraph(r: FileReader, graph: WireField, ops: Map<string, number>, top?: OnnxSummary, locations?: Set<string>, initializers?: Set<string>): void {
  for (const f of wireFields(r, graph.start, graph.end)) {
    if (f.wire !== WIRE_LEN) continue;
    if (f.no === 1) scanNode(r, f, ops);
    else if (top && f.no === 11) top.inputs.push(declaredValue(r, f));
    else if (top && f.no === 12) top.outputs.push(declaredValue(r, f));
    else if (locations && f.no === 5) {
      for (const tensor of wireFields(r, f.start, f.end)) {
        if (tensor.wire !== WIRE_LEN) continue;
        if (tensor.no === 8) initializers?.add(utf8(r, tensor));
        if (tensor.no !== 13) continue;
        const { 1: key, 2: value } = stringFields(r, tensor); // StringStringEntryProto
        if (key === 'location' && value) locations.add(value);
      }
    }
  }
  // Files from IR version < 4 list initializers among the inputs too; ORT does not report those as inputs.
  if (top && initializers?.size) top.inputs = top.inputs.filter((i) => !initializers.has(i.name));
}

/**
 * Reads what the loader checks before ONNX Runtime sees the file: external data, operators, and the declared
 * inputs and outputs (ORT's Node binding cannot even describe a bfloat16 input: it fails with "Unsupported data
 * type: 16", naming no tensor). A file cut short fails here with the byte where it ends.
 */
export function scanOnnx(modelPath: string, fileSize: number): OnnxSummary {
  const fd = openSync(modelPath, 'r');
  try {
    const r = new FileReader(fd);
    const summary: OnnxSummary = { externalData: [], ops: new Map(), inputs: [], outputs: [] };
    const locations = new Set<string>();
    let graphs = 0;
    for (const model of wireFields(r, 0, fileSize)) {
      if (model.no !== 7 || model.wire !== WIRE_LEN) continue;
      graphs++;
      scanGraph(r, model, summary.ops, summary, locations, new Set());
    }
    // A file cut at a field boundary parses; one without its graph, or a graph without outputs, is still incomplete.
    if (graphs === 0) throw new Error('the file holds no graph');
    if (summary.outputs.length === 0) throw new Error('the graph declares no outputs');
    summary.externalData = [...locations];
    return summary;
  } finally {
    closeSync(fd);
  }
}

/** The distinct `location` values of the initializers stored outside the model file, in order of appearance. */
export function externalDataLocations(modelPath: string, fileSize: number): string[] {
  return scanOnnx(modelPath, fileSize).externalData;
}
