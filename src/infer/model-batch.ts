/**
 * One model's batched greedy decoding in the device worker: the running batch (rows + KV cache), prefill of new
 * rows, decode steps, score batches, and the answers. The scheduler (scheduler.ts) decides when each runs.
 *
 * Continuous admission (CPU): new rows are prefilled as their own batch, then their KV cache is merged into the
 * running one (kv.ts); finished, cancelled and expired rows leave the KV cache at once, so they cost no more
 * steps. On WebGPU the KV cache stays on the GPU, where rows cannot be merged or dropped without a round trip
 * through host memory: a batch admits rows only when it starts, and finished rows ride along (fed the pad token
 * at a fixed position, never reported again) until the last one finishes.
 *
 * A score that may continue (a moderation that needs its categories, WorkItem.continuations) is a row like a
 * generate: its prefill's last logits give the scores, and when the winning candidate continues, the row keeps
 * its KV cache and is fed the continuation's tokens before it decodes on its own (on the CPU in one run when all
 * the rows of its prefill continue alike, else one token per decode step). Its prompt is prefilled once.
 *
 * Cancellations arrive here (cancel()) and are applied at the next step boundary; this class alone keeps them.
 */
import type { FromWorker, GenerateDone, ScoreDone, WorkItem } from './protocol.js';
import type { Kv, Runner } from './runner.js';
import { argmax, softmaxOver } from './logits.js';
import { TokenSampler } from './sampling.js';
import type { EngineErrorCode } from './types.js';
import { count } from '../core/plural.js';

interface Row {
  item: WorkItem;
  admittedAt: number;
  tokens: number[];
  /** The token to feed at the next decode step. */
  next: number;
  live: boolean;
  /** A finished row that rides along (WebGPU): the position it is fed from then on. */
  heldAt?: number;
  /** Tokens still to feed before the row decodes on its own (a score's continuation). */
  forced: number[];
  /** A score row's softmax over its candidates, once its prefill has run. */
  probabilities?: number[];
  /** Absent: greedy. */
  sampler?: TokenSampler;
}

/** Whether a request is prefilled into the decoding batch (it needs a KV cache) rather than scored alone. */
export function usesKv(item: WorkItem): boolean {
  return item.kind === 'generate' || item.continuations !== undefined;
}

export class ModelBatch {
  private rows: Row[] = [];
  private kv: Kv | undefined;
  private readonly eos: ReadonlySet<number>;
  private reported = { bytes: 0, gpuTensors: 0 };
  /** Cancellations of requests this batch holds (or is prefilling), applied at the next step boundary. */
  private readonly stops = new Map<number, 'cancelled' | 'timeout'>();
  private readonly send: (msg: FromWorker) => void;

  constructor(
    readonly name: string,
    readonly runner: Runner,
    eosIds: readonly number[],
    private readonly padId: number,
    send: (msg: FromWorker) => void,
    /** Whether rows can join and leave a running batch: CPU KV caches only (tests may turn it off there). */
    readonly reshapes = !runner.gpu,
  ) {
    this.eos = new Set(eosIds);
    this.send = (msg) => {
      if (msg.type === 'done' || msg.type === 'failed') this.stops.delete(msg.id);
      send(msg);
    };
  }

  /** Stops an admitted request at the next step boundary (a score batch in progress still answers it). */
  cancel(id: number, code: 'cancelled' | 'timeout'): void {
    this.stops.set(id, code);
  }

  /** Rows in the running batch (dead WebGPU rows included: they still take a slot). */
  get size(): number {
    return this.kv ? this.rows.length : 0;
  }

  get running(): boolean {
    return this.kv !== undefined;
  }

