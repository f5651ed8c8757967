/**
 * Hand-encoded ONNX models for tests (python has no onnx here). countingModel() is a one-layer "decoder" that
 * follows the tensor contract of the demo models with float16 KV cache and float16 logits, and keeps one weight
 * in an external data file. After token t it predicts (t + 1 + h) mod vocab with logit 10 (all others 0), h being
 * the sum of the token ids in the row's KV cache where its attention mask is 1. Greedy answers thus depend on each
 * row's cache and mask, so a KV merge or row drop that mixed up rows or positions changes them, and a score has a known
 * softmax (1 / (1 + e^-10) for the predicted token against any other).
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const FLOAT = 1;
const INT64 = 7;
const FLOAT16 = 10;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
const len = (no: number, payload: number[]) => [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
const int = (no: number, value: number) => [...varint(no << 3), ...varint(value)];
const str = (no: number, s: string) => len(no, bytes(s));

function valueInfo(name: string, elemType: number, dims: Array<number | string>): number[] {
  const dimMsgs = dims.flatMap((d) => len(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  const tensorType = [...int(1, elemType), ...len(2, dimMsgs)];
  return [...str(1, name), ...len(2, len(1, tensorType))];
}

function int64Tensor(name: string, dims: number[], values: number[]): number[] {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return [...dims.flatMap((d) => int(1, d)), ...int(2, INT64), ...str(8, name), ...len(9, [...raw])];
}

function externalFloatTensor(name: string, dims: number[], location: string, offset: number, length: number): number[] {
  const entry = (k: string, v: string) => len(13, [...str(1, k), ...str(2, v)]);
  return [...dims.flatMap((d) => int(1, d)), ...int(2, FLOAT), ...str(8, name), ...entry('location', location), ...entry('offset', String(offset)), ...entry('length', String(length)), ...int(14, 1)];
}

function node(op: string, inputs: string[], outputs: string[], attrs: number[][] = []): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(3, `${op}_${outputs[0]}`), ...str(4, op), ...attrs.flatMap((a) => len(5, a))];
}
const intAttr = (name: string, value: number) => [...str(1, name), ...int(3, value), ...int(20, 2)];

export interface CountingModel {
  onnx: Uint8Array;
  data: Uint8Array;
}

/** The counting model; its external data file must be saved as `dataName` next to it. */
export function countingModel(dataName: string, vocab = 4096, kvHeads = 2, headDim = 32): CountingModel {
  const nodes = [
    // history = the sum of the ids in the row's KV cache (head 0, channel 0) where its mask is 1: next = t + 1 + history.
    node('Cast', ['present.0.key'], ['present_f32'], [intAttr('to', FLOAT)]),
    node('Cast', ['attention_mask'], ['mask_f32'], [intAttr('to', FLOAT)]),
    node('Unsqueeze', ['mask_f32', 'kv_axes'], ['mask_4d']),
    node('Slice', ['present_f32', 'zeros_2', 'ones_2', 'kv_axes'], ['present_one']),
    node('Mul', ['present_one', 'mask_4d'], ['present_masked']),
    node('ReduceSum', ['present_masked', 'sum_axes'], ['history_f32'], [intAttr('keepdims', 0)]),
    node('Cast', ['history_f32'], ['history'], [intAttr('to', INT64)]),
    node('Unsqueeze', ['history', 'row_axis'], ['history_col']),
    node('Add', ['input_ids', 'one'], ['next_plain']),
    node('Add', ['next_plain', 'history_col'], ['next_raw']),
    node('Mod', ['next_raw', 'vocab'], ['next_id']),
    node('OneHot', ['next_id', 'vocab', 'onehot_values'], ['onehot']),
    node('Cast', ['onehot'], ['logits'], [intAttr('to', FLOAT16)]),
    node('Cast', ['input_ids'], ['ids_half'], [intAttr('to', FLOAT16)]),
    node('Unsqueeze', ['ids_half', 'kv_axes'], ['ids_4d']),
    node('Expand', ['ids_4d', 'kv_shape'], ['new_kv']),
    node('Concat', ['past_key_values.0.key', 'new_kv'], ['present.0.key'], [intAttr('axis', 2)]),
    node('Concat', ['past_key_values.0.value', 'new_kv'], ['present.0.value'], [intAttr('axis', 2)]),
  ];
  const initializers = [
    int64Tensor('one', [], [1]),
    int64Tensor('vocab', [], [vocab]),
    int64Tensor('kv_axes', [2], [1, 3]),
    int64Tensor('row_axis', [1], [1]),
    int64Tensor('zeros_2', [2], [0, 0]),
    int64Tensor('ones_2', [2], [1, 1]),
    int64Tensor('sum_axes', [3], [1, 2, 3]),
    int64Tensor('kv_shape', [4], [1, kvHeads, 1, headDim]),
    externalFloatTensor('onehot_values', [2], dataName, 0, 8),
  ];
  const inputs = [
    valueInfo('input_ids', INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', INT64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', INT64, ['batch_size', 'sequence_length']),
    valueInfo('past_key_values.0.key', FLOAT16, ['batch_size', kvHeads, 'past_sequence_length', headDim]),
    valueInfo('past_key_values.0.value', FLOAT16, ['batch_size', kvHeads, 'past_sequence_length', headDim]),
  ];
  const outputs = [
    valueInfo('logits', FLOAT16, ['batch_size', 'sequence_length', vocab]),
    valueInfo('present.0.key', FLOAT16, ['batch_size', kvHeads, 'total_sequence_length', headDim]),
    valueInfo('present.0.value', FLOAT16, ['batch_size', kvHeads, 'total_sequence_length', headDim]),
  ];
  const graph = [...nodes.flatMap((n) => len(1, n)), ...str(2, 'counting'), ...initializers.flatMap((t) => len(5, t)), ...inputs.flatMap((v) => len(11, v)), ...outputs.flatMap((v) => len(12, v))];
  const model = [...int(1, 8), ...str(2, 'guardctl-test'), ...len(7, graph), ...len(8, [...str(1, ''), ...int(2, 17)])];
  const data = Buffer.alloc(8);
  data.writeFloatLE(0, 0);
  data.writeFloatLE(10, 4);
  return { onnx: Uint8Array.from(model), data: new Uint8Array(data) };
}

/**
 * A model directory around the counting model (dtype fp16: onnx/model_fp16.onnx + model_fp16.onnx_data), with
 * the tokenizer and chat template of `tokenizerFrom` (a demo model directory).
 */
export function writeCountingModelDir(dir: string, tokenizerFrom: string): void {
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  const { onnx, data } = countingModel('model_fp16.onnx_data');
  writeFileSync(path.join(dir, 'onnx', 'model_fp16.onnx'), onnx);
  writeFileSync(path.join(dir, 'onnx', 'model_fp16.onnx_data'), data);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(tokenizerFrom, f), path.join(dir, f));
  const config = {
    model_type: 'qwen3',
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    vocab_size: 4096,
    eos_token_id: 2,
    pad_token_id: 0,
    max_position_embeddings: 512,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
}
