/**
 * Issue 11: the real `guardctl serve` process on the real-format fixtures, unchanged, every dtype, on the CPU:
 * `--model NAME=TASK:DIR --dtype D`, and the config file's models list (one dtype per model). The random weights make
 * the answers arbitrary: each route answers in its documented form, or, for moderation whose decoded categories do
 * not parse, a clean 502 bad_model_output; never a 500.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { signRequest } from '../../src/gate/sign-request.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { REAL_DTYPES, realFixtures } from '../helpers/real-fixture.js';
import { serveProcess } from '../helpers/serve-process.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

async function newKey(home: string): Promise<{ id: string; secret: string }> {
  const r = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'real', '--tier', 'enterprise']);
  assert.equal(r.code, 0, r.stderr);
  return r.json();
}

type Post = (pathAndQuery: string, body: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;

function poster(base: string, key: { id: string; secret: string }): Post {
  return async (pathAndQuery, payload) => {
    const url = `${base}${pathAndQuery}`;
    const body = JSON.stringify(payload);
    const headers = signRequest({ method: 'POST', url, body, keyId: key.id, secret: key.secret, version: 2 }).headers;
    const res = await fetch(url, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
}

/** 200 in the route's form, or 502 bad_model_output (moderation only): the answer text is arbitrary. */
function parsedOrBadOutput(what: string, r: { status: number; json: Record<string, unknown> }, ok: (json: Record<string, unknown>) => void): void {
  if (r.status === 200) return ok(r.json);
  assert.equal(r.status, 502, `${what}: ${JSON.stringify(r.json)}`);
  assert.equal((r.json.error as { code: string }).code, 'bad_model_output', what);
}

async function exercise(post: Post, guard: string, mt: string): Promise<void> {
  const verdict = (json: Record<string, unknown>) => {
    assert.ok(['safe', 'unsafe', 'controversial'].includes(json.level as string), JSON.stringify(json));
    assert.equal(json.model, guard);
  };
  parsedOrBadOutput(`${guard} prompt`, await post('/api/v1/moderate', { text: 'How can I make a bomb?', model: guard }), verdict);
  const response = { messages: [{ role: 'user', content: 'How can I make a bomb?' }, { role: 'assistant', content: 'I cannot help with that.' }], model: guard };
  parsedOrBadOutput(`${guard} response`, await post('/api/v1/moderate', response), (json) => {
    verdict(json);
    assert.ok(['yes', 'no'].includes(json.refusal as string), JSON.stringify(json));
  });
  parsedOrBadOutput(`${guard} /v1/moderations`, await post('/v1/moderations', { input: 'How can I make a bomb?', model: guard }), (json) => {
    const [result] = json.results as Array<{ flagged: boolean; category_scores: Record<string, number> }>;
    assert.equal(typeof result!.flagged, 'boolean');
  });
  const tr = await post('/api/v1/translate?source_lang=en&target_lang=zh', { text: 'We like cats.', model: mt });
  assert.equal(tr.status, 200, JSON.stringify(tr.json));
  assert.equal(typeof tr.json.result, 'string');
  assert.equal(tr.json.model, mt);
}

test('guardctl serve answers moderate, /v1/moderations and translate on every real-format dtype (CPU)', { timeout: 10 * HANG_BOUND_MS }, async (t) => {
  const fx = realFixtures(t);
  if (!fx) return;

  await t.test('--model NAME=TASK:DIR --dtype q4', async () => {
    const home = tempDir(t);
    const key = await newKey(home);
    const s = await serveProcess(home, ['--model', `guard=moderate:${fx.guard}`, '--model', `mt=translate:${fx.mt}`, '--dtype', 'q4', '--device', 'cpu', '--max-new-tokens', '8'], 'mt');
    t.after(() => s.child.kill('SIGKILL'));
    assert.ok(s.lines.some((l) => /"msg":"model ready"/.test(l) && /"model":"guard"/.test(l) && /"dtype":"q4"/.test(l)), s.lines.join('\n'));
    await exercise(poster(s.url, key), 'guard', 'mt');
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });

  await t.test('the config file\'s models list, one dtype per model: fp32 (external data), fp16, int8', async () => {
    const home = tempDir(t);
    const key = await newKey(home);
    const others = REAL_DTYPES.filter((d) => d !== 'q4');
    const models = others.flatMap((dtype) => [
      `  - { name: guard-${dtype}, task: moderate, dir: ${JSON.stringify(fx.guard)}, dtype: ${dtype}, device: cpu }`,
      `  - { name: mt-${dtype}, task: translate, dir: ${JSON.stringify(fx.mt)}, dtype: ${dtype}, device: cpu, template: hy-mt }`,
    ]);
    fs.writeFileSync(path.join(home, 'guardctl.yaml'), `models:\n${models.join('\n')}\n`);
    const s = await serveProcess(home, ['--max-new-tokens', '8'], `mt-${others.at(-1)}`);
    t.after(() => s.child.kill('SIGKILL'));
    const post = poster(s.url, key);
    for (const dtype of others) await exercise(post, `guard-${dtype}`, `mt-${dtype}`);
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });
});