  /** Prefills generate requests (and scores that may continue): a new batch, or rows merged into the running one (CPU). */
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
    // A prefill of moderations only is still their scoring step, whether or not some go on decoding.
    const kind = items.every((i) => i.kind === 'score') ? 'score' : 'prefill';
    for (const run of out.runs) this.step(kind, items.length, run.tokens, run.ms, run.reused);
    let rows = items.map((item): Row => ({
      item, admittedAt, tokens: [], next: this.padId, live: true, forced: [], ...(item.sampling ? { sampler: new TokenSampler(item.sampling, item.ids) } : {}),
    }));
    let kv = out.kv!;
    try {
      this.accept(rows, out.logits);
      if (this.reshapes) ({ rows, kv } = await this.continueTogether(rows, kv));
      if (!rows.some((row) => row.live)) {
        // All answered already (scores that stop there): nothing to keep.
        this.runner.dispose(kv);
      } else {
        // Finished rows riding along leave before a merge, which copies the whole batch anyway.
        if (this.kv) this.settle(true);
        if (this.kv) {
          this.kv = this.runner.merge(this.kv, kv);
          this.rows.push(...rows);
        } else {
          this.kv = kv;
          this.rows = rows;
        }
      }
    } catch (err) {
      // The new rows are in no batch yet (a merge can fail to allocate): answer them here, or nobody will. The
      // running batch is untouched (a merge does not consume its inputs on the CPU).
      for (const row of rows) {
        if (!row.live) continue;
        row.live = false;
        this.fail(row.item, 'engine_failed', `admission failed: ${(err as Error).message}`);
      }
      if (kv !== this.kv) this.runner.dispose(kv);
      return;
    }
    this.settle();
  }

  /**
   * CPU: new rows that were all scored and go on with continuations of one length are fed them in one run, not
   * one step each; rows answered by their score leave first. Otherwise (mixed rows) the forced tokens go one per
   * decode step, as on WebGPU.
   */
  private async continueTogether(rows: Row[], kv: Kv): Promise<{ rows: Row[]; kv: Kv }> {
    const live = rows.flatMap((row, i) => (row.live ? [i] : []));
    const k = live.length > 0 ? rows[live[0]!]!.forced.length : 0;
    if (k === 0 || live.some((i) => rows[i]!.forced.length !== k)) return { rows, kv };
    const kept = live.length < rows.length ? this.runner.select(kv, live) : kv;
    const going = live.map((i) => rows[i]!);
    const ext = await this.runner.extend(kept, going.map((row) => [row.next, ...row.forced]));
    this.step('decode', going.length, going.length * (k + 1), ext.ms);
    for (const row of going) row.forced = [];
    this.accept(going, ext.logits);
    return { rows: going, kv: ext.kv };
  }

  /** One decode step of the running batch; cancellations are applied before and after it. */
  async decode(): Promise<void> {
    try {
      await this.decodeStep();
    } finally {
      this.report();
    }
  }

  private async decodeStep(): Promise<void> {
    this.reap();
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
    this.reap();
  }

  /** One prefill per request (no KV kept), then the softmax over each request's candidate first tokens. */
  async score(items: WorkItem[]): Promise<void> {
    if (items.length === 0) return;
    const admittedAt = Date.now();
    try {
      const out = await this.runner.prefill(items.map((i) => i.ids), false);
      for (const run of out.runs) this.step('score', items.length, run.tokens, run.ms, run.reused);
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

  /**
   * Per live row: the next forced token, or the scores of a score row's prefill (answered now unless its winner
   * continues), or its next token (greedy, or its sampler's); rows that hit EOS or their token budget are
   * answered now. The streamed rows' new tokens go out together, in one message per step.
   */
  private accept(rows: Row[], logits: Float32Array[]): void {
    const streamed: number[] = [];
    rows.forEach((row, r) => {
      if (!row.live) return;
      if (row.forced.length > 0) {
        row.next = row.forced.shift()!;
        return;
      }
      if (row.item.kind === 'score' && row.probabilities === undefined) {
        const probabilities = softmaxOver(logits[r]!, row.item.candidateIds ?? []);
        row.probabilities = probabilities;
        // The first best, as the caller reads the level: ties go to the earlier candidate.
        const continuation = row.item.continuations?.[probabilities.indexOf(Math.max(...probabilities))];
        if (!continuation) {
          row.live = false;
          this.send({ type: 'done', id: row.item.id, result: { kind: 'score', probabilities }, ...timing(row.item, row.admittedAt) });
          return;
        }
        if (continuation.length > 0) {
          row.next = continuation[0]!;
          row.forced = continuation.slice(1);
          return;
        }
      }
      const token = row.sampler ? row.sampler.pick(logits[r]!) : argmax(logits[r]!);
      if (this.eos.has(token)) return this.finish(row, 'eos');
      row.sampler?.record(token);
      row.tokens.push(token);
      row.next = token;
      if (row.tokens.length >= row.item.maxNewTokens) return this.finish(row, 'length');
      // The last token travels with 'done'; the others are reported as they come when the caller streams.
      if (row.item.stream) streamed.push(row.item.id, token);
    });
    if (streamed.length > 0) this.send({ type: 'tokens', tokens: streamed });
  }

  private finish(row: Row, finish: 'eos' | 'length'): void {
    row.live = false;
    const result: GenerateDone | ScoreDone = row.probabilities
      ? { kind: 'score', probabilities: row.probabilities, continued: { tokens: row.tokens, finish } }
      : { kind: 'generate', tokens: row.tokens, finish };
    this.send({ type: 'done', id: row.item.id, result, ...timing(row.item, row.admittedAt) });
  }

  /** Cancelled and expired rows stop here (a step boundary), then the batch is compacted. */
  private reap(): void {
    const now = Date.now();
    for (const row of this.rows) {
      const code = this.stops.get(row.item.id) ?? (row.live && row.item.deadline !== undefined && now >= row.item.deadline ? 'timeout' : undefined);
      if (code === undefined) continue;
      this.stops.delete(row.item.id);
      if (!row.live) continue;
      row.live = false;
      this.fail(row.item, code, `${code === 'timeout' ? 'deadline passed' : 'cancelled'} after ${count(row.tokens.length, 'token')}`);
    }
    this.settle();
  }

  /**
   * Ends a batch without live rows. On the CPU finished rows leave the KV cache once they are a quarter of the
   * batch, or (compact) before new rows join it: dropping rows copies every live row's cache, 2 GB at batch 32
   * after ~300 tokens of a 0.6B model, which costs more than carrying a finished row a few steps. Until then they
   * ride along as on WebGPU, fed padding at a fixed position.
   */
  private settle(compact = false): void {
    if (!this.kv) return;
    const keep = this.rows.flatMap((row, i) => (row.live ? [i] : []));
    if (keep.length === 0) {
      this.runner.dispose(this.kv);
      this.kv = undefined;
      this.rows = [];
    } else if (keep.length < this.rows.length && this.reshapes && (compact || (this.rows.length - keep.length) * 4 >= this.rows.length)) {
      this.kv = this.runner.select(this.kv, keep);
      this.rows = keep.map((i) => this.rows[i]!);
    }
  }

  private step(kind: 'prefill' | 'decode' | 'score', batchSize: number, tokens: number, ms: number, reused?: number): void {
    const event = { model: this.name, device: this.runner.device, kind, batchSize, tokens, ms: Math.round(ms * 100) / 100, ...(reused ? { reusedTokens: reused } : {}) };
    this.send({ type: 'step', event });
  }

  private fail(item: WorkItem, code: EngineErrorCode, message: string): void {
    this.send({ type: 'failed', id: item.id, code, message });
  }
}

function timing(item: WorkItem, admittedAt: number): { queueMs: number; engineMs: number } {
  return { queueMs: Math.max(0, admittedAt - item.submittedAt), engineMs: Date.now() - admittedAt };
}
