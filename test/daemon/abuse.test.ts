import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import { percentile } from '../../bench/setup.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

/*
 * The abuse run of issue 10, against the real daemon process on loopback: one key floods, a restart happens in
 * the middle, and the event loop is attacked with long texts and deep unsigned JSON. Every loop is bounded in
 * count and time; waits follow events (log lines, answers); timeouts are bounds that only a hang reaches.
 */

// The CPU provider only: no WebGPU probe and warm-up at each of the three starts.
const SERVE_ARGS = ['--device', 'cpu'];
const MODERATE = '/api/v1/moderate';
const SHORT = JSON.stringify({ text: 'hello there, how are you?' });
// Small, so that nonces recorded for refused requests fill it early in the flood, even on a loaded machine (the
// finding: 503 for every key), yet several times what the keys' own limits admit in the whole flood. The later
// phases run with the default: their senders are not what they test.
const NONCE_CAPACITY = 200;
// The flood lasts at least 2 s and 3 x the capacity in requests, at most 10 s or 10,000 requests.
const FLOOD = { minRequests: 3 * NONCE_CAPACITY, minMs: 2_000, maxRequests: 10_000, maxMs: 10_000 };
const FLOOD_CONNECTIONS = 16;
const METERED_DAILY = 10;
const DURABLE_DAILY = 6;
const HEALTHZ_POLLS = 100;
const HEALTHZ_QUIET_POLLS = 50;
const HEALTHZ_LOAD_FACTOR = 20;
const HEALTHZ_EVERY_MS = 100;
const HEALTHZ_P99_MS = 50;
// How long the last polls may take to come back before they count as late as they are; only a stall reaches it.
const HEALTHZ_GRACE_MS = 5_000;
// 340,000 x a 3-byte CJK character: about 1 MB, just under the default --max-body of 1 MiB.
const LONG_TEXT = JSON.stringify({ text: '猫'.repeat(340_000) });
const DEEP_JSON = '['.repeat(524_000);

/** What `keys create --json` prints: the credentials and the effective limits. */
interface Key {
  id: string;
  secret: string;
  rate: number | null;
  burst: number | null;
}

interface Prepared {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Answer {
  /** 0 when no answer came (the connection failed or was aborted). */
  status: number;
  /** The reason code of an error answer, or the connection error. */
  code?: string;
}

function signed(key: Key, body: string, opts: { version?: 1 | 2; timestamp?: string } = {}): Prepared {
  const { headers } = signRequest({ method: 'POST', url: MODERATE, body, keyId: key.id, secret: key.secret, version: opts.version ?? 2, timestamp: opts.timestamp });
  return { method: 'POST', path: MODERATE, body, headers: { ...headers, 'content-type': 'application/json' } };
}

/** One request over `agent`; resolves with the status and reason code, never rejects. */
function send(base: string, req: Prepared, agent: http.Agent, signal?: AbortSignal): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (a: Answer) => {
      if (!settled) {
        settled = true;
        resolve(a);
      }
    };
    const headers = req.body === undefined ? req.headers : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) };
    const r = http.request(new URL(req.path, base), { method: req.method, headers, agent, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: NodeJS.ErrnoException) => settle({ status: 0, code: err.code ?? err.name }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let code: string | undefined;
        if (status >= 400) {
          try {
            code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code;
          } catch {
            code = 'not_json';
          }
        }
        settle({ status, code });
      });
    });
    r.on('error', (err: NodeJS.ErrnoException) => settle({ status: 0, code: err.code ?? err.name }));
    r.end(req.body);
  });
}

/** Answers counted by "status reason", per sender, for the assertions and the printed figures. */
class Tally {
  readonly counts = new Map<string, Map<string, number>>();
  add(who: string, a: Answer): void {
    const label = a.status === 0 ? `no answer (${a.code})` : a.code ? `${a.status} ${a.code}` : String(a.status);
    const m = this.counts.get(who) ?? new Map<string, number>();
    m.set(label, (m.get(label) ?? 0) + 1);
    this.counts.set(who, m);
  }
  of(who: string): Map<string, number> {
    return this.counts.get(who) ?? new Map();
  }
  total(who: string, filter: (label: string) => boolean = () => true): number {
    let n = 0;
    for (const [label, count] of this.of(who)) if (filter(label)) n += count;
    return n;
  }
  show(who: string): string {
    return [...this.of(who)].map(([label, n]) => `${label}: ${n}`).join(', ') || 'nothing';
  }
}

const OWN_LIMITS = /^429 (rate_limited|concurrency_limited|quota_exhausted)$/;

