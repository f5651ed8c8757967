import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { partsOf } from '../../src/daemon/run.js';
import { attributeOf, namesOf, resolveSettings, SETTINGS, type ServeSettings } from '../../src/daemon/settings.js';
import { DEFAULT_SERVE_CONFIG } from '../../src/server/config.js';

/**
 * One row per setting the engine or the HTTP app reads: a value as typed, what it must arrive as, and a value
 * that must be refused. Each travels from the flag, the variable and the config file, and must arrive under the
 * same field name with the same value; a bad one must name the flag, the variable or the file key.
 */
const ROWS: Array<{ key: keyof ServeSettings; text: string; value: unknown; bad: string; part: 'engine' | 'server' }> = [
  { key: 'maxBatch', text: '7', value: 7, bad: '0', part: 'engine' },
  { key: 'maxWaitMs', text: '12', value: 12, bad: 'soon', part: 'engine' },
  { key: 'batchWait', text: 'always', value: 'always', bad: 'never', part: 'engine' },
  { key: 'maxBatchTokens', text: '4096', value: 4096, bad: '-1', part: 'engine' },
  { key: 'prefixCache', text: 'off', value: false, bad: 'maybe', part: 'engine' },
  { key: 'maxQueue', text: '9', value: 9, bad: '0', part: 'engine' },
  { key: 'maxInputTokens', text: '511', value: 511, bad: '1.5', part: 'engine' },
  { key: 'threads', text: '3', value: 3, bad: '0', part: 'engine' },
  { key: 'basePath', text: '/guard', value: '/guard', bad: 'guard/', part: 'server' },
  { key: 'maxBodyBytes', text: '512k', value: 512 * 1024, bad: '0', part: 'server' },
  { key: 'inferenceTimeoutMs', text: '2m', value: 120_000, bad: '0', part: 'server' },
  { key: 'receiveTimeoutMs', text: '45s', value: 45_000, bad: '0ms', part: 'server' },
  { key: 'maxNewTokens', text: '100', value: 100, bad: '0', part: 'server' },
];

const def = (key: keyof ServeSettings) => SETTINGS.find((d) => d.key === key)!;

test('every setting the engine or the server reads has a row here', () => {
  const { engine, server } = partsOf(resolveSettings({}, {}, {}, 'f.yaml'));
  const read = [...Object.keys(engine), ...Object.keys(server).filter((k) => SETTINGS.some((d) => d.key === k))];
  // The switches (a flag without a value) are checked below.
  assert.deepEqual(ROWS.map((r) => r.key).sort(), read.filter((k) => k !== 'insecureNoAuth' && k !== 'allowPartial').sort());
});

test('--allow-partial arrives at the server from the flag, the variable and the file; off by default', () => {
  for (const settings of [resolveSettings({ allowPartial: true }, {}, {}, 'f.yaml'), resolveSettings({}, { GUARDCTL_ALLOW_PARTIAL: '1' }, {}, 'f.yaml'), resolveSettings({}, {}, { allow_partial: true }, 'f.yaml')]) {
    assert.equal(partsOf(settings).server.allowPartial, true);
  }
  assert.equal(partsOf(resolveSettings({}, {}, {}, 'f.yaml')).server.allowPartial, false);
  assert.throws(() => resolveSettings({}, {}, { allow_partial: 'maybe' }, 'f.yaml'), /serve\.allow_partial in f\.yaml must be true or false/);
});

test('each setting arrives at the engine or the server with the same name and value from flag, env and file', () => {
  for (const row of ROWS) {
    const d = def(row.key);
    const file = d.configKey.includes('.') ? {} : { [d.configKey]: row.text };
    const sources = {
      flag: resolveSettings({ [row.key]: row.text }, {}, {}, 'f.yaml'),
      env: resolveSettings({}, { [d.env]: row.text }, {}, 'f.yaml'),
      file: resolveSettings({}, {}, file, 'f.yaml'),
    };
    for (const [source, settings] of Object.entries(sources)) {
      const parts = partsOf(settings) as unknown as Record<string, Record<string, unknown>>;
      assert.deepEqual(parts[row.part]![row.key], row.value, `${row.key} from the ${source}`);
    }
    // And the default, when none gives it, is the server's own default.
    if (row.part === 'server') assert.equal(partsOf(resolveSettings({}, {}, {}, 'f.yaml')).server[row.key as 'maxBodyBytes'], DEFAULT_SERVE_CONFIG[row.key as 'maxBodyBytes'], `${row.key} default`);
  }
});

