/**
 * Messages between the engine (main thread) and a device worker. Only token ids and numbers cross: text stays
 * on the main thread, tensors stay in the worker.
 */
import type { Device, EngineErrorCode, EngineOptions, StepEvent } from './types.js';
import type { ModelConfig } from './model-dir.js';
import type { FloatType } from './graph.js';
import type { SamplingParams } from './sampling.js';

export interface WorkItem {
  id: number;
  model: string;
  kind: 'generate' | 'score';
  ids: number[];
  /** generate: answer tokens at most (already clamped to the context). */
  maxNewTokens: number;
  /** generate: how to choose each token (sampling.ts); absent: greedy. */
  sampling?: SamplingParams;
  /** score: the candidates' first token ids. */
  candidateIds?: number[];
  /**
   * score: the answer's continuation when candidate i wins, as token ids starting with that candidate's (null:
   * stop at the score). The row then keeps the KV cache of its scoring prefill, is fed these tokens, and decodes
   * greedily from there up to maxNewTokens: one prefill for a score and its answer.
   */
  continuations?: (number[] | null)[];
  /** generate: report each accepted token as it is chosen ('tokens' messages), for streamed answers. */
  stream?: boolean;
  /** Epoch ms. */
  deadline?: number;
  /** Epoch ms when the engine accepted it, for queueMs. */
  submittedAt: number;
  /**
   * Requests for this device that the engine had tokenized or was tokenizing when it sent this one: on their way.
   * An idle device waits for them (briefly) so that requests sent together share a prefill.
   */
  following?: number;
}

/** What a device worker is told of the engine's options: the same fields, under the same names (types.ts). */
export type WorkerTuning = Pick<EngineOptions, 'maxBatch' | 'maxWaitMs'>
  & Partial<Pick<EngineOptions, 'maxBatchTokens' | 'batchWait' | 'threads' | 'gpuStyleBatching' | 'logitsBudget' | 'prefillKvBudget' | 'announcedWaitMs' | 'fullLogits' | 'fullPresents' | 'splitAttention' | 'groupedAttention' | 'groupAnswersAfterMs'>>
  & {
    /** Admit into a running batch between decode steps (CPU); off means admit at batch boundaries only. */
    continuousAdmission: boolean;
  };

export interface WorkerInit {
  device: Device;
  tuning: WorkerTuning;
}

export type ToWorker =
  /** heads: token prefixes shared by every prompt, prefilled once and reused (prefix-cache.ts). */
  | { type: 'load'; model: string; onnxPath: string; config: ModelConfig; heads?: number[][] }
  | { type: 'unload'; model: string }
  | { type: 'submit'; item: WorkItem }
  | { type: 'cancel'; id: number; code: 'cancelled' | 'timeout' }
  | { type: 'close' };

/** A GuardError or EngineError flattened for postMessage. */
export interface WireError {
  kind: 'guard' | 'engine' | 'other';
  code?: string;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

export type GenerateDone = { kind: 'generate'; tokens: number[]; finish: 'eos' | 'length' };
export type ScoreDone = {
  kind: 'score';
  probabilities: number[];
  /** What was decoded after the winning candidate's continuation (WorkItem.continuations). */
  continued?: { tokens: number[]; finish: 'eos' | 'length' };
};

export type DoneMessage = { type: 'done'; id: number; result: GenerateDone | ScoreDone; queueMs: number; engineMs: number };

export type FromWorker =
  | { type: 'loaded'; model: string; kvDtype: FloatType; logitsDtype: FloatType; ms: number; prefixTokens: number[] }
  | { type: 'load_failed'; model: string; error: WireError }
  | { type: 'admitted'; id: number; at: number }
  /**
   * The tokens a step accepted for its streamed generates (WorkItem.stream), as request id, token, id, token...:
   * one message per step rather than one per row. 'done' still carries each answer's tokens in full.
   */
  | { type: 'tokens'; tokens: number[] }
  | DoneMessage
  /** Answers sent one after another (one step's finished rows), in one message: see worker.ts. */
  | { type: 'answers'; answers: DoneMessage[] }
  | { type: 'failed'; id: number; code: EngineErrorCode; message: string; details?: Record<string, unknown> }
  | { type: 'step'; event: StepEvent }
  /** What a model's batch holds now: KV cache bytes, and GPU tensors not yet disposed (0 once idle, or a leak). */
  | { type: 'kv'; model: string; device: Device; bytes: number; gpuTensors: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
  | { type: 'closed' };
