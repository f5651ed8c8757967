/**
 * Finds the external data files an ONNX model refers to, without loading it. Exports above 2 GB keep their
 * weights in `model.onnx_data` (or `model.onnx.data`) next to the graph; ONNX Runtime resolves those paths
 * relative to the model file, but when one is missing it fails deep inside session creation with a message that
 * does not say which model directory is broken. Reading the protobuf ourselves lets the loader name the file.
 *
 * Only the path ModelProto.graph (7) -> GraphProto.initializer (5) -> TensorProto.external_data (13) is walked;
 * everything else, raw weights included, is skipped by offset, so a multi-gigabyte file costs a few thousand
 * small reads.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Positional reader over a file with a small read-ahead buffer. */
class FileReader {
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

  /** Reads a varint at pos: [value, next position]. Values above 2^53 only occur in fields we skip. */
  varint(pos: number): [number, number] {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte(pos++);
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return [value, pos];
      scale *= 128;
      if (scale > 2 ** 63) throw new Error(`malformed varint at byte ${pos}`);
    }
  }
}

interface Field {
  no: number;
  wire: number;
  /** Start of a length-delimited payload (or of the value), and the position after the field. */
  start: number;
  end: number;
}

function* fields(r: FileReader, from: number, to: number): Generator<Field> {
  let pos = from;
  while (pos < to) {
    const [tag, afterTag] = r.varint(pos);
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    let start = afterTag;
    let end: number;
    if (wire === WIRE_VARINT) end = r.varint(afterTag)[1];
    else if (wire === WIRE_I64) end = afterTag + 8;
    else if (wire === WIRE_I32) end = afterTag + 4;
    else if (wire === WIRE_LEN) {
      const [len, afterLen] = r.varint(afterTag);
      start = afterLen;
      end = afterLen + len;
    } else throw new Error(`unsupported protobuf wire type ${wire} at byte ${pos}`);
    if (end > to) throw new Error(`field ${no} at byte ${pos} runs past its message`);
    yield { no, wire, start, end };
    pos = end;
  }
}

/** The distinct `location` values of the initializers stored outside the model file, in order of appearance. */
export function externalDataLocations(modelPath: string, fileSize: number): string[] {
  const fd = openSync(modelPath, 'r');
  try {
    const r = new FileReader(fd);
    const found = new Set<string>();
    for (const model of fields(r, 0, fileSize)) {
      if (model.no !== 7 || model.wire !== WIRE_LEN) continue;
      for (const graph of fields(r, model.start, model.end)) {
        if (graph.no !== 5 || graph.wire !== WIRE_LEN) continue;
        for (const tensor of fields(r, graph.start, graph.end)) {
          if (tensor.no !== 13 || tensor.wire !== WIRE_LEN) continue;
          let key = '';
          let value = '';
          for (const entry of fields(r, tensor.start, tensor.end)) {
            if (entry.wire !== WIRE_LEN) continue;
            const text = r.bytes(entry.start, entry.end - entry.start).toString('utf8');
            if (entry.no === 1) key = text;
            else if (entry.no === 2) value = text;
          }
          if (key === 'location' && value !== '') found.add(value);
        }
      }
    }
    return [...found];
  } finally {
    closeSync(fd);
  }
}
