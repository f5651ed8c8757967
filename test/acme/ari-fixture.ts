/**
 * ARI for a CA that has none (Pebble 2.4): a small node:http server that serves Pebble's directory with a
 * `renewalInfo` URL added, and answers `GET /renewal-info/<certID>` with whatever window the test sets. Every
 * other ACME URL in the directory still points at Pebble itself.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpsGet, type Pebble } from '../helpers/pebble.js';

export interface AriFixture {
  directory: string;
  /** The certIDs asked about, in order. */
  asked: string[];
  /** The window to answer with (null: 404), and the Retry-After header (seconds). */
  setWindow(window: { start: number; end: number } | null, retryAfterSec?: number): void;
}

export async function startAriFixture(t: { after(fn: () => unknown): void }, pebble: Pebble): Promise<AriFixture> {
  let window: { start: number; end: number } | null = null;
  let retryAfter = 3600;
  const asked: string[] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url === '/dir') {
        const upstream = await httpsGet(pebble.directory, pebble.caPem);
        const dir = { ...(JSON.parse(upstream.body) as object), renewalInfo: `${base}/renewal-info` };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(dir));
        return;
      }
      const m = /^\/renewal-info\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        asked.push(m[1]!);
        if (!window) return void res.writeHead(404).end();
        const body = { suggestedWindow: { start: new Date(window.start).toISOString(), end: new Date(window.end).toISOString() } };
        res.writeHead(200, { 'content-type': 'application/json', 'retry-after': String(retryAfter) }).end(JSON.stringify(body));
        return;
      }
      res.writeHead(404).end();
    })().catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    directory: `${base}/dir`,
    asked,
    setWindow(w, retry = 3600) {
      window = w;
      retryAfter = retry;
    },
  };
}
