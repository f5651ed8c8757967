/**
 * What a downloaded export holds, before anything is loaded: the JSON files, and which weights files (dtypes)
 * are in onnx/ with their external data. Community exports (optimum / transformers.js) ship several dtypes side
 * by side; serve loads one of them (--dtype), so a missing or cut-short file of another dtype is only reported.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { scanOnnx } from './onnx-scan.js';

/** The weights files of the optimum / transformers.js layout: dtype -> onnx/<file>. */
export const EXPORT_DTYPES: ReadonlyArray<{ dtype: string; file: string; what: string }> = [
  { dtype: 'fp32', file: 'model.onnx', what: 'float32 weights' },
  { dtype: 'fp16', file: 'model_fp16.onnx', what: 'float16 weights, KV and logits' },
  { dtype: 'q4', file: 'model_q4.onnx', what: '4-bit MatMulNBits, float32 activations' },
  { dtype: 'q4f16', file: 'model_q4f16.onnx', what: '4-bit MatMulNBits, float16 activations' },
  { dtype: 'int8', file: 'model_int8.onnx', what: 'MatMulInteger (int8), CPU only' },
  { dtype: 'uint8', file: 'model_uint8.onnx', what: 'MatMulInteger (uint8), CPU only' },
  { dtype: 'quantized', file: 'model_quantized.onnx', what: 'MatMulInteger, CPU only' },
  { dtype: 'bnb4', file: 'model_bnb4.onnx', what: '4-bit MatMulBnb4' },
];

export const JSON_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

export interface WeightsFile {
  dtype: string;
  file: string;
  bytes: number;
  /** External data files, with their size (absent: missing). */
  externalData: Array<{ file: string; bytes?: number }>;
  /** Why the file cannot be used ('' when it looks complete). */
  problem: string;
}

export interface Layout {
  /** 'onnx/' (the optimum layout, the demo models' too), or 'top-level' when model*.onnx sit next to config.json. */
  layout: 'onnx/' | 'top-level' | 'none';
  /** JSON files present. */
  files: string[];
  weights: WeightsFile[];
  /** .onnx files in onnx/ that are none of the known dtypes (decoder_model_merged.onnx, ...). */
  other: string[];
}

const size = (file: string) => (existsSync(file) ? statSync(file).size : undefined);

function weightsFile(onnxDir: string, dtype: string, file: string): WeightsFile {
  const full = path.join(onnxDir, file);
  const bytes = statSync(full).size;
  try {
    const locations = scanOnnx(full, bytes).externalData;
    const externalData = locations.map((loc) => ({ file: loc, bytes: size(path.resolve(onnxDir, loc)) }));
    const missing = externalData.filter((x) => x.bytes === undefined).map((x) => x.file);
    return { dtype, file, bytes, externalData, problem: missing.length ? `external data ${missing.join(', ')} missing` : '' };
  } catch (err) {
    return { dtype, file, bytes, externalData: [], problem: `unreadable, probably truncated (${(err as Error).message})` };
  }
}

export function findLayout(dir: string): Layout {
  const files = JSON_FILES.filter((f) => existsSync(path.join(dir, f)));
  const onnxDir = path.join(dir, 'onnx');
  const inOnnx = existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')) : [];
  const topLevel = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.onnx')) : [];
  const known = new Map(EXPORT_DTYPES.map((d) => [d.file, d.dtype]));
  const weights = EXPORT_DTYPES.filter((d) => inOnnx.includes(d.file)).map((d) => weightsFile(onnxDir, d.dtype, d.file));
  const layout = inOnnx.length > 0 ? 'onnx/' : topLevel.length > 0 ? 'top-level' : 'none';
  const other = (layout === 'top-level' ? topLevel : inOnnx).filter((f) => layout === 'top-level' || !known.has(f));
  return { layout, files, weights, other };
}
