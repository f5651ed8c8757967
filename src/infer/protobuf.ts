/**
 * The few protobuf wire-format operations the ONNX graph rewrite needs, over a model already in memory: walking
 * a message's fields by offset, and encoding varints, strings and length-delimited fields. A whole ONNX schema
 * (and a dependency for it) is not needed: the rewrite copies every field it does not change byte for byte.
 */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export interface WireField {
  no: number;
  wire: number;
  /** Where the field's tag starts: [tagStart, end) is the whole field, to copy it unchanged. */
  tagStart: number;
  /** Start of a length-delimited payload (or of the value), and the position after the field. */
  start: number;
  end: number;
}

/** Where the walker reads: a model in memory, or a file read piece by piece (onnx-scan.ts's FileReader). */
export interface ByteSource {
  byte(pos: number): number;
}

type Bytes = Uint8Array | ByteSource;

function byteAt(src: Bytes, pos: number): number {
  if (!(src instanceof Uint8Array)) return src.byte(pos);
  if (pos >= src.length) throw new Error(`truncated varint at byte ${pos}`);
  return src[pos]!;
}

/** A varint at pos: [value, next position]. Values above 2^53 occur only in fields the readers skip. */
export function readVarint(src: Bytes, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = byteAt(src, pos++);
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, pos];
    scale *= 128;
    if (scale > 2 ** 63) throw new Error(`malformed varint at byte ${pos}`);
  }
}

/** The fields of the message in [from, to); a file source gives `to` (its size, or the enclosing field's end). */
export function* wireFields(src: Bytes, from = 0, to = src instanceof Uint8Array ? src.length : 0): Generator<WireField> {
  let pos = from;
  while (pos < to) {
    const tagStart = pos;
    const [tag, afterTag] = readVarint(src, pos);
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    let start = afterTag;
    let end: number;
    if (wire === WIRE_VARINT) end = readVarint(src, afterTag)[1];
    else if (wire === WIRE_I64) end = afterTag + 8;
    else if (wire === WIRE_I32) end = afterTag + 4;
    else if (wire === WIRE_LEN) {
      const [len, afterLen] = readVarint(src, afterTag);
      start = afterLen;
      end = afterLen + len;
    } else throw new Error(`unsupported protobuf wire type ${wire} at byte ${pos}`);
    if (end > to) throw new Error(`field ${no} at byte ${tagStart} runs past its message (the file is truncated or not ONNX)`);
    yield { no, wire, tagStart, start, end };
    pos = end;
  }
}

export function text(buf: Uint8Array, f: WireField): string {
  return Buffer.from(buf.buffer, buf.byteOffset + f.start, f.end - f.start).toString('utf8');
}

export function encodeVarint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

export function lenField(no: number, payload: Uint8Array | readonly Uint8Array[]): Buffer[] {
  const parts = payload instanceof Uint8Array ? [payload] : [...payload];
  const len = parts.reduce((n, p) => n + p.length, 0);
  return [encodeVarint(no * 8 + WIRE_LEN), encodeVarint(len), ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length))];
}

export function stringField(no: number, value: string): Buffer {
  return Buffer.concat(lenField(no, Buffer.from(value, 'utf8')));
}

export function varintField(no: number, value: number | bigint): Buffer {
  return Buffer.concat([encodeVarint(no * 8 + WIRE_VARINT), encodeVarint(value)]);
}

/** buf with one length-delimited field (field number no) holding `parts` instead of its payload. */
export function replaceField(buf: Uint8Array, field: WireField, no: number, parts: readonly Buffer[]): Buffer {
  const len = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([
    Buffer.from(buf.buffer, buf.byteOffset, field.tagStart),
    encodeVarint(no * 8 + WIRE_LEN),
    encodeVarint(len),
    ...parts,
    Buffer.from(buf.buffer, buf.byteOffset + field.end, buf.length - field.end),
  ]);
}
