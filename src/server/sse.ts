import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * A server-sent event stream as a fastify payload, so that the reply's hooks (the gate's commit wait, headers,
 * audit on finish) run as for any answer. Nothing is sent until start(): a route that fails before its first
 * event still answers with a JSON error and its status.
 */
export class SseStream {
  private readonly body = new PassThrough();
  private started = false;

  constructor(private readonly reply: FastifyReply) {}

  get open(): boolean {
    return !this.body.writableEnded && !this.reply.raw.destroyed;
  }

  /** Sends the headers; events written before this are queued behind them. */
  start(): FastifyReply {
    this.started = true;
    // X-Accel-Buffering: nginx passes each event on at once instead of filling its proxy buffer first.
    return this.reply.code(200).headers({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' }).send(this.body);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** One `data:` event; a string is sent as it is (`[DONE]`), anything else as JSON. */
  data(value: unknown): void {
    if (!this.open) return;
    this.body.write(`data: ${typeof value === 'string' ? value : JSON.stringify(value)}\n\n`);
  }

  end(): void {
    if (!this.body.writableEnded) this.body.end();
  }
}
