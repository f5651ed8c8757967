import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { createSigningFetch } from '../../src/client.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { waitFor } from '../helpers/wait.js';

// Issue 14.1: the official `openai` client, unmodified, against the real `guardctl serve` (demo models), with a
// bearer credential and with createSigningFetch, on both key stores.

interface Key { id: string; secret: string; bearer?: string }

interface Daemon {
  serve: ServeProcess;
  home: string;
  /** Runs the CLI against this daemon's key store. */
  cli(args: string[]): Promise<{ code: number; json<T>(): T; stdout: string; stderr: string }>;
  create(name: string, bearer: boolean): Promise<Key>;
}

const CLIENT = { maxRetries: 0, timeout: 60_000 };

function bearerClient(d: Daemon, key: Key, headers: Record<string, string> = {}): OpenAI {
  assert.ok(key.bearer, 'the key has a bearer credential');
  return new OpenAI({ ...CLIENT, baseURL: `${d.serve.url}/v1`, apiKey: key.bearer, defaultHeaders: headers });
}

function signedClient(d: Daemon, key: Key): OpenAI {
  // The client insists on an API key; the signing fetch drops it, so the daemon sees the signature alone.
  return new OpenAI({ ...CLIENT, baseURL: `${d.serve.url}/v1`, apiKey: 'unused', fetch: createSigningFetch({ keyId: key.id, secret: key.secret }) });
}

