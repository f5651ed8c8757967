/**
 * One model's batched greedy decoding in the device worker: the running batch (rows + KV cache), prefill of new
 * rows, decode steps, score batches, and the answers. The scheduler (scheduler.ts) decides when each runs.
 *
 * Continuous admission (CPU): new rows are prefilled as their own batch, then their KV cache is merged into the
 * running one (kv.ts); finished, cancelled and expired rows leave the KV cache at once, so they cost no more
 * steps. On WebGPU the KV cache stays on the GPU, where rows cannot be merged or dropped without a round trip
 * through host memory: a batch admits rows only when it starts, and finished rows ride along (fed the pad token
 * at a fixed position, never reported again) until the last one finishes.
 */
import type { FromWorker, WorkItem } from './protocol.js';
import type { Kv, Runner } from './runner.js';
import { argmax, softmaxOver } from './logits.js';
import { TokenSampler } from './sampling.js';
import type { EngineErrorCode } from './types.js';

interface Row {
  item: WorkItem;
  admittedAt: number;
  tokens: number[];
  /** The token to feed at the next decode step. */
  next: number;
  live: boolean;
  /** A finished row that rides along (WebGPU): the position it is fed from then on. */
  heldAt?: number;
  /** Absent: greedy. */
  sampler?: TokenSampler;
}

export class ModelBatch {
  private rows: Row[] = [];
  private kv: Kv | undefined;
  private readonly eos: ReadonlySet<number>;
  private reported = { bytes: 0, gpuTensors: 0 };

  constructor(
    readonly name: string,
    readonly runner: Runner,
    eosIds: readonly number[],
    private readonly padId: number,
    private readonly send: (msg: FromWorker) => void,
    /** Whether rows can join and leave a running batch: CPU KV caches only (tests may turn it off there). */
    private readonly reshapes = !runner.gpu,
  ) {
    this.eos = new Set(eosIds);
  }

  /** Rows in the running batch (dead WebGPU rows included: they still take a slot). */
  get size(): number {
    return this.kv ? this.rows.length : 0;
  }

  get running(): boolean {
    return this.kv !== undefined;
  }

  get admitsWhileRunning(): boolean {
    return this.reshapes;
  }

  /** Prefills generate requests: a new batch, or rows merged into the running one (CPU). */
  async admit(items: WorkItem[]): Promise<void> {
    if (items.length === 0) return;
    try {
      await this.admitRows(items);
    } finally {
      this.report();
    }
  }

  private async admitRows(items: WorkItem[]): Promise<void> {
    const admittedAt = Date.now();
    let out;
    try {
      out = await this.runner.prefill(items.map((i) => i.ids), true);
    } catch (err) {
      for (const item of items) this.fail(item, 'engine_failed', `prefill failed: ${(err as Error).message}`);
      return;
    }
    for (const run of out.runs) this.step('prefill', items.length, run.tokens, run.ms);
    const rows = items.map((item): Row => ({
      item, admittedAt, tokens: [], next: this.padId, live: true, ...(item.sampling ? { sampler: new TokenSampler(item.sampling, item.ids) } : {}),
    }));
    try {
      this.accept(rows, out.logits);
      if (this.kv) {
        this.kv = this.runner.merge(this.kv, out.kv!);
        this.rows.push(...rows);
      } else {
        this.kv = out.kv!;
        this.rows = rows;
      }
    } catch (err) {
      // The new rows are in no batch yet (a merge can fail to allocate): answer them here, or nobody will. The
      // running batch is untouched (a merge does not consume its inputs on the CPU).
      for (const row of rows) {
        if (!row.live) continue;
        row.live = false;
        this.fail(row.item, 'engine_failed', `admission failed: ${(err as Error).message}`);
      }
      if (out.kv && out.kv !== this.kv) this.runner.dispose(out.kv);
      return;
    }
    this.settle();
  }

  /** One decode step of the running batch; cancellations are applied before and after it. */
  async decode(cancels: Map<number, 'cancelled' | 'timeout'>): Promise<void> {
    try {
      await this.decodeStep(cancels);
    } finally {
      this.report();
    }
  }

  private async decodeStep(cancels: Map<number, 'cancelled' | 'timeout'>): Promise<void> {
    this.reap(cancels);
    if (!this.kv) return;
    const live = this.rows.filter((r) => r.live).length;
    try {
      // A finished row that rides along keeps its last position: advancing it could run past the model's
      // context (a long prompt that stopped early, beside a short one that goes on) and fail the whole batch.
      const lens = this.kv.lens;
      const positions = this.rows.map((r, i) => (r.live ? lens[i]! : (r.heldAt ??= lens[i]!)));
      const out = await this.runner.decode(this.kv, this.rows.map((r) => (r.live ? r.next : this.padId)), positions);
      this.kv = out.kv;
      this.step('decode', this.rows.length, live, out.ms);
      this.accept(this.rows, out.logits);
    } catch (err) {
      // The consumed past is gone (the runner disposed it): the whole batch fails.
      this.kv = undefined;
      this.abandon(`decode failed: ${(err as Error).message}`);
      return;
    }
    this.reap(cancels);
  }

