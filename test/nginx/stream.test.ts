/**
 * Server-sent events through the nginx site `guardctl nginx render` writes: a streamed translation's first piece
 * reaches the client through nginx while the generation is provably unfinished. The test engine sends its first
 * piece and then waits for the test, which lets it go on only after that piece arrived through nginx: were nginx
 * buffering the stream, the piece would never arrive (and the test would fail at the hang bound, not by timing).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkSite } from '../../src/nginx/check.js';
import { detectVersions } from '../../src/nginx/detect.js';
import { renderSite, writeRendered } from '../../src/nginx/render.js';
import { tempDir } from '../helpers/cli.js';
import { fakeEngine } from '../helpers/fake-engine.js';
import { cleanupStack, freePort, startNginx } from '../helpers/nginx.js';
import { serverFixture } from '../helpers/server-app.js';
import { openSseClient, type SseEvent } from '../helpers/sse-client.js';
import { haveProgram, listenLoopback } from '../helpers/system.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${HANG_BOUND_MS} ms: nginx holds the stream back`)), HANG_BOUND_MS)));
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

test('a streamed translation is not buffered by the rendered nginx site', { timeout: 5 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const c = cleanupStack(t);
  const engine = fakeEngine();
  c.after(() => engine.continueStream());
  const f = await serverFixture(c, { engine });
  const upstream = new URL(await listenLoopback(f.app)).host;

  const versions = await detectVersions();
  const ca = makeTestCa(c);
  const dir = tempDir(c, 'guardctl-nginx-stream-');
  const snippetsDir = path.join(dir, 'snippets');
  const siteFile = path.join(dir, 'sites', 'site.conf');
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const rendered = renderSite({
    domains: ['guard.test'], upstreams: [upstream], certFile: ca.cert, keyFile: ca.key, nginxVersion: versions.nginx, opensslVersion: versions.openssl,
    snippetsDir, httpPort, httpsPort, listenAddress: '127.0.0.1',
  });
  writeRendered(rendered, siteFile, snippetsDir);
  const check = await checkSite(siteFile);
  assert.ok(check.ok, `nginx -t refused the rendered site:\n${check.output}`);
  await startNginx(c, siteFile, { prefix: path.join(dir, 'nginx') });

  const url = '/api/v1/translate?source_lang=en&target_lang=zh&stream=true';
  const client = await openSseClient(`https://127.0.0.1:${httpsPort}`, url, { text: 'slow [[trickle]]' }, f.key(), {
    tls: { ca: fs.readFileSync(ca.caFile), servername: 'guard.test' }, host: `guard.test:${httpsPort}`,
  });
  c.after(() => client.destroy());
  assert.equal(client.response.statusCode, 200);
  assert.match(String(client.response.headers['content-type']), /^text\/event-stream/);
  assert.equal(client.response.headers['cache-control'], 'no-cache');

  const first = await within(client.next(), 'first delta');
  assert.deepEqual(first, { event: 'delta', data: JSON.stringify({ text: '[slow' }) });
  // Only now may the engine finish: the first piece crossed nginx while the answer was unfinished.
  engine.continueStream();
  const rest: SseEvent[] = [];
  for (let e = await client.next(); e; e = await client.next()) rest.push(e);
  assert.equal(rest.at(-1)?.event, 'done');
  const done = JSON.parse(rest.at(-1)!.data) as { result: string };
  const deltas = [first, ...rest].filter((e) => e.event === 'delta').map((e) => (JSON.parse(e.data) as { text: string }).text);
  assert.equal(deltas.join(''), done.result);
  assert.equal(done.result, '[slow [[trickle]]]');
});
