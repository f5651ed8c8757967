/**
 * The inference engine's contract with the rest of the daemon. The server (src/server) and the tasks
 * (src/tasks) use only this; src/infer implements it with ONNX Runtime sessions in one worker thread per
 * device. The gate never sees any of it.
 */
import type { SamplingRequest } from './generation-config.js';

export type Task = 'moderate' | 'translate';
export type SizeClass = 'small' | 'large';
export type Device = 'cpu' | 'webgpu';
export type DeviceChoice = 'auto' | Device;
/** The weights files serve loads (--dtype): onnx/model.onnx, onnx/model_<dtype>.onnx. */
export const DTYPES = ['fp32', 'fp16', 'q4', 'q4f16', 'int8'] as const;
export type Dtype = (typeof DTYPES)[number];

/** How a translation model expects its instruction: HY-MT1.5's rule, or the template of the target language. */
export type TranslateTemplate = 'hy-mt' | 'by-target';

export interface ModelSpec {
  /** What tiers match (e.g. qwen3guard-gen-0.6b, hy-mt1.5-1.8b). */
  name: string;
  task: Task;
  /** A directory in the Hugging Face ONNX layout. */
  dir: string;
  size: SizeClass;
  /** Picks onnx/model.onnx (fp32) or onnx/model_<dtype>.onnx; default fp32. */
  dtype?: Dtype;
  device?: DeviceChoice;
  translateTemplate?: TranslateTemplate;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type LoadState = 'loading' | 'warming' | 'ready' | 'failed';

export interface ModelInfo {
  name: string;
  task: Task;
  size: SizeClass;
  dtype: Dtype;
  device: Device | null;
  state: LoadState;
  /** Why the model failed to load (state 'failed'). */
  error?: string;
  /** Longest prompt + answer the model accepts (tokens). */
  maxContext: number;
  vocabSize: number;
  /** generation_config.json's max_new_tokens, the default answer length where a request sets none. */
  defaultMaxNewTokens?: number;
  /** Element type of the model's past/present tensors, read from the session metadata. */
  kvDtype?: 'float32' | 'float16';
  translateTemplate?: TranslateTemplate;
  /** Tokens of each shared prompt head whose KV is cached and reused by every prefill that starts with it. */
  prefixTokens?: number[];
  /** KV cache the model's running batch holds now (bytes; 0 when idle). */
  kvCacheBytes?: number;
  /** GPU tensors (WebGPU KV buffers) held now and not yet disposed: 0 when idle. */
  gpuTensorsHeld?: number;
}

export interface GenerateRequest {
  model: string;
  messages: ChatMessage[];
  /** Text appended after the rendered prompt (the assistant's answer so far): a forced prefix. */
  prefix?: string;
  maxNewTokens: number;
  /**
   * Sample with these parameters, the rest from the model's generation_config.json (generation-config.ts).
   * Absent: greedy whatever the model's defaults (moderation).
   */
  sampling?: SamplingRequest;
  /** Aborting stops the request's decode steps at the next step boundary. */
  signal?: AbortSignal;
  /** Absolute epoch ms after which the request fails with 'timeout'. */
  deadline?: number;
  /**
   * Streams the answer: called with each piece of text as its tokens are decoded, before the promise resolves.
   * Pieces never split a character (text-stream.ts); joined, they are GenerateResult.text. `tokens`: the answer's
   * tokens so far (a caller that stops the answer early, at a stop sequence, counts its usage with it).
   */
  onText?: (delta: string, tokens: number) => void;
}

export interface GenerateResult {
  text: string;
  promptTokens: number;
  outputTokens: number;
  /** Why decoding stopped. */
  finish: 'eos' | 'length';
  /** Milliseconds waiting in the queue, and in the engine (prefill + decode). */
  queueMs: number;
  engineMs: number;
}

export interface ScoreRequest {
  model: string;
  messages: ChatMessage[];
  /** The forced answer prefix, e.g. "Safety:". */
  prefix: string;
  /** Continuations whose first tokens are compared, e.g. [" Safe", " Unsafe", " Controversial"]. */
  candidates: string[];
  /**
   * Go on answering after the score: texts[i] (starting with candidates[i]; null: stop there) is appended when
   * candidate i wins, and the answer is decoded greedily from there, up to maxNewTokens, continuing from the
   * scoring prefill's KV cache (one prefill in all). ScoreResult.continued holds that answer, or is absent when
   * the winner does not continue, or when the joint text does not tokenize as a continuation of the prompt (the
   * caller then generates from a prompt of its own).
   */
  continueWith?: { texts: (string | null)[]; maxNewTokens: number };
  signal?: AbortSignal;
  deadline?: number;
}

export interface ScoreResult {
  /** Softmax over the candidates' first tokens only, in the order given. */
  probabilities: number[];
  promptTokens: number;
  queueMs: number;
  engineMs: number;
  /** The answer after the winner's continuation text (ScoreRequest.continueWith); its promptTokens count the
   * continuation's tokens too, as those of a prompt ending with it would. */
  continued?: { text: string; promptTokens: number; outputTokens: number; finish: 'eos' | 'length' };
}

/**
 * What went wrong, by name only: the server chooses the HTTP answer for each (src/server/errors.ts and its
 * catalogue). 'cancelled': the request's signal aborted, or close() cancelled it.
 */
export type EngineErrorCode =
  | 'model_not_found' | 'not_ready' | 'queue_full' | 'input_too_long' | 'timeout' | 'cancelled' | 'ambiguous_candidates' | 'engine_failed';

export class EngineError extends Error {
  constructor(readonly code: EngineErrorCode, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'EngineError';
  }
}

/** What the engine reports for metrics, once per executed batch step. */
export interface StepEvent {
  model: string;
  device: Device;
  kind: 'prefill' | 'decode' | 'score';
  batchSize: number;
  tokens: number;
  ms: number;
  /** Prompt tokens a prefill took from the prefix cache instead of computing them (not counted in tokens). */
  reusedTokens?: number;
}

/** When a forming batch waits for more requests: 'busy' (only behind a busy device) or 'always' (an idle one too). */
export type BatchWait = 'busy' | 'always';

/**
 * The serve settings the engine reads, named as `guardctl serve` names them (--max-batch -> maxBatch, see
 * docs/serve.md#settings): the daemon hands its validated settings over as they are.
 */
export interface EngineSettings {
  /** Most sequences decoded together. */
  maxBatch: number;
  /** How long a new batch forming behind a busy device waits for more requests (an idle device starts at once). */
  maxWaitMs: number;
  /** Whether an idle device waits maxWaitMs too (default 'busy': it starts at once). */
  batchWait: BatchWait;
  /** Padded tokens (rows x longest prompt) one prefill may process; default 16384, as text-embeddings-inference. */
  maxBatchTokens: number;
  /** Prefill the tokens every prompt of a model starts with once, and reuse their KV (default true). */
  prefixCache: boolean;
  /** Requests waiting (not yet admitted) per device, beyond which new ones get 'queue_full'. */
  maxQueue: number;
  /** Prompts longer than this (tokens) get 'input_too_long'. */
  maxInputTokens: number;
  /** ONNX Runtime intra-op threads for the CPU worker (default: ONNX Runtime's, one per core). */
  threads: number;
}

type RequiredEngineSettings = 'maxBatch' | 'maxWaitMs' | 'maxQueue' | 'maxInputTokens';

/** createEngine's options: the settings (some optional for tests), hooks, and knobs for tests and benchmarks. */
export interface EngineOptions extends Pick<EngineSettings, RequiredEngineSettings>, Partial<Omit<EngineSettings, RequiredEngineSettings>> {
  onStep?: (event: StepEvent) => void;
  /** Diagnostics (device choice, warm-up times); never request text. */
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /** How long close() lets admitted requests finish (default 10 s; the daemon's drain timeout comes first). */
  closeGraceMs?: number;
  /** Admit requests into a running CPU batch between decode steps (default true; WebGPU never does). */
  continuousAdmission?: boolean;
  /** Logits elements one prefill run may produce before it is split into sequence chunks. */
  logitsBudget?: number;
  /** KV bytes one CPU prefill run may produce before a batch is prefilled in row groups (runner.ts). */
  prefillKvBudget?: number;
  /** Serve the graph's logits for every position, as exported (last-logits.ts is skipped): benchmarks' baseline. */
  fullLogits?: boolean;
  /** CPU: fetch the whole presents every step instead of their new positions (present-delta.ts): benchmarks' baseline. */
  fullPresents?: boolean;
  /** CPU: grouped-query attention reads the shared cache instead of repeat_kv's copies (grouped-attention.ts).
   * Default true; false is the benchmarks' baseline. */
  groupedAttention?: boolean;
  /** CPU: attend over past and new positions without concatenating them (split-attention.ts). Default: where
   * it pays (splitPays); false is the benchmarks' baseline, true lets tests run it on the small models. */
  splitAttention?: boolean;
  /** Batch on CPU the way WebGPU batches run (no admission while decoding, finished rows ride along), so
   * tests exercise that path without a GPU. */
  gpuStyleBatching?: boolean;
  /** Steps at least this long (default 50 ms) send the answers they finish to the main thread in one message
   * (worker.ts); tests set 0 to group them on the demo models. */
  groupAnswersAfterMs?: number;
  /** How long an idle device waits for requests announced behind the first (default 5 ms); tests only. */
  announcedWaitMs?: number;
  /** Tokens generated by the warm-up (default 4). */
  warmupTokens?: number;
  /** Threads that tokenize prompts (default 2); 0 tokenizes on the calling thread, as a benchmark's baseline only:
   * a long text then stalls the event loop. */
  tokenizeThreads?: number;
}

export interface Engine {
  /** Loads and warms every model; resolves when all are ready or failed (see models()). */
  start(): Promise<void>;
  models(): ModelInfo[];
  generate(request: GenerateRequest): Promise<GenerateResult>;
  score(request: ScoreRequest): Promise<ScoreResult>;
  /** Requests waiting and in flight, per device, for /metrics and /readyz. */
  load(): Array<{ device: Device; queued: number; active: number }>;
  /** Stops admitting, lets in-flight requests finish (or be cancelled), and ends the workers. */
  close(): Promise<void>;
}
