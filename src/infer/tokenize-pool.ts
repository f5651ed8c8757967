/**
 * A few worker threads that tokenize rendered prompts for the engine. Encoding is synchronous and superlinear in
 * the length of a run without word breaks, so on the event loop one long text stalled every other request and
 * /healthz; here it costs only the time of the request that sent it (and of a pool thread).
 *
 * Jobs asked for in the same tick travel together, in one message to one thread, and come back together: requests
 * that reached the engine at once still reach the device worker at once and share a batch (with a job per
 * message they would straggle in one by one, past maxWaitMs on a busy machine). A large group is split over the
 * threads and its results held until all are back; long prompts travel alone, so two of them are tokenized in
 * parallel. Each message goes to the thread with the fewest prompt characters in flight,
 * so short prompts avoid a thread busy with a long one while another is free. A thread that dies fails its jobs
 * ('engine_failed') and is replaced.
 * Idle threads are unref'd: an engine that is never closed does not keep the process alive.
 */
import type { Worker } from 'node:worker_threads';
import { fromWire } from './device-worker.js';
import type { ModelDir } from './model-dir.js';
import type { WireError } from './protocol.js';
import { spawnWorker } from './spawn-worker.js';
import { EngineError } from './types.js';

/** What a tokenizer worker needs to build a model's ChatTokenizer (plain data, cloned once per thread). */
export type TokenizerSource = Pick<ModelDir, 'dir' | 'tokenizerJson' | 'tokenizerConfig' | 'chatTemplate' | 'config'>;

export interface EncodeJob {
  id: number;
  model: string;
  prompt: string;
  limit: number;
  candidates?: string[];
  continuations?: (string | null)[];
}

export type ToTokenizer = { type: 'model'; name: string; source: TokenizerSource } | { type: 'encode'; jobs: EncodeJob[] };

export type JobResult = { id: number; ids: Int32Array; candidateIds?: number[]; continuationIds?: (number[] | null)[] } | { id: number; error: WireError };
export type FromTokenizer = { type: 'encoded'; results: JobResult[] };

/** Prompts longer than this (UTF-16 units) travel alone: they take long enough to deserve a thread. */
const ALONE = 16_384;
/** Groups of more than this many short prompts are split over the threads. */
const GROUP_SPLIT = 8;

export interface Encoded {
  ids: number[];
  candidateIds?: number[];
  /** Token ids after the prompt for each candidate's continuation (null: it does not continue the prompt's tokens). */
  continuationIds?: (number[] | null)[];
}

interface Job {
  bytes: number;
  resolve(v: Encoded): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, Job>;
  bytes: number;
}

export class TokenizePool {
  private readonly threads: Thread[] = [];
  private readonly models = new Map<string, TokenizerSource>();
  private nextId = 1;
  private closed = false;
  /** Short jobs asked for in this tick, sent together at its end. */
  private gathering: Array<EncodeJob & Job> = [];

  constructor(
    private readonly size: number,
    private readonly log: (level: 'error', message: string) => void = () => {},
  ) {}

  /** Threads start with the first model (an engine that loads nothing starts none). */
  addModel(name: string, source: TokenizerSource): void {
    this.models.set(name, source);
    if (this.closed) return;
    while (this.threads.length < this.size) this.threads.push(this.spawn());
    for (const t of this.threads) t.worker.postMessage({ type: 'model', name, source } satisfies ToTokenizer);
  }

  encode(model: string, prompt: string, limit: number, candidates?: readonly string[], continuations?: readonly (string | null)[]): Promise<Encoded> {
    if (this.closed) return Promise.reject(new EngineError('not_ready', 'the engine is shutting down'));
    return new Promise((resolve, reject) => {
      const job = {
        id: this.nextId++, model, prompt, limit,
        ...(candidates ? { candidates: [...candidates] } : {}),
        ...(continuations ? { continuations: [...continuations] } : {}),
        bytes: prompt.length, resolve, reject,
      };
      if (prompt.length > ALONE) return this.dispatch([job]);
      if (this.gathering.push(job) === 1) {
        queueMicrotask(() => {
          const jobs = this.gathering;
          this.gathering = [];
          this.dispatchGroup(jobs);
        });
      }
    });
  }

