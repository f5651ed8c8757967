/**
 * The scheduler's decisions as one pure function: given what each model of a device has queued and running, which
 * model gets the next turn and what that turn does (a score batch, an admission, a decode step), or how long to
 * wait. No timers, no tensors, no worker: scheduler.ts gathers the views, runs the turn and calls again.
 *
 * - A device that is idle (no model has a running batch) starts a queued request at once: waiting for more would
 *   only add latency, since nothing else is using the device. The batching window (maxWaitMs) applies only while
 *   a batch forms behind a busy device, where it lets a few more requests share the next prefill.
 * - A prefill takes requests oldest first, up to maxBatch and up to maxBatchTokens padded tokens (rows x the
 *   longest prompt, as text-embeddings-inference counts for padded models); the oldest request always goes, so a
 *   prompt longer than the budget is never starved.
 * - Whether a running batch admits new rows is decided here only (admitsWhileRunning).
 */
import type { BatchWait } from './types.js';

export interface QueuedView {
  id: number;
  /** 'kv': prefilled into the decoding batch (generate, or a score that may continue); 'score': a prefill alone. */
  lane: 'kv' | 'score';
  tokens: number;
  /** performance.now() at arrival in the worker. */
  arrived: number;
}

export interface ModelView {
  name: string;
  /** Oldest first. */
  queue: readonly QueuedView[];
  /** A batch is decoding. */
  running: boolean;
  /** Rows of the running batch. */
  size: number;
  /** Rows can join and leave a running batch (CPU KV caches): WebGPU batches admit only when they start. */
  reshapes: boolean;
}

export interface PlanLimits {
  maxBatch: number;
  maxWaitMs: number;
  /** Padded tokens one prefill may process (rows x longest prompt). */
  maxBatchTokens: number;
  /** Admit into a running batch between decode steps where the batch allows it. */
  continuousAdmission: boolean;
  /** 'always': an idle device waits for a full batch or maxWaitMs too (--batch-wait always; tests use it so a
   * batch holds exactly the requests they sent together). Default 'busy': only behind a busy device. */
  batchWait?: BatchWait;
}

export type Step = { op: 'score'; ids: number[] } | { op: 'admit'; ids: number[] } | { op: 'decode' };

export type Turn =
  | { kind: 'run'; model: string; steps: Step[]; cursor: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'idle' };

/** The requests one prefill takes from `lane`, oldest first, within the request count and the token budget. */
export function takeBatch(queue: readonly QueuedView[], lane: QueuedView['lane'], maxRows: number, maxBatchTokens: number): number[] {
  const ids: number[] = [];
  let longest = 0;
  for (const q of queue) {
    if (q.lane !== lane) continue;
    if (ids.length >= maxRows) break;
    const width = Math.max(longest, q.tokens);
    // First come, first served: a request that does not fit ends the batch rather than being overtaken.
    if (ids.length > 0 && width * (ids.length + 1) > maxBatchTokens) break;
    longest = width;
    ids.push(q.id);
  }
  return ids;
}

/** The one place that decides whether a running batch takes new rows now. */
export function admitsWhileRunning(model: ModelView, limits: PlanLimits): boolean {
  return model.running && model.reshapes && limits.continuousAdmission && model.size < limits.maxBatch;
}

/**
 * What one model's turn would do now: its steps, or how long until its forming batch should start anyway
 * (Infinity: nothing to do).
 */
export function planModel(model: ModelView, deviceBusy: boolean, limits: PlanLimits, now: number): Step[] | number {
  const { maxBatch, maxWaitMs, maxBatchTokens } = limits;
  const steps: Step[] = [];
  let wait = Infinity;
  // A batch cannot grow by waiting once it is full in rows or in tokens; nor need it wait on an idle device.
  const startsNow = (lane: QueuedView['lane'], taken: number[], first: QueuedView): boolean => {
    const queued = model.queue.reduce((n, q) => n + (q.lane === lane ? 1 : 0), 0);
    return !deviceBusy || taken.length >= maxBatch || taken.length < queued || now - first.arrived >= maxWaitMs;
  };
  const firstScore = model.queue.find((q) => q.lane === 'score');
  if (firstScore) {
    const ids = takeBatch(model.queue, 'score', maxBatch, maxBatchTokens);
    // A model with a running batch scores at once: its decode steps already give later requests time to arrive.
    if (model.running || startsNow('score', ids, firstScore)) steps.push({ op: 'score', ids });
    else wait = firstScore.arrived + maxWaitMs - now;
  }
  const firstKv = model.queue.find((q) => q.lane === 'kv');
  if (model.running) {
    if (firstKv && admitsWhileRunning(model, limits)) steps.push({ op: 'admit', ids: takeBatch(model.queue, 'kv', maxBatch - model.size, maxBatchTokens) });
    steps.push({ op: 'decode' });
  } else if (firstKv) {
    const ids = takeBatch(model.queue, 'kv', maxBatch, maxBatchTokens);
    if (startsNow('kv', ids, firstKv)) steps.push({ op: 'admit', ids });
    else wait = Math.min(wait, firstKv.arrived + maxWaitMs - now);
  }
  return steps.length > 0 ? steps : wait;
}

/** The next turn on a device: models take turns round robin from `cursor`. */
export function nextTurn(models: readonly ModelView[], cursor: number, limits: PlanLimits, now: number): Turn {
  const deviceBusy = limits.batchWait === 'always' || models.some((m) => m.running);
  let wait = Infinity;
  for (let k = 0; k < models.length; k++) {
    const at = (cursor + k) % models.length;
    const plan = planModel(models[at]!, deviceBusy, limits, now);
    if (typeof plan !== 'number') return { kind: 'run', model: models[at]!.name, steps: plan, cursor: (at + 1) % models.length };
    wait = Math.min(wait, plan);
  }
  return wait === Infinity ? { kind: 'idle' } : { kind: 'wait', ms: Math.max(1, Math.ceil(wait)) };
}
