import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { serveProcess as serve } from '../helpers/serve-process.js';
import { haveProgram } from '../helpers/system.js';

async function newKey(home: string): Promise<{ id: string; secret: string }> {
  const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'proc', '--tier', 'enterprise']);
  assert.equal(r.code, 0, r.stderr);
  return r.json();
}

test('SIGTERM drains: the request in flight is answered, then the process exits 0', async (t) => {
  const home = tempDir(t);
  const key = await newKey(home);
  const s = await serve(home);
  t.after(() => s.child.kill('SIGKILL'));
  const url = `${s.url}/api/v1/moderate?categories=always`;
  // A batch of texts keeps the engine busy long enough for the signal to arrive mid-request.
  const body = JSON.stringify({ text: Array.from({ length: 32 }, (_, i) => `how do I steal a car without keys, take ${i}`) });
  // Version 2: version 1 does not sign an array of texts.
  const headers = signRequest({ method: 'POST', url, body, keyId: key.id, secret: key.secret, version: 2 }).headers;
  const answer = fetch(url, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
  await s.waitFor(/"msg":"incoming request"/);
  s.child.kill('SIGTERM');
  const res = await answer;
  assert.equal(res.status, 200);
  const json = (await res.json()) as { results: Array<{ level: string }> };
  assert.equal(json.results.length, 32);
  assert.equal(await s.exited, 0);
  assert.ok(s.lines.some((l) => l.includes('"msg":"draining: finishing in-flight requests"')));
  assert.ok(s.lines.some((l) => l.includes('"msg":"stopped"')));
  // Refused after the drain started: nothing listens any more.
  await assert.rejects(fetch(`${s.url}/healthz`));
});

test('HTTPS with the certificate swapped on SIGHUP, without a restart', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const home = tempDir(t);
  const dir = tempDir(t);
  const cert = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const makeCert = (cn: string) => {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${keyFile}.new`, '-out', `${cert}.new`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    fs.renameSync(`${keyFile}.new`, keyFile);
    fs.renameSync(`${cert}.new`, cert);
  };
  makeCert('first.test');
  const s = await serve(home, ['--tls-cert', cert, '--tls-key', keyFile]);
  t.after(() => s.child.kill('SIGKILL'));
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const peerCn = () => new Promise<string>((resolve, reject) => {
    const req = https.get(`${s.url}/healthz`, { rejectUnauthorized: false, agent: false }, (res) => {
      const subject = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject;
      res.resume();
      resolve(String(subject.CN));
    });
    req.on('error', reject);
  });
  assert.equal(await peerCn(), 'first.test');
  makeCert('second.test');
  s.child.kill('SIGHUP');
  await s.waitFor(/TLS certificate reloaded/);
  assert.equal(await peerCn(), 'second.test');
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
});

test('issue 10.2/10.3: nonces and daily quotas survive a SIGTERM restart and kill -9 (--state sqlite, the default)', async (t) => {
  const home = tempDir(t);
  const created = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'restart', '--tier', 'enterprise', '--daily', '3']);
  assert.equal(created.code, 0, created.stderr);
  const key = created.json<{ id: string; secret: string }>();
  let s = await serve(home);
  t.after(() => s.child.kill('SIGKILL'));
  assert.ok(s.lines.some((l) => l.includes('"msg":"gate state"') && l.includes('gate-state.db')));
  // The signature covers the path, not the port, which changes with each start (--port 0).
  const url = `${s.url}/api/v1/models`;
  const send = async (headers: Record<string, string>) => {
    const res = await fetch(`${s.url}/api/v1/models`, { headers });
    const body = (await res.json()) as { error?: { code: string } };
    return `${res.status}${body.error ? ` ${body.error.code}` : ''}`;
  };
  const sign = (opts: { version?: 1 | 2; timestamp?: string } = {}) => signRequest({ method: 'GET', url, keyId: key.id, secret: key.secret, ...opts }).headers;
  // Captured requests, as an eavesdropper on a broken TLS link would keep them: v1, and v2 dated 290 s ahead.
  const captured = [sign(), sign({ version: 2, timestamp: String(Math.floor(Date.now() / 1000) + 290) })];
  for (const headers of captured) assert.equal(await send(headers), '200');

  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
  assert.equal(fs.statSync(path.join(home, 'gate-state.db')).mode & 0o777, 0o600);
  s = await serve(home);
  for (const headers of captured) assert.equal(await send(headers), '401 replayed_nonce');
  assert.equal(await send(sign()), '200', 'the third request of the day');
  assert.equal(await send(sign()), '429 quota_exhausted');

  s.child.kill('SIGKILL');
  await s.exited;
  s = await serve(home);
  for (const headers of captured) assert.equal(await send(headers), '401 replayed_nonce');
  assert.equal(await send(sign()), '429 quota_exhausted');
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
});