test('a bad value names the flag (usage, exit 2), or the variable or file key (GUARD_E_CONFIG, exit 1)', () => {
  for (const row of ROWS) {
    const d = def(row.key);
    const flag = d.flag.split(' ')[0]!;
    const cases: Array<[() => unknown, string, string]> = [
      [() => resolveSettings({ [row.key]: row.bad }, {}, {}, 'f.yaml'), flag, 'GUARD_E_USAGE'],
      [() => resolveSettings({}, { [d.env]: row.bad }, {}, 'f.yaml'), d.env, 'GUARD_E_CONFIG'],
      [() => resolveSettings({}, {}, { [d.configKey]: row.bad }, 'f.yaml'), `serve.${d.configKey} in f.yaml`, 'GUARD_E_CONFIG'],
    ];
    for (const [run, name, code] of cases) {
      assert.throws(run, (err: unknown) => {
        assert.ok(err instanceof GuardError, String(err));
        assert.ok(err.message.includes(name), `${row.key} = ${row.bad}: "${err.message}" does not name ${name}`);
        assert.equal(err.code, code, `${row.key} from ${name}`);
        return true;
      });
    }
  }
  assert.throws(() => resolveSettings({ maxBodyBytes: '0' }, {}, {}, 'f.yaml'), /^GuardError: --max-body must be at least 1 byte, got "0"$|--max-body must be at least 1 byte/);
  assert.throws(() => resolveSettings({}, {}, { max_body: 0 }, 'f.yaml'), /serve\.max_body in f\.yaml must be at least 1 byte/);
});

test('names follow one rule: --a-b <-> GUARDCTL_A_B <-> serve.a_b <-> aB + unit (Ms, Bytes)', () => {
  const inOtherSections: Record<string, string> = { '--state': 'gate.state', '--keys': 'keys.store', '--keys-stale': 'keys.stale', '--trusted-proxies': 'gate.trusted_proxies' };
  for (const d of SETTINGS) {
    const { name, env, configKey } = namesOf(d.flag);
    assert.equal(d.env, env, d.flag);
    assert.equal(d.configKey, inOtherSections[`--${name}`] ?? configKey, d.flag);
    const unit = d.unit === 'ms' && !name.endsWith('-ms') ? 'Ms' : d.unit === 'bytes' ? 'Bytes' : '';
    assert.equal(d.key, attributeOf(d.flag) + unit, `${d.flag}: the field should be ${attributeOf(d.flag) + unit}`);
  }
});

test('--request-timeout is read as --inference-timeout, from flag, env and file, with a warning', () => {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  assert.equal(resolveSettings({ requestTimeout: '5s' }, {}, {}, 'f.yaml', {}, {}, warn).inferenceTimeoutMs, 5000);
  assert.equal(resolveSettings({}, { GUARDCTL_REQUEST_TIMEOUT: '6s' }, {}, 'f.yaml', {}, {}, warn).inferenceTimeoutMs, 6000);
  assert.equal(resolveSettings({}, {}, { request_timeout: '7s' }, 'f.yaml', {}, {}, warn).inferenceTimeoutMs, 7000);
  assert.deepEqual(warnings, [
    '--request-timeout is now called --inference-timeout; the old name still works for now',
    'GUARDCTL_REQUEST_TIMEOUT is now called GUARDCTL_INFERENCE_TIMEOUT; the old name still works for now',
    'serve.request_timeout is now called serve.inference_timeout; the old name still works for now',
  ]);
  // The new name wins over the old one from the same kind of source.
  assert.equal(resolveSettings({}, { GUARDCTL_REQUEST_TIMEOUT: '6s', GUARDCTL_INFERENCE_TIMEOUT: '8s' }, {}, 'f.yaml').inferenceTimeoutMs, 8000);
});

test('guardctl serve --max-body 0 exits 2 naming --max-body; the same in a config file exits 1 naming serve.max_body', async () => {
  const { runCli } = await import('../helpers/cli.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-settings-'));
  try {
    const flag = await runCli(['--home', home, 'serve', '--max-body', '0']);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /--max-body must be at least 1 byte, got "0"/);
    const config = path.join(home, 'guardctl.yaml');
    fs.writeFileSync(config, 'serve:\n  max_body: 0\n');
    const file = await runCli(['--home', home, '--config', config, 'serve']);
    assert.equal(file.code, 1, file.stderr);
    assert.match(file.stderr, new RegExp(`serve\\.max_body in ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} must be at least 1 byte`));
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
