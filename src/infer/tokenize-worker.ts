/**
 * A tokenizer worker thread (see tokenize-pool.ts): holds a ChatTokenizer per model and turns rendered prompts
 * into token ids, so a long text costs its own request's time and never the event loop's.
 */
import { parentPort } from 'node:worker_threads';
import { isGuardError } from '../core/errors.js';
import { ChatTokenizer } from './tokenizer.js';
import { EngineError } from './types.js';
import type { FromTokenizer, JobResult, ToTokenizer } from './tokenize-pool.js';
import type { WireError } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('src/infer/tokenize-worker.ts runs as a worker thread (see tokenize-pool.ts)');
const tokenizers = new Map<string, ChatTokenizer>();
const send = (msg: FromTokenizer, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

function wire(err: unknown): WireError {
  if (err instanceof EngineError) return { kind: 'engine', code: err.code, message: err.message, details: err.details };
  if (isGuardError(err)) return { kind: 'guard', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

port.on('message', (msg: ToTokenizer) => {
  if (msg.type === 'model') {
    // The main thread built the same tokenizer from the same files first, so this does not throw.
    tokenizers.set(msg.name, new ChatTokenizer(msg.source));
    return;
  }
  const results: JobResult[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const job of msg.jobs) {
    try {
      const tok = tokenizers.get(job.model);
      if (!tok) throw new EngineError('engine_failed', `the tokenizer worker has no model ${job.model}`);
      const { ids, candidateIds, continuationIds } = tok.encodePrompt(job.prompt, job.limit, job.candidates, job.continuations);
      const packed = Int32Array.from(ids);
      transfer.push(packed.buffer);
      results.push({ id: job.id, ids: packed, ...(candidateIds ? { candidateIds } : {}), ...(continuationIds ? { continuationIds } : {}) });
    } catch (err) {
      results.push({ id: job.id, error: wire(err) });
    }
  }
  send({ type: 'encoded', results }, transfer);
});
