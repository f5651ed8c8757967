/**
 * A device worker thread: owns the ONNX Runtime sessions of the models placed on its device (cpu or webgpu)
 * and their scheduler. session.run blocks the thread it runs on (onnxruntime-node runs it synchronously in a
 * setImmediate), so it never happens on the main thread, where HTTP must stay responsive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { isGuardError } from '../core/errors.js';
import { configError } from './model-dir.js';
import { presentName, validateGraph } from './graph.js';
import { explainLoadFailure } from './provider-ops.js';
import { Runner } from './runner.js';
import { Scheduler } from './scheduler.js';
import type { FromWorker, ToWorker, WireError, WorkerInit } from './protocol.js';
import type { ModelConfig } from './model-dir.js';

const port = parentPort;
if (!port) throw new Error('src/infer/worker.ts runs as a worker thread (see engine.ts)');
const init = workerData as WorkerInit;
const send = (msg: FromWorker) => port.postMessage(msg);
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
    ...(init.tuning.intraOpThreads ? { intraOpNumThreads: init.tuning.intraOpThreads } : {}),
  };
}

function wire(err: unknown): WireError {
  if (isGuardError(err)) return { kind: 'guard', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details ? { details: err.details } : {}) };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

async function load(model: string, onnxPath: string, config: ModelConfig): Promise<void> {
  const started = performance.now();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnxPath, sessionOptions(config));
  } catch (err) {
    const { message, hint } = explainLoadFailure(onnxPath, init.device, (err as Error).message);
    throw configError(message, hint);
  }
  try {
    const graph = validateGraph(onnxPath, config, session.inputMetadata, session.outputMetadata);
    scheduler.addModel(model, new Runner(session, init.device, graph, config, init.tuning.logitsBudget), config.eosIds, config.padId);
    send({ type: 'loaded', model, kvDtype: graph.kvDtype, logitsDtype: graph.logitsDtype, ms: Math.round(performance.now() - started) });
  } catch (err) {
    await session.release();
    throw err;
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'load':
      load(msg.model, msg.onnxPath, msg.config).catch((err: unknown) => send({ type: 'load_failed', model: msg.model, error: wire(err) }));
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
