/**
 * One model's ONNX Runtime session and the tensors of its decoder contract: prefill (left-padded prompts, in
 * sequence chunks when the logits would be too large) and decode steps over a KvState. It runs in the device
 * worker; the scheduler decides what runs when and guarantees one session.run at a time per device.
 *
 * On CPU the presents come back as JS typed arrays, so batches can be merged and rows dropped (kv.ts). On WebGPU
 * the presents stay on the GPU ('gpu-buffer') and feed the next step directly; the previous step's tensors are
 * disposed as soon as the step that consumed them returns, so GPU memory does not wait for the garbage collector.
 *
 * With shared heads cached (prefix-cache.ts), a batch whose prompts all start with one begins from its KV and
 * prefills the rest: [head][padding][prompt's own tokens] per row, masked accordingly (kv.ts).
 */
import ort from 'onnxruntime-node';
import type { Device } from './types.js';
import type { GraphInfo } from './graph.js';
import type { ModelConfig } from './model-dir.js';
import { commonPadding, concatMasks, concatRows, extendMask, selectMask, selectRows, storedMask } from './kv.js';
import type { KvArray, KvState } from './kv.js';
import { lastPositionLogits } from './logits.js';
import { grownPast, roomFor, writePositions } from './kv-append.js';
import { deltaName } from './present-delta.js';
import { PrefixCache } from './prefix-cache.js';
import type { CachedHead } from './prefix-cache.js';

export type Kv = KvState<ort.Tensor>;

/** One session.run of a prefill: its time and the real (unpadded) tokens it processed. */
export interface PrefillRun {
  ms: number;
  tokens: number;
  /** Tokens taken from the prefix cache instead of being prefilled (on the first run of a prefill). */
  reused?: number;
}

export interface StepOutput {
  /** Last-position logits of each row, float32. */
  logits: Float32Array[];
  ms: number;
}

/** Logits elements one run may produce (float32: 256 MB). Real vocabularies are ~150k wide, so a batch of long
 * prompts is prefilled in sequence chunks instead of materialising [batch, seq, vocab] at once. */
export const DEFAULT_LOGITS_BUDGET = 64 * 1024 * 1024;

/** KV bytes one CPU prefill run may produce (prefill() runs larger batches in row groups): 256 MB. A group of
 * ~300-token prompts on Qwen3-0.6B's shape in fp32 is then 3 rows; the demo models' batches are never split. */
export const DEFAULT_PREFILL_KV_BUDGET = 256 * 1024 * 1024;

export class Runner {
  readonly gpu: boolean;
  /** GPU tensors received from runs and not yet disposed: 0 whenever no batch is running, or they leak. */
  private gpuLive = 0;
  /** CPU with present_delta outputs (present-delta.ts): the names fetched instead of the presents. */
  private readonly deltaNames?: string[];
  /** Shared heads prefilled once (cacheHeads); empty: every prompt is prefilled in full. */
  readonly prefixes = new PrefixCache();

  constructor(
    private readonly session: ort.InferenceSession,
    readonly device: Device,
    private readonly graph: GraphInfo,
    private readonly config: ModelConfig,
    private readonly logitsBudget = DEFAULT_LOGITS_BUDGET,
    presentDeltas = false,
    private readonly prefillKvBudget = DEFAULT_PREFILL_KV_BUDGET,
  ) {
    this.gpu = device === 'webgpu';
    if ((presentDeltas || graph.newPositionsOnly) && !this.gpu) this.deltaNames = graph.presentNames.map(deltaName);
  }

  private kvShape(rows: number, length: number): number[] {
    return [rows, this.config.kvHeads, length, this.config.headDim];
  }

