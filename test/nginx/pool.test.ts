/**
 * Issue 13.4/13.5: three real `guardctl serve` daemons sharing a PostgreSQL key store behind a real nginx with
 * the upstream pool `guardctl nginx render` writes (least_conn, passive health, retries on connection errors
 * only). Skipped without nginx or PostgreSQL, unless GUARDCTL_REQUIRE_SYSTEM=1.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { checkSite } from '../../src/nginx/check.js';
import { detectVersions } from '../../src/nginx/detect.js';
import { renderSite, writeRendered } from '../../src/nginx/render.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { freePort, startNginx } from '../helpers/nginx.js';
import { startPostgres } from '../helpers/postgres.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { haveProgram } from '../helpers/system.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

const TEXTS = Array.from({ length: 8 }, (_, i) => `how do I steal a car without keys, take ${i}`);

test('three daemons behind nginx: requests spread; a daemon killed with -9 mid-load: new requests go to the others, no POST is replayed', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const server = await startPostgres(t);
  if (!server) return;
  const url = await server.database('pool');
  const dir = tempDir(t);
  const cliHome = path.join(dir, 'cli');
  assert.equal((await runCli(['--home', cliHome, 'keys', 'migrate', '--keys', url])).code, 0);
  const created = await runCli(['--home', cliHome, '--json', 'keys', 'create', '--name', 'pool', '--tier', 'enterprise', '--keys', url]);
  const key = created.json<{ id: string; secret: string }>();
  const homes = [0, 1, 2].map((i) => {
    const h = path.join(dir, `d${i}`);
    fs.mkdirSync(h, { mode: 0o700 });
    fs.copyFileSync(path.join(cliHome, 'master.key'), path.join(h, 'master.key'));
    return h;
  });
  const daemons = await Promise.all(homes.map((h) => serveProcess(h, ['--keys', url, '--device', 'cpu', '--threads', '1'])));
  t.after(() => daemons.forEach((d) => d.child.kill('SIGKILL')));

  const versions = await detectVersions();
  const snippetsDir = path.join(dir, 'snippets');
  const siteFile = path.join(dir, 'sites', 'pool.conf');
  const httpPort = await freePort();
  const rendered = renderSite({
    domains: ['guard.test'], upstreams: daemons.map((d) => new URL(d.url).host), bootstrap: true, nginxVersion: versions.nginx,
    opensslVersion: versions.openssl, snippetsDir, httpPort, listenAddress: '127.0.0.1',
  });
  writeRendered(rendered, siteFile, snippetsDir);
  const check = await checkSite(siteFile);
  assert.ok(check.ok, `nginx -t refused the rendered pool:\n${check.output}\n${rendered.site}`);
  await startNginx(t, siteFile, { prefix: path.join(dir, 'nginx') });
  const base = `http://127.0.0.1:${httpPort}`;

  /** Which daemon answered: each logs the X-Request-Id it gives an answer. */
  const answeredBy = (requestId: string | null) => daemons.findIndex((d) => requestId !== null && d.lines.some((l) => l.includes(`"reqId":"${requestId}"`)));
  const signed = async (method: 'GET' | 'POST', urlPath: string): Promise<{ status: number; by: number }> => {
    const body = method === 'POST' ? JSON.stringify({ text: TEXTS }) : undefined;
    const headers = signRequest({ method, url: `${base}${urlPath}`, body, keyId: key.id, secret: key.secret, version: 2 }).headers;
    const res = await fetch(`${base}${urlPath}`, { method, body, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } });
    await res.arrayBuffer();
    const id = res.headers.get('x-request-id');
    if (res.status === 200) await waitFor(() => answeredBy(id) !== -1, `the log line of request ${id}`);
    return { status: res.status, by: res.status === 200 ? answeredBy(id) : -1 };
  };

  // 1. Spread: with nothing in flight least_conn falls back to round robin.
  const spread = [0, 0, 0];
  for (let i = 0; i < 30; i++) {
    const r = await signed('GET', '/api/v1/models');
    assert.equal(r.status, 200);
    spread[r.by]!++;
  }
  t.diagnostic(`30 GETs spread over the three daemons: ${spread.join(' / ')}`);
  assert.ok(spread.every((n) => n > 0), `every daemon got requests: ${spread}`);

  // 2. A bounded load of signed POSTs (6 at a time, 36 in all); daemon 0 is killed with -9 once one reached it.
  const victim: ServeProcess = daemons[0]!;
  const before = victim.lines.length;
  const statuses: number[] = [];
  const by: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < 36) {
      next++;
      const r = await signed('POST', '/api/v1/moderate?categories=always');
      statuses.push(r.status);
      by.push(r.by);
    }
  };
  const load = Promise.all(Array.from({ length: 6 }, worker));
  await victim.waitFor(/\/api\/v1\/moderate.*"msg":"incoming request"/);
  victim.child.kill('SIGKILL');
  await victim.exited;
  await load;
  // What the dead daemon had taken in and never answered: nginx must not have passed those POSTs on.
  const taken = victim.lines.slice(before).filter((l) => l.includes('"msg":"incoming request"') && l.includes('/api/v1/moderate'))
    .map((l) => (JSON.parse(l) as { reqId: string }).reqId);
  const answered = new Set(victim.lines.filter((l) => l.includes('"msg":"request completed"')).map((l) => (JSON.parse(l) as { reqId: string }).reqId));
  const inFlight = taken.filter((id) => !answered.has(id)).length;
  const bad = statuses.filter((s) => s !== 200 && s !== 502);
  const failed = statuses.filter((s) => s === 502).length;
  t.diagnostic(`load of 36 POSTs with daemon 0 killed: ${statuses.length - failed} x 200, ${failed} x 502; ${inFlight} in flight on the dead daemon`);
  assert.deepEqual(bad, [], 'only answers or 502 for what the dead daemon held');
  assert.ok(inFlight >= 1, 'the kill came mid-request');
  assert.ok(failed >= inFlight, `every POST the dead daemon held got a 502 (${failed}), none was replayed to another daemon for a 200`);

  // 3. After the kill: every new request is served by the two others.
  for (let i = 0; i < 12; i++) {
    const r = await signed('POST', '/api/v1/moderate?categories=always');
    assert.equal(r.status, 200, `request ${i} after the kill`);
    assert.notEqual(r.by, 0);
  }
});
