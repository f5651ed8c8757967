/**
 * The device worker's scheduler: one loop per device, so exactly one session.run at a time on it (concurrent
 * runs on one WebGPU device crash, onnxruntime#32561, and on CPU they would only fight over the same cores).
 *
 * Each turn serves one model, round robin: a score batch if score requests wait, admission of waiting generate
 * requests, then one decode step of its running batch (model-batch.ts does the work).
 * - A new batch forms when the model is idle: the first request waits up to maxWaitMs for others (up to
 *   maxBatch), then all are prefilled together, left-padded.
 * - While a batch decodes, waiting requests join it at the next step boundary (continuous admission, CPU) or
 *   when it ends (WebGPU, or continuousAdmission off).
 * - A busy model never waits for a batch to fill: its decode steps give later requests time to arrive anyway.
 */
import type { FromWorker, WorkItem, WorkerTuning } from './protocol.js';
import type { Runner } from './runner.js';
import { ModelBatch } from './model-batch.js';

interface Waiting {
  item: WorkItem;
  /** performance.now() at arrival in the worker, for maxWaitMs. */
  arrived: number;
}

interface Slot {
  batch: ModelBatch;
  queue: Waiting[];
}

type Task = () => Promise<void>;

export class Scheduler {
  private readonly slots = new Map<string, Slot>();
  /** Requests taken from a queue and not yet answered. */
  private readonly inflight = new Set<number>();
  /** Cancellations of in-flight requests, applied at the next step boundary. */
  private readonly cancels = new Map<number, 'cancelled' | 'timeout'>();
  private cursor = 0;
  private pumping = false;
  private closing = false;
  private wake: (() => void) | undefined;
  /** The task in progress: sessions are released only after it returns (its run may already be scheduled). */
  private current: Promise<void> | undefined;
  private readonly send: (msg: FromWorker) => void;

  constructor(
    private readonly tuning: WorkerTuning,
    send: (msg: FromWorker) => void,
  ) {
    this.send = (msg) => {
      if (msg.type === 'done' || msg.type === 'failed') {
        this.inflight.delete(msg.id);
        this.cancels.delete(msg.id);
      }
      send(msg);
    };
  }

  addModel(name: string, runner: Runner, eosIds: readonly number[], padId: number): void {
    const reshapes = !runner.gpu && !this.tuning.gpuStyleBatching;
    this.slots.set(name, { batch: new ModelBatch(name, runner, eosIds, padId, this.send, reshapes), queue: [] });
  }

  /** Drops a model: what it still had is failed with `code`, then its session is released. */
  async removeModel(name: string, code: 'engine_failed' | 'cancelled' = 'engine_failed'): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) return;
    this.slots.delete(name);
    await this.current;
    for (const w of slot.queue) this.send({ type: 'failed', id: w.item.id, code, message: `model ${name} was unloaded` });
    slot.batch.abandon(`model ${name} was unloaded`, code);
    await slot.batch.runner.release();
  }

  submit(item: WorkItem): void {
    const slot = this.slots.get(item.model);
    if (!slot) return this.send({ type: 'failed', id: item.id, code: 'model_not_found', message: `model ${item.model} is not loaded on this device` });
    slot.queue.push({ item, arrived: performance.now() });
    this.kick();
  }

  /** A waiting request leaves its queue now; an in-flight one stops at the next step boundary. */
  cancel(id: number, code: 'cancelled' | 'timeout'): void {
    for (const slot of this.slots.values()) {
      const i = slot.queue.findIndex((w) => w.item.id === id);
      if (i >= 0) {
        slot.queue.splice(i, 1);
        this.send({ type: 'failed', id, code, message: code === 'timeout' ? 'deadline passed while queued' : 'cancelled while queued' });
        return;
      }
    }
    if (this.inflight.has(id)) this.cancels.set(id, code);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.kick();
    for (const name of [...this.slots.keys()]) await this.removeModel(name, 'cancelled');
  }

  private kick(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    if (!this.pumping && !this.closing) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.closing) {
        const next = this.pick();
        if (next === null) return;
        if (typeof next === 'number') {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, next);
            this.wake = () => (clearTimeout(timer), resolve());
          });
          continue;
        }
        this.current = next();
        await this.current;
        this.current = undefined;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The next model turn to run, or how long to wait for a batch to fill, or null when idle. */
  private pick(): Task | number | null {
    const names = [...this.slots.keys()];
    const now = performance.now();
    let wait = Infinity;
    for (let k = 0; k < names.length; k++) {
      const name = names[(this.cursor + k) % names.length]!;
      const plan = this.plan(this.slots.get(name)!, now);
      if (typeof plan === 'function') {
        this.cursor = (this.cursor + k + 1) % names.length;
        return plan;
      }
      wait = Math.min(wait, plan);
    }
    return wait === Infinity ? null : Math.max(1, Math.ceil(wait));
  }

  private plan(slot: Slot, now: number): Task | number {
    this.expireQueued(slot);
    const { maxBatch, maxWaitMs } = this.tuning;
    const { batch } = slot;
    const first = (kind: WorkItem['kind']) => slot.queue.find((w) => w.item.kind === kind);
    const count = (kind: WorkItem['kind']) => slot.queue.reduce((n, w) => n + (w.item.kind === kind ? 1 : 0), 0);
    const ready = (kind: WorkItem['kind']) => count(kind) >= maxBatch || now - first(kind)!.arrived >= maxWaitMs;
    const tasks: Task[] = [];
    let wait = Infinity;
    if (first('score')) {
      if (batch.running || ready('score')) tasks.push(() => batch.score(this.take(slot, 'score', maxBatch)));
      else wait = first('score')!.arrived + maxWaitMs - now;
    }
    if (batch.running) {
      const admits = this.tuning.continuousAdmission && batch.admitsWhileRunning && batch.size < maxBatch;
      if (first('generate') && admits) tasks.push(() => batch.admit(this.take(slot, 'generate', maxBatch - batch.size)));
      tasks.push(() => batch.decode(this.cancels));
    } else if (first('generate')) {
      if (ready('generate')) tasks.push(() => batch.admit(this.take(slot, 'generate', maxBatch)));
      else wait = Math.min(wait, first('generate')!.arrived + maxWaitMs - now);
    }
    if (tasks.length === 0) return wait;
    return async () => {
      try {
        for (const task of tasks) await task();
      } catch (err) {
        // A bug, not a model error (those are answered where they happen): the batch cannot be trusted.
        this.send({ type: 'log', level: 'error', message: `scheduler error for ${batch.name}: ${(err as Error).stack ?? String(err)}` });
        batch.abandon(`internal error: ${(err as Error).message}`);
      }
    };
  }

  /** Takes up to max requests of a kind, oldest first, and reports them admitted. */
  private take(slot: Slot, kind: WorkItem['kind'], max: number): WorkItem[] {
    const taken: WorkItem[] = [];
    slot.queue = slot.queue.filter((w) => {
      if (w.item.kind !== kind || taken.length >= max) return true;
      taken.push(w.item);
      return false;
    });
    const at = Date.now();
    for (const item of taken) {
      this.inflight.add(item.id);
      this.send({ type: 'admitted', id: item.id, at });
    }
    return taken;
  }

  private expireQueued(slot: Slot): void {
    const now = Date.now();
    slot.queue = slot.queue.filter((w) => {
      if (w.item.deadline === undefined || now < w.item.deadline) return true;
      this.send({ type: 'failed', id: w.item.id, code: 'timeout', message: 'deadline passed while queued' });
      return false;
    });
  }
}
