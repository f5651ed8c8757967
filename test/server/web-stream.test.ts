import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { fakeEngine } from '../helpers/fake-engine.js';
import { haveProgram } from '../helpers/system.js';
import { startWebServer } from '../helpers/web-server.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

/**
 * The page shows a translation as it streams. The test engine sends the first piece of its answer and then waits
 * for the test ('[[trickle]]'), so the final event provably has not been sent while the page is checked: the DOM
 * showing that piece, with the form still busy, is partial text before the final event, on any machine's speed.
 */
const CHROMIUM = '/usr/bin/chromium';
const BASE = '/guard';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('the web page shows a streamed translation before its final event', { timeout: 5 * HANG_BOUND_MS }, async (t) => {
  if (!haveProgram(t, CHROMIUM, '--version')) return;
  const engine = fakeEngine();
  const server = await startWebServer(BASE, engine);
  const secret = `gs_${'e5f6a7b8'.repeat(5)}`;
  const key = server.keys.add(secret, { tier: 'enterprise' });
  let browser: Browser | undefined;
  t.after(async () => {
    engine.continueStream();
    await browser?.close();
    await server.close();
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const page = await browser.newPage();
  page.setDefaultTimeout(HANG_BOUND_MS);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${server.origin}${BASE}/`);
  await page.fill('#key-id', key.id);
  await page.fill('#secret', secret);
  await page.click('#creds button[type=submit]');
  await page.locator('#tr-model option[value="mt-demo"]').waitFor({ state: 'attached' });
  await page.selectOption('#tr-source', 'en');
  await page.selectOption('#tr-target', 'zh');

  await page.fill('#tr-text', 'slow [[trickle]]');
  const [sent] = await Promise.all([page.waitForRequest((r) => r.url().includes('/api/v1/translate')), page.click('#tr-go')]);
  assert.equal(new URL(sent.url()).searchParams.get('stream'), 'true');
  await engine.trickling; // the server has the first piece; the rest waits for continueStream()
  // The fake answers "[slow [[trickle]]]" in three pieces; the first, "[slow " goes out trimmed as "[slow".
  await page.locator('#tr-output', { hasText: /^\[slow$/ }).waitFor();
  assert.equal(await page.isVisible('#tr-result'), true);
  assert.equal(await page.getAttribute('#tr', 'aria-busy'), 'true', 'the final event has not arrived');
  assert.equal(await page.textContent('#tr-latency'), '');

  engine.continueStream();
  await page.locator('#tr:not([aria-busy])').waitFor();
  assert.equal(await page.textContent('#tr-output'), '[slow [[trickle]]]');
  assert.match((await page.textContent('#tr-latency'))!, /^\d+ ms round trip, \d+ ms on the server$/);
  assert.equal(await page.isVisible('#tr-error'), false);

  await t.test('an error after the stream started shows as an error', async () => {
    await page.fill('#tr-text', '[[fail_mid_stream]]');
    await page.click('#tr-go');
    await page.locator('#tr:not([aria-busy])').waitFor();
    assert.equal(await page.isVisible('#tr-error'), true);
    assert.match((await page.textContent('#tr-error'))!, /^timeout: /);
  });
  assert.deepEqual(errors, []);
});
