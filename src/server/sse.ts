/**
 * Server-sent events (text/event-stream) for any route that streams: the headers that keep proxies from buffering
 * or caching the stream, the event framing, and a writer that tolerates a client gone away. Routes decide what the
 * events mean; the translate route and OpenAI-style chunks both write through this.
 */
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ApiError, toApiError } from './errors.js';

/** nginx honours X-Accel-Buffering per response, so the stream is not held back even where proxy_buffering is on. */
export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  'X-Accel-Buffering': 'no',
} as const;

/**
 * One event: an optional `event:` name and the data (a string as it is, anything else as JSON) on `data:` lines.
 * JSON never holds a raw line break; a string that does is split over several `data:` lines, which the client
 * joins with '\n' again.
 */
export function sseEvent(data: unknown, event?: string): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  const lines = text.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('');
  return `${event === undefined ? '' : `event: ${event}\n`}${lines}\n`;
}

export interface SseWriter {
  /** Writes one event; false (and nothing written) once the stream is closed or the client is gone. */
  send(data: unknown, event?: string): boolean;
  /** Ends the stream (idempotent). */
  end(): void;
  /** Whether the stream can still take events. */
  readonly open: boolean;
}

/** Starts the reply as an event stream: status 200 and SSE_HEADERS, sent through fastify (its hooks still run). */
export function openSse(reply: FastifyReply): SseWriter {
  const body = new PassThrough();
  reply.code(200).headers(SSE_HEADERS).send(body);
  const open = () => !body.destroyed && !body.writableEnded && !reply.raw.destroyed;
  return {
    send(data, event) {
      if (!open()) return false;
      body.write(sseEvent(data, event));
      return true;
    },
    end() {
      if (!body.writableEnded && !body.destroyed) body.end();
    },
    get open() {
      return open();
    },
  };
}

/**
 * A failure after a stream began, when its status line is long gone: recorded on the request for the audit and
 * metrics (a client that went away is 'cancelled'), and logged at error level when it is the server's failure
 * (5xx, a shutdown aside) as a JSON error would be. Returns the error for the route to word as its event.
 */
export function streamFailed(request: FastifyRequest, err: unknown, clientGone = false): ApiError {
  const api = toApiError(err);
  request.failureCode = clientGone ? 'cancelled' : (request.failureCode ?? api.code);
  if (!clientGone && api.status >= 500 && api.code !== 'shutting_down') request.log.error({ err: { code: api.code } }, 'stream failed');
  return api;
}
