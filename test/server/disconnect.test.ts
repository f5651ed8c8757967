import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import type { AuditRecord } from '../../src/gate/audit.js';
import { parseCidrList } from '../../src/gate/ip.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { MemoryStream, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { fakeEngine, type FakeEngine } from '../helpers/fake-engine.js';
import { serverFixture, type FixtureOptions, type TestKey } from '../helpers/server-app.js';

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

/**
 * A server (logging to memory) with a request hanging in the engine on a socket the test holds; `leave` ends the
 * connection the way the test wants, then the exchange's audit record and the log lines come back.
 */
async function hangingRequest(t: Parameters<typeof serverFixture>[0], gate: FixtureOptions['gate'], leave: (socket: net.Socket) => void) {
  const stream = new MemoryStream();
  const s = await serverFixture(t, { gate, logger: pino({ level: 'trace' }, stream) as unknown as FastifyBaseLogger });
  const engine = s.engine as FakeEngine;
  const audited = nextAudit(s);
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const socket = net.connect((s.app.server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(rawRequest(s.key(), '/api/v1/moderate', JSON.stringify({ text: 'please [[hang]]' })));
  await engine.hanging;
  leave(socket);
  const record = await audited;
  return { record, engine, stream, lines: logLines(stream) };
}

test('a client that disconnects mid-inference is logged as cancelled at info, never as an error', async (t) => {
  // Gone for good: the connection is reset, not half-closed.
  const { record, engine, stream, lines } = await hangingRequest(t, {}, (socket) => socket.resetAndDestroy());
  assert.equal(engine.aborted, 1, 'the engine saw the abort');
  assert.deepEqual([record.status, record.reason], [499, 'cancelled']);
  assert.deepEqual(lines.filter((l) => l.level >= 50), [], 'no error-level line for a client that went away');
  assert.ok(!stream.text.includes('shutting_down'), stream.text);
  assert.ok(lines.some((l) => l.level === 30 && /cancelled/.test(JSON.stringify(l))), stream.text);
});

/** Sends `request` on a new socket, then shuts down the socket's write side; resolves with all it reads. */
function sendThenHalfClose(port: number, request: string, ca?: Buffer): Promise<string> {
  const socket = ca ? tls.connect({ port, host: '127.0.0.1', ca }) : net.connect(port, '127.0.0.1');
  const answer = new Promise<string>((resolve, reject) => {
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
  socket.end(request);
  return answer;
}

/** Resolves when the server has seen the client's FIN on its next connection (after Node's own 'end' handler). */
function serverSeesFin(server: net.Server, tlsServer: boolean): Promise<void> {
  return new Promise((resolve) => server.once(tlsServer ? 'secureConnection' : 'connection', (socket: net.Socket) => socket.once('end', () => resolve())));
}

for (const transport of ['HTTP', 'HTTPS'] as const) {
  test(`a client that half-closes after a complete request still reads its 200 answer (${transport})`, async (t) => {
    let https: { cert: Buffer; key: Buffer } | undefined;
    if (transport === 'HTTPS') {
      if (!haveProgram(t, 'openssl', 'version')) return;
      const dir = tempDir(t);
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      assert.equal(made.status, 0);
      https = { cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) };
    }
    const engine = fakeEngine();
    // The model answers only after the server has seen the FIN, so the answer is always written after it.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const s = await serverFixture(t, {
      https,
      engine: { ...engine, generate: async (req) => (await released, engine.generate(req)), score: async (req) => (await released, engine.score(req)) },
    });
    const audited = nextAudit(s);
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (s.app.server.address() as net.AddressInfo).port;
    const fin = serverSeesFin(s.app.server, transport === 'HTTPS');
    const answer = sendThenHalfClose(port, rawRequest(s.key(), '/api/v1/moderate', JSON.stringify({ text: 'hello' })), https?.cert);
    await fin;
    release();
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 200 /, `no answer after the half-close: ${JSON.stringify(text)}`);
    assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).level, 'safe');
    assert.deepEqual([(await audited).status, engine.aborted], [200, 0]);
  });
}

test('behind a trusted proxy a FIN means the client went away: the work is cancelled, 499', async (t) => {
  // What nginx does when its client aborts: it closes the upstream connection with a FIN.
  const { record, engine, lines } = await hangingRequest(t, { trustedProxies: parseCidrList(['127.0.0.1/32']) }, (socket) => socket.end());
  assert.deepEqual([record.status, record.reason], [499, 'cancelled']);
  assert.equal(engine.aborted, 1);
  assert.deepEqual(lines.filter((l) => l.level >= 50), []);
});
