import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import type { AuditRecord } from '../../src/gate/audit.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { MemoryStream } from '../helpers/cli.js';
import type { FakeEngine } from '../helpers/fake-engine.js';
import { serverFixture, type TestKey } from '../helpers/server-app.js';

/** A complete signed POST as raw HTTP/1.1 bytes, for a socket the test controls. */
function rawRequest(key: TestKey, path: string, body: string): string {
  const headers = signRequest({ method: 'POST', url: path, body, keyId: key.id, secret: key.secret, version: 2 }).headers;
  const lines = Object.entries({ Host: 'guard.test', 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  return `POST ${path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
}

/** Resolves when the next audit record is written (the exchange is over, whatever its end). */
function nextAudit(s: { audit: { write(r: AuditRecord): void } }): Promise<AuditRecord> {
  return new Promise((resolve) => {
    const write = s.audit.write.bind(s.audit);
    s.audit.write = (record) => {
      write(record);
      resolve(record);
    };
  });
}

function logLines(stream: MemoryStream): Array<{ level: number; msg: string; [k: string]: unknown }> {
  return stream.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('a client that disconnects mid-inference is logged as cancelled at info, never as an error', async (t) => {
  const stream = new MemoryStream();
  const s = await serverFixture(t, { logger: pino({ level: 'trace' }, stream) as unknown as FastifyBaseLogger });
  const engine = s.engine as FakeEngine;
  const audited = nextAudit(s);
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.app.server.address() as net.AddressInfo).port;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(rawRequest(s.key(), '/api/v1/moderate', JSON.stringify({ text: 'please [[hang]]' })));
  await engine.hanging;
  // Gone for good: the connection is reset, not half-closed.
  socket.resetAndDestroy();
  await audited;
  assert.equal(engine.aborted, 1, 'the engine saw the abort');
  assert.deepEqual(s.audit.records.map((r) => [r.status, r.reason]), [[499, 'cancelled']]);
  const lines = logLines(stream);
  const errors = lines.filter((l) => l.level >= 50);
  assert.deepEqual(errors, [], 'no error-level line for a client that went away');
  assert.ok(!stream.text.includes('shutting_down'), stream.text);
  assert.ok(lines.some((l) => l.level === 30 && /cancelled/.test(JSON.stringify(l))), stream.text);
});
