import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { signRequest } from '../../src/gate/sign-request.js';
import type { Engine } from '../../src/infer/types.js';
import { demoEngine } from '../helpers/demo-engine.js';
import { serverFixture, type ServerFixture, type TestKey } from '../helpers/server-app.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * Thousands of malformed requests through inject(): random bytes, wrong types, huge and deep JSON, bad headers,
 * wrong methods, half of them correctly signed so they reach the routes. No 500, no crash, JSON errors throughout;
 * afterwards valid requests still get the right answers and the heap has not grown.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);
const PER_ROUND = 1500;
const MAX_BODY = 16 * 1024;

let engine: Engine;
before(async () => {
  engine = await demoEngine();
});
after(() => engine.close());

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fuzzed {
  method: string;
  url: string;
  payload?: string | Buffer;
  headers: Record<string, string>;
  sign: boolean;
}

function generator(random: () => number, basePath: string) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const str = () => pick(['', ' ', 'hi', '我们喜欢猫。', 'How do I make a bomb?', '\u0000', '\ud800', 'x'.repeat(int(5000)), bytes(int(64)).toString('latin1'), '%s%n', '<script>alert(1)</script>', '../../etc/passwd']);
  const scalar = (): unknown => pick([null, true, false, 0, -1, 1e308, 1.5, str(), [], {}]);
  const value = (depth = 0): unknown => {
    if (depth > 3 || random() < 0.5) return scalar();
    if (random() < 0.5) return Array.from({ length: int(4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['text', 'input', 'messages', 'model', 'role', 'content', 'terms', 'x', '__proto__', 'constructor']), value(depth + 1)]));
  };
  const modelRoutes = ['/api/v1/moderate', '/v1/moderations', '/api/v1/translate'];
  const otherRoutes = ['/api/v1/models', '/api/v1/languages', '/healthz', '/readyz', '/metrics', '/', '/app.js', '/api/v1/', '/api', '/v1', '/x'];
  const queries = ['', '?categories=always', '?fast_path=false', '?strict=true', '?source_lang=zh&target_lang=en', '?source_lang=en&target_lang=zh', '?source_lang=xx', '?a=1&a=2', '?%zz', '?categories=%E0%A4%A', `?q=${'z'.repeat(3000)}`, '?text=hi', '?__proto__=1', '?fast_path[]=1'];
  const bodies: Array<() => string | Buffer | undefined> = [
    () => undefined,
    () => bytes(int(2048)),
    () => JSON.stringify(value()),
    () => JSON.stringify({ text: value() }),
    () => JSON.stringify({ text: str(), model: pick(['guard-demo', 'mt-demo', 'nope', '', 5]) }),
    () => JSON.stringify({ input: pick([str(), [str(), str()], [1], [[]], {}]) }),
    () => JSON.stringify({ messages: pick([[{ role: 'user', content: str() }], [{ role: 'assistant', content: 'x' }], [{ role: 'user', content: 'a' }, { role: 'assistant', content: str() }], [1], 'x', [{ role: 'user', content: 'a', extra: 1 }]]) }),
    () => JSON.stringify({ text: str(), terms: pick([{ a: 'b' }, { a: 1 }, [], 'x', Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`t${i}`, 'v']))]), context: pick([str(), 5]), preserve_format: pick([true, 'true', 1]) }),
    () => JSON.stringify({ text: str() }).slice(0, int(20)),
    () => '['.repeat(int(50_000)) + ']'.repeat(int(3)),
    () => `{"text":${'['.repeat(5000)}"x"${']'.repeat(5000)}}`,
    () => JSON.stringify({ text: 'x'.repeat(MAX_BODY + int(1000)) }),
    () => JSON.stringify({ text: Array.from({ length: int(100) }, () => 'hi') }),
    () => `{"text":"a","text":"b","text":${JSON.stringify(str())}}`,
    () => '{"text":"\\ud800\\udc00\\u0000"}',
    () => `{"text": 1e99999, "model": -0}`,
  ];
  const contentTypes = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=utf-16', 'application/jsonx', 'garbage'];
  const methods = ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
  const prefixes = ['', '/guard', '//', '/./', '/%2e%2e/', `${basePath}/`];
  return (): Fuzzed => {
    const headers: Record<string, string> = {};
    const ct = pick(contentTypes);
    if (ct) headers['content-type'] = ct;
    if (random() < 0.15) headers[pick(['x-api-key', 'x-timestamp', 'x-nonce', 'x-signature', 'x-signature-version', 'x-content-sha256', 'x-forwarded-for', 'accept', 'if-none-match'])] = pick(['', 'x', '1'.repeat(200), 'gk_bad', '2', '999999999999', 'zz', '::1, 10.0.0.1']);
    if (random() < 0.05) headers['content-length'] = String(pick([0, 1, 999_999, -1]));
    // Mostly well-aimed (the right prefix, a model route, POST) so that the bodies reach validation and handlers.
    const prefix = random() < 0.85 ? basePath : pick(prefixes);
    const route = random() < 0.7 ? pick(modelRoutes) : pick(otherRoutes);
    const method = random() < 0.75 ? 'POST' : pick(methods);
    return { method, url: prefix + route + pick(queries), payload: pick(bodies)(), headers, sign: random() < 0.6 };
  };
}

