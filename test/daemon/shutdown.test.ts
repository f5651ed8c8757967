import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/core/log.js';
import { embeddedModels } from '../../src/daemon/models.js';
import { startDaemon } from '../../src/daemon/run.js';
import { resolveSettings } from '../../src/daemon/settings.js';
import { tempDir } from '../helpers/cli.js';
import { toEnglish } from '../helpers/infer-engine.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

test('shutdown: past --drain-timeout, requests still decoding are cancelled at once, not given more time', async (t) => {
  const home = tempDir(t);
  const settings = resolveSettings({}, {}, { port: 0, insecure_no_auth: true, device: 'cpu', drain_timeout: '1ms', max_wait_ms: 0 }, path.join(home, 'guardctl.yaml'));
  const daemon = await startDaemon({ settings, models: embeddedModels(), home, env: {}, config: {}, configFile: path.join(home, 'guardctl.yaml'), logger: createLogger('silent') });
  t.after(() => daemon.shutdown());
  await daemon.ready;
  assert.ok(daemon.engine.models().every((m) => m.state === 'ready'));
  // A batch admitted and decoding when the shutdown begins.
  const jobs = Array.from({ length: 32 }, () =>
    daemon.engine.generate({ model: 'mt-demo', messages: toEnglish('我们喜欢猫。'.repeat(8)), maxNewTokens: 64 }).then(() => 'done', (err: { code?: string }) => err.code ?? 'error'),
  );
  await waitFor(() => daemon.engine.load().some((d) => d.active > 0), 'the batch to start decoding', HANG_BOUND_MS, 1);
  await daemon.shutdown();
  const outcomes = await Promise.all(jobs);
  assert.ok(outcomes.every((o) => o === 'cancelled'), outcomes.join(','));
});
