import { parentPort, workerData } from 'node:worker_threads';
import Fastify from 'fastify';
import { bindGate } from '../src/gate/fastify.js';
import { BENCH_PATH, benchGate, benchKeys, nullAudit } from './setup.js';

/**
 * The HTTP half of bench/gate.bench.ts, in a worker thread so the server's event loop has a core of its own and
 * the client's work is not counted as the server's. The same stub handler answers an open and a gated route.
 */
if (!parentPort) throw new Error('bench/http-server.ts runs as a worker of bench/gate.bench.ts');
const port = parentPort;
const keys = await benchKeys();
const app = Fastify({ logger: false });
const { gate, close: closeGate } = benchGate(keys.lookup, (workerData as { state?: 'sqlite' | 'memory' } | undefined)?.state ?? 'sqlite');
bindGate(app, { gate, audit: nullAudit });
const handler = async () => ({ ok: true });
app.post('/open', handler);
app.post(BENCH_PATH, { config: { gate: { model: () => ({ name: 'guard-small', size: 'small' as const }) } } }, handler);
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
port.postMessage({ port: address.port, keyId: keys.keyId, secret: keys.secret, kind: keys.kind });
port.on('message', (message) => {
  if (message !== 'stop') return;
  app.close().finally(() => {
    closeGate();
    keys.close();
    port.close();
  });
});
