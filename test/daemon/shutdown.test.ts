import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/core/log.js';
import { embeddedModels } from '../../src/daemon/models.js';
import { startDaemon } from '../../src/daemon/run.js';
import { resolveSettings } from '../../src/daemon/settings.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { KeyStore } from '../../src/keys/store.js';
import { MemoryStream, tempDir } from '../helpers/cli.js';
import { user } from '../helpers/infer-engine.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

test('shutdown: past --drain-timeout, requests still decoding are cancelled at once, not given more time', async (t) => {
  const home = tempDir(t);
  const settings = resolveSettings({}, {}, { port: 0, insecure_no_auth: true, device: 'cpu', drain_timeout: '1ms', max_wait_ms: 0 }, path.join(home, 'guardctl.yaml'));
  const daemon = await startDaemon({ settings, models: embeddedModels(), home, env: {}, config: {}, configFile: path.join(home, 'guardctl.yaml'), logger: createLogger('silent') });
  t.after(() => daemon.shutdown());
  await daemon.ready;
  assert.ok(daemon.engine.models().every((m) => m.state === 'ready'));
  // A batch admitted and decoding when the shutdown begins. The prompt is one the translator answers with a run of
  // words and no EOS, so each row takes all its 200 decode steps: a window wide enough for a busy main thread to see
  // the batch start and begin the shutdown (a translated sentence ends after 8 steps, which a slow poll can miss).
  const jobs = Array.from({ length: 32 }, () =>
    daemon.engine.generate({ model: 'mt-demo', messages: user('xyz '.repeat(30)), maxNewTokens: 200 }).then(() => 'done', (err: { code?: string }) => err.code ?? 'error'),
  );
  await waitFor(() => daemon.engine.load().some((d) => d.active > 0), 'the batch to start decoding', HANG_BOUND_MS, 1);
  await daemon.shutdown();
  const outcomes = await Promise.all(jobs);
  assert.ok(outcomes.every((o) => o === 'cancelled'), outcomes.join(','));
});

test('shutdown: pending last-used times are written before the key store closes, and nothing logs an error', async (t) => {
  const home = tempDir(t);
  const cli = KeyStore.open({ home, env: {} });
  const { record, secret } = cli.create({ name: 'a', tier: 'enterprise' });
  cli.close();
  const stream = new MemoryStream();
  const settings = resolveSettings({}, {}, { port: 0, host: '127.0.0.1', device: 'cpu' }, path.join(home, 'guardctl.yaml'));
  const daemon = await startDaemon({ settings, models: embeddedModels(), home, env: {}, config: {}, configFile: path.join(home, 'guardctl.yaml'), logger: createLogger('info', stream) });
  let stopped = false;
  t.after(() => (stopped ? undefined : daemon.shutdown()));
  const url = `${daemon.url}/api/v1/models`;
  const res = await fetch(url, { headers: signRequest({ method: 'GET', url, keyId: record.id, secret }).headers });
  assert.equal(res.status, 200, await res.text());
  // The last-used time is batched (flushed every 5 s): the shutdown comes well before that.
  await daemon.shutdown();
  stopped = true;
  const errors = stream.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.level >= 50);
  assert.deepEqual(errors, [], 'no error logged at shutdown');
  assert.match(stream.text, /"msg":"stopped"/);
  const after = KeyStore.open({ home, env: {}, readonly: true });
  t.after(() => after.close());
  assert.ok((after.get(record.id).lastUsedAt ?? 0) > 0, 'the last-used time was written');
});
