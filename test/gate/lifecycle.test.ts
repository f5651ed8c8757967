import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { fileAuditSink } from '../../src/gate/audit.js';
import { bindGate } from '../../src/gate/fastify.js';
import { sendDenial } from '../../src/server/errors.js';
import { Gate } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS } from '../../src/gate/options.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { loadTiers } from '../../src/keys/tiers.js';
import { requestSerializers } from '../../src/server/logging.js';
import { MemoryKeys } from '../helpers/gate-app.js';
import { tempDir } from '../helpers/cli.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

/** A real listening server with file audit and file logs, as the daemon runs it. */
async function realServer(dir: string) {
  const keys = new MemoryKeys();
  const state = new MemoryGateState({ nonceCapacity: 1000, authFailures: DEFAULT_GATE_OPTIONS.authFailures });
  const gate = new Gate({ keys, state, tiers: loadTiers(undefined), options: DEFAULT_GATE_OPTIONS });
  const logFile = path.join(dir, 'daemon.log');
  const logger = pino({ level: 'trace', serializers: requestSerializers }, pino.destination({ dest: logFile, sync: true }));
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger });
  const audit = fileAuditSink(path.join(dir, 'audit', 'audit.jsonl'));
  bindGate(app, { gate, audit }, sendDenial);
  let entered = () => {};
  const handlerEntered = new Promise<void>((r) => (entered = r));
  app.post('/api/v1/hold', { config: { gate: {} } }, async (request) => {
    entered();
    // Stays busy until the client goes away, like a long decode.
    await new Promise<void>((resolve) => request.raw.socket.once('close', resolve));
    return { done: true };
  });
  app.post('/api/v1/moderate', { config: { gate: {} } }, async (request) => ({ chars: String((request.body as { text: string }).text).length }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  return { app, keys, state, audit, logFile, port, handlerEntered };
}

function post(port: number, pathName: string, body: string, headers: Record<string, string>) {
  const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
  });
  req.end(body);
  return { req, response };
}

test('a client that disconnects mid-request gives its concurrency slot back', async (t) => {
  const s = await realServer(tempDir(t));
  t.after(() => s.app.close());
  const secret = 'gs_disconnect_test_secret';
  const key = s.keys.add(secret, { tier: 'enterprise', overrides: { concurrency: 1 } });
  const sign = (p: string, body: string) => signRequest({ method: 'POST', url: p, body, keyId: key.id, secret }).headers;

  const held = post(s.port, '/api/v1/hold', '{}', sign('/api/v1/hold', '{}'));
  held.response.catch(() => {});
  await s.handlerEntered;
  const refused = await post(s.port, '/api/v1/moderate', '{"text":"x"}', sign('/api/v1/moderate', '{"text":"x"}')).response;
  assert.equal(refused.status, 429);
  assert.match(refused.body, /concurrency_limited/);

  held.req.destroy();
  // The server learns of the disconnect at its own pace: ask until the slot is back (a hang is a failure).
  let status = 0;
  await waitFor(async () => {
    status = (await post(s.port, '/api/v1/moderate', '{"text":"x"}', sign('/api/v1/moderate', '{"text":"x"}')).response).status;
    return status === 200;
  }, () => `the slot to come back (last answer ${status})`, HANG_BOUND_MS, 50);
  assert.equal(status, 200);
});

test('neither the request text, the secret nor the signature reaches a log or audit file', async (t) => {
  const dir = tempDir(t);
  const s = await realServer(dir);
  const secret = 'gs_PRIVACY_CANARY_SECRET_0xC0FFEE';
  const text = 'zebra-canary-7731 my private words';
  const key = s.keys.add(secret);
  const bodies = [JSON.stringify({ text }), JSON.stringify({ text, extra: 1 })];
  const signatures: string[] = [];
  for (const body of bodies) {
    const headers = signRequest({ method: 'POST', url: `/api/v1/moderate?q=${encodeURIComponent(text)}`, body, keyId: key.id, secret }).headers;
    signatures.push(headers['X-Signature']!);
    const res = await post(s.port, `/api/v1/moderate?q=${encodeURIComponent(text)}`, body, headers).response;
    assert.equal(res.status, 200, res.body);
  }
  const wrong = signRequest({ method: 'POST', url: '/api/v1/moderate', body: bodies[0], keyId: key.id, secret: `${secret}x` }).headers;
  signatures.push(wrong['X-Signature']!);
  assert.equal((await post(s.port, '/api/v1/moderate', bodies[0]!, wrong).response).status, 401);
  await s.app.close();
  await s.audit.close();

  const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  assert.ok(files.length >= 2, `expected a log and an audit file, found ${files.join(', ')}`);
  const everything = files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  assert.ok(everything.includes(key.id), 'the logs should identify the key (sanity check that something was written)');
  for (const needle of ['zebra-canary-7731', 'zebra-canary', encodeURIComponent(text), secret, ...signatures]) {
    assert.ok(!everything.includes(needle), `found "${needle}" in the logs`);
  }
  // The client's full address stays out too (the listening line names the server's own address, not a client's).
  const requestLines = everything.split('\n').filter((l) => l.includes('"reqId"') || l.includes('"request_id"'));
  assert.ok(requestLines.length >= 6);
  assert.ok(requestLines.every((l) => !l.includes('127.0.0.1')), requestLines.find((l) => l.includes('127.0.0.1')));
  const audit = fs.readFileSync(path.join(dir, 'audit', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(audit.map((r) => [r.status, r.reason, r.client_net]), [[200, null, '127.0.0.0/24'], [200, null, '127.0.0.0/24'], [401, 'bad_signature', '127.0.0.0/24']]);
  assert.equal((fs.statSync(path.join(dir, 'audit', 'audit.jsonl')).mode & 0o777).toString(8), '600');
});
