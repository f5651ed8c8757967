/**
 * The in-memory rewrites a decoder graph gets before its session is created, in order, and what each said: the
 * last position's logits only (last-logits.ts); on CPU, grouped-query attention reading the shared cache
 * (grouped-attention.ts), and each run's new KV positions handed out on their own, by attention that reads the
 * past and the new positions apart where that pays (split-attention.ts), else as slices of the presents
 * (present-delta.ts). The device worker serves what this returns; bench:real loads the same graph for ONNX
 * Runtime alone, so both sides of its ratios run one graph.
 */
import { regroupAttention } from './grouped-attention.js';
import { lastPositionLogits } from './last-logits.js';
import type { ModelConfig } from './model-dir.js';
import { addPresentDeltas } from './present-delta.js';
import { splitAttention, splitPays } from './split-attention.js';
import type { Device, EngineOptions } from './types.js';

export type RewriteChoices = { device: Device } & Pick<EngineOptions, 'fullLogits' | 'fullPresents' | 'groupedAttention' | 'splitAttention'>;

export interface Rewritten {
  model: Uint8Array;
  /** Which rewrites applied; `deltas`: the runner fetches new positions (split or present-delta). */
  applied: { lastLogits: boolean; grouped: boolean; split: boolean; deltas: boolean };
  /** What each rewrite tried did, or why the graph stays as exported (present-delta says nothing). */
  notes: string[];
}

/** A graph rewrite whose failure (a file it cannot parse) is one more reason to serve the graph as it is. */
function attempt<R extends { rewritten: boolean }>(rewrite: (model: Uint8Array) => R, model: Uint8Array): R | { rewritten: false; reason: string } {
  try {
    return rewrite(model);
  } catch (err) {
    return { rewritten: false, reason: (err as Error).message };
  }
}

export function rewriteGraph(model: Uint8Array, config: ModelConfig, choices: RewriteChoices): Rewritten {
  const cpu = choices.device === 'cpu';
  const applied = { lastLogits: false, grouped: false, split: false, deltas: false };
  const notes: string[] = [];
  if (!choices.fullLogits) {
    const result = attempt(lastPositionLogits, model);
    if (result.rewritten) {
      notes.push(`logits computed for the last position only (lm_head ${result.lmHead})`);
      ({ model } = result);
      applied.lastLogits = true;
    } else notes.push(`logits computed for every position, as exported (${result.reason})`);
  }
  if (cpu && choices.groupedAttention !== false) {
    const result = attempt((bytes) => regroupAttention(bytes, config), model);
    if (result.rewritten) {
      notes.push(`grouped-query attention reads the shared cache (${result.matmuls} MatMuls; ${result.removed} nodes of repeat_kv and its shape arithmetic removed)`);
      ({ model } = result);
      applied.grouped = true;
    } else notes.push(`attention as exported (${result.reason})`);
  }
  const wantDeltas = cpu && !choices.fullPresents;
  if (wantDeltas && (choices.splitAttention ?? splitPays(config))) {
    const result = attempt(splitAttention, model);
    if (result.rewritten) {
      notes.push(`attention reads the past and the new positions apart (${result.layers} layers; no cache copy per step)`);
      ({ model } = result);
      applied.split = applied.deltas = true;
    } else notes.push(`attention over the concatenated cache, as exported (${result.reason})`);
  }
  if (wantDeltas && !applied.deltas) {
    const result = addPresentDeltas(model);
    if (result.rewritten) {
      ({ model } = result);
      applied.deltas = true;
    }
  }
  return { model, applied, notes };
}
