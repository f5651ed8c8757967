/**
 * The Engine (types.ts) on the main thread: model directories and chat templates live here, so prompts are
 * rendered and checked before they queue. A prompt too long in bytes to fit the token limit is refused at once
 * (input-bound.ts); the others are tokenized by a small pool of threads (tokenize-pool.ts), except short ones
 * (INLINE_CHARS), and counted before they queue. ONNX Runtime sessions live in one worker per device (device-worker.ts,
 * worker.ts), which batches and decodes.
 *
 * start() loads every model and warms it up before it reports 'ready', on the device placement.ts chooses (with
 * 'auto', the faster of WebGPU and CPU in a timed warm-up). A model that fails to load is 'failed' with its
 * error; the others still serve.
 *
 * close(): waiting requests are rejected with 'cancelled' at once, admitted ones get closeGraceMs to finish
 * (then are cancelled), and the workers release their sessions and end.
 */
import { GuardError } from '../core/errors.js';
import { placeModel } from './placement.js';
import { DeviceWorker } from './device-worker.js';
import type { Done } from './device-worker.js';
import { loadModelDir } from './model-dir.js';
import { checkOperators } from './provider-ops.js';
import type { ModelDir } from './model-dir.js';
import type { GenerateDone, ScoreDone, WorkItem } from './protocol.js';
import { bytesPerTokenBound } from './input-bound.js';
import { resolveSampling } from './generation-config.js';
import { sharedHeads } from './prefix-cache.js';
import { TextStream } from './text-stream.js';
import { TokenizePool } from './tokenize-pool.js';
import type { Encoded } from './tokenize-pool.js';
import { ChatTokenizer } from './tokenizer.js';
import { EngineError } from './types.js';
import type { Device, Engine, EngineOptions, GenerateRequest, GenerateResult, ModelInfo, ModelSpec, ScoreRequest, ScoreResult } from './types.js';
import { count } from '../core/plural.js';

interface Entry {
  spec: ModelSpec;
  info: ModelInfo;
  dir?: ModelDir;
  tok?: ChatTokenizer;
  /** Most UTF-8 bytes per token (input-bound.ts): a longer prompt is refused before it is tokenized. */
  bytesPerToken?: number;
  /** Length of the rendered template around an empty user message: what a prompt holds beyond it is the text. */
  templateChars?: number;
  worker?: DeviceWorker;
}

