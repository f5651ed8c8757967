/**
 * The real-format model fixtures (scripts/fixtures/build.mjs): a Qwen3 decoder with random weights, the real Qwen3
 * tokenizer, in every dtype community exports ship. Built on first use (seconds) into test/.fixtures, then reused.
 * Building needs python3 with onnx and numpy: without it the calling test is skipped, or fails under
 * GUARDCTL_REQUIRE_SYSTEM=1.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DeviceChoice, Dtype, ModelSpec, Task } from '../../src/infer/types.js';
import { availableOrSkip } from './system.js';

const BUILD = new URL('../../scripts/fixtures/build.mjs', import.meta.url).pathname;

export interface RealFixtures {
  /** Qwen3Guard-Gen's chat template. */
  guard: string;
  /** A HY-MT1.5-style translation template (no system prompt). */
  mt: string;
  /** reference.json (token ids, sizes) and reference_<dtype>.bin (numpy's last-position logits). */
  reference: string;
}

/** The dtypes every fixture directory holds, by the --dtype that selects them. */
export const REAL_DTYPES = ['fp32', 'fp16', 'q4', 'int8'] as const satisfies readonly Dtype[];
export type RealDtype = (typeof REAL_DTYPES)[number];

let built: RealFixtures | { missing: string } | undefined;

/** The fixture directories, built if needed; undefined when the test was skipped (no python3-onnx). */
export function realFixtures(t: { skip(message?: string): void }): RealFixtures | undefined {
  if (!built) {
    const r = spawnSync(process.execPath, [BUILD, '--json'], { encoding: 'utf8' });
    if (r.status === 3) built = { missing: r.stderr.trim() };
    else if (r.status !== 0) throw new Error(`building the real-format fixtures failed (${r.status ?? r.signal}): ${r.stderr}`);
    else built = JSON.parse(r.stdout) as RealFixtures;
  }
  if ('missing' in built) {
    availableOrSkip(t, false, 'python3 with onnx and numpy (python3-onnx, python3-numpy)', built.missing);
    return undefined;
  }
  return built;
}

/** The model directory for a task (moderate: the Qwen3Guard-Gen fixture; translate: the HY-MT one). */
export function realFixture(t: { skip(message?: string): void }, task: Task): string | undefined {
  const fx = realFixtures(t);
  return fx && (task === 'moderate' ? fx.guard : fx.mt);
}

/** A ModelSpec serving a fixture directory unchanged. */
export function realSpec(fx: RealFixtures, task: Task, dtype: RealDtype, device: DeviceChoice = 'cpu', name = task === 'moderate' ? 'guard' : 'mt'): ModelSpec {
  return { name, task, dir: task === 'moderate' ? fx.guard : fx.mt, size: 'small', dtype, device, ...(task === 'translate' ? { translateTemplate: 'hy-mt' as const } : {}) };
}

export interface Reference {
  ids: number[];
  config: { layers: number; kv_heads: number; head_dim: number; vocab: number };
  /** numpy's logits at the last position of `ids` for this dtype's weights (dequantised where quantised). */
  logits: Float32Array;
}

export function reference(fx: RealFixtures, dtype: RealDtype): Reference {
  const meta = JSON.parse(readFileSync(path.join(fx.reference, 'reference.json'), 'utf8')) as Omit<Reference, 'logits'>;
  const raw = readFileSync(path.join(fx.reference, `reference_${dtype}.bin`));
  return { ...meta, logits: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) };
}
