import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { signRequest } from '../../src/gate/sign-request.js';

export interface SseEvent {
  event: string;
  data: string;
}

/** Parses a whole text/event-stream body (as light-my-request returns it) into its events. */
export function parseSse(body: string): SseEvent[] {
  return body.split('\n\n').filter((block) => block.trim() !== '').map(parseBlock);
}

function parseBlock(block: string): SseEvent {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  return { event, data: data.join('\n') };
}

/**
 * A signed POST over a real socket whose event stream is read as it arrives: next() resolves with each event the
 * moment its block is complete, so a test can act between two events (nothing here waits on time).
 */
export interface SseClient {
  response: IncomingMessage;
  next(): Promise<SseEvent | undefined>;
  /** Closes the connection (the client goes away). */
  destroy(): void;
}

export async function openSseClient(
  origin: string, url: string, body: unknown, key: { id: string; secret: string }, o: { tls?: RequestOptions; host?: string } = {},
): Promise<SseClient> {
  const payload = JSON.stringify(body);
  const { headers } = signRequest({ method: 'POST', url, body: payload, keyId: key.id, secret: key.secret, version: 2 });
  const options = { method: 'POST', agent: false, ...o.tls, headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream', ...(o.host ? { host: o.host } : {}) } };
  const req = origin.startsWith('https:') ? httpsRequest(`${origin}${url}`, options) : httpRequest(`${origin}${url}`, options);
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve).once('error', reject);
    req.end(payload);
  });
  response.setEncoding('utf8');
  let buffer = '';
  let ended = false;
  const queue: SseEvent[] = [];
  let wake: (() => void) | undefined;
  response.on('data', (chunk: string) => {
    buffer += chunk;
    let at: number;
    while ((at = buffer.indexOf('\n\n')) !== -1) {
      queue.push(parseBlock(buffer.slice(0, at)));
      buffer = buffer.slice(at + 2);
    }
    wake?.();
  });
  const finish = () => {
    ended = true;
    wake?.();
  };
  response.on('end', finish).on('close', finish).on('error', finish);
  return {
    response,
    async next() {
      while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
      return queue.shift();
    },
    destroy: () => {
      req.destroy();
      response.destroy();
    },
  };
}
