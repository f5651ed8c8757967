import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { cleanupStack, freePort, startNginx } from '../helpers/nginx.js';
import { startRedis } from '../helpers/redis.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { haveProgram } from '../helpers/system.js';
import { upstreamSite } from '../helpers/pool-site.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

/*
 * Issue 13 item 5: the real `guardctl serve` three times (one home, so one key store), one redis-server, one real
 * nginx in front (least_conn, passive health, proxy_next_upstream for connection errors only; written here until
 * `guardctl nginx render --upstream` lands from its own branch). Counts, not impressions: each phase prints them.
 * Waits follow events (log lines, answers, Redis contents); bounds are ones only a hang reaches.
 */

const MODERATE = '/api/v1/moderate';
const BODY = JSON.stringify({ text: 'hello there, how are you?' });
const PREFIX = 'pool:';
const LEASE_S = 3;
// Each daemon's state URL: its own lease, so that the kill -9 phase sees slots come back in seconds.
const stateUrl = (url: string) => `${url}/0?prefix=${PREFIX}&lease=${LEASE_S}s`;

interface Key {
  id: string;
  secret: string;
}

interface Answer {
  status: number;
  code?: string;
}

function send(base: string, key: Key, agent: http.Agent, nonce?: string): Promise<Answer> {
  const { headers } = signRequest({ method: 'POST', url: MODERATE, body: BODY, keyId: key.id, secret: key.secret, version: 2, nonce });
  return new Promise((resolve) => {
    const r = http.request(new URL(MODERATE, base), {
      method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(BODY)) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let code: string | undefined;
        if (status >= 400) {
          try {
            code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code ?? 'no_code';
          } catch {
            code = 'not_json';
          }
        }
        resolve({ status, code });
      });
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, code: err.code }));
    });
    r.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, code: err.code }));
    r.end(BODY);
  });
}

/** `total` requests, `concurrency` at a time; answers counted by "status code". */
async function load(base: string, key: Key, total: number, concurrency: number): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      const a = await send(base, key, agent);
      const label = a.code ? `${a.status} ${a.code}` : String(a.status);
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
  }));
  agent.destroy();
  return counts;
}

async function createKey(home: string, name: string, args: string[]): Promise<Key> {
  const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', name, '--tier', 'enterprise', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.json<Key>();
}

