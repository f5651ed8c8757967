import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { checkUniqueNames, embeddedModels, modelsFromConfig, parseModelFlag } from '../../src/daemon/models.js';
import { resolveSettings, SETTINGS } from '../../src/daemon/settings.js';

test('defaults: 127.0.0.1:7860, auto device, auth on', () => {
  const s = resolveSettings({}, {}, {}, 'guardctl.yaml');
  assert.equal(s.host, '127.0.0.1');
  assert.equal(s.port, 7860);
  assert.equal(s.device, 'auto');
  assert.equal(s.insecureNoAuth, false);
  assert.equal(s.maxBodyBytes, 1024 * 1024);
  assert.equal(s.inferenceTimeoutMs, 60_000);
  assert.equal(s.receiveTimeoutMs, 30_000);
  assert.equal(s.basePath, '');
});

test('precedence is flag > env > config file > default, for every setting', () => {
  const s = resolveSettings({ port: '9001' }, { GUARDCTL_PORT: '9002', GUARDCTL_MAX_BATCH: '8' }, { port: 9003, max_batch: 4, max_wait_ms: 20 }, 'f.yaml');
  assert.equal(s.port, 9001);
  assert.equal(s.maxBatch, 8);
  assert.equal(s.maxWaitMs, 20);
  // Every setting has a distinct flag, env var and config key.
  for (const field of ['flag', 'env', 'configKey'] as const) assert.equal(new Set(SETTINGS.map((d) => d[field])).size, SETTINGS.length);
  assert.ok(SETTINGS.every((d) => d.env.startsWith('GUARDCTL_')));
});

test('values parse with units and bad ones name the source', () => {
  const s = resolveSettings({ maxBodyBytes: '512k', inferenceTimeoutMs: '2m', basePath: '/guard' }, { GUARDCTL_INSECURE_NO_AUTH: '1' }, {}, 'f.yaml');
  assert.equal(s.maxBodyBytes, 512 * 1024);
  assert.equal(s.inferenceTimeoutMs, 120_000);
  assert.equal(s.basePath, '/guard');
  assert.equal(s.insecureNoAuth, true);
  assert.throws(() => resolveSettings({}, { GUARDCTL_PORT: '70000' }, {}, 'f.yaml'), /GUARDCTL_PORT must be a port number/);
  assert.throws(() => resolveSettings({}, {}, { device: 'tpu' }, 'f.yaml'), /serve\.device in f\.yaml must be one of auto, cpu, webgpu/);
  assert.throws(() => resolveSettings({ basePath: 'guard/' }, {}, {}, 'f.yaml'), /--base-path must look like \/guard/);
  assert.throws(() => resolveSettings({}, {}, { prot: 1 }, 'f.yaml'), /unknown setting serve\.prot/);
  assert.throws(() => resolveSettings({ tlsCert: 'a.pem' }, {}, {}, 'f.yaml'), /--tls-cert and --tls-key go together/);
});

test('--model NAME=TASK:DIR[:SIZE] and the config models list', () => {
  const dir = embeddedModels()[0]!.dir;
  assert.deepEqual(parseModelFlag(`qwen3guard-gen-4b=moderate:${dir}:large`), { name: 'qwen3guard-gen-4b', task: 'moderate', dir, size: 'large' });
  assert.equal(parseModelFlag(`g=moderate:${dir}`).size, 'small');
  assert.throws(() => parseModelFlag(`g=summarize:${dir}`), /invalid --model/);
  assert.throws(() => parseModelFlag('g=moderate:/nonexistent/model'), /does not exist/);
  assert.throws(() => parseModelFlag(`bad name=moderate:${dir}`), /invalid model name/);
  const cfg = path.join(path.dirname(dir), 'guardctl.yaml');
  const specs = modelsFromConfig([{ name: 'hy-mt1.5-1.8b', task: 'translate', dir: 'mt-demo', size: 'small', template: 'hy-mt' }], cfg);
  assert.equal(specs[0]!.dir, path.join(path.dirname(dir), 'mt-demo'));
  assert.equal(specs[0]!.translateTemplate, 'hy-mt');
  assert.throws(() => modelsFromConfig([{ name: 'x', task: 'moderate' }], cfg), /has no "dir"/);
  assert.throws(() => modelsFromConfig([{ name: 'x', task: 'moderate', dir: 'guard-demo', color: 'red' }], cfg), /unknown field "color"/);
  assert.throws(() => checkUniqueNames([parseModelFlag(`a=moderate:${dir}`), parseModelFlag(`a=translate:${dir}`)]), /two models are named "a"/);
});

