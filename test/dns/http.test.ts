import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { backoffMs, createHttp, endpointUrl, retryPolicy, type HttpOptions } from '../../src/dns/http.js';
import { factory as aliyun } from '../../src/dns/providers/aliyun/index.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const policy = { tries: 4, baseDelayMs: 500, maxDelayMs: 8000, timeoutMs: 1000 };

test('backoff doubles per retry, is capped, keeps half of it fixed and honours Retry-After within the cap', () => {
  assert.equal(backoffMs(policy, 1, () => 0), 250);
  assert.equal(backoffMs(policy, 1, () => 1), 500);
  assert.equal(backoffMs(policy, 3, () => 0.5), 1500);
  assert.equal(backoffMs(policy, 20, () => 1), 8000);
  assert.equal(backoffMs(policy, 20, () => 0), 4000);
  assert.equal(backoffMs(policy, 1, () => 0, 3), 3000);
  assert.equal(backoffMs(policy, 1, () => 0, 3600), 8000);
});

test('retry policy comes from the environment and refuses nonsense', () => {
  assert.deepEqual(retryPolicy('x', {}), { tries: 4, baseDelayMs: 500, maxDelayMs: 8000, timeoutMs: 30_000 });
  assert.equal(retryPolicy('x', { GUARDCTL_DNS_HTTP_TRIES: '7' }).tries, 7);
  assert.throws(() => retryPolicy('x', { GUARDCTL_DNS_HTTP_TRIES: '0' }), /x: GUARDCTL_DNS_HTTP_TRIES must be a positive whole number/);
});

test('endpoint overrides must be http(s) URLs, checked when the provider is built', () => {
  assert.equal(endpointUrl('x', 'X_ENDPOINT', 'http://127.0.0.1:8080/').host, '127.0.0.1:8080');
  assert.throws(() => endpointUrl('x', 'X_ENDPOINT', 'ftp://host/'), /x: X_ENDPOINT is not an http\(s\) URL/);
  const env = { Ali_Key: 'k', Ali_Secret: 's', GUARDCTL_ALIYUN_ENDPOINT: '127.0.0.1:9' };
  assert.throws(() => aliyun.create({ env, log: () => {} }), /aliyun: GUARDCTL_ALIYUN_ENDPOINT is not an http\(s\) URL/);
});

type Step = number | Error | { status: number; body?: unknown; headers?: Record<string, string> };

function harness(steps: Step[], extra: Partial<HttpOptions> = {}, env: NodeJS.ProcessEnv = {}) {
  const logs: string[] = [];
  const sleeps: number[] = [];
  let builds = 0;
  const fetchMock = (async () => {
    const step = steps.shift();
    if (step === undefined) throw new Error('no more steps');
    if (step instanceof Error) throw step;
    const s = typeof step === 'number' ? { status: step } : step;
    return new Response(s.body === undefined ? '' : JSON.stringify(s.body), { status: s.status, headers: s.headers });
  }) as typeof fetch;
  const call = createHttp({
    provider: 'demo', ctx: { env, log: (l, m) => logs.push(`${l} ${m}`) }, secrets: ['s3cr3t-value'],
    describe: (res) => String((res.json as { error?: string } | undefined)?.error ?? ''),
    fetch: fetchMock, sleep: async (ms) => void sleeps.push(ms), random: () => 0, ...extra,
  });
  const run = (action = 'list records') => call(action, () => (builds++, { method: 'GET', url: 'http://127.0.0.1:9/x' }));
  return { run, logs, sleeps, builds: () => builds };
}

const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });

test('network errors, 429 and 5xx are retried with a fresh request each time; the answer comes back', async () => {
  const h = harness([refused, { status: 429, headers: { 'retry-after': '2' } }, 502, { status: 200, body: { ok: true } }]);
  const res = await h.run();
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { ok: true });
  assert.equal(h.builds(), 4, 'signed requests are rebuilt for every try');
  assert.deepEqual(h.sleeps, [250, 2000, 1000]);
  assert.equal(h.logs.length, 3);
  assert.match(h.logs[0]!, /^warn demo: list records: network error: ECONNREFUSED; retrying in 0\.3s \(try 2 of 4\)$/);
  assert.match(h.logs[1]!, /HTTP 429; retrying in 2\.0s/);
});

test('an answer retrying cannot fix comes back at once', async () => {
  const h = harness([{ status: 403, body: { error: 'denied' } }]);
  assert.equal((await h.run()).status, 403);
  assert.equal(h.builds(), 1);
  assert.deepEqual(h.sleeps, []);
});

test('a provider-level "slow down" in a 200 is retried when the provider says so', async () => {
  const h = harness([{ status: 200, body: { error: 'RequestLimitExceeded' } }, { status: 200, body: {} }], {
    retryable: (res) => (res.json as { error?: string }).error === 'RequestLimitExceeded',
  });
  assert.equal((await h.run()).status, 200);
  assert.equal(h.builds(), 2);
});

test('the final error names the provider, the action, the tries and the last status, and scrubs secrets', async () => {
  const h = harness([500, 500, 500, { status: 503, body: { error: 'backend s3cr3t-value down' } }]);
  await assert.rejects(h.run('add TXT record at x'), (err: GuardError) => {
    assert.equal(err.code, 'GUARD_E_DNS_PROVIDER');
    assert.equal(err.message, 'demo: add TXT record at x failed after 4 tries: HTTP 503 (backend [redacted] down)');
    assert.match(err.hint ?? '', /GUARDCTL_DNS_HTTP_TRIES/);
    assert.deepEqual(err.details, { provider: 'demo', action: 'add TXT record at x', status: 503 });
    return true;
  });
  const n = harness([refused, refused], {}, { GUARDCTL_DNS_HTTP_TRIES: '2' });
  await assert.rejects(n.run(), (err: GuardError) => /failed after 2 tries: network error: ECONNREFUSED$/.test(err.message) && /reach/.test(err.hint ?? ''));
  assert.ok(!h.logs.join('\n').includes('s3cr3t-value'), 'retry logs are scrubbed too');
});

test('a request that hangs times out and counts as a network error', async () => {
  const hanging = ((_url: string, init: RequestInit) => new Promise((_resolve, reject) => {
    init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
  })) as typeof fetch;
  const h = harness([], { fetch: hanging }, { GUARDCTL_DNS_HTTP_TIMEOUT_MS: '20', GUARDCTL_DNS_HTTP_TRIES: '1' });
  // AbortSignal.timeout's timer does not hold the event loop open (a real socket would): this one does.
  const keepAlive = setTimeout(() => {}, HANG_BOUND_MS);
  await assert.rejects(h.run(), /demo: list records failed after 1 try: network error: timed out/);
  clearTimeout(keepAlive);
});
