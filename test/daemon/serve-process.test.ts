import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  url: string;
  lines: string[];
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exited: Promise<number | null>;
}

/** The real `guardctl serve` as a separate process (as systemd runs it), on a free port. */
async function serve(home: string, args: string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [BIN, '--home', home, 'serve', '--port', '0', ...args], {
    env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_LOG: 'info', GUARDCTL_MASTER_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve(line: string): void }> = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      lines.push(line);
      for (const w of waiters.filter((x) => x.re.test(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp, ms = HANG_BOUND_MS) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output:\n${lines.join('\n')}`)), ms);
      waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  // Starting from the TypeScript sources and warming the models is slow on a busy machine: a hang's bound only.
  const started = 3 * HANG_BOUND_MS;
  const listening = await waitFor(/"msg":"listening"/, started);
  const url = (JSON.parse(listening) as { url: string }).url;
  await waitFor(/"msg":"model ready".*mt-demo|mt-demo.*"msg":"model ready"/, started);
  return { child, url, lines, waitFor, exited };
}

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
