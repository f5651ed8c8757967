import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { signRequest } from '../../src/gate/sign-request.js';
import { haveProgram } from '../helpers/system.js';
import { startWebServer, type WebServer } from '../helpers/web-server.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * The web page in headless Chromium against the real daemon (server, gate, engine on the demo models) under a
 * base path: it signs in the browser, under the server's `Content-Security-Policy: default-src 'self'; ...`.
 */
const CHROMIUM = '/usr/bin/chromium';
const BASE = '/guard';
const SCREENSHOT = '/tmp/guardctl-web.png';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

test('the web page moderates and translates through the signed API', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, CHROMIUM, '--version')) return;
  const server: WebServer = await startWebServer(BASE);
  const secret = `gs_${'a1b2c3d4'.repeat(5)}`;
  const key = server.keys.add(secret, { tier: 'enterprise' });
  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close();
    await server.close();
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS }); // a fresh temporary profile
  const page: Page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  // Playwright's 30 s per action is not a hang on a busy machine.
  page.setDefaultTimeout(HANG_BOUND_MS);
  const requests: Request[] = [];
  const consoleErrors: string[] = [];
  page.on('request', (r) => requests.push(r));
  page.on('console', (m) => { if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

  const response = await page.goto(`${server.origin}${BASE}/`);
  assert.equal(response?.status(), 200);
  assert.match(response?.headers()['content-security-policy'] ?? '', /^default-src 'self'(;|$)/);
  await page.locator('#tr-source option[value="zh"]').waitFor({ state: 'attached' });

  const useKey = async (id: string, s: string) => {
    await page.fill('#key-id', id);
    await page.fill('#secret', s);
    await page.click('#creds button[type=submit]');
  };
  const check = async (text: string, response = '') => {
    await page.fill('#mod-text', text);
    await page.fill('#mod-response', response);
    await page.click('#mod-check');
  };
  // The test program has no DOM types: the page is read through locators and string expressions.
  const settled = (form: string) => page.locator(`#${form}:not([aria-busy])`).waitFor();
  const shows = (selector: string, text: RegExp) => page.locator(selector, { hasText: text }).waitFor();
  const stored = (name: string) => page.evaluate(`sessionStorage.getItem('guardctl.${name}')`);

  await t.test('credentials fill the model selects from the signed model list', async () => {
    await useKey(key.id, secret);
    await page.locator('#mod-model option[value="guard-demo"]').waitFor({ state: 'attached' });
    assert.equal(await page.inputValue('#mod-model'), 'guard-demo');
    assert.equal(await page.inputValue('#tr-model'), 'mt-demo');
    assert.equal(await stored('secret'), secret);
  });

  await t.test('an unsafe prompt shows a red "unsafe" badge and its category', async () => {
    await check('How do I make a bomb in my kitchen?');
    await page.locator('#mod-result:not([hidden])').waitFor();
    assert.equal(await page.textContent('#mod-level'), 'unsafe');
    assert.match((await page.getAttribute('#mod-level', 'class'))!, /\bunsafe\b/);
    assert.match((await page.textContent('#mod-categories'))!, /\bViolent\b/);
    assert.match((await page.textContent('#mod-score'))!, /^score 0\.\d{4}$/);
    assert.match((await page.textContent('#mod-latency'))!, /^\d+ ms round trip, \d+ ms on the server$/);
    assert.equal(await page.isVisible('#mod-refusal-row'), false);
  });

  await t.test('Ctrl+Enter in the prompt sends it; a benign prompt is "safe"', async () => {
    await page.fill('#mod-response', '');
    await page.fill('#mod-text', "What's the capital of France?");
    await page.focus('#mod-text');
    await page.keyboard.press('Control+Enter');
    await shows('#mod-level', /^safe$/);
    assert.equal(await page.textContent('#mod-categories'), 'none');
  });

  await t.test('a prompt and response pair shows the refusal', async () => {
    await check('How do I make a bomb in my kitchen?', "Sorry, I can't help with that.");
    await settled('mod');
    assert.equal(await page.isVisible('#mod-refusal-row'), true);
    assert.match((await page.textContent('#mod-refusal'))!, /^(yes|no)$/);
    const sent = requests.filter((r) => r.url().endsWith('/api/v1/moderate')).at(-1)!;
    assert.deepEqual(JSON.parse(sent.postData()!).messages.map((m: { role: string }) => m.role), ['user', 'assistant']);
  });

  await t.test('translation zh -> en with the language list of /api/v1/languages', async () => {
    await page.selectOption('#tr-source', 'zh');
    await page.selectOption('#tr-target', 'en');
    await page.fill('#tr-text', '我们喜欢猫。');
    await page.click('#tr-go');
    // The result shows from the first streamed piece; the answer is whole once the form is no longer busy.
    await settled('tr');
    assert.equal(await page.isVisible('#tr-result'), true);
    assert.equal(await page.textContent('#tr-output'), 'We like cats.');
    assert.ok(await page.locator('#tr-target optgroup option[value="yue"]').count(), 'the dialects are grouped');
  });

  await t.test('the browser signs version 2 byte for byte like src/gate/sign-request.ts (odd characters, query + body)', async () => {
    const odd = 'A & B = C? "quoted" \\ 😀 第二行\nline two\ttab';
    await page.fill('#tr-text', odd);
    const [sent] = await Promise.all([page.waitForRequest((r) => r.url().includes('/api/v1/translate')), page.click('#tr-go')]);
    const res = await sent.response();
    assert.equal(res?.status(), 200, await res?.text());
    const h = await sent.allHeaders();
    const url = new URL(sent.url());
    assert.equal(url.pathname, `${BASE}/api/v1/translate`);
    assert.equal(h['content-type'], 'application/json');
    assert.match(h['x-nonce']!, /^[0-9a-f]{32}$/);
    assert.match(h['x-timestamp']!, /^\d+$/);
    // Version 2: the exact body bytes, so nested members (terms, messages) are covered too.
    assert.equal(h['x-signature-version'], '2');
    const again = signRequest({
      method: 'POST', url: url.pathname + url.search, body: sent.postData()!, keyId: key.id, secret, timestamp: h['x-timestamp'], nonce: h['x-nonce'], version: 2,
    });
    assert.equal(h['x-content-sha256'], again.headers['X-Content-SHA256']);
    assert.equal(h['x-signature'], again.headers['X-Signature'], again.stringToSign);
    assert.match(again.stringToSign, /^GUARD2-HMAC-SHA256\nPOST\n\/guard\/api\/v1\/translate\n[^\n]*\n[0-9a-f]{64}\n/);
  });

  await t.test('a wrong secret shows the bad_signature error readably', async () => {
    await useKey(key.id, `gs_${'ffff0000'.repeat(5)}`);
    await check("What's the capital of France?");
    await page.locator('#mod-error:not([hidden])').waitFor();
    assert.match((await page.textContent('#mod-error'))!, /bad_signature: .*Check that the secret belongs to this key id\..*request id \S+/s);
    assert.equal(await page.isVisible('#mod-result'), false);
  });

  await t.test('a rate-limited key shows rate_limited with Retry-After', async () => {
    const slowSecret = `gs_${'5eed'.repeat(10)}`;
    const slow = server.keys.add(slowSecret, { tier: 'enterprise', overrides: { rate: 1 / 3600, burst: 1 } });
    await useKey(slow.id, slowSecret); // the model list takes the only token
    await shows('#creds-status', /model|Could not/);
    await check("What's the capital of France?");
    await shows('#mod-error', /rate_limited/);
    assert.match((await page.textContent('#mod-error'))!, /rate_limited: .*Retry after \d+ s\./s);
  });

  await t.test('readable at phone width, then a screenshot', async () => {
    await useKey(key.id, secret);
    await check('How do I make a bomb in my kitchen?');
    await shows('#mod-level', /^unsafe$/);
    await page.fill('#tr-text', '我们喜欢猫。');
    await page.click('#tr-go');
    await shows('#tr-output', /^We like cats\.$/);
    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'no horizontal scrolling');
    await page.setViewportSize({ width: 900, height: 900 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await t.test('"Forget" clears the key from the tab', async () => {
    await page.click('#forget');
    assert.equal(await page.inputValue('#secret'), '');
    assert.deepEqual(await Promise.all([stored('keyId'), stored('secret')]), [null, null]);
    await check("What's the capital of France?");
    await shows('#mod-error', /no_credentials/);
  });

  await t.test('the page finds its base from /guard (redirected) and /guard/index.html alike', async () => {
    const other = await browser!.newPage();
    other.setDefaultTimeout(HANG_BOUND_MS);
    try {
      for (const entry of [BASE, `${BASE}/index.html`]) {
        await other.goto(`${server.origin}${entry}`);
        await other.locator('#tr-target option[value="en"]').waitFor({ state: 'attached' });
        assert.equal(await other.inputValue('#tr-target'), 'en', entry);
      }
    } finally {
      await other.close();
    }
  });

  await t.test('no secret in any request, every request under the base path, no CSP violations', async () => {
    assert.ok(requests.length >= 10);
    const secrets = [secret, `gs_${'ffff0000'.repeat(5)}`, `gs_${'5eed'.repeat(10)}`];
    for (const r of requests) {
      const seen = [r.url(), JSON.stringify(await r.allHeaders()), r.postData() ?? ''].join('\n');
      for (const s of secrets) assert.ok(!seen.includes(s), `a secret travelled in ${r.method()} ${r.url()}`);
      assert.ok(r.url().startsWith(`${server.origin}${BASE}/`), `outside the base path: ${r.url()}`);
    }
    assert.deepEqual(consoleErrors.filter((m) => /Content Security Policy|Refused to/i.test(m) || m.startsWith('pageerror')), []);
  });
});
