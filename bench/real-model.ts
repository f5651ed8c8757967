/**
 * The Qwen3-0.6B-shaped model bench:real measures: the real-format fixture builder (scripts/fixtures) at real
 * widths (28 layers, hidden 1024, 16 heads, 8 KV heads of 128, intermediate 3072, vocab 151936), random weights,
 * fp32 and q4, the real Qwen3 tokenizer and Qwen3Guard-Gen's official template. Built once (75 s and a 9.6 GB peak
 * here, while numpy and onnx hold the weights) into ~/.cache/guardctl/bench-real/<hash of the builder's inputs>,
 * outside the repository: the fp32 weights alone are 2.4 GB.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: a plain .mjs script without types
import { build, findPython, fixtureHash } from '../scripts/fixtures/build.mjs';

export const BENCH_DTYPES = ['fp32', 'q4'] as const;

/** How the model's attention is written (the builder's --attention): GUARDCTL_BENCH_ATTENTION=repeat_kv for a
 * torch export's repeat_kv, the default the builder's grouped heads. */
export const BENCH_ATTENTION = process.env.GUARDCTL_BENCH_ATTENTION === 'repeat_kv' ? 'repeat_kv' : 'grouped';

export function benchModelDir(log: (line: string) => void): string {
  const cache = process.env.GUARDCTL_BENCH_CACHE ?? path.join(os.homedir(), '.cache/guardctl/bench-real');
  const hash = (fixtureHash as () => string)();
  const root = path.join(cache, BENCH_ATTENTION === 'grouped' ? hash : `${hash}-repeat-kv`);
  const dir = path.join(root, 'qwen3guard-gen');
  if (existsSync(dir)) return dir;
  const python = (findPython as () => string | undefined)();
  if (!python) throw new Error('bench:real builds its model with python3-onnx and python3-numpy: install them (Debian), or set GUARDCTL_FIXTURE_PYTHON');
  mkdirSync(cache, { recursive: true });
  log(`building the Qwen3-0.6B-shaped model (fp32 + q4, random weights, ${BENCH_ATTENTION} attention) into ${root}: a few minutes, once`);
  const started = performance.now();
  (build as (root: string, python: string, args: string[], names: string[]) => void)(root, python, ['--shape', 'qwen3-0.6b', '--dtypes', BENCH_DTYPES.join(','), '--no-reference', '--attention', BENCH_ATTENTION], ['qwen3guard-gen']);
  log(`built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  // Builds from earlier builder versions are 3.5 GB each and never used again.
  for (const old of readdirSync(cache)) if (!old.startsWith(hash)) rmSync(path.join(cache, old), { recursive: true, force: true });
  return dir;
}