export function createEngine(specs: ModelSpec[], options: EngineOptions): Engine {
  const log = options.log ?? (() => {});
  const entries = new Map<string, Entry>();
  for (const spec of specs) {
    if (entries.has(spec.name)) throw new GuardError('GUARD_E_CONFIG', `model ${spec.name} is configured twice`);
    const info: ModelInfo = { name: spec.name, task: spec.task, size: spec.size, dtype: spec.dtype ?? 'fp32', device: null, state: 'loading', maxContext: 0, vocabSize: 0 };
    if (spec.translateTemplate) info.translateTemplate = spec.translateTemplate;
    entries.set(spec.name, { spec, info });
  }
  const workers = new Map<Device, DeviceWorker>();
  const threads = options.tokenizeThreads ?? 2;
  const pool = threads > 0 ? new TokenizePool(threads, log) : undefined;
  let nextId = 1;
  let started: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const workerFor = (device: Device): DeviceWorker => {
    let w = workers.get(device);
    if (!w) {
      w = new DeviceWorker(
        device,
        {
          maxBatch: Math.max(1, options.maxBatch),
          maxWaitMs: Math.max(0, options.maxWaitMs),
          ...(options.maxBatchTokens ? { maxBatchTokens: options.maxBatchTokens } : {}),
          continuousAdmission: device === 'cpu' && options.continuousAdmission !== false,
          ...(options.logitsBudget ? { logitsBudget: options.logitsBudget } : {}),
          ...(options.prefillKvBudget ? { prefillKvBudget: options.prefillKvBudget } : {}),
          ...(options.announcedWaitMs !== undefined ? { announcedWaitMs: options.announcedWaitMs } : {}),
          ...(options.fullLogits ? { fullLogits: true } : {}),
          ...(options.fullPresents ? { fullPresents: true } : {}),
          ...(options.splitAttention !== undefined ? { splitAttention: options.splitAttention } : {}),
          ...(options.groupedAttention !== undefined ? { groupedAttention: options.groupedAttention } : {}),
          ...(options.groupAnswersAfterMs !== undefined ? { groupAnswersAfterMs: options.groupAnswersAfterMs } : {}),
          ...(options.threads ? { threads: options.threads } : {}),
          ...(options.gpuStyleBatching ? { gpuStyleBatching: true } : {}),
          ...(options.batchWait ? { batchWait: options.batchWait } : {}),
        },
        {
          onStep: options.onStep,
          log,
          onKv: (kv) => {
            const info = entries.get(kv.model)?.info;
            if (info?.device !== kv.device) return; // the other device of an auto warm-up, unloaded
            info.kvCacheBytes = kv.bytes;
            info.gpuTensorsHeld = kv.gpuTensors;
          },
        },
      );
      workers.set(device, w);
    }
    return w;
  };

  /** Sends a request to its device; `arrived` ends its place among those on their way (tokenizeAndAdmit). */
  const send = (e: Entry, worker: DeviceWorker, item: Omit<WorkItem, 'id' | 'model' | 'submittedAt'>, signal?: AbortSignal, onTokens?: (tokens: number[]) => void, arrived?: () => void) => {
    arrived?.();
    const following = approaching.get(worker) ?? 0;
    return worker.submit({ ...item, id: nextId++, model: e.spec.name, submittedAt: Date.now(), ...(following > 0 ? { following } : {}) }, signal, onTokens);
  };

  // A prompt whose text beyond the template is this short costs at most about a millisecond to tokenize here, even
  // made of one unbroken CJK run (the worst case measured: 128 characters, 1-2 ms; 512, 7 ms; 1 MB, 5.8 s): cheaper
  // on the event loop than the hop to a tokenizer thread, which cost the served path 5-15% of its throughput.
  const INLINE_CHARS = 128;
  const encode = (e: Entry, prompt: string, limit: number, candidates?: readonly string[], continuations?: readonly (string | null)[]): Promise<Encoded> =>
    pool && prompt.length - e.templateChars! > INLINE_CHARS
      ? pool.encode(e.spec.name, prompt, limit, candidates, continuations)
      : Promise.resolve().then(() => e.tok!.encodePrompt(prompt, limit, candidates, continuations));

  /** One short generate; returns its wall time. */
  const warm = async (e: Entry, worker: DeviceWorker): Promise<number> => {
    const { ids } = await encode(e, e.tok!.render([{ role: 'user', content: 'Hello' }]), Infinity);
    const t0 = performance.now();
    await send(e, worker, { kind: 'generate', ids, maxNewTokens: Math.max(1, options.warmupTokens ?? 4) });
    return performance.now() - t0;
  };

  async function startModel(e: Entry): Promise<void> {
    const { info } = e;
    try {
      e.dir = loadModelDir(e.spec.dir, info.dtype);
      e.tok = new ChatTokenizer(e.dir);
      e.bytesPerToken = bytesPerTokenBound(e.dir.tokenizerJson);
      e.templateChars = e.tok.render([{ role: 'user', content: '' }]).length;
      pool?.addModel(e.spec.name, e.dir);
      info.maxContext = e.dir.config.maxContext;
      info.vocabSize = e.dir.config.vocabSize;
      if (e.dir.config.defaultMaxNewTokens) info.defaultMaxNewTokens = e.dir.config.defaultMaxNewTokens;
      const tok = e.tok;
      const heads = options.prefixCache === false ? [] : sharedHeads((messages) => tok.render(messages), (text) => tok.encode(text));
      const placed = await placeModel(
        e.spec.name,
        e.spec.device ?? 'auto',
        {
          load: async (d) => {
            checkOperators(e.dir!.onnxPath, e.dir!.graph.ops, d);
            const loaded = await workerFor(d).loadModel(e.spec.name, e.dir!.onnxPath, e.dir!.config, heads);
            if (loaded.prefixTokens.length > 0) info.prefixTokens = loaded.prefixTokens;
            return loaded;
          },
          warm: (d) => warm(e, workerFor(d)),
          unload: (d) => workerFor(d).unloadModel(e.spec.name),
          log,
        },
        (kvDtype) => {
          info.kvDtype = kvDtype;
          info.state = 'warming';
        },
      );
      e.worker = workerFor(placed.device);
      info.device = placed.device;
      info.state = 'ready';
      log('info', `model ${e.spec.name} ready on ${placed.device}`, { model: e.spec.name, device: placed.device, dtype: info.dtype, kvDtype: info.kvDtype, warmupMs: placed.warmupMs });
    } catch (err) {
      info.state = 'failed';
      info.device = null;
      // The hint says what to do (another --dtype, --device cpu): operators read it in /api/v1/models and the log.
      const hint = err instanceof GuardError ? err.hint : undefined;
      info.error = hint ? `${(err as Error).message} (${hint})` : (err as Error).message;
      log('error', `model ${e.spec.name} failed to load: ${info.error}`, { model: e.spec.name });
    }
  }

  /** What a model that cannot take requests is doing: "failed to load: <cause>", "is still loading", "is warming up". */
  const notReady = (info: ModelInfo): string =>
    info.state === 'failed' ? `failed to load: ${info.error ?? 'no cause recorded'}` : info.state === 'warming' ? 'is warming up' : 'is still loading';

  function ready(name: string): Entry {
    const e = entries.get(name);
    if (!e) throw new EngineError('model_not_found', `no model named ${name}`, { model: name, available: [...entries.keys()] });
    if (closing) throw new EngineError('not_ready', 'the engine is shutting down', { model: name });
    if (e.info.state !== 'ready') throw new EngineError('not_ready', `model ${name} ${notReady(e.info)}`, { model: name, state: e.info.state });
    return e;
  }

  const tokenLimit = (e: Entry) => Math.min(options.maxInputTokens, e.info.maxContext - 1);
  /**
   * Which limit applied and why, for input_too_long: --max-input-tokens, or the model's context when it is smaller
   * (max_position_embeddings counts prompt and answer, and one position is kept for the answer's first token), so
   * "511" beside a --max-input-tokens of 2048 explains itself.
   */
  const limitWhy = (e: Entry, limit: number): string => (limit < options.maxInputTokens
    ? `the limit is ${limit} tokens: model ${e.spec.name} has ${e.info.maxContext} positions (max_position_embeddings) for prompt and answer, one kept for the answer, fewer than --max-input-tokens ${options.maxInputTokens}`
    : `the limit is ${limit} tokens (--max-input-tokens)`);
  const limitDetails = (e: Entry) => ({ maxInputTokens: options.maxInputTokens, modelContext: e.info.maxContext });
  /**
   * Requests admitted for a device and not yet sent to it (being tokenized, or tokenized and about to be sent),
   * per device worker. They hold a place in its queue (maxQueue, load()), and each sent request tells its device
   * how many follow it (WorkItem.following), so that an idle device waits for them and requests that came
   * together share a prefill.
   */
  const approaching = new Map<DeviceWorker, number>();
  const waiting = (w: DeviceWorker) => w.queued + (approaching.get(w) ?? 0);

  function refuseEarly(req: { signal?: AbortSignal; deadline?: number }): void {
    if (req.signal?.aborted) throw new EngineError('cancelled', 'the request was cancelled before it started');
    if (req.deadline !== undefined && Date.now() >= req.deadline) throw new EngineError('timeout', 'the deadline passed before the request started');
  }

  /**
   * Everything that can be refused before queueing (abort, deadline, queue room, prompt length), in two steps:
   * what needs no tokens, including a prompt too long in bytes to fit the limit (input-bound.ts), before the
   * prompt goes to the tokenizer pool; then the token count. The request holds its place in the queue meanwhile,
   * so maxQueue bounds the work waiting for tokenizers too.
   */
  async function tokenizeAndAdmit(
    e: Entry, prompt: string, req: { signal?: AbortSignal; deadline?: number }, candidates?: readonly string[], continuations?: readonly (string | null)[],
  ): Promise<Encoded & { worker: DeviceWorker; arrived: () => void }> {
    refuseEarly(req);
    const worker = e.worker!;
    if (waiting(worker) >= options.maxQueue) throw new EngineError('queue_full', `${count(waiting(worker), 'request is', 'requests are')} already waiting on ${worker.device}`, { maxQueue: options.maxQueue, device: worker.device });
    const limit = tokenLimit(e);
    const maxBytes = limit * e.bytesPerToken!;
    // UTF-16 length * 3 bounds the UTF-8 length: most prompts skip the count.
    const bytes = prompt.length * 3 > maxBytes ? Buffer.byteLength(prompt) : 0;
    if (bytes > maxBytes) {
      throw new EngineError('input_too_long', `the prompt is ${bytes} bytes, and more than ${maxBytes} bytes cannot fit in ${limit} tokens; ${limitWhy(e, limit)}`, { limit, maxBytes, bytes, ...limitDetails(e) });
    }
    approaching.set(worker, (approaching.get(worker) ?? 0) + 1);
    let left = false;
    // Idempotent: called by send(), and on any failure before it.
    const arrived = () => {
      if (left) return;
      left = true;
      approaching.set(worker, approaching.get(worker)! - 1);
    };
    try {
      const encoded = await encode(e, prompt, limit, candidates, continuations);
      // Waiting requests are cancelled when the engine closes; this one was waiting for its tokens.
      if (closing) throw new EngineError('cancelled', 'the engine is closing');
      refuseEarly(req);
      const { ids } = encoded;
      if (ids.length > limit) throw new EngineError('input_too_long', `the prompt has ${count(ids.length, 'token')}; ${limitWhy(e, limit)}`, { limit, actual: ids.length, ...limitDetails(e) });
      return { ...encoded, worker, arrived };
    } catch (err) {
      arrived();
      throw err;
    }
  }

  return {
    start() {
      started ??= (async () => {
        await Promise.all([...entries.values()].map(startModel));
        // A worker that kept no model (auto chose the other device, or every load failed) is ended now.
        for (const [device, worker] of workers) {
          if ([...entries.values()].some((e) => e.worker === worker)) continue;
          workers.delete(device);
          await worker.close(0);
        }
      })();
      return started;
    },

    models: () => [...entries.values()].map((e) => ({ ...e.info })),

    async generate(req: GenerateRequest): Promise<GenerateResult> {
      const e = ready(req.model);
      if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) throw new EngineError('engine_failed', `maxNewTokens must be a positive integer (got ${req.maxNewTokens})`);
      const { ids, worker, arrived } = await tokenizeAndAdmit(e, e.tok!.render(req.messages, req.prefix ?? ''), req);
      let sampling;
      try {
        sampling = req.sampling && resolveSampling(req.sampling, e.dir!.config.generation, e.info.vocabSize);
      } catch (err) {
        // Refused before it was sent: no longer on its way.
        arrived();
        throw err;
      }
      const maxNewTokens = Math.min(req.maxNewTokens, e.info.maxContext - ids.length);
      const item = {
        kind: 'generate' as const, ids, maxNewTokens, ...(sampling ? { sampling } : {}), ...(req.deadline !== undefined ? { deadline: req.deadline } : {}), ...(req.onText ? { stream: true } : {}),
      };
      const onText = req.onText;
      const stream = onText && new TextStream((t) => e.tok!.decode(t));
      let streamed = 0;
      const emit = (delta: string) => {
        if (delta !== '') onText!(delta, streamed);
      };
      const onTokens = stream && ((t: number[]) => {
        streamed += t.length;
        emit(stream.push(t));
      });
      let done: Done<GenerateDone>;
      try {
        done = (await send(e, worker, item, req.signal, onTokens, arrived)) as Done<GenerateDone>;
      } catch (err) {
        // A caller that stopped the answer itself (a stop sequence) still reports the prompt's length.
        if (err instanceof EngineError) Object.assign(err.details, { promptTokens: ids.length });
        throw err;
      }
      const tokens = done.result.tokens;
      if (stream) {
        // 'done' carries the last token(s), which were not streamed.
        const rest = tokens.slice(streamed);
        streamed = tokens.length;
        emit(stream.push(rest));
        emit(stream.flush());
      }
      return { text: e.tok!.decode(tokens), promptTokens: ids.length, outputTokens: tokens.length, finish: done.result.finish, queueMs: done.queueMs, engineMs: done.engineMs };
    },

    async score(req: ScoreRequest): Promise<ScoreResult> {
      const e = ready(req.model);
      const then = req.continueWith;
      const { ids, candidateIds, continuationIds, worker, arrived } = await tokenizeAndAdmit(e, e.tok!.render(req.messages, req.prefix), req, req.candidates, then?.texts);
      const continuations = continuationIds?.some((c) => c !== null) ? continuationIds : undefined;
      const longest = Math.max(0, ...(continuations ?? []).map((c) => c?.length ?? 0));
      const maxNewTokens = continuations ? Math.max(1, Math.min(then!.maxNewTokens, e.info.maxContext - ids.length - longest)) : 0;
      const item = { kind: 'score' as const, ids, maxNewTokens, candidateIds, ...(continuations ? { continuations } : {}), ...(req.deadline !== undefined ? { deadline: req.deadline } : {}) };
      const done = (await send(e, worker, item, req.signal, undefined, arrived)) as Done<ScoreDone>;
      const { probabilities, continued } = done.result;
      const result: ScoreResult = { probabilities, promptTokens: ids.length, queueMs: done.queueMs, engineMs: done.engineMs };
      if (continued) {
        const fed = continuations![probabilities.indexOf(Math.max(...probabilities))]!.length;
        result.continued = { text: e.tok!.decode(continued.tokens), promptTokens: ids.length + fed, outputTokens: continued.tokens.length, finish: continued.finish };
      }
      return result;
    },

    load: () => [...workers.values()].map((w) => ({ device: w.device, queued: waiting(w), active: w.active })),

    close() {
      closing ??= (async () => {
        await started?.catch(() => {});
        await Promise.all([...workers.values()].map((w) => w.close(options.closeGraceMs ?? 10_000)));
        await pool?.close();
      })();
      return closing;
    },
  };
}
