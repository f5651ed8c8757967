import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { embeddedModels } from '../../src/daemon/models.js';
import { portHolder } from '../../src/daemon/port-holder.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { serveProcess } from '../helpers/serve-process.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;

async function holdPort(t: { after(fn: () => void): void }): Promise<number> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => holder.close());
  return (holder.address() as net.AddressInfo).port;
}

test('a port in use is a user error naming the address, who holds it and --port (exit 1, not a bug)', async (t) => {
  const port = await holdPort(t);
  const home = tempDir(t);
  const r = await runCli(['--home', home, 'serve', '--port', String(port), '--state', 'memory']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use by pid ${process.pid} \\(`));
  assert.match(r.stderr, /hint: .*--port/);
  assert.doesNotMatch(r.stderr, /internal error|report it as a bug/);
  const json = await runCli(['--home', home, '--json', 'serve', '--port', String(port), '--state', 'memory']);
  assert.equal(json.json().error.code, 'GUARD_E_LISTEN');
  assert.equal(json.json().error.address, `127.0.0.1:${port}`);
  // The holder is found through /proc: this test process holds the port.
  assert.equal(portHolder(port), `pid ${process.pid} (${fs.readFileSync('/proc/self/comm', 'utf8').trim()})`);
});

test('a port that needs privileges (80 as an unprivileged user) is a user error with --port in the hint', async (t) => {
  const home = tempDir(t, 'guardctl-eacces-');
  fs.chmodSync(home, 0o777);
  // As root, run the daemon as nobody: binding port 80 must fail the way it does for an ordinary user.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const data = path.join(home, 'data');
  const child = spawn(process.execPath, [BIN, '--home', data, 'serve', '--port', '80', '--state', 'memory'], {
    env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_MASTER_KEY: '', HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...asNobody,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 1, stderr);
  assert.match(stderr, /error: cannot listen on 127\.0\.0\.1:80: ports below 1024 need privileges/);
  assert.match(stderr, /hint: use a port above 1023 with --port/);
});

test('a model that fails to load stops serve with its error (exit 1) unless --allow-partial', async (t) => {
  const home = tempDir(t);
  const empty = tempDir(t);
  const r = await runCli(['--home', home, 'serve', '--port', '0', '--state', 'memory', '--model', `x=translate:${empty}`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: model x failed to load: /);
  assert.match(r.stderr, /hint: .*guardctl model check/);
  assert.doesNotMatch(r.stderr, /is failed/);
});

test('--allow-partial serves the models that loaded; /readyz says which failed and why; one SIGTERM stops it', async (t) => {
  const home = tempDir(t);
  const empty = tempDir(t);
  const mt = embeddedModels().find((m) => m.name === 'mt-demo')!;
  const s = await serveProcess(home, ['--state', 'memory', '--model', `mt-demo=translate:${mt.dir}`, '--model', `x=translate:${empty}`, '--allow-partial']);
  t.after(() => s.child.kill('SIGKILL'));
  await s.waitFor(/model x failed to load.*--allow-partial/);
  const ready = await fetch(`${s.url}/readyz`);
  const body = (await ready.json()) as { ready: boolean; models: Array<{ name: string; state: string }> };
  assert.equal(ready.status, 200, JSON.stringify(body));
  assert.deepEqual(body.models.map((m) => [m.name, m.state]), [['mt-demo', 'ready'], ['x', 'failed']]);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
});

test('bin/guardctl.js run directly (as README starts the daemon) is the daemon itself: no child, one SIGTERM stops it', async (t) => {
  const home = tempDir(t);
  // Executed through its shebang, exactly as `./bin/guardctl.js serve` in the README.
  const child = spawn(BIN, ['--home', home, 'serve', '--port', '0', '--state', 'memory'], {
    env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_LOG: 'info', GUARDCTL_MASTER_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stderr.setEncoding('utf8');
  child.stdout.resume();
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line:\n${out}`)), 3 * HANG_BOUND_MS);
    child.stderr.on('data', (s: string) => {
      out += s;
      const m = /"msg":"listening"/.test(out) && /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  // The process that was started is the one listening: no npm or shell in between to swallow the signal.
  const port = Number(new URL(url).port);
  assert.match(portHolder(port) ?? '', new RegExp(`^pid ${child.pid} `), 'the daemon runs in a child of the launcher');
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out);
  await assert.rejects(fetch(`${url}/healthz`), 'the daemon still answers after SIGTERM');
  assert.equal(portHolder(port), undefined, 'something still listens on the port');
});