  /** One prefill per request (no KV kept), then the softmax over each request's candidate first tokens. */
  async score(items: WorkItem[]): Promise<void> {
    if (items.length === 0) return;
    const admittedAt = Date.now();
    try {
      const out = await this.runner.prefill(items.map((i) => i.ids), false);
      for (const run of out.runs) this.step('score', items.length, run.tokens, run.ms);
      items.forEach((item, r) => {
        const probabilities = softmaxOver(out.logits[r]!, item.candidateIds ?? []);
        this.send({ type: 'done', id: item.id, result: { kind: 'score', probabilities }, ...timing(item, admittedAt) });
      });
    } catch (err) {
      for (const item of items) this.fail(item, 'engine_failed', `scoring failed: ${(err as Error).message}`);
    }
    this.report();
  }

  /** Fails every live row and frees the KV cache (model unloaded, engine closing, or a bug). */
  abandon(message: string, code: EngineErrorCode = 'engine_failed'): void {
    for (const row of this.rows) if (row.live) this.fail(row.item, code, message);
    if (this.kv) this.runner.dispose(this.kv);
    this.kv = undefined;
    this.rows = [];
    this.report();
  }

  /** Tells the engine what the batch holds, when that changed (for metrics, and to catch GPU buffer leaks). */
  private report(): void {
    const now = { bytes: this.kv ? this.runner.bytesOf(this.kv) : 0, gpuTensors: this.runner.gpuTensors };
    if (now.bytes === this.reported.bytes && now.gpuTensors === this.reported.gpuTensors) return;
    this.reported = now;
    this.send({ type: 'kv', model: this.name, device: this.runner.device, ...now });
  }

  /** Each live row's next token (greedy, or its sampler's); rows that hit EOS or their token budget are answered now. */
  private accept(rows: Row[], logits: Float32Array[]): void {
    rows.forEach((row, r) => {
      if (!row.live) return;
      const token = row.sampler ? row.sampler.pick(logits[r]!) : argmax(logits[r]!);
      if (this.eos.has(token)) return this.finish(row, 'eos');
      row.sampler?.record(token);
      row.tokens.push(token);
      row.next = token;
      if (row.tokens.length >= row.item.maxNewTokens) this.finish(row, 'length');
    });
  }

  private finish(row: Row, finish: 'eos' | 'length'): void {
    row.live = false;
    this.send({ type: 'done', id: row.item.id, result: { kind: 'generate', tokens: row.tokens, finish }, ...timing(row.item, row.admittedAt) });
  }

  /** Cancelled and expired rows stop here (a step boundary), then the batch is compacted. */
  private reap(cancels: Map<number, 'cancelled' | 'timeout'>): void {
    const now = Date.now();
    for (const row of this.rows) {
      const code = cancels.get(row.item.id) ?? (row.live && row.item.deadline !== undefined && now >= row.item.deadline ? 'timeout' : undefined);
      if (code === undefined) continue;
      cancels.delete(row.item.id);
      if (!row.live) continue;
      row.live = false;
      this.fail(row.item, code, `${code === 'timeout' ? 'deadline passed' : 'cancelled'} after ${row.tokens.length} tokens`);
    }
    this.settle();
  }

  /** Ends a batch without live rows; on CPU drops finished rows from the KV cache. */
  private settle(): void {
    if (!this.kv) return;
    const keep = this.rows.flatMap((row, i) => (row.live ? [i] : []));
    if (keep.length === 0) {
      this.runner.dispose(this.kv);
      this.kv = undefined;
      this.rows = [];
    } else if (keep.length < this.rows.length && this.reshapes) {
      this.kv = this.runner.select(this.kv, keep);
      this.rows = keep.map((i) => this.rows[i]!);
    }
  }

  private step(kind: 'prefill' | 'decode' | 'score', batchSize: number, tokens: number, ms: number): void {
    this.send({ type: 'step', event: { model: this.name, device: this.runner.device, kind, batchSize, tokens, ms: Math.round(ms * 100) / 100 } });
  }

  private fail(item: WorkItem, code: EngineErrorCode, message: string): void {
    this.send({ type: 'failed', id: item.id, code, message });
  }
}

function timing(item: WorkItem, admittedAt: number): { queueMs: number; engineMs: number } {
  return { queueMs: Math.max(0, admittedAt - item.submittedAt), engineMs: Date.now() - admittedAt };
}
