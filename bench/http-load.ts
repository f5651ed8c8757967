/**
 * The HTTP client of bench:serve's served rows, on a thread of its own: signed POSTs at a given concurrency,
 * timed on that thread. A load generator on the server's own event loop (as these rows first ran) makes the
 * server's turns longer by the client's work — signing, writing, parsing answers, starting the next request —
 * and every answer from Redis (a networked gate state) waits for the end of such a turn: 4-5 ms at the median at
 * concurrency 32, for a Redis that answers in 34 µs. Clients run elsewhere; so does this one, and it costs as
 * little as a load generator does (bench/http-load-worker.ts).
 */
import type { Worker } from 'node:worker_threads';
import { tsWorker } from '../src/infer/spawn-worker.js';
import type { BenchKeys } from './setup.js';

export interface LoadJob {
  port: number;
  path: string;
  /** Request bodies, used in turn. */
  bodies: string[];
  n: number;
  concurrency: number;
}

export class HttpLoad {
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(rate: number): void; reject(err: Error): void }>();

  constructor(keys: Pick<BenchKeys, 'keyId' | 'secret'>) {
    this.worker = tsWorker(new URL('./http-load-worker.ts', import.meta.url), { keyId: keys.keyId, secret: keys.secret });
    this.worker.on('message', (m: { id: number; rate?: number; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.rate!);
    });
    this.worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  /** Requests per second of `n` signed POSTs with `concurrency` in flight, every answer a 200. */
  run(job: LoadJob): Promise<number> {
    const id = ++this.seq;
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...job });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
