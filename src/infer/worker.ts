/**
 * A device worker thread: owns the ONNX Runtime sessions of the models placed on its device (cpu or webgpu)
 * and their scheduler. session.run blocks the thread it runs on (onnxruntime-node runs it synchronously in a
 * setImmediate), so it never happens on the main thread, where HTTP must stay responsive.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { isGuardError } from '../core/errors.js';
import { configError } from './model-dir.js';
import { presentName, validateGraph } from './graph.js';
import { rewriteGraph } from './graph-rewrites.js';
import { explainLoadFailure } from './provider-ops.js';
import { Runner } from './runner.js';
import { Scheduler } from './scheduler.js';
import type { DoneMessage, FromWorker, ToWorker, WireError, WorkerInit } from './protocol.js';
import type { ModelConfig } from './model-dir.js';

const port = parentPort;
if (!port) throw new Error('src/infer/worker.ts runs as a worker thread (see engine.ts)');
const init = workerData as WorkerInit;
/**
 * Where steps are slow, answers posted one after another (the rows a step finished) travel as one message. The
 * main thread then resolves them in one turn, so their callers' next requests are admitted together and announced
 * to this device together (engine.ts: approaching), rather than the first of them finding the device idle and
 * starting a batch alone, the rest prefilled behind it and merged into it. On Qwen3-0.6B's shape that lone start
 * and the merge cost about 2 s of an 8 s wave of 8 moderations. Where steps are fast (the demo models, 5-15 ms),
 * the same grouping made the engine 8-10% slower: the device then waits for a whole group's tokenization instead
 * of starting on its first request. So answers are grouped after a step of at least GROUP_ANSWERS_AFTER_MS. Any
 * other message posts the answers before it, so the order of messages is kept.
 */
const GROUP_ANSWERS_AFTER_MS = 50;
let slowSteps = false;
let answers: DoneMessage[] = [];
const flushAnswers = () => {
  if (answers.length === 0) return;
  port.postMessage(answers.length === 1 ? answers[0] : { type: 'answers', answers });
  answers = [];
};
const send = (msg: FromWorker) => {
  if (msg.type === 'done' && slowSteps) {
    if (answers.length === 0) queueMicrotask(flushAnswers);
    answers.push(msg);
    return;
  }
  if (msg.type === 'step') slowSteps = msg.event.ms >= (init.tuning.groupAnswersAfterMs ?? GROUP_ANSWERS_AFTER_MS);
  flushAnswers();
  port.postMessage(msg);
};
const scheduler = new Scheduler(init.tuning, send);

function sessionOptions(config: ModelConfig): ort.InferenceSession.SessionOptions {
  if (init.device === 'webgpu') {
    // KV stays on the GPU between steps; logits come back to the host for the argmax.
    const preferredOutputLocation: Record<string, 'gpu-buffer'> = {};
    for (let i = 0; i < config.layers; i++) for (const kind of ['key', 'value'] as const) preferredOutputLocation[presentName(i, kind)] = 'gpu-buffer';
    return { executionProviders: ['webgpu'], preferredOutputLocation, logSeverityLevel: 3 };
  }
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(init.tuning.threads ? { intraOpNumThreads: init.tuning.threads } : {}),
  };
}

function wire(err: unknown): WireError {
  if (isGuardError(err)) return { kind: 'guard', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details ? { details: err.details } : {}) };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

/**
 * The graph as the session gets it: rewritten in memory (graph-rewrites.ts), or the file as it is. A model loaded
 * from bytes finds its external data through the session's external-initializers folder, the model's own
 * directory.
 */
function modelSource(model: string, onnxPath: string, config: ModelConfig, options: ort.InferenceSession.SessionOptions): { source: string | Uint8Array; options: ort.InferenceSession.SessionOptions; deltas: boolean } {
  // Only the last-logits rewrite applies off the CPU.
  if (init.tuning.fullLogits && init.device !== 'cpu') return { source: onnxPath, options, deltas: false };
  const { model: bytes, applied, notes } = rewriteGraph(readFileSync(onnxPath), config, { device: init.device, ...init.tuning });
  for (const note of notes) send({ type: 'log', level: 'info', message: `model ${model}: ${note}` });
  if (!Object.values(applied).some(Boolean)) return { source: onnxPath, options, deltas: false };
  const extra = { ...(options.extra ?? {}), session: { ...((options.extra?.session as Record<string, unknown>) ?? {}), model_external_initializers_file_folder_path: dirname(onnxPath) } };
  return { source: bytes, options: { ...options, extra }, deltas: applied.deltas };
}

