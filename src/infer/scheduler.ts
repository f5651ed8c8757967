/**
 * The device worker's scheduler: one loop per device, so exactly one session.run at a time on it (concurrent
 * runs on one WebGPU device crash, onnxruntime#32561, and on CPU they would only fight over the same cores).
 *
 * What runs next is decided by batch-plan.ts (a pure function over the queues and batches: idle devices start at
 * once, forming batches wait up to maxWaitMs behind a busy one, prefills stay within maxBatch and maxBatchTokens);
 * this class keeps the queues, runs the chosen turn on the model's ModelBatch (model-batch.ts does the work),
 * sleeps when told to wait, and routes cancellations to the batch that holds the request.
 */
import type { FromWorker, WorkItem, WorkerTuning } from './protocol.js';
import type { Runner } from './runner.js';
import { ModelBatch, usesKv } from './model-batch.js';
import { nextTurn } from './batch-plan.js';
import type { ModelView, PlanLimits, Step } from './batch-plan.js';

interface Waiting {
  item: WorkItem;
  /** performance.now() at arrival in the worker, for maxWaitMs. */
  arrived: number;
}

interface Slot {
  batch: ModelBatch;
  queue: Waiting[];
}

/** Passes over the inbox an idle device makes while each one brings more requests (kick()). */
const SETTLE_PASSES = 8;
/** How long an idle device waits for requests announced as on their way (WorkItem.following). */
const ANNOUNCED_WAIT_MS = 5;

/** Padded tokens one prefill may process when the tuning names no budget: text-embeddings-inference's default. */
export const DEFAULT_MAX_BATCH_TOKENS = 16_384;

export class Scheduler {
  private readonly slots = new Map<string, Slot>();
  /** Requests taken from a queue and not yet answered, and the model whose batch holds them. */
  private readonly inflight = new Map<number, string>();
  private cursor = 0;
  private pumping = false;
  /** Requests submitted so far: kick() reads the inbox again while this grows. */
  private arrivals = 0;
  /** Requests the last submission said were on their way behind it (WorkItem.following). */
  private announced = 0;
  private closing = false;
  private wake: (() => void) | undefined;
  /** The task in progress: sessions are released only after it returns (its run may already be scheduled). */
  private current: Promise<void> | undefined;
  private readonly send: (msg: FromWorker) => void;
  private readonly limits: PlanLimits;

  constructor(
    private readonly tuning: WorkerTuning,
    send: (msg: FromWorker) => void,
  ) {
    this.send = (msg) => {
      if (msg.type === 'done' || msg.type === 'failed') this.inflight.delete(msg.id);
      send(msg);
    };
    this.limits = {
      maxBatch: tuning.maxBatch,
      maxWaitMs: tuning.maxWaitMs,
      maxBatchTokens: tuning.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS,
      continuousAdmission: tuning.continuousAdmission,
      ...(tuning.batchWait ? { batchWait: tuning.batchWait } : {}),
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
    this.arrivals++;
    this.announced = item.following ?? 0;
    this.kick();
  }

  /** A waiting request leaves its queue now; an in-flight one is handed to its batch, which stops it at the next step boundary. */
  cancel(id: number, code: 'cancelled' | 'timeout'): void {
    for (const slot of this.slots.values()) {
      const i = slot.queue.findIndex((w) => w.item.id === id);
      if (i >= 0) {
        slot.queue.splice(i, 1);
        this.send({ type: 'failed', id, code, message: code === 'timeout' ? 'deadline passed while queued' : 'cancelled while queued' });
        return;
      }
    }
    const model = this.inflight.get(id);
    if (model !== undefined) this.slots.get(model)?.batch.cancel(id, code);
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
    if (this.pumping || this.closing) return;
    this.pumping = true;
    // Decided once the messages that came with this one are queued too: requests sent together share a prefill.
    // Requests sent in one burst reach the inbox apart, after the first was read: a few microseconds, or
    // milliseconds when the sending thread is descheduled. Before, 8 moderations sent together were often
    // prefilled 1 + 7, which on a real-size model costs a lone prefill of seconds. So the device waits for the
    // requests the last one announced (WorkItem.following), at most ANNOUNCED_WAIT_MS, and otherwise reads its
    // inbox again while each pass brings more (at most SETTLE_PASSES): no timer for a lone request.
    let seen = this.arrivals;
    let passes = 0;
    const until = performance.now() + (this.tuning.announcedWaitMs ?? ANNOUNCED_WAIT_MS);
    const settle = () => {
      const more = this.arrivals !== seen;
      seen = this.arrivals;
      const left = until - performance.now();
      if (!this.closing && this.announced > 0 && left > 0) this.wakeAfter(left, settle);
      else if (!this.closing && more && ++passes < SETTLE_PASSES) setImmediate(settle);
      else void this.pump();
    };
    setImmediate(settle);
  }

  /**
   * Calls fn after ms, or sooner when a request arrives (kick), once either way. The wake-up ends with its timer: one
   * left behind was called by the next arrival while the device ran, and started a second pump beside the first,
   * which ran a prefill on the batch in the middle of its decode step.
   */
  private wakeAfter(ms: number, fn: () => void): void {
    const wake = () => {
      clearTimeout(timer);
      if (this.wake === wake) this.wake = undefined;
      fn();
    };
    const timer = setTimeout(wake, ms);
    this.wake = wake;
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closing) {
        for (const slot of this.slots.values()) this.expireQueued(slot);
        const names = [...this.slots.keys()];
        const turn = nextTurn(names.map((name) => view(name, this.slots.get(name)!)), this.cursor, this.limits, performance.now());
        if (turn.kind === 'idle') return;
        if (turn.kind === 'wait') {
          await new Promise<void>((resolve) => this.wakeAfter(turn.ms, resolve));
          continue;
        }
        this.cursor = turn.cursor;
        this.current = this.run(this.slots.get(turn.model)!, turn.steps);
        await this.current;
        this.current = undefined;
      }
    } finally {
      this.pumping = false;
    }
  }

  private async run(slot: Slot, steps: Step[]): Promise<void> {
    const { batch } = slot;
    try {
      for (const step of steps) {
        if (step.op === 'score') await batch.score(this.take(slot, step.ids));
        else if (step.op === 'admit') await batch.admit(this.take(slot, step.ids));
        else await batch.decode();
      }
    } catch (err) {
      // A bug, not a model error (those are answered where they happen): the batch cannot be trusted.
      this.send({ type: 'log', level: 'error', message: `scheduler error for ${batch.name}: ${(err as Error).stack ?? String(err)}` });
      batch.abandon(`internal error: ${(err as Error).message}`);
    }
  }

  /** Takes the chosen requests from the queue (those still there) and reports them admitted. */
  private take(slot: Slot, ids: readonly number[]): WorkItem[] {
    const wanted = new Set(ids);
    const taken: WorkItem[] = [];
    slot.queue = slot.queue.filter((w) => {
      if (!wanted.has(w.item.id)) return true;
      taken.push(w.item);
      return false;
    });
    const at = Date.now();
    for (const item of taken) {
      this.inflight.set(item.id, item.model);
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

function view(name: string, slot: Slot): ModelView {
  return {
    name,
    queue: slot.queue.map((w) => ({ id: w.item.id, lane: usesKv(w.item) ? 'kv' : 'score', tokens: w.item.ids.length, arrived: w.arrived })),
    running: slot.batch.running,
    size: slot.batch.size,
    reshapes: slot.batch.reshapes,
  };
}