// The poller runs in its own thread: the test's attack loops (hashing 1 MB bodies) never delay a poll or its
// clock. Polls go out on a clock, not after each answer, so a stalled daemon shows as late answers, as a client
// sees it; those still unanswered a grace period after the last one count as late as they are by then.
const POLLER = `
const { parentPort, workerData: { url, count, everyMs, graceMs } } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true });
const polls = [];
let finished = false;
const finish = () => {
  if (finished) return;
  finished = true;
  const now = performance.now();
  parentPort.postMessage(polls.map((p) => ({ ms: (p.end ?? now) - p.start, status: p.status })));
  agent.destroy();
};
const settle = (poll, status) => {
  poll.end = performance.now();
  poll.status = status;
  if (polls.length === count && polls.every((p) => p.end !== undefined)) finish();
};
const timer = setInterval(() => {
  const poll = { start: performance.now(), end: undefined, status: undefined };
  polls.push(poll);
  http.get(url, { agent }, (res) => {
    res.resume();
    res.on('end', () => settle(poll, res.statusCode));
  }).on('error', () => settle(poll, 0));
  if (polls.length === count) {
    clearInterval(timer);
    setTimeout(finish, graceMs).unref();
  }
}, everyMs);
`;

interface HealthzPolls {
  /** Latencies in ms, sorted. */
  ms: number[];
  /** Answers other than 200 (a failed connection counts). */
  failed: number;
  /** Polls still unanswered at the end (their latency is a lower bound). */
  unanswered: number;
}

async function pollHealthz(url: string, count: number): Promise<HealthzPolls> {
  const worker = new Worker(POLLER, { eval: true, workerData: { url, count, everyMs: HEALTHZ_EVERY_MS, graceMs: HEALTHZ_GRACE_MS } });
  try {
    const polls = await new Promise<Array<{ ms: number; status: number | undefined }>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return {
      ms: polls.map((p) => p.ms).sort((a, b) => a - b),
      failed: polls.filter((p) => p.status !== undefined && p.status !== 200).length,
      unanswered: polls.filter((p) => p.status === undefined).length,
    };
  } finally {
    await worker.terminate();
  }
}

async function createKey(home: string, name: string, args: string[]): Promise<Key> {
  const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', name, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.json<Key>();
}

/** Sends fresh signed requests one after another until one is not a 200; how many were, and the first that was not. */
async function spendQuota(base: string, key: Key, agent: http.Agent, most: number): Promise<{ accepted: number; then?: Answer }> {
  for (let accepted = 0; accepted < most; accepted++) {
    const a = await send(base, signed(key, SHORT), agent);
    if (a.status !== 200) return { accepted, then: a };
  }
  return { accepted: most };
}

// A hang's bound only: three daemon starts (each bounded by serveProcess at 3 x HANG_BOUND_MS on a busy machine),
// the flood (at most 10 s) and the polls (about 20 s) fit inside it with room to spare.
const ABUSE_HANG_BOUND_MS = 10 * HANG_BOUND_MS;