test('three daemons, one Redis, one nginx: nonces, --daily, Redis stopped mid-load, a daemon killed -9', { timeout: 20 * HANG_BOUND_MS }, async (t) => {
  const redis = await startRedis(t);
  if (!redis || !haveProgram(t, 'nginx', '-v')) return;
  const cleanup = cleanupStack(t);
  const home = tempDir(t);
  fs.writeFileSync(path.join(home, 'guardctl.yaml'), ['gate:', '  auth_failure_limit: 1000000', ''].join('\n'));
  const keys = {
    nonce: await createKey(home, 'nonce', []),
    daily: await createKey(home, 'daily', ['--daily', '100']),
    open: await createKey(home, 'open', []),
    pair: await createKey(home, 'pair', ['--concurrency', '2']),
  };
  const args = (i: number, extra: string[] = []) => ['--device', 'cpu', '--threads', '1', '--state', stateUrl(redis.url), '--audit-file', path.join(home, `audit-${i}.jsonl`), ...extra];
  // The fourth daemon's batches wait up to 20 s for company even on an idle device (--batch-wait always): two
  // requests sent to it alone sit in its engine, holding their slots, until it is killed (its warm-up waits it
  // out once, in parallel with the others' starts).
  const started = await Promise.all([0, 1, 2].map((i) => serveProcess(home, args(i))).concat(serveProcess(home, args(3, ['--max-batch', '64', '--max-wait-ms', '20000', '--batch-wait', 'always']))));
  const procs: ServeProcess[] = started;
  cleanup.after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
  });
  const [d0, d1, d2, slow] = procs as [ServeProcess, ServeProcess, ServeProcess, ServeProcess];
  const nginxPort = await freePort();
  const site = path.join(tempDir(t), 'pool.conf');
  fs.writeFileSync(site, upstreamSite(nginxPort, [d0.url, d1.url, d2.url]));
  const nginx = await startNginx(cleanup, site);
  const front = `http://127.0.0.1:${nginx.httpPort}`;
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());

  // 1. A nonce used on one daemon is refused on the others.
  const nonce = 'pool-nonce-0001';
  assert.equal((await send(d0.url, keys.nonce, agent, nonce)).status, 200);
  const replays = [await send(d1.url, keys.nonce, agent, nonce), await send(d2.url, keys.nonce, agent, nonce), await send(d0.url, keys.nonce, agent, nonce)];
  assert.deepEqual(replays, Array(3).fill({ status: 401, code: 'replayed_nonce' }));

  // 2. --daily 100: 300 requests at concurrency 50 through nginx, spread over the three, get exactly 100.
  const daily = await load(front, keys.daily, 300, 50);
  console.log(`--daily 100, 300 requests at concurrency 50 via nginx: ${[...daily].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  assert.deepEqual(Object.fromEntries(daily), { 200: 100, '429 quota_exhausted': 200 });
  const served = [0, 1, 2].map((i) => fs.readFileSync(path.join(home, `audit-${i}.jsonl`), 'utf8').split('\n').filter((l) => l.includes(keys.daily.id) && l.includes('"status":200')).length);
  console.log(`accepted per daemon: ${served.join(', ')}`);
  assert.equal(served.reduce((a, b) => a + b, 0), 100);
  assert.ok(served.every((n) => n > 0), 'nginx spread the accepted requests over all three');

  // 3. Redis stopped in the middle of a load: only 503 state_unavailable, no unchecked 200; recovery after restart.
  const before = await load(front, keys.open, 30, 10);
  assert.deepEqual(Object.fromEntries(before), { 200: 30 });
  let phase: 'up' | 'down' | 'back' = 'up';
  const during = new Map<string, number>();
  const loadAgent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  let stop = false;
  const downAnswers: Answer[] = [];
  const workers = Promise.all(Array.from({ length: 10 }, async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      const sentIn = phase;
      const a = await send(front, keys.open, loadAgent);
      const label = `${sentIn} ${a.code ? `${a.status} ${a.code}` : a.status}`;
      during.set(label, (during.get(label) ?? 0) + 1);
      if (sentIn === 'down' && phase === 'down') downAnswers.push(a);
    }
  }));
  await waitFor(() => [...during.keys()].some((k) => k.startsWith('up 200')), 'answers before the stop');
  await redis.stop();
  phase = 'down';
  await waitFor(() => downAnswers.length >= 50, '50 answers while Redis is down');
  await redis.start();
  phase = 'back';
  await waitFor(async () => (await Promise.all([d0, d1, d2].map((d) => readyz(d.url, agent)))).every((s) => s === 200), 'every daemon ready again');
  await waitFor(() => (during.get('back 200') ?? 0) >= 30, '30 successes after the restart');
  stop = true;
  await workers;
  loadAgent.destroy();
  console.log(`Redis stopped mid-load (10 clients via nginx): ${[...during].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  const downLabels = new Set(downAnswers.map((a) => `${a.status} ${a.code}`));
  assert.deepEqual([...downLabels], ['503 state_unavailable'], 'sent and answered while Redis was down: only 503 state_unavailable');

  // 4. A daemon killed with -9 while it holds both of a key's slots: nginx sends new requests to the others; the
  // dead daemon's slots come back within the lease.
  const pending = [send(slow.url, keys.pair, new http.Agent()), send(slow.url, keys.pair, new http.Agent())];
  const probe = new Redis(redis.url, { lazyConnect: false });
  probe.on('error', () => {});
  t.after(() => probe.disconnect());
  const slotKey = `${PREFIX}s:${keys.pair.id}`;
  await waitFor(async () => (await probe.zcard(slotKey)) === 2, 'the slow daemon holding both slots');
  const refused = await send(d0.url, keys.pair, agent);
  assert.deepEqual(refused, { status: 429, code: 'concurrency_limited' }, 'both slots are held, by another daemon');
  slow.child.kill('SIGKILL');
  const killedAt = Date.now();
  await slow.exited;
  await Promise.all(pending);
  const leases = (await probe.zrange(slotKey, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
  // Leases are renewed for at most LEASE_S from the last heartbeat (Redis's clock, the same machine's here).
  for (const end of leases) assert.ok(end <= killedAt + LEASE_S * 1000 + 1000, `lease ends ${end - killedAt} ms after the kill`);
  await waitFor(async () => (await send(d1.url, keys.pair, agent)).status === 200, 'a slot of the dead daemon to come back');
  const recoveredMs = Date.now() - killedAt;
  console.log(`slots of the daemon killed -9 (lease ${LEASE_S} s) usable again after ${recoveredMs} ms; held then: ${leases.length}`);
  // One of nginx's three killed too: new requests are sent to the two left (a refused connection moves on).
  d2.child.kill('SIGKILL');
  await d2.exited;
  const afterKill = await load(front, keys.open, 30, 5);
  console.log(`after kill -9 of one of nginx's three daemons: ${[...afterKill].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  assert.deepEqual(Object.fromEntries(afterKill), { 200: 30 }, 'nginx answers from the live daemons');
});

function readyz(base: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve) => {
    http.get(new URL('/readyz', base), { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', () => resolve(0));
  });
}