async function load(model: string, onnxPath: string, config: ModelConfig, heads: number[][]): Promise<void> {
  const started = performance.now();
  let session: ort.InferenceSession;
  /** What the session was created from, for the prefix cache's own session on WebGPU. */
  let used: { source: string | Uint8Array; options: ort.InferenceSession.SessionOptions; deltas: boolean };
  try {
    const plain = sessionOptions(config);
    used = modelSource(model, onnxPath, config, plain);
    const { source, options } = used;
    if (typeof source === 'string') session = await ort.InferenceSession.create(source, options);
    else {
      try {
        session = await ort.InferenceSession.create(source, options);
      } catch (err) {
        used = { source: onnxPath, options: plain, deltas: false };
        // The rewrite is an optimisation: a graph it breaks is served as exported, and the log says why.
        send({ type: 'log', level: 'warn', message: `model ${model}: the rewritten graph does not load (${(err as Error).message.split('\n')[0]}); serving the export as it is` });
        session = await ort.InferenceSession.create(onnxPath, plain);
      }
    }
  } catch (err) {
    const { message, hint } = explainLoadFailure(onnxPath, init.device, (err as Error).message);
    throw configError(message, hint);
  }
  try {
    const graph = validateGraph(onnxPath, config, session.inputMetadata, session.outputMetadata);
    const runner = new Runner(session, init.device, graph, config, init.tuning.logitsBudget, used.deltas, init.tuning.prefillKvBudget);
    await cacheHeads(model, runner, heads, () => {
      // Same graph and provider, presents returned to host memory: onnxruntime-node 1.30 cannot read a GPU
      // buffer back (getData() aborts the process), and output locations are fixed per session.
      const { preferredOutputLocation: _, ...hostOutputs } = used.options;
      return ort.InferenceSession.create(used.source as Uint8Array, hostOutputs).then((s) => new Runner(s, init.device, graph, config, init.tuning.logitsBudget));
    });
    scheduler.addModel(model, runner, config.eosIds, config.padId);
    send({ type: 'loaded', model, kvDtype: graph.kvDtype, logitsDtype: graph.logitsDtype, ms: Math.round(performance.now() - started), prefixTokens: runner.prefixes.lengths });
  } catch (err) {
    await session.release();
    throw err;
  }
}

/**
 * The heads' KV, computed on the model's device: on the CPU by the serving session, on WebGPU by a second session
 * that returns its presents to host memory, released once they are read. The prefix cache is an optimisation: a
 * head that fails to prefill leaves the model serving without it.
 */
async function cacheHeads(model: string, runner: Runner, heads: number[][], hostSession: () => Promise<Runner>): Promise<void> {
  if (heads.length === 0) return;
  try {
    const from = runner.gpu ? await hostSession() : runner;
    try {
      for (const head of await from.prefillHeads(heads)) runner.prefixes.add(head);
    } finally {
      if (from !== runner) await from.release();
    }
    send({ type: 'log', level: 'info', message: `model ${model}: prefix cache holds heads of ${runner.prefixes.lengths.join(' and ')} tokens (${runner.prefixes.bytes} bytes of KV)` });
  } catch (err) {
    send({ type: 'log', level: 'warn', message: `model ${model}: the shared prompt head could not be cached (${(err as Error).message.split('\n')[0]}); every prompt is prefilled in full` });
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'load':
      load(msg.model, msg.onnxPath, msg.config, msg.heads ?? []).catch((err: unknown) => send({ type: 'load_failed', model: msg.model, error: wire(err) }));
      break;
    case 'unload':
      void scheduler.removeModel(msg.model);
      break;
    case 'submit':
      scheduler.submit(msg.item);
      break;
    case 'cancel':
      scheduler.cancel(msg.id, msg.code);
      break;
    case 'close':
      void scheduler.close().finally(() => {
        send({ type: 'closed' });
        port.close();
      });
      break;
  }
});