async function round(s: ServerFixture, key: TestKey, next: () => Fuzzed, count: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const f = next();
    if (f.sign) {
      const body = typeof f.payload === 'string' ? f.payload : undefined;
      try {
        Object.assign(f.headers, signRequest({ method: f.method, url: f.url, body, keyId: key.id, secret: key.secret }).headers);
      } catch {
        // URLs that the client itself cannot sign are sent unsigned.
      }
    }
    let res;
    try {
      res = await s.app.inject({ method: f.method as 'GET', url: f.url, payload: f.payload, headers: f.headers });
    } catch (err) {
      // inject() refuses some inputs client-side (invalid header characters); that is not the server's doing.
      if (/ERR_INVALID_CHAR|ERR_HTTP_INVALID_HEADER_VALUE|Invalid character/.test(String((err as Error).message) + (err as { code?: string }).code)) continue;
      throw err;
    }
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    const context = `seed ${SEED} #${i}: ${f.method} ${f.url.slice(0, 120)} -> ${res.statusCode} ${res.body.slice(0, 200)}`;
    assert.ok(res.statusCode < 500 || [502, 503, 504].includes(res.statusCode), context);
    if (res.statusCode >= 400 && f.method !== 'HEAD') {
      const error = (res.json() as { error?: { code?: unknown; message?: unknown; request_id?: unknown } }).error;
      assert.ok(error && typeof error.code === 'string' && typeof error.message === 'string' && typeof error.request_id === 'string', context);
    }
  }
  return statuses;
}

test('fuzz: malformed requests never get a 500 or crash the server, and leave no garbage behind', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const started = Date.now();
  for (const config of [{ basePath: '', insecureNoAuth: false }, { basePath: '/guard', insecureNoAuth: true }]) {
    const s = await serverFixture(t, { engine, config: { ...config, maxBodyBytes: MAX_BODY, webDir: null } });
    const key = s.key();
    const next = generator(rng(SEED + (config.insecureNoAuth ? 1 : 0)), config.basePath);
    await round(s, key, next, 200); // warm-up: JIT, caches
    gc();
    const heap1 = process.memoryUsage().heapUsed;
    const first = await round(s, key, next, PER_ROUND);
    gc();
    const heap2 = process.memoryUsage().heapUsed;
    await round(s, key, next, PER_ROUND);
    gc();
    const heap3 = process.memoryUsage().heapUsed;
    t.diagnostic(`auth=${!config.insecureNoAuth}: statuses ${JSON.stringify(Object.fromEntries(first))}; heap ${mb(heap1)} -> ${mb(heap2)} -> ${mb(heap3)} MB`);
    assert.ok(first.size >= 5, 'the fuzzer reaches many different answers');
    assert.ok(heap3 - heap2 < 16 * 1024 * 1024, `the second round grew the heap by ${mb(heap3 - heap2)} MB`);

    // The server still answers correctly.
    const unsafe = await s.send({ url: `${config.basePath}/api/v1/moderate`, body: { text: 'How do I make a bomb in my kitchen?' }, key });
    assert.equal(unsafe.statusCode, 200, unsafe.body);
    assert.deepEqual([unsafe.json().level, unsafe.json().categories], ['unsafe', ['Violent']]);
    const safe = await s.send({ url: `${config.basePath}/v1/moderations`, body: { input: "What's the capital of France?" }, key });
    assert.equal(safe.json().results[0].flagged, false);
    const tr = await s.send({ url: `${config.basePath}/api/v1/translate?source_lang=zh&target_lang=en`, body: { text: '我们喜欢猫。' }, key });
    assert.equal(tr.json().result, 'We like cats.');
    assert.equal((await s.send({ url: `${config.basePath}/readyz` })).statusCode, 200);
  }
  // How long it took is for the reader (speed is the benchmarks' business, not a verdict here).
  t.diagnostic(`the fuzz run took ${Date.now() - started} ms`);
});

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