/** `guardctl serve` over a key store of `kind`, the CLI's home sharing its master key; trusted proxy: loopback. */
async function daemon(t: TestContext, kind: 'sqlite' | 'postgres'): Promise<Daemon | undefined> {
  const dir = tempDir(t);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  // A proxy on this machine is trusted, so X-Forwarded-For / -Proto stand for a client elsewhere.
  fs.writeFileSync(path.join(home, 'guardctl.yaml'), 'gate:\n  trusted_proxies: ["127.0.0.1/32", "::1/128"]\n');
  const store: string[] = [];
  if (kind === 'postgres') {
    const pg = await startPostgres(t);
    if (!pg) return undefined;
    store.push('--keys', await pg.database('openai'));
  }
  const cli = async (args: string[]) => {
    const [group, ...rest] = args;
    return runCli(['--home', home, '--json', group!, ...rest, ...(group === 'keys' ? store : [])]);
  };
  if (kind === 'postgres') assert.equal((await cli(['keys', 'migrate'])).code, 0);
  const create = async (name: string, bearer: boolean): Promise<Key> => {
    const r = await cli(['keys', 'create', '--name', name, '--tier', 'enterprise', ...(bearer ? ['--allow-bearer'] : [])]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.json();
  };
  // The store must exist before the daemon opens it.
  await create('first', false);
  const serve = await serveProcess(home, store);
  t.after(() => serve.child.kill('SIGKILL'));
  return { serve, home, cli, create };
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string | null | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return { status: err.status as number, code: err.code, message: err.message };
    throw err;
  }
  assert.fail('the request was accepted');
}

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`openai client (${kind} keys): models, moderations and chat completions, bearer and signed; refusals`, async (t) => {
    const d = await daemon(t, kind);
    if (!d) return;
    const bearerKey = await d.create('bearer', true);
    const plainKey = await d.create('plain', false);
    assert.match(bearerKey.bearer!, /^gk_[0-9A-Za-z]+\.gs_[0-9A-Za-z]+$/);
    assert.equal(bearerKey.bearer, `${bearerKey.id}.${bearerKey.secret}`);
    assert.equal(plainKey.bearer, undefined, 'no bearer without --allow-bearer');

    const clients = { bearer: bearerClient(d, bearerKey), signed: signedClient(d, plainKey) };
    for (const [how, client] of Object.entries(clients)) {
      await t.test(`${how}: models.list`, async () => {
        const ids = [];
        for await (const m of client.models.list()) ids.push(m.id);
        assert.deepEqual(ids.sort(), ['guard-demo', 'mt-demo']);
      });

      await t.test(`${how}: moderations.create, one input and an array`, async () => {
        const one = await client.moderations.create({ model: 'guard-demo', input: 'hello there' });
        assert.equal(one.results.length, 1);
        assert.equal(typeof one.results[0]!.flagged, 'boolean');
        const many = await client.moderations.create({ model: 'guard-demo', input: ['hello', 'how to build a bomb'] });
        assert.equal(many.results.length, 2);
        for (const r of many.results) assert.equal(typeof r.categories.violence, 'boolean');
      });

      await t.test(`${how}: chat.completions.create`, async () => {
        const messages = [{ role: 'user' as const, content: 'We like cats.' }];
        const done = await client.chat.completions.create({ model: 'mt-demo', messages, max_tokens: 8, temperature: 0, seed: 1 });
        assert.equal(done.object, 'chat.completion');
        assert.equal(done.model, 'mt-demo');
        assert.equal(done.choices.length, 1);
        assert.equal(done.choices[0]!.message.role, 'assistant');
        assert.equal(typeof done.choices[0]!.message.content, 'string');
        assert.ok(['stop', 'length'].includes(done.choices[0]!.finish_reason));
        const usage = done.usage!;
        assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0 && usage.completion_tokens <= 8);
        assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

        // Streamed: the same greedy answer, piece by piece, then the usage chunk.
        const stream = await client.chat.completions.create({
          model: 'mt-demo', messages, max_tokens: 8, temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true },
        });
        let text = '';
        let finish: string | null = null;
        let usageChunk: OpenAI.CompletionUsage | undefined;
        let chunks = 0;
        for await (const chunk of stream) {
          chunks++;
          assert.equal(chunk.object, 'chat.completion.chunk');
          if (chunk.usage) usageChunk = chunk.usage;
          for (const c of chunk.choices) {
            text += c.delta.content ?? '';
            finish = c.finish_reason ?? finish;
          }
        }
        assert.equal(text, done.choices[0]!.message.content);
        assert.equal(finish, done.choices[0]!.finish_reason);
        assert.deepEqual(usageChunk, usage);
        assert.ok(chunks >= 3, `role, content and finish chunks (got ${chunks})`);
      });
    }

    await t.test('a guard model answers chat completions too, with its own template', async () => {
      const done = await clients.bearer.chat.completions.create({ model: 'guard-demo', messages: [{ role: 'user', content: 'hello' }], max_completion_tokens: 4 });
      assert.ok(done.usage!.completion_tokens <= 4);
    });

    await t.test('bearer refused for a key made without --allow-bearer', async () => {
      const client = new OpenAI({ ...CLIENT, baseURL: `${d.serve.url}/v1`, apiKey: `${plainKey.id}.${plainKey.secret}` });
      const r = await refusal(client.models.list());
      assert.equal(r.status, 401);
      assert.equal(r.code, 'bearer_not_allowed');
    });

    await t.test('bearer refused from a client elsewhere without TLS; accepted when the trusted proxy says https', async () => {
      const elsewhere = { 'X-Forwarded-For': '203.0.113.9' };
      let r = await refusal(bearerClient(d, bearerKey, elsewhere).models.list());
      assert.equal(r.status, 403);
      assert.equal(r.code, 'bearer_insecure_transport');
      r = await refusal(bearerClient(d, bearerKey, { ...elsewhere, 'X-Forwarded-Proto': 'http' }).models.list());
      assert.equal(r.code, 'bearer_insecure_transport');
      const page = await bearerClient(d, bearerKey, { ...elsewhere, 'X-Forwarded-Proto': 'https' }).models.list();
      assert.equal(page.data.length, 2);
    });

    await t.test('rotation gives a new bearer that works at once; the old one stops with --grace 0', async () => {
      const r = await d.cli(['keys', 'rotate', bearerKey.id, '--grace', '0']);
      assert.equal(r.code, 0, r.stderr);
      const rotated = r.json<Key>();
      assert.equal(rotated.bearer, `${bearerKey.id}.${rotated.secret}`);
      assert.equal((await bearerClient(d, rotated).models.list()).data.length, 2);
      const old = await refusal(bearerClient(d, bearerKey).models.list());
      assert.equal(old.code, 'bad_bearer');
      bearerKey.secret = rotated.secret;
      bearerKey.bearer = rotated.bearer;
    });

    await t.test('a revoked key is refused, bearer and signed', async () => {
      assert.equal((await d.cli(['keys', 'revoke', bearerKey.id])).code, 0);
      assert.equal((await d.cli(['keys', 'revoke', plainKey.id])).code, 0);
      // Another process revoked them: running daemons see it within 2 s (lookup.ts, pg-lookup.ts).
      await waitFor(async () => (await refusal(bearerClient(d, bearerKey).models.list()).catch(() => ({ code: '' }))).code === 'revoked_key', 'the bearer key refused', 5000, 20);
      await waitFor(async () => (await refusal(signedClient(d, plainKey).models.list()).catch(() => ({ code: '' }))).code === 'revoked_key', 'the signed key refused', 5000, 20);
    });

    // Audited like signed requests: one record per request, with the key and the refusal's reason.
    const file = path.join(d.home, 'audit', 'audit.jsonl');
    const has = (re: RegExp) => fs.existsSync(file) && re.test(fs.readFileSync(file, 'utf8'));
    await waitFor(() => has(new RegExp(`"key_id":"${bearerKey.id}","tier":"enterprise","route":"/v1/chat/completions","model":"mt-demo","status":200`)), 'the bearer chat audited', 5000, 20);
    await waitFor(() => has(/"status":403,"reason":"bearer_insecure_transport"/), 'the refused bearer audited', 5000, 20);
  });
}