test('abuse: a flooding key harms no other key, a restart replays nothing and resets no quota, /healthz stays prompt', { timeout: ABUSE_HANG_BOUND_MS }, async (t) => {
  const home = tempDir(t);
  // Every loop shares 127.0.0.1: no address block, so each unsigned request is handled in full (the harder
  // case for the daemon) and the signed loops are never throttled for the unsigned one's failures.
  const configure = (gate: string[]) => fs.writeFileSync(path.join(home, 'guardctl.yaml'), ['gate:', '  auth_failure_limit: 1000000', ...gate, ''].join('\n'));
  configure([`  nonce_capacity: ${NONCE_CAPACITY}`]);
  const keys = {
    flood: await createKey(home, 'flood', ['--tier', 'free']),
    // A rate well above its trickle, so that its only limit within reach is the daily quota.
    metered: await createKey(home, 'metered', ['--tier', 'free', '--daily', String(METERED_DAILY), '--rate', '20/s', '--burst', '20']),
    durable: await createKey(home, 'durable', ['--tier', 'free', '--daily', String(DURABLE_DAILY), '--rate', '20/s', '--burst', '20']),
    enterprise: await createKey(home, 'enterprise', ['--tier', 'enterprise']),
    // Phase 3's sender of long texts: no limits, so every text reaches the model route's input check.
    bulk: await createKey(home, 'bulk', ['--tier', 'enterprise']),
  };
  const utcDay = () => new Date().toISOString().slice(0, 10);
  const day = utcDay();
  // Daily quotas reset at 00:00 UTC: across midnight a fresh quota is correct, so those checks are skipped.
  const sameDay = (st: TestContext) => {
    if (utcDay() === day) return true;
    st.diagnostic('the UTC day changed during the run: quota checks skipped');
    return false;
  };

  let daemon: ServeProcess = await serveProcess(home, SERVE_ARGS);
  t.after(() => daemon.child.kill('SIGKILL'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  // The new process listens on another port, so the agent's connections to the old one are never reused.
  const restart = async (signal: 'SIGTERM' | 'SIGKILL') => {
    daemon.child.kill(signal);
    const code = await daemon.exited;
    if (signal === 'SIGTERM') assert.equal(code, 0, `the SIGTERM drain exits 0; output:\n${daemon.lines.slice(-20).join('\n')}`);
    daemon = await serveProcess(home, SERVE_ARGS);
  };

  // Accepted requests that an eavesdropper captured, to be replayed after each restart.
  const captured: Array<{ what: string; req: Prepared }> = [];
  const capture = async (label: string) => {
    const now = Math.floor(Date.now() / 1000);
    for (const version of [1, 2] as const) {
      for (const [when, ts] of [['now', now], ['now+290s', now + 290]] as const) {
        const req = signed(keys.enterprise, JSON.stringify({ text: `captured ${label} v${version} ${when}` }), { version, timestamp: String(ts) });
        const a = await send(daemon.url, req, agent);
        assert.equal(a.status, 200, `a fresh v${version} request (${when}) is accepted: ${a.status} ${a.code ?? ''}`);
        captured.push({ what: `${label} v${version} ${when}`, req });
      }
    }
  };
  const replayAll = async (st: TestContext, after: string) => {
    const answers = [];
    for (const c of captured) answers.push({ what: c.what, answer: await send(daemon.url, c.req, agent) });
    st.diagnostic(`replays after ${after}: ${answers.map((x) => `${x.what} -> ${x.answer.status} ${x.answer.code ?? ''}`).join('; ')}`);
    for (const { what, answer } of answers) {
      assert.deepEqual(answer, { status: 401, code: 'replayed_nonce' }, `the captured request (${what}) replayed after ${after}`);
    }
  };

  let meteredAccepted = 0;
  await t.test('before the flood: captured requests, part of a quota spent', async () => {
    await capture('before the restarts');
    const spent = await spendQuota(daemon.url, keys.durable, agent, 2);
    assert.equal(spent.accepted, 2, `the durable key's first requests: ${JSON.stringify(spent.then)}`);
  });

  await t.test('phase 1: a free key floods; the others get 200 or 429 by their own limits, never 503', async (st) => {
    const tally = new Tally();
    const floodAgent = new http.Agent({ keepAlive: true, maxSockets: FLOOD_CONNECTIONS });
    const trickleAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    st.after(() => (floodAgent.destroy(), trickleAgent.destroy()));
    let sent = 0;
    let trickling = true;
    const started = performance.now();
    const floodOver = () => {
      const ms = performance.now() - started;
      return (sent >= FLOOD.minRequests && ms >= FLOOD.minMs) || sent >= FLOOD.maxRequests || ms >= FLOOD.maxMs;
    };
    const flooders = Array.from({ length: FLOOD_CONNECTIONS }, async () => {
      while (!floodOver()) {
        sent++;
        tally.add('flood', await send(daemon.url, signed(keys.flood, SHORT), floodAgent));
      }
    });
    // A steady trickle, paced (load shaping, not ordering) well below the metered key's rate so that only its
    // daily quota can refuse it.
    const trickle = async (who: string, key: Key, pauseMs: number) => {
      const sequence: Answer[] = [];
      while (trickling) {
        const a = await send(daemon.url, signed(key, SHORT), trickleAgent);
        sequence.push(a);
        tally.add(who, a);
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      return sequence;
    };
    const trickles = Promise.all([trickle('metered', keys.metered, 100), trickle('enterprise', keys.enterprise, 200)]);
    await Promise.all(flooders);
    const floodSeconds = (performance.now() - started) / 1000;
    trickling = false;
    const [metered] = await trickles;
    // Counted before any assertion: phase 2b checks the quota against it even when this phase fails.
    meteredAccepted = metered.filter((a) => a.status === 200).length;

    for (const who of ['flood', 'metered', 'enterprise']) st.diagnostic(`phase 1 ${who}: ${tally.show(who)}`);
    st.diagnostic(`phase 1: ${sent} flood requests over ${FLOOD_CONNECTIONS} connections in ${floodSeconds.toFixed(2)} s (${Math.round(sent / floodSeconds)}/s)`);

    const unavailable = ['flood', 'metered', 'enterprise'].filter((who) => tally.total(who, (l) => l.startsWith('503')) > 0);
    assert.deepEqual(unavailable, [], `503 answers while one key floods: ${unavailable.map((w) => `${w}: ${tally.show(w)}`).join('; ')}`);
    assert.equal(tally.total('flood', (l) => l !== '200' && !OWN_LIMITS.test(l)), 0, `the flooding key gets only 200 or 429 by its limits: ${tally.show('flood')}`);
    const floodAccepted = tally.total('flood', (l) => l === '200');
    assert.ok(floodAccepted >= 1, 'the flooding key still gets answers within its limits');
    // A token bucket admits at most burst + rate * t in t seconds, however fast the key sends.
    const { rate, burst } = keys.flood;
    assert.ok(rate !== null && burst !== null, 'the free tier has a rate and a burst');
    assert.ok(floodAccepted <= burst + rate * floodSeconds,
      `the flooding key got ${floodAccepted} requests through in ${floodSeconds.toFixed(2)} s; its limit allows ${burst} + ${rate}/s`);
    assert.equal(tally.total('enterprise', (l) => l !== '200'), 0, `the enterprise key has no limits: ${tally.show('enterprise')}`);
    assert.ok(tally.total('enterprise') >= 1);

    // The metered key: 200 until its daily quota is spent, then quota_exhausted, nothing else.
    assert.ok(meteredAccepted >= 1, `the metered key was answered: ${tally.show('metered')}`);
    assert.ok(meteredAccepted <= METERED_DAILY, `the metered key got ${meteredAccepted} through; its quota is ${METERED_DAILY}`);
    const inOrder = metered.every((a, i) => (i < meteredAccepted ? a.status === 200 : a.status === 429 && a.code === 'quota_exhausted'));
    assert.ok(inOrder, `the metered key got ${meteredAccepted} x 200, then only quota_exhausted: ${tally.show('metered')}`);
    if (metered.length > meteredAccepted) assert.equal(meteredAccepted, METERED_DAILY, 'quota_exhausted only once the quota is spent');
  });

  // Each check is its own subtest so that every finding shows, even when an earlier one fails.
  await t.test('phase 2a: after a SIGTERM restart, captured requests are refused as replayed', async (st) => {
    configure([]);
    await restart('SIGTERM');
    await replayAll(st, 'a SIGTERM restart');
  });

  await t.test('phase 2b: after a SIGTERM restart, a daily quota goes on where it was', async (st) => {
    const metered = await spendQuota(daemon.url, keys.metered, agent, METERED_DAILY + 1);
    st.diagnostic(`after SIGTERM: the metered key had ${METERED_DAILY - meteredAccepted} of ${METERED_DAILY} left and got ${metered.accepted} x 200, then ${metered.then?.status} ${metered.then?.code ?? ''}`);
    if (!sameDay(st)) return;
    assert.equal(metered.accepted, METERED_DAILY - meteredAccepted, `after a SIGTERM restart the metered key (--daily ${METERED_DAILY}, ${meteredAccepted} used) got ${metered.accepted} more`);
    assert.deepEqual(metered.then, { status: 429, code: 'quota_exhausted' });
  });

  await t.test('phase 2c: after kill -9, captured requests (also those of the killed process) are refused as replayed', async (st) => {
    const durable = await spendQuota(daemon.url, keys.durable, agent, 1);
    assert.equal(durable.accepted, 1, `the durable key's third request: ${JSON.stringify(durable.then)}`);
    await capture('between the restarts');
    await restart('SIGKILL');
    await replayAll(st, 'a SIGKILL restart');
  });

  await t.test('phase 2d: after kill -9, a daily quota goes on where it was', async (st) => {
    const rest = await spendQuota(daemon.url, keys.durable, agent, DURABLE_DAILY + 1);
    st.diagnostic(`after SIGKILL: the durable key had ${DURABLE_DAILY - 3} of ${DURABLE_DAILY} left and got ${rest.accepted} x 200, then ${rest.then?.status} ${rest.then?.code ?? ''}`);
    if (!sameDay(st)) return;
    assert.equal(rest.accepted, DURABLE_DAILY - 3, `after kill -9 the durable key (--daily ${DURABLE_DAILY}, 3 used) got ${rest.accepted} more`);
    assert.deepEqual(rest.then, { status: 429, code: 'quota_exhausted' });
  });

  await t.test(`phase 3: /healthz p99 < ${HEALTHZ_P99_MS} ms (${HEALTHZ_LOAD_FACTOR} x its quiet p99 on a loaded machine) while 1 MB texts and unsigned deep JSON arrive in two loops`, async (st) => {
    // One measurement: /healthz polled quietly, then under the two attack loops.
    // One tally for both measurements: every answer to the attacks counts, in the kept measurement or not.
    const tally = new Tally();
    const measure = async (round: number, earlierQuietP99 = Infinity) => {
      const quiet = await pollHealthz(`${daemon.url}/healthz`, HEALTHZ_QUIET_POLLS);
      st.diagnostic(`phase 3 (${round}) /healthz without the attack: ${HEALTHZ_QUIET_POLLS} polls, p50 ${percentile(quiet.ms, 50).toFixed(1)} ms, p99 ${percentile(quiet.ms, 99).toFixed(1)} ms, max ${quiet.ms.at(-1)!.toFixed(1)} ms`);
      const attackAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });
      const stop = new AbortController();
      st.after(() => (stop.abort(), attackAgent.destroy()));
      let polling = true;
      const attack = async (who: string, next: () => Prepared) => {
        while (polling) tally.add(who, await send(daemon.url, next(), attackAgent, stop.signal));
      };
      const loops = [
        attack('long text', () => signed(keys.bulk, LONG_TEXT)),
        attack('deep json', () => ({ method: 'POST', path: MODERATE, body: DEEP_JSON, headers: { 'content-type': 'application/json' } })),
      ];
      const healthz = await pollHealthz(`${daemon.url}/healthz`, HEALTHZ_POLLS);
      polling = false;
      stop.abort();
      await Promise.all(loops);
      attackAgent.destroy();
      const [p50, p99, max] = [percentile(healthz.ms, 50), percentile(healthz.ms, 99), healthz.ms.at(-1)!];
      for (const who of ['long text', 'deep json']) st.diagnostic(`phase 3 (${round}) ${who}: ${tally.show(who)}`);
      st.diagnostic(`phase 3 (${round}) /healthz: ${HEALTHZ_POLLS} polls every ${HEALTHZ_EVERY_MS} ms, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms, not 200: ${healthz.failed}, unanswered: ${healthz.unanswered}`);
      // The issue's figure where the machine is quiet (a quiet p99 up to 2.5 ms). On a loaded one, a daemon kept busy
      // waits for a core between its slices whatever it does: 20 times the quiet p99 (seen up to 18x at a load
      // average of 18 on 2 cores). A stalled event loop (seconds, today) fails either way.
      // A second measurement's quiet polls follow the first's attack at once, and could catch a stall still going
      // on: the quieter of the two baselines sets its bound.
      const quietP99 = Math.min(earlierQuietP99, percentile(quiet.ms, 99));
      const bound = Math.max(HEALTHZ_P99_MS, HEALTHZ_LOAD_FACTOR * quietP99);
      return { healthz, p50, p99, max, bound, quietP99 };
    };
    // A daemon that stalls on these requests stalls every time they come. Once in a full suite run (2026-12-07) two
    // polls of a hundred came 1.4 s late while other test files loaded real-format models beside this one, and a
    // run of this file alone just after gave p99 22 ms: so a miss is measured once more, and the second decides.
    // Every other check covers both measurements.
    const first = await measure(1);
    const rounds = first.p99 < first.bound ? [first] : [first, await measure(2, first.quietP99)];
    const { p50, p99, max, bound } = rounds.at(-1)!;
    assert.ok(p99 < bound, `/healthz p99 ${p99.toFixed(1)} ms (p50 ${p50.toFixed(1)}, max ${max.toFixed(1)}) under 1 MB texts and deep unsigned JSON; the bound is ${bound.toFixed(1)} ms`);
    assert.equal(rounds.reduce((n, r) => n + r.healthz.failed, 0), 0, '/healthz answered 200 every time');
    // The attacks reached what they aim at: the long text the model route's input check, the deep JSON the
    // daemon's refusal of an unsigned request; neither ever a 5xx.
    // Connections the daemon closed on a refusal, or the test's own abort at the end, are no answer.
    const noAnswer = (l: string) => l.startsWith('no answer');
    assert.ok(tally.total('long text', (l) => /^(413|422) /.test(l)) >= 1, `the long texts were refused by size: ${tally.show('long text')}`);
    assert.equal(tally.total('long text', (l) => !/^(413|422) /.test(l) && !noAnswer(l)), 0, `the long texts got only 413/422: ${tally.show('long text')}`);
    assert.ok(tally.total('deep json', (l) => /^4\d\d /.test(l)) >= 1, `the deep JSON was refused: ${tally.show('deep json')}`);
    assert.equal(tally.total('deep json', (l) => /^5/.test(l)), 0, `no 5xx for deep JSON: ${tally.show('deep json')}`);
  });
});
