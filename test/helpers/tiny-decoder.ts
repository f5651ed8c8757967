/**
 * Model directories around the tiny decoder graphs of tiny-decoder.py (built at test time with python3-onnx),
 * with the guard demo's tokenizer and chat template: one real-format flaw each, for the load-time refusals and
 * `guardctl model check`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableOrSkip } from './system.js';
import { GUARD_DIR } from './infer-engine.js';

export type TinyVariant = 'fp32' | 'int8' | 'bf16' | 'int32-ids' | 'no-past' | 'custom-op' | 'unknown-op' | 'init-inputs';

const SCRIPT = fileURLToPath(new URL('./tiny-decoder.py', import.meta.url));
// Debian's python3-onnx lives in /usr/bin/python3; a pyenv python3 earlier on PATH usually lacks it.
const CANDIDATES = ['/usr/bin/python3', 'python3'];
let found: { python?: string; why: string } | undefined;

/** A python3 that can import onnx and numpy; else the test is skipped (fails under GUARDCTL_REQUIRE_SYSTEM=1). */
export function pythonWithOnnx(t: { skip(message?: string): void }): string | undefined {
  if (!found) {
    found = { why: `none of ${CANDIDATES.join(', ')} can import onnx and numpy (apt-get install python3-onnx python3-numpy)` };
    for (const python of CANDIDATES) {
      const r = spawnSync(python, ['-c', 'import onnx, numpy'], { stdio: 'ignore' });
      if (r.status === 0) {
        found = { python, why: '' };
        break;
      }
    }
  }
  return availableOrSkip(t, found.python !== undefined, 'python3 with onnx', found.why) ? found.python : undefined;
}

export interface TinyDir {
  layers?: number;
  kvHeads?: number;
  headDim?: number;
  vocab?: number;
  /** The weights file's dtype name: onnx/model.onnx for fp32, else onnx/model_<dtype>.onnx. */
  dtype?: string;
}

/** Writes dir/onnx/model[_dtype].onnx (the variant), config.json and the guard demo's tokenizer files. */
export function writeTinyModelDir(python: string, dir: string, variant: TinyVariant, opts: TinyDir = {}): string {
  const { layers = 2, kvHeads = 2, headDim = 8, vocab = 4096, dtype = 'fp32' } = opts;
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  const file = path.join(dir, 'onnx', dtype === 'fp32' ? 'model.onnx' : `model_${dtype}.onnx`);
  const r = spawnSync(python, [SCRIPT, file, variant, String(layers), String(kvHeads), String(headDim), String(vocab)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tiny-decoder.py ${variant} failed: ${r.stderr}`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(GUARD_DIR, f), path.join(dir, f));
  const config = {
    model_type: 'qwen3', num_hidden_layers: layers, num_attention_heads: kvHeads * 2, num_key_value_heads: kvHeads, head_dim: headDim,
    vocab_size: vocab, eos_token_id: 2, pad_token_id: 0, max_position_embeddings: 512,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}
