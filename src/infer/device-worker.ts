/**
 * The main thread's handle on one device worker: spawns it, keeps the promise of every request sent to it,
 * counts queued and active requests (for 'queue_full' and load()), and turns abort signals and deadlines into
 * immediate rejections plus a cancel message, so the worker drops the request from its queue or stops decoding
 * it at the next step.
 */
import type { Worker } from 'node:worker_threads';
import { GuardError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { EngineError } from './types.js';
import type { Device, EngineErrorCode, StepEvent } from './types.js';
import type { DoneMessage, FromWorker, GenerateDone, ScoreDone, ToWorker, WireError, WorkItem, WorkerTuning } from './protocol.js';
import type { ModelConfig } from './model-dir.js';
import type { FloatType } from './graph.js';
import { spawnWorker } from './spawn-worker.js';

export interface Done<R> {
  result: R;
  queueMs: number;
  engineMs: number;
}

interface Pending {
  resolve(done: Done<GenerateDone | ScoreDone>): void;
  reject(err: Error): void;
  admitted: boolean;
  cleanup(): void;
  /** A streamed generate's tokens as the worker accepts them (WorkItem.stream). */
  onTokens?: (tokens: number[]) => void;
}

interface Loading {
  resolve(v: { kvDtype: FloatType; ms: number; prefixTokens: number[] }): void;
  reject(err: Error): void;
}

export interface WorkerHooks {
  onStep?: (event: StepEvent) => void;
  onKv?: (event: Extract<FromWorker, { type: 'kv' }>) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

export function fromWire(err: WireError): Error {
  if (err.kind === 'guard' && err.code) return new GuardError(err.code as ErrorCode, err.message, { hint: err.hint, details: err.details });
  if (err.kind === 'engine' && err.code) return new EngineError(err.code as EngineErrorCode, err.message, err.details);
  return new EngineError('engine_failed', err.message);
}

/** How long a closing worker may take to finish its step and release its sessions before it is terminated. */
const CLOSE_BOUND_MS = 60_000;

export class DeviceWorker {
  queued = 0;
  active = 0;
  private readonly worker: Worker;
  private readonly requests = new Map<number, Pending>();
  private readonly loads = new Map<string, Loading>();
  private dead: Error | undefined;
  private closed: Promise<void> | undefined;
  private onClosed: (() => void) | undefined;

  constructor(
    readonly device: Device,
    tuning: WorkerTuning,
    private readonly hooks: WorkerHooks,
  ) {
    this.worker = spawnWorker('worker', { device, tuning });
    this.worker.on('message', (msg: FromWorker) => this.receive(msg));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) => this.die(new Error(`the ${device} worker exited (code ${code})`)));
  }

  private post(msg: ToWorker): void {
    if (!this.dead) this.worker.postMessage(msg);
  }

  /** heads: token prefixes every prompt shares, prefilled once on load and reused (prefix-cache.ts). */
  loadModel(model: string, onnxPath: string, config: ModelConfig, heads: number[][] = []): Promise<{ kvDtype: FloatType; ms: number; prefixTokens: number[] }> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.loads.set(model, { resolve, reject });
      this.post({ type: 'load', model, onnxPath, config, ...(heads.length > 0 ? { heads } : {}) });
    });
  }

  unloadModel(model: string): void {
    this.post({ type: 'unload', model });
  }

  submit(item: WorkItem, signal?: AbortSignal, onTokens?: (tokens: number[]) => void): Promise<Done<GenerateDone | ScoreDone>> {
    if (this.dead) return Promise.reject(new EngineError('engine_failed', `the ${this.device} worker is gone: ${this.dead.message}`));
    return new Promise((resolve, reject) => {
      const onAbort = () => this.abandon(item.id, 'cancelled', 'the request was cancelled');
      signal?.addEventListener('abort', onAbort, { once: true });
      // setTimeout's limit is about 24.8 days; a deadline further away is checked again by the worker.
      const timer =
        item.deadline === undefined ? undefined : setTimeout(() => this.abandon(item.id, 'timeout', 'the request passed its deadline'), Math.min(2 ** 31 - 1, Math.max(0, item.deadline - Date.now())));
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        if (timer !== undefined) clearTimeout(timer);
      };
      this.requests.set(item.id, { resolve, reject, admitted: false, cleanup, ...(onTokens ? { onTokens } : {}) });
      this.queued++;
      this.post({ type: 'submit', item });
    });
  }

  /** Rejects a request now and tells the worker to drop it (from its queue, or from its batch at the next step). */
  abandon(id: number, code: 'cancelled' | 'timeout', message: string): void {
    const entry = this.settle(id);
    if (!entry) return;
    entry.reject(new EngineError(code, message));
    this.post({ type: 'cancel', id, code });
  }

  private settle(id: number): Pending | undefined {
    const entry = this.requests.get(id);
    if (!entry) return undefined;
    this.requests.delete(id);
    entry.cleanup();
    if (entry.admitted) this.active--;
    else this.queued--;
    return entry;
  }

  private receive(msg: FromWorker): void {
    switch (msg.type) {
      case 'loaded':
        this.loads.get(msg.model)?.resolve({ kvDtype: msg.kvDtype, ms: msg.ms, prefixTokens: msg.prefixTokens });
        this.loads.delete(msg.model);
        break;
      case 'load_failed':
        this.loads.get(msg.model)?.reject(fromWire(msg.error));
        this.loads.delete(msg.model);
        break;
      case 'admitted': {
        const entry = this.requests.get(msg.id);
        if (entry && !entry.admitted) {
          entry.admitted = true;
          this.queued--;
          this.active++;
        }
        break;
      }
      case 'tokens':
        for (let i = 0; i < msg.tokens.length; i += 2) {
          const id = msg.tokens[i]!;
          try {
            this.requests.get(id)?.onTokens?.([msg.tokens[i + 1]!]);
          } catch (err) {
            // A consumer that cannot take more text (its client is gone) stops the request, not the message loop.
            this.abandon(id, 'cancelled', `the stream's consumer failed: ${(err as Error).message}`);
          }
        }
        break;
      case 'done':
        this.answer(msg);
        break;
      case 'answers':
        for (const a of msg.answers) this.answer(a);
        break;
      case 'failed':
        this.settle(msg.id)?.reject(new EngineError(msg.code, msg.message, msg.details));
        break;
      case 'step':
        try {
          this.hooks.onStep?.(msg.event);
        } catch {
          // A metrics callback must not break decoding.
        }
        break;
      case 'kv':
        this.hooks.onKv?.(msg);
        break;
      case 'log':
        this.hooks.log?.(msg.level, msg.message, msg.fields);
        break;
      case 'closed':
        this.onClosed?.();
        break;
    }
  }

  private answer(msg: DoneMessage): void {
    this.settle(msg.id)?.resolve({ result: msg.result, queueMs: msg.queueMs, engineMs: msg.engineMs });
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    if (!this.closed) this.hooks.log?.('error', `the ${this.device} inference worker stopped: ${err.message}`);
    for (const id of [...this.requests.keys()]) this.settle(id)?.reject(new EngineError('engine_failed', `the ${this.device} worker stopped: ${err.message}`));
    for (const load of this.loads.values()) load.reject(new EngineError('engine_failed', `the ${this.device} worker stopped: ${err.message}`));
    this.loads.clear();
    this.onClosed?.();
  }

  /**
   * Waiting requests are rejected with 'cancelled' at once; admitted ones may finish within graceMs, then are
   * cancelled too. Then the worker releases its sessions and ends.
   */
  close(graceMs: number): Promise<void> {
    this.closed ??= (async () => {
      for (const [id, entry] of [...this.requests]) if (!entry.admitted) this.abandon(id, 'cancelled', 'the engine is closing');
      const until = Date.now() + graceMs;
      while (this.active > 0 && Date.now() < until && !this.dead) await new Promise((r) => setTimeout(r, 10));
      for (const id of [...this.requests.keys()]) this.abandon(id, 'cancelled', 'the engine closed before the request finished');
      if (!this.dead) {
        const ended = new Promise<void>((resolve) => (this.onClosed = resolve));
        this.post({ type: 'close' });
        let timer: NodeJS.Timeout | undefined;
        // The worker answers once its step in flight has returned and its sessions are released. Terminating it
        // before that, while ONNX Runtime is inside a run, aborts the whole process (a Napi::Error thrown during
        // the thread's teardown, seen under load with a 5 s bound): only a worker that is truly stuck is cut off.
        const stuck = await Promise.race([ended.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CLOSE_BOUND_MS)))]);
        clearTimeout(timer);
        if (stuck) this.hooks.log?.('warn', `the ${this.device} inference worker did not close within ${CLOSE_BOUND_MS / 1000} s; terminating it`);
      }
      await this.worker.terminate();
    })();
    return this.closed;
  }
}
