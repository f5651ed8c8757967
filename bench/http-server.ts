import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Fastify from 'fastify';
import { fileAuditSink } from '../src/gate/audit.js';
import { bindGate } from '../src/gate/fastify.js';
import { sendDenial } from '../src/server/errors.js';
import type { StateKind } from '../src/gate/open-state.js';
import { BENCH_PATH, benchGate, benchKeys } from './setup.js';
import { threadCpuMs } from './thread-cpu.js';

/**
 * The HTTP half of bench/gate.bench.ts, in a worker thread so the server's event loop has a core of its own and
 * the client's work is not counted as the server's. The same stub handler answers an open and a gated route; the
 * gated one writes its audit lines to a real file, as the daemon does.
 */
if (!parentPort) throw new Error('bench/http-server.ts runs as a worker of bench/gate.bench.ts');
const port = parentPort;
const keys = await benchKeys();
const auditDir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-audit-'));
const audit = fileAuditSink(path.join(auditDir, 'audit.jsonl'));
const app = Fastify({ logger: false });
const { gate, ready, close: closeGate } = benchGate(keys.lookup, (workerData as { state?: StateKind } | undefined)?.state ?? 'sqlite');
await ready;
bindGate(app, { gate, audit }, sendDenial);
const handler = async () => ({ ok: true });
app.post('/open', handler);
app.post(BENCH_PATH, { config: { gate: { model: () => ({ name: 'guard-small', size: 'small' as const }) } } }, handler);
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
port.postMessage({ port: address.port, keyId: keys.keyId, secret: keys.secret, kind: `${keys.kind}; audit lines to a file` });
port.on('message', (message) => {
  if (message === 'cpu') port.postMessage({ cpuMs: threadCpuMs() });
  if (message !== 'stop') return;
  app.close().then(() => audit.close()).finally(() => {
    closeGate();
    keys.close();
    fs.rmSync(auditDir, { recursive: true, force: true });
    port.close();
  });
});