test('docs/serve.md lists every setting with its flag, env var and config key', async () => {
  const fs = await import('node:fs');
  const doc = fs.readFileSync(new URL('../../docs/serve.md', import.meta.url), 'utf8');
  for (const d of SETTINGS) assert.ok(doc.includes(`| \`${d.flag}\` | \`${d.env}\` | \`${d.configKey}\` |`), d.flag);
});

test('--state: sqlite by default; flag > GUARDCTL_STATE > the config file\'s gate.state; bad values name the source', () => {
  assert.equal(resolveSettings({}, {}, {}, 'f.yaml').state, 'sqlite');
  assert.equal(resolveSettings({}, {}, {}, 'f.yaml', { state: 'memory' }).state, 'memory');
  assert.equal(resolveSettings({}, { GUARDCTL_STATE: 'sqlite' }, {}, 'f.yaml', { state: 'memory' }).state, 'sqlite');
  assert.equal(resolveSettings({ state: 'memory' }, { GUARDCTL_STATE: 'sqlite' }, {}, 'f.yaml').state, 'memory');
  assert.throws(() => resolveSettings({}, {}, {}, 'f.yaml', { state: 'redis' }), /gate\.state in f\.yaml must be one of sqlite, memory/);
  assert.throws(() => resolveSettings({}, { GUARDCTL_STATE: 'disk' }, {}, 'f.yaml'), /GUARDCTL_STATE must be one of sqlite, memory/);
});

test('--prefix-cache: on by default; off from the flag, GUARDCTL_PREFIX_CACHE or serve.prefix_cache; bad values name the source', () => {
  assert.equal(resolveSettings({}, {}, {}, 'f.yaml').prefixCache, true);
  assert.equal(resolveSettings({ prefixCache: 'off' }, { GUARDCTL_PREFIX_CACHE: 'on' }, {}, 'f.yaml').prefixCache, false);
  assert.equal(resolveSettings({}, { GUARDCTL_PREFIX_CACHE: 'off' }, { prefix_cache: 'on' }, 'f.yaml').prefixCache, false);
  // A YAML file may hand over a boolean.
  assert.equal(resolveSettings({}, {}, { prefix_cache: false }, 'f.yaml').prefixCache, false);
  assert.throws(() => resolveSettings({}, { GUARDCTL_PREFIX_CACHE: 'maybe' }, {}, 'f.yaml'), /GUARDCTL_PREFIX_CACHE must be on or off, got "maybe"/);
});

test('--trusted-proxies: none by default; flag > GUARDCTL_TRUSTED_PROXIES > the file\'s gate.trusted_proxies list; bad CIDRs name the source', () => {
  assert.equal(resolveSettings({}, {}, {}, 'f.yaml').trustedProxies, undefined);
  assert.deepEqual(resolveSettings({}, {}, {}, 'f.yaml', { trusted_proxies: ['10.0.0.0/8', '::1/128'] }).trustedProxies, ['10.0.0.0/8', '::1/128']);
  assert.deepEqual(resolveSettings({}, { GUARDCTL_TRUSTED_PROXIES: '192.0.2.1/32' }, {}, 'f.yaml', { trusted_proxies: ['10.0.0.0/8'] }).trustedProxies, ['192.0.2.1/32']);
  assert.deepEqual(resolveSettings({ trustedProxies: '127.0.0.1/32, ::1/128' }, { GUARDCTL_TRUSTED_PROXIES: '192.0.2.1/32' }, {}, 'f.yaml').trustedProxies, ['127.0.0.1/32', '::1/128']);
  assert.deepEqual(resolveSettings({}, {}, {}, 'f.yaml', { trusted_proxies: [] }).trustedProxies, []);
  assert.throws(() => resolveSettings({ trustedProxies: '127.0.0.1/33' }, {}, {}, 'f.yaml'), /--trusted-proxies must be comma-separated CIDRs/);
  assert.throws(() => resolveSettings({}, { GUARDCTL_TRUSTED_PROXIES: 'nginx' }, {}, 'f.yaml'), (err: Error & { code?: string }) => err.code === 'GUARD_E_CONFIG' && /GUARDCTL_TRUSTED_PROXIES/.test(err.message));
});
