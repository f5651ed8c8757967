/**
 * reloadNginx confirms a reload only once no old worker still accepts connections. nginx starts the new workers
 * first and tells the old ones to quit after; until an old worker has closed its listening sockets, a client
 * that connects can still be answered with the previous configuration (seen in `guardctl up`'s HTTP-01 test: the
 * other domain's certificate, just after a "confirmed" reload).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { acceptingOldWorker, childrenOf } from '../../src/nginx/master.js';
import { reloadNginx } from '../../src/nginx/reload.js';
import { cleanupStack, freePort, startNginxRoot } from '../helpers/nginx.js';
import { haveProgram } from '../helpers/system.js';

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('reloadNginx: when it says confirmed, every old worker has stopped accepting and the new site answers', async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const sc = cleanupStack(t);
  const { root, nginx } = await startNginxRoot(sc);
  const port = await freePort();
  const site = path.join(root, 'sites-enabled', 'r.conf');
  const write = (answer: string) => fs.writeFileSync(site, `server { listen 127.0.0.1:${port}; location / { return 200 "${answer}"; } }\n`);
  write('first');
  await nginx.reload();
  assert.equal(await get(port), 'first');

  for (const answer of ['second', 'third', 'fourth']) {
    const old = [...childrenOf(nginx.pid)];
    assert.ok(old.some(acceptingOldWorker), 'the running workers accept before the reload');
    write(answer);
    const outcome = await reloadNginx(nginx.conf, { reloadCmd: nginx.reloadCommand });
    assert.deepEqual(outcome, { ok: true, verified: true, master: nginx.pid });
    assert.deepEqual(old.filter(acceptingOldWorker), [], 'no worker of the previous configuration still accepts');
    assert.equal(await get(port), answer);
  }
});
