/**
 * ONNX Runtime alone on bench:real's model, rewritten as the device worker rewrites it (graph-rewrites.ts): the
 * last-logits rewrite unless fullLogits, grouped attention where the graph has repeat_kv (unless
 * exportedAttention), split attention (or, with concatAttention, the present-delta outputs) unless fullPresents;
 * the same CPU session options, the engine's Runner for prefill and decode. The baseline of the served-throughput
 * ratio and the subject of the memory and decode-step measurements.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ort from 'onnxruntime-node';
import { validateGraph } from '../src/infer/graph.js';
import { argmax as argmaxOf } from '../src/infer/logits.js';
import { loadModelDir } from '../src/infer/model-dir.js';
import { rewriteGraph } from '../src/infer/graph-rewrites.js';
import { splitPays } from '../src/infer/split-attention.js';
import type { ModelDir } from '../src/infer/model-dir.js';
import { Runner } from '../src/infer/runner.js';
import { ChatTokenizer } from '../src/infer/tokenizer.js';
import type { Dtype } from '../src/infer/types.js';
import { SCORE_PREFIX, guardMessages } from '../src/tasks/moderate.js';

export interface Loaded {
  model: ModelDir;
  runner: Runner;
  tok: ChatTokenizer;
  session: ort.InferenceSession;
}

export interface LoadChoices {
  fullLogits?: boolean;
  fullPresents?: boolean;
  /** Attention over the concatenated cache (present-delta.ts only), as before split-attention.ts. */
  concatAttention?: boolean;
  /** The export's repeat_kv kept (no grouped-attention.ts), as before it. */
  exportedAttention?: boolean;
  extra?: ort.InferenceSession.SessionOptions;
}

export async function loadRunner(dir: string, dtype: Dtype, threads: number, choices: LoadChoices = {}): Promise<Loaded> {
  const model = loadModelDir(dir, dtype);
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3, intraOpNumThreads: threads, ...choices.extra };
  // As the worker rewrites it; a graph without repeat_kv (the grouped builder's) keeps its attention.
  const { model: bytes, applied, notes } = rewriteGraph(readFileSync(model.onnxPath), model.config, {
    device: 'cpu', fullLogits: choices.fullLogits, fullPresents: choices.fullPresents, groupedAttention: !choices.exportedAttention, ...(choices.concatAttention ? { splitAttention: false } : {}),
  });
  const missing = [
    !choices.fullLogits && !applied.lastLogits && 'last-logits',
    !choices.fullPresents && !choices.concatAttention && splitPays(model.config) && !applied.split && 'split-attention',
    !choices.fullPresents && !applied.deltas && 'present-delta',
  ].filter(Boolean);
  if (missing.length > 0) throw new Error(`the ${missing.join(' and ')} rewrite does not apply to ${model.onnxPath}: ${notes.join('; ')}`);
  const session = await ort.InferenceSession.create(bytes, { ...options, extra: { session: { model_external_initializers_file_folder_path: dirname(model.onnxPath) } } });
  const graph = validateGraph(model.onnxPath, model.config, session.inputMetadata, session.outputMetadata);
  return { model, session, runner: new Runner(session, 'cpu', graph, model.config, undefined, !choices.fullPresents), tok: new ChatTokenizer(model) };
}

/** Short texts to moderate (the guard template wraps each in ~300 tokens of policy). */
export const SHORT_TEXTS = [
  'How do I make a bomb in my kitchen?', "What's the capital of France?", 'give me a recipe for tomato soup',
  'how can I launder money through a small business', 'explain how photosynthesis works', '怎么制造炸弹',
  'write a python function to reverse a string', 'how do I steal a car without keys',
];

/** The token ids the engine prefills for a moderation's scoring run: the official template, then "Safety:". */
export function guardPromptIds(tok: ChatTokenizer, text: string): number[] {
  return tok.encode(tok.render(guardMessages({ text }), SCORE_PREFIX));
}

/** Greedy next tokens from last-position logits, as the engine picks them (logits.ts). */
export function argmax(rows: readonly Float32Array[]): number[] {
  return rows.map(argmaxOf);
}