  /**
   * The past of a prefill without a cached head: no positions, or for a split-attention graph one free slot
   * (masked out, zeros), since its past branch must not be empty (split-attention.ts).
   */
  private emptyPast(rows: number): Kv {
    const length = this.graph.newPositionsOnly ? 1 : 0;
    const n = rows * this.config.kvHeads * length * this.config.headDim;
    const make = () => (this.graph.kvDtype === 'float16' ? new Uint16Array(n) : new Float32Array(n));
    const tensors = this.graph.pastNames.map(() => new ort.Tensor(this.graph.kvDtype, make(), this.kvShape(rows, length)));
    return { rows, length, lens: new Array<number>(rows).fill(0), mask: new Uint8Array(rows * length), tensors, ...(length > 0 ? { used: 0 } : {}) };
  }

  /** Runs and returns logits (when asked) and the presents as the next past, disposing the consumed past. */
  private async run(
    ids: BigInt64Array,
    seq: number,
    mask: BigInt64Array,
    positions: BigInt64Array,
    past: Kv,
    lens: number[],
    want: { logits: boolean; kv: boolean; deltaOnly?: boolean },
  ): Promise<{ logits?: Float32Array[]; kv?: Kv; ms: number }> {
    const rows = past.rows;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [rows, seq]),
      attention_mask: new ort.Tensor('int64', mask, [rows, past.length + seq]),
    };
    if (this.graph.hasPositionIds) feeds.position_ids = new ort.Tensor('int64', positions, [rows, seq]);
    this.graph.pastNames.forEach((name, i) => (feeds[name] = past.tensors[i]!));
    // On WebGPU every output is always fetched (and dropped at once when not wanted): onnxruntime-node 1.30 binds
    // each output it has returned before, asked for or not, and then fails the run once its shape differs from
    // the bound one ("The output OrtValue provided ... has shape", or for the logits of a prefill chunk after a
    // decode step "Tensor size mismatch. src:{8,55,151936} dst:{1,1,151936}", seen on an H200).
    const fetchKv = want.kv || this.gpu;
    const fetchLogits = want.logits || this.gpu;
    const kvNames = this.deltaNames ?? this.graph.presentNames;
    const fetches = [...(fetchLogits ? ['logits'] : []), ...(fetchKv ? kvNames : [])];
    const started = performance.now();
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds, fetches);
    } finally {
      this.dispose(past);
    }
    const ms = performance.now() - started;
    for (const name of this.graph.presentNames) if ((out[name] as ort.Tensor | undefined)?.location === 'gpu-buffer') this.gpuLive++;
    const result: { logits?: Float32Array[]; kv?: Kv; ms: number } = { ms };
    if (want.logits) {
      const logits = out.logits as ort.Tensor;
      // [rows, seq, vocab], or [rows, 1, vocab] from a graph that computes the last position only.
      result.logits = lastPositionLogits(logits.data as Float32Array | Uint16Array, rows, logits.dims[1] ?? seq, this.config.vocabSize);
    }
    const presents = fetchKv ? { rows, length: past.length + seq, lens, mask: storedMask(mask), tensors: kvNames.map((n) => out[n] as ort.Tensor) } : undefined;
    // deltaOnly: the caller copies past and new positions where they go (a prefill group into its batch).
    if (presents && this.deltaNames && past.length > 0 && !want.deltaOnly) this.place(past, presents, seq);
    if (want.kv) result.kv = presents;
    else if (presents) this.dispose(presents);
    return result;
  }

  /**
   * Prefills left-padded prompts: attention_mask 0 on pads, position_ids = cumsum(mask) - 1 clipped at 0. When
   * every prompt starts with a cached head, the past starts as the head's KV and only the rest is prefilled.
   * With keepKv false (scoring) only the logits are fetched.
   *
   * On the CPU, rows run in groups whose KV fits prefillKvBudget, each group's KV copied into the batch's own
   * buffers as it arrives. One run of the whole batch holds its KV up to three times over at its end (ONNX
   * Runtime's presents, their new-position slices, the binding's copies) and all its activations: 3.4x the KV
   * of a batch-32 prefill of Qwen3Guard's ~300-token prompts on the 0.6B shape. In groups, the peak is the
   * batch's KV plus one group's. Every group is padded to the batch's width, so the rows line up and no row
   * computes more than it would in one run.
   */
  async prefill(prompts: readonly (readonly number[])[], keepKv: boolean): Promise<StepOutput & { kv?: Kv; runs: PrefillRun[] }> {
    const head = this.prefixes.match(prompts);
    const base = head ? head.ids.length : 0;
    const tails = head ? prompts.map((p) => p.slice(base)) : prompts;
    const width = Math.max(...tails.map((p) => p.length));
    const group = this.gpu ? tails.length : Math.max(1, Math.floor(this.prefillKvBudget / ((base + width) * this.kvBytesPerPosition())));
    if (group >= tails.length) return this.prefillRows(tails, head, width, keepKv, this.chunkOf(tails.length, width));
    // Every group runs the same sequence chunks (those of a full group), so every group's past comes out with
    // the same length and free slots, and the groups stack.
    const chunk = this.chunkOf(group, width);
    const logits: Float32Array[] = [];
    const runs: PrefillRun[] = [];
    let kv: Kv | undefined;
    // One copy of the head for a full group serves every group (a run reads its past and never writes it: the
    // last chunk's new positions come back on their own, and earlier chunks grow into new buffers), rather than
    // a copy in new memory per group.
    const headRows = head ? PrefixCache.repeat(head, group) : undefined;
    for (let at = 0; at < tails.length; at += group) {
      const part = await this.prefillRows(tails.slice(at, at + group), head, width, keepKv, chunk, true, headRows);
      // Copies: a row's logits may be a view of the run's whole [rows, seq, vocab] output.
      logits.push(...part.logits.map((row) => row.slice()));
      runs.push(...part.runs);
      if (part.kv) kv = this.stackRows(kv, part.kv, undefined, at, tails.length);
      else if (part.split) kv = this.stackRows(kv, part.split.past, part.split.added, at, tails.length);
    }
    const ms = runs.reduce((n, r) => n + r.ms, 0);
    return { logits, ms, runs, ...(kv ? { kv } : {}) };
  }

  /** KV bytes one position of one row takes, over every layer's keys and values. */
  private kvBytesPerPosition(): number {
    return this.graph.pastNames.length * this.config.kvHeads * this.config.headDim * (this.graph.kvDtype === 'float16' ? 2 : 4);
  }

  /**
   * Copies a row group's KV into the batch's at row `at`, allocating the batch's (`rows` rows of the group's
   * positions: every group is padded alike) with the first group, so that once copied a group's own arrays are
   * garbage: the batch's KV and one group's are all that is alive at a time. With present deltas the batch's KV
   * gets free slots at once (kv-append.ts): otherwise the first decode step would copy the whole cache again
   * into new memory to make room, which here costs as much as the copy itself several times over (page faults).
   *
   * `added`: the group's last run returned its new positions on their own (deltaOnly), and they go in after the
   * past's positions in use, as place() would have put them into a grown past of the group's own: with a cached
   * head that grown past was 2.3 GB of new memory for 32 moderations on the 0.6B shape, touched once and dropped.
   */
  private stackRows(into: Kv | undefined, past: Kv, added: Kv | undefined, at: number, rows: number): Kv {
    const pastUsed = past.used ?? past.length;
    const seq = added ? added.length - past.length : 0;
    const used = pastUsed + seq;
    if (into && (into.used ?? into.length) !== used) throw new Error(`prefill groups of different pasts (${into.used ?? into.length} and ${used} positions)`);
    // A group's KV that has free slots of its own (a chunked prefill's grown past) keeps their number.
    const length = into ? into.length : this.deltaNames && (added || past.used === undefined) ? used + roomFor(used) : past.length;
    const d = this.config.headDim;
    const heads = this.config.kvHeads;
    const kv: Kv = into ?? {
      rows,
      length,
      lens: new Array<number>(rows).fill(0),
      mask: new Uint8Array(rows * length),
      tensors: past.tensors.map((t) => {
        const like = t.data as KvArray;
        return new ort.Tensor(this.graph.kvDtype, new (like.constructor as new (n: number) => KvArray)(rows * heads * length * d), this.kvShape(rows, length));
      }),
      ...(length > used ? { used } : {}),
    };
    past.tensors.forEach((t, i) => {
      const [old, fresh, dst] = [t.data as KvArray, added?.tensors[i]!.data as KvArray | undefined, kv.tensors[i]!.data as KvArray];
      for (let s = 0; s < past.rows * heads; s++) {
        const to = (at * heads + s) * length * d;
        dst.set(old.subarray(s * past.length * d, (s * past.length + pastUsed) * d), to);
        if (fresh) dst.set(fresh.subarray(s * seq * d, (s + 1) * seq * d), to + pastUsed * d);
      }
    });
    for (let r = 0; r < past.rows; r++) {
      kv.mask.set(past.mask.subarray(r * past.length, r * past.length + pastUsed), (at + r) * length);
      // The run's mask ([rows, past.length + seq]) ends with the new positions' columns, as in place().
      if (added) kv.mask.set(added.mask.subarray((r + 1) * added.length - seq, (r + 1) * added.length), (at + r) * length + pastUsed);
    }
    kv.lens.splice(at, past.rows, ...(added ?? past).lens);
    return kv;
  }

  /** Positions per run of a prefill of `rows` rows: chunks bound the logits of a run; a graph that computes the
   * last position only needs none. */
  private chunkOf(rows: number, width: number): number {
    return this.graph.logitsPositions === 'last' ? width : Math.max(1, Math.floor(this.logitsBudget / (rows * this.config.vocabSize)));
  }

  /** One prefill, in sequence chunks of `chunk` positions, of rows padded to width. */
  private async prefillRows(
    tails: readonly (readonly number[])[], head: CachedHead | undefined, width: number, keepKv: boolean, chunk: number,
    stacked = false, headRows?: KvArray[],
  ): Promise<StepOutput & { kv?: Kv; split?: { past: Kv; added: Kv }; runs: PrefillRun[] }> {
    const rows = tails.length;
    const base = head ? head.ids.length : 0;
    const pads = tails.map((p) => width - p.length);
    // A group's rows are the first rows of a full group's head copy ([rows, heads, base, d], row after row).
    const repeated = head && headRows ? headRows.map((a, i) => a.subarray(0, rows * head.kv[i]!.length) as KvArray) : undefined;
    let past = head ? this.cpuPast(repeated ?? PrefixCache.repeat(head, rows), rows, base) : this.emptyPast(rows);
    // A group of a grouped prefill: the caller stacks the last run's past and new positions into the batch.
    const split = stacked && this.deltaNames !== undefined && keepKv;
    const runs: PrefillRun[] = [];
    for (let from = 0; from < width; from += chunk) {
      const to = Math.min(width, from + chunk);
      const seq = to - from;
      const last = to === width;
      const ids = new BigInt64Array(rows * seq);
      const positions = new BigInt64Array(rows * seq);
      // The past's own mask (the head, then the row's padding and tokens so far, then any free slots), then
      // this chunk's positions: padding or the row's own tokens.
      const span = past.length + seq;
      const mask = extendMask(past.mask, rows, past.length, seq);
      tails.forEach((tail, r) => {
        const pad = pads[r]!;
        for (let j = from; j < to; j++) {
          ids[r * seq + j - from] = BigInt(j < pad ? this.config.padId : tail[j - pad]!);
          positions[r * seq + j - from] = BigInt(base + Math.max(0, j - pad));
        }
        mask.fill(0n, r * span + past.length, r * span + past.length + Math.max(0, Math.min(pad, to) - from));
      });
      const lens = pads.map((pad) => base + Math.max(0, to - pad));
      const deltaOnly = last && split && past.length > 0;
      const out = await this.run(ids, seq, mask, positions, past, lens, { logits: last, kv: !last || keepKv, deltaOnly });
      runs.push({ ms: out.ms, tokens: pads.reduce((n, pad) => n + Math.max(0, to - Math.max(from, pad)), 0), ...(from === 0 && base > 0 ? { reused: rows * base } : {}) });
      if (last) {
        const ms = runs.reduce((n, r) => n + r.ms, 0);
        if (deltaOnly) return { logits: out.logits!, ms, runs, split: { past, added: out.kv! } };
        return { logits: out.logits!, ms, runs, ...(out.kv ? { kv: out.kv } : {}) };
      }
      past = out.kv!;
    }
    throw new Error('prefill of empty prompts');
  }

  /**
   * Prefills each head once and returns its KV in host memory (prefix-cache.ts keeps it for every later prefill
   * that starts with it). Runs before the model serves; the session must return its presents to the host.
   */
  async prefillHeads(heads: readonly (readonly number[])[]): Promise<CachedHead[]> {
    const cached: CachedHead[] = [];
    for (const ids of heads) {
      const { kv } = await this.prefill([ids], true);
      try {
        if (kv!.tensors.some((t) => t.location !== 'cpu')) throw new Error('the session keeps its presents on the device');
        // Chunked prefills leave free slots after the head: the cache keeps its positions only.
        const whole = kv!.used !== undefined && kv!.used < kv!.length ? this.select(kv!, [0]) : kv!;
        cached.push({ ids: [...ids], kv: whole.tensors.map((t) => t.data as KvArray) });
      } finally {
        this.dispose(kv!);
      }
    }
    return cached;
  }

  /** A past of host arrays whose every position is real (a cached head repeated per row). */
  private cpuPast(arrays: KvArray[], rows: number, length: number): Kv {
    return {
      rows,
      length,
      lens: new Array<number>(rows).fill(length),
      mask: new Uint8Array(rows * length).fill(1),
      tensors: arrays.map((a) => new ort.Tensor(this.graph.kvDtype, a, this.kvShape(rows, length))),
    };
  }

  /**
   * One decode step: each row's next token at position lens[r] (or positions[r]); the past grows by one for
   * every row.
   */
  async decode(kv: Kv, tokens: readonly number[], positionsOf: readonly number[] = kv.lens): Promise<StepOutput & { kv: Kv }> {
    const ids = BigInt64Array.from(tokens, (t) => BigInt(t));
    const positions = BigInt64Array.from(positionsOf, (l) => BigInt(l));
    const out = await this.run(ids, 1, extendMask(kv.mask, kv.rows, kv.length, 1), positions, kv, kv.lens.map((l) => l + 1), { logits: true, kv: true });
    return { logits: out.logits!, kv: out.kv!, ms: out.ms };
  }

  /**
   * Feeds every row the same number of given tokens in one run (a forced continuation), after its past: a
   * decode step of several positions. Returns each row's last logits and the grown past; consumes kv.
   */
  async extend(kv: Kv, tokens: readonly (readonly number[])[]): Promise<StepOutput & { kv: Kv }> {
    const seq = tokens[0]!.length;
    if (tokens.some((t) => t.length !== seq)) throw new Error('extend() feeds every row the same number of tokens');
    const ids = BigInt64Array.from(tokens.flat(), (t) => BigInt(t));
    const positions = BigInt64Array.from(kv.lens.flatMap((len) => Array.from({ length: seq }, (_, j) => len + j)), (p) => BigInt(p));
    const out = await this.run(ids, seq, extendMask(kv.mask, kv.rows, kv.length, seq), positions, kv, kv.lens.map((l) => l + seq), { logits: true, kv: true });
    return { logits: out.logits!, kv: out.kv!, ms: out.ms };
  }

  /**
   * Turns presents holding a run's new positions into past + them (kv-append.ts): written into the past's free
   * slots in place when they fit, else into a larger buffer with free slots to spare. So a Kv handed to a run is
   * consumed for good: its buffers now hold the next step. A caller that keeps a Kv for reuse (a shared prefix)
   * runs on a copy of it (PrefixCache.repeat, select() and merge() copy).
   */
  private place(past: Kv, next: Kv, seq: number): void {
    const used = past.used ?? past.length;
    const fits = used + seq <= past.length;
    const length = fits ? past.length : used + seq + roomFor(used + seq);
    const slabs = past.rows * this.config.kvHeads;
    const d = this.config.headDim;
    next.tensors = next.tensors.map((added, i) => {
      const data = fits
        ? writePositions(past.tensors[i]!.data as KvArray, past.length, added.data as KvArray, seq, used, slabs, d)
        : grownPast(past.tensors[i]!.data as KvArray, past.length, used, added.data as KvArray, seq, slabs, d, length);
      return new ort.Tensor(this.graph.kvDtype, data, this.kvShape(past.rows, length));
    });
    // The run's mask ([rows, past.length + seq]) ends with the new positions' columns: they go into the slots.
    const fed = next.mask;
    const mask = new Uint8Array(past.rows * length);
    for (let r = 0; r < past.rows; r++) {
      mask.set(past.mask.subarray(r * past.length, r * past.length + used), r * length);
      const newCols = (r + 1) * (past.length + seq) - seq;
      mask.set(fed.subarray(newCols, newCols + seq), r * length + used);
    }
    Object.assign(next, { length, mask, used: used + seq });
  }

  /** CPU only: rows of a then rows of b in one batch (left-padding the shorter past, free slots left out).
   * Consumes a and b. */
  merge(a: Kv, b: Kv): Kv {
    this.assertCpu('merge');
    let length = Math.max(a.length, b.length);
    const tensors = a.tensors.map((ta, i) => {
      const tb = b.tensors[i]!;
      const joined = concatRows(ta.data as KvArray, a.rows, a.length, tb.data as KvArray, b.rows, b.length, this.config, a.used, b.used);
      length = joined.length;
      return new ort.Tensor(this.graph.kvDtype, joined.data, this.kvShape(a.rows + b.rows, joined.length));
    });
    return { rows: a.rows + b.rows, length, lens: [...a.lens, ...b.lens], mask: concatMasks(a.mask, a.rows, a.length, b.mask, b.rows, b.length, a.used, b.used), tensors };
  }

  /** CPU only: keeps the given rows, cutting positions that are padding for all of them. Consumes kv. */
  select(kv: Kv, rows: readonly number[]): Kv {
    this.assertCpu('select');
    const lens = rows.map((r) => kv.lens[r]!);
    const trim = commonPadding(kv.mask, kv.length, rows);
    const tensors = kv.tensors.map((t) => {
      const picked = selectRows(t.data as KvArray, kv.length, rows, trim, this.config, kv.used);
      return new ort.Tensor(this.graph.kvDtype, picked.data, this.kvShape(rows.length, picked.length));
    });
    const used = kv.used ?? kv.length;
    return { rows: rows.length, length: used - trim, lens, mask: selectMask(kv.mask, kv.length, rows, trim, used), tensors };
  }

  /** Frees a KvState's tensors now (GPU buffers); harmless for CPU tensors. */
  dispose(kv: Kv): void {
    for (const t of kv.tensors) {
      if (t.location !== 'gpu-buffer') continue;
      t.dispose();
      this.gpuLive--;
    }
  }

  get gpuTensors(): number {
    return this.gpuLive;
  }

  /** Bytes a KvState's tensors hold. */
  bytesOf(kv: Kv): number {
    const element = this.graph.kvDtype === 'float16' ? 2 : 4;
    return kv.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1) * element, 0);
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private assertCpu(what: string): void {
    if (this.gpu) throw new Error(`${what} of KV caches is a CPU operation; WebGPU batches admit only at batch boundaries`);
  }
}