  /**
   * A large group is split over the threads, and its results are held until the whole group is back, so that it
   * still reaches the device worker together.
   */
  private dispatchGroup(jobs: Array<EncodeJob & Job>): void {
    const chunks = Math.min(this.threads.length, Math.ceil(jobs.length / GROUP_SPLIT));
    if (chunks <= 1) return this.dispatch(jobs);
    let left = jobs.length;
    const held: Array<() => void> = [];
    const hold = (settle: () => void) => {
      held.push(settle);
      if (--left === 0) for (const f of held) f();
    };
    const holding = jobs.map((j) => ({ ...j, resolve: (v: Encoded) => hold(() => j.resolve(v)), reject: (e: Error) => hold(() => j.reject(e)) }));
    const size = Math.ceil(jobs.length / chunks);
    for (let i = 0; i < holding.length; i += size) this.dispatch(holding.slice(i, i + size));
  }

  private dispatch(jobs: Array<EncodeJob & Job>): void {
    if (this.closed) {
      for (const job of jobs) job.reject(new EngineError('cancelled', 'the engine is closing'));
      return;
    }
    // String length stands in for bytes: enough to tell a long prompt from a short one.
    const thread = this.threads.reduce((a, b) => (b.bytes < a.bytes || (b.bytes === a.bytes && b.jobs.size < a.jobs.size) ? b : a));
    if (thread.jobs.size === 0) thread.worker.ref();
    for (const { id, bytes, resolve, reject } of jobs) {
      thread.jobs.set(id, { bytes, resolve, reject });
      thread.bytes += bytes;
    }
    const msg: ToTokenizer = { type: 'encode', jobs: jobs.map(({ id, model, prompt, limit, candidates, continuations }) => ({ id, model, prompt, limit, ...(candidates ? { candidates } : {}), ...(continuations ? { continuations } : {}) })) };
    thread.worker.postMessage(msg);
  }

  private take(thread: Thread, id: number): Job | undefined {
    const job = thread.jobs.get(id);
    if (!job) return undefined;
    thread.jobs.delete(id);
    thread.bytes -= job.bytes;
    if (thread.jobs.size === 0) thread.worker.unref();
    return job;
  }

  private spawn(): Thread {
    const thread: Thread = { worker: spawnWorker('tokenize-worker', null), jobs: new Map(), bytes: 0 };
    thread.worker.unref();
    thread.worker.on('message', (msg: FromTokenizer) => {
      for (const r of msg.results) {
        const job = this.take(thread, r.id);
        if (!job) continue;
        if ('error' in r) job.reject(fromWire(r.error));
        else job.resolve({ ids: Array.from(r.ids), ...(r.candidateIds ? { candidateIds: r.candidateIds } : {}), ...(r.continuationIds ? { continuationIds: r.continuationIds } : {}) });
      }
    });
    let gone = false;
    const die = (why: string) => {
      if (gone) return;
      gone = true;
      for (const id of [...thread.jobs.keys()]) this.take(thread, id)!.reject(new EngineError('engine_failed', `the tokenizer worker stopped: ${why}`));
      const at = this.threads.indexOf(thread);
      if (at < 0 || this.closed) return;
      this.log('error', `a tokenizer worker stopped (${why}); starting another`);
      const next = this.spawn();
      for (const [name, source] of this.models) next.worker.postMessage({ type: 'model', name, source } satisfies ToTokenizer);
      this.threads[at] = next;
    };
    thread.worker.on('error', (err) => die(err.message));
    thread.worker.on('exit', (code) => die(`exit code ${code}`));
    return thread;
  }

  /** Jobs in flight are rejected ('cancelled'); the threads end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.threads) for (const id of [...t.jobs.keys()]) this.take(t, id)!.reject(new EngineError('cancelled', 'the engine is closing'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
