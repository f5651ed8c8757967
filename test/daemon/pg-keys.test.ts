import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { waitFor } from '../helpers/wait.js';

// Issue 13.2/13.3 and 13.5: daemons sharing a PostgreSQL key store, each started as the real `guardctl serve`.

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;
const run = promisify(execFile);

interface Key { id: string; secret: string }

async function models(s: ServeProcess, key: Key): Promise<{ status: number; code?: string }> {
  const url = `${s.url}/api/v1/models`;
  const res = await fetch(url, { headers: signRequest({ method: 'GET', url, keyId: key.id, secret: key.secret }).headers });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code };
}

/** A migrated store, a CLI home holding its master key, and `n` daemon homes with a copy of that key. */
async function setup(t: TestContext, n: number) {
  const server = await startPostgres(t);
  if (!server) return undefined;
  const url = await server.database('shared');
  const dir = tempDir(t);
  const home = path.join(dir, 'cli');
  assert.equal((await runCli(['--home', home, '--json', 'keys', 'migrate', '--keys', url])).code, 0);
  const create = async (name: string): Promise<Key> => {
    const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', name, '--tier', 'enterprise', '--keys', url]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.json();
  };
  const homes = Array.from({ length: n }, (_, i) => {
    const h = path.join(dir, `daemon${i}`);
    fs.mkdirSync(h, { mode: 0o700 });
    fs.copyFileSync(path.join(home, 'master.key'), path.join(h, 'master.key'));
    return h;
  });
  return { server, url, home, create, homes };
}

test('a revocation made by a `guardctl keys revoke` process is refused by two running daemons within 2 s', async (t) => {
  const env = await setup(t, 2);
  if (!env) return;
  const key = await env.create('shared');
  const daemons = await Promise.all(env.homes.map((h) => serveProcess(h, ['--keys', env.url])));
  t.after(() => daemons.forEach((d) => d.child.kill('SIGKILL')));
  for (const d of daemons) assert.equal((await models(d, key)).status, 200, 'both daemons know the key (and have cached it)');
  await Promise.all(daemons.map((d) => d.waitFor(/"msg":"key store"/)));

  // Another host's shell: a separate process, as an operator would run it.
  const { stdout } = await run(process.execPath, [BIN, '--home', env.home, '--json', 'keys', 'revoke', key.id], { env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_KEYS: env.url, GUARDCTL_MASTER_KEY: '' } });
  const revokedAt = Date.parse((JSON.parse(stdout) as { revoked_at: string }).revoked_at);
  const seenAt: number[] = [];
  await Promise.all(daemons.map(async (d, i) => {
    await waitFor(async () => (await models(d, key)).code === 'revoked_key', `daemon ${i} to refuse the revoked key`, 2000, 20);
    seenAt[i] = Date.now();
  }));
  const propagation = seenAt.map((at) => at - revokedAt);
  t.diagnostic(`revocation propagation (revoked_at -> first refusal seen): ${propagation.join(' ms, ')} ms`);
  assert.ok(propagation.every((ms) => ms < 2000), `${propagation}`);
});

test('PostgreSQL stopped: cached keys keep working for --keys-stale, unknown keys get 503 keys_unavailable, then every key; service resumes', async (t) => {
  const env = await setup(t, 1);
  if (!env) return;
  const cached = await env.create('cached');
  const uncached = await env.create('never-used');
  const d = await serveProcess(env.homes[0]!, ['--keys', env.url, '--keys-stale', '4s']);
  t.after(() => d.child.kill('SIGKILL'));
  assert.equal((await models(d, cached)).status, 200);
  const metric = async (name: string) => Number(new RegExp(`^${name}\\{backend="postgres"\\} (\\S+)`, 'm').exec(await (await fetch(`${d.url}/metrics`)).text())?.[1]);
  assert.equal(await metric('guard_keys_backend_up'), 1);

  env.server.stop();
  const line = await d.waitFor(/"msg":"key store unreachable/);
  assert.match(line, /"staleSeconds":4/);
  assert.doesNotMatch(line, /postgres:\/\/[^"]*:[^"@]*@/, 'no password in the log');
  // Within the window (4 s after PostgreSQL last answered, which was at most one poll, 1 s, before it stopped).
  assert.equal((await models(d, cached)).status, 200, 'a cached key keeps working');
  assert.deepEqual(await models(d, uncached), { status: 503, code: 'keys_unavailable' }, 'a key not cached cannot be checked');
  assert.equal(await metric('guard_keys_backend_up'), 0);

  // `guardctl doctor` on this host says why.
  const doctor = await runCli(['--home', env.homes[0]!, '--json', 'doctor'], { env: { GUARDCTL_KEYS: env.url } });
  const check = doctor.json<{ checks: Array<{ name: string; ok: boolean; detail: string }> }>().checks.find((c) => c.name === 'key store')!;
  assert.equal(check.ok, false);
  assert.match(check.detail, /ECONNREFUSED/);

  await waitFor(async () => (await models(d, cached)).code === 'keys_unavailable', 'the cached key to be refused once --keys-stale has passed');
  assert.ok((await metric('guard_keys_unavailable_total')) >= 2);
  assert.ok((await metric('guard_keys_backend_last_ok_age_seconds')) >= 4);

  env.server.start();
  await d.waitFor(/"msg":"key store reachable again"/);
  assert.equal((await models(d, cached)).status, 200);
  assert.equal((await models(d, uncached)).status, 200);
});
