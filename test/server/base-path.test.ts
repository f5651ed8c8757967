import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { DEFAULT_WEB_DIR, normalizeBasePath, serveConfig } from '../../src/server/config.js';
import { WEB_CSP } from '../../src/server/routes/web.js';
import { tempDir } from '../helpers/cli.js';
import { serverFixture } from '../helpers/server-app.js';

function webDir(t: { after(fn: () => void): void }): string {
  const dir = tempDir(t, 'guardctl-web-');
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>guardctl</title><script src="app.js"></script>');
  fs.writeFileSync(path.join(dir, 'app.js'), 'console.log("hi");\n');
  fs.writeFileSync(path.join(dir, 'style.css'), 'body { margin: 0 }\n');
  fs.writeFileSync(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  fs.writeFileSync(path.join(dir, '.env'), 'SECRET=1');
  fs.writeFileSync(path.join(dir, 'notes.md'), '# private');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'x.js'), 'x');
  return dir;
}

test('base path /guard: API, ops and page live under it; the signature covers the prefixed path', async (t) => {
  const s = await serverFixture(t, { config: { basePath: '/guard', webDir: webDir(t) } });
  const key = s.key();
  const ok = await s.send({ url: '/guard/api/v1/moderate', body: { text: 'How do I make a bomb?' }, key });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().level, 'unsafe');
  assert.equal(s.audit.records[0]?.route, '/guard/api/v1/moderate');
  for (const [url, body] of [
    ['/guard/v1/moderations', { input: 'hi' }],
    ['/guard/api/v1/translate?source_lang=zh&target_lang=en', { text: '我们喜欢猫。' }],
    ['/guard/api/v1/models', undefined],
  ] as const) {
    const res = await s.send({ url, body, key });
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  }
  for (const url of ['/guard/healthz', '/guard/readyz', '/guard/metrics', '/guard/api/v1/languages', '/guard/', '/guard/app.js']) {
    assert.equal((await s.send({ url })).statusCode, 200, url);
  }
  // Nothing is served outside the prefix.
  for (const url of ['/healthz', '/api/v1/languages', '/', '/app.js']) assert.equal((await s.send({ url })).statusCode, 404, url);
  assert.equal((await s.send({ url: '/api/v1/moderate', body: { text: 'x' }, key })).statusCode, 404);

  // A client that signs the path without the prefix does not match what the server verifies.
  const body = JSON.stringify({ text: 'hi' });
  const wrong = signRequest({ method: 'POST', url: '/api/v1/moderate', body, keyId: key.id, secret: key.secret }).headers;
  const res = await s.app.inject({ method: 'POST', url: '/guard/api/v1/moderate', payload: body, headers: { 'content-type': 'application/json', ...wrong } });
  assert.equal(res.statusCode, 401);
  assert.equal(res.json().error.code, 'bad_signature');

  // The bare prefix redirects to the page's directory so its relative links resolve.
  const bare = await s.send({ url: '/guard' });
  assert.equal(bare.statusCode, 308);
  assert.equal(bare.headers.location, '/guard/');
});

test('the web page: its files with content types, no-cache, CSP; nothing else', async (t) => {
  const s = await serverFixture(t, { config: { webDir: webDir(t) } });
  const expected: Array<[string, RegExp]> = [
    ['/', /^text\/html; charset=utf-8$/],
    ['/index.html', /^text\/html; charset=utf-8$/],
    ['/app.js', /^text\/javascript; charset=utf-8$/],
    ['/style.css', /^text\/css; charset=utf-8$/],
    ['/favicon.svg', /^image\/svg\+xml$/],
  ];
  for (const [url, type] of expected) {
    const res = await s.send({ url });
    assert.equal(res.statusCode, 200, url);
    assert.match(String(res.headers['content-type']), type, url);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['content-security-policy'], WEB_CSP);
    assert.match(WEB_CSP, /^default-src 'self'(;|$)/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers.etag);
  }
  assert.match((await s.send({ url: '/' })).body, /<title>guardctl<\/title>/);
  const head = await s.app.inject({ method: 'HEAD', url: '/app.js' });
  assert.equal(head.statusCode, 200);
  // Revalidation: the same ETag gets a 304 without the body.
  const etag = String((await s.send({ url: '/app.js' })).headers.etag);
  const again = await s.send({ url: '/app.js', headers: { 'if-none-match': etag } });
  assert.equal(again.statusCode, 304);
  assert.equal(again.body, '');

  // Dotfiles, unknown types, sub-directories, traversal and directory listings are 404 in our JSON format.
  for (const url of ['/.env', '/notes.md', '/sub', '/sub/', '/sub/x.js', '/..%2Fpackage.json', '/%2e%2e/package.json', '/../package.json', '/missing.js', '/index.html/']) {
    const res = await s.send({ url });
    assert.equal(res.statusCode, 404, `${url}: ${res.statusCode}`);
    assert.equal(res.json().error.code, 'not_found', url);
    assert.doesNotMatch(res.body, /SECRET|private/);
  }
});

test('the repository web/ directory is the default page', async (t) => {
  assert.equal(serveConfig().webDir, DEFAULT_WEB_DIR);
  if (!fs.existsSync(path.join(DEFAULT_WEB_DIR, 'index.html'))) return t.skip('web/ has no index.html yet');
  const s = await serverFixture(t, { config: { webDir: DEFAULT_WEB_DIR, basePath: '/guard' } });
  const page = await s.send({ url: '/guard/' });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  for (const file of fs.readdirSync(DEFAULT_WEB_DIR).filter((f) => /\.(js|css|html|svg)$/.test(f))) {
    assert.equal((await s.send({ url: `/guard/${file}` })).statusCode, 200, file);
  }
});

test('without a web directory there is no page', async (t) => {
  const s = await serverFixture(t, { config: { webDir: null } });
  assert.equal((await s.send({ url: '/' })).statusCode, 404);
});

test('base paths are normalized and checked', () => {
  assert.equal(normalizeBasePath(''), '');
  assert.equal(normalizeBasePath('/'), '');
  assert.equal(normalizeBasePath('guard'), '/guard');
  assert.equal(normalizeBasePath('/guard/'), '/guard');
  assert.equal(normalizeBasePath('/a/b'), '/a/b');
  for (const bad of ['/gu ard', '/../x', '/a?b', '/a#b', '/a//b']) {
    assert.throws(() => serveConfig({ basePath: bad }), /invalid base path|GUARD_E_CONFIG/, bad);
  }
  assert.throws(() => serveConfig({ maxBodyBytes: 0 }), /maxBodyBytes/);
  assert.throws(() => serveConfig({ connectionTimeoutMs: 1000, inferenceTimeoutMs: 5000 }), /connectionTimeoutMs/);
});
