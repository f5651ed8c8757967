import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { acceptedNames, readProviderEnv } from '../../src/dns/env.js';
import type { ProviderMeta } from '../../src/dns/types.js';
import { absoluteName, normalizeName, relativeName, unquoteTxt, zoneCandidates } from '../../src/dns/zone.js';
import { tempDir } from '../helpers/cli.js';

const meta: ProviderMeta = {
  name: 'demo',
  description: 'demo',
  env: [
    { name: 'DEMO_KEY', aliases: ['LEGO_DEMO_KEY'], required: true, secret: true, description: 'key' },
    { name: 'DEMO_ID', required: true, secret: false, description: 'id' },
    { name: 'DEMO_URL', required: false, secret: false, description: 'url' },
  ],
  parallel: true,
  propagationTimeoutSec: 1,
  pollIntervalSec: 1,
  docs: 'https://example.com',
};

test('env: primary name, then aliases, then NAME_FILE (trimmed); overrides win', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'key');
  fs.writeFileSync(file, '  from-file-secret \n');
  assert.equal(readProviderEnv(meta, { DEMO_KEY: 'a', LEGO_DEMO_KEY: 'b', DEMO_ID: 'i' }).get('DEMO_KEY'), 'a');
  assert.equal(readProviderEnv(meta, { LEGO_DEMO_KEY: 'b', DEMO_ID: 'i' }).get('DEMO_KEY'), 'b');
  assert.equal(readProviderEnv(meta, { LEGO_DEMO_KEY_FILE: file, DEMO_ID: 'i' }).get('DEMO_KEY'), 'from-file-secret');
  assert.equal(readProviderEnv(meta, { DEMO_KEY: '  ', DEMO_KEY_FILE: file, DEMO_ID: 'i' }).get('DEMO_KEY'), 'from-file-secret', 'an empty value counts as unset');
  const env = readProviderEnv(meta, { DEMO_KEY: 'k', DEMO_ID: 'i', DEMO_URL: 'u' }, { DEMO_URL: 'flag' });
  assert.equal(env.get('DEMO_URL'), 'flag');
  assert.deepEqual(env.secrets, ['k'], 'only secret values are collected for scrubbing');
  assert.equal(env.get('DEMO_ID_FILE'), undefined);
});

test('env: only secrets accept NAME_FILE; missing settings name every accepted spelling at once', () => {
  assert.deepEqual(acceptedNames(meta.env[0]!), ['DEMO_KEY', 'LEGO_DEMO_KEY', 'DEMO_KEY_FILE', 'LEGO_DEMO_KEY_FILE']);
  assert.deepEqual(acceptedNames(meta.env[1]!), ['DEMO_ID']);
  assert.throws(() => readProviderEnv(meta, { DEMO_ID_FILE: '/etc/hostname' }), (err: GuardError) => {
    assert.equal(err.code, 'GUARD_E_DNS_PROVIDER');
    assert.equal(err.message, 'demo: missing settings: set DEMO_KEY (or LEGO_DEMO_KEY, DEMO_KEY_FILE, LEGO_DEMO_KEY_FILE) and DEMO_ID');
    assert.match(err.hint ?? '', /NAME_FILE/);
    assert.deepEqual(err.details?.missing, ['DEMO_KEY', 'LEGO_DEMO_KEY', 'DEMO_KEY_FILE', 'LEGO_DEMO_KEY_FILE', 'DEMO_ID']);
    return true;
  });
});

test('env: an unreadable or empty NAME_FILE is an error naming the variable and path, never content', (t) => {
  const dir = tempDir(t);
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '\n');
  assert.throws(() => readProviderEnv(meta, { DEMO_KEY_FILE: path.join(dir, 'nope'), DEMO_ID: 'i' }), /^GuardError: demo: cannot read DEMO_KEY_FILE \(.*nope\): ENOENT$/);
  assert.throws(() => readProviderEnv(meta, { DEMO_KEY_FILE: empty, DEMO_ID: 'i' }), /DEMO_KEY_FILE .* is empty/);
  assert.throws(() => readProviderEnv(meta, { DEMO_KEY: 'k', DEMO_ID: 'i' }).need('DEMO_URL'), /not a required variable/);
});

test('zones: candidates longest first without the TLD; names relative to a zone', () => {
  assert.deepEqual(zoneCandidates('_acme-challenge.A.b.Example.COM.'), ['_acme-challenge.a.b.example.com', 'a.b.example.com', 'b.example.com', 'example.com']);
  assert.deepEqual(zoneCandidates('com'), []);
  assert.equal(normalizeName(' Example.COM. '), 'example.com');
  assert.equal(relativeName('_acme-challenge.a.b.example.com', 'b.example.com'), '_acme-challenge.a');
  assert.equal(relativeName('Example.com.', 'example.com'), '@');
  assert.throws(() => relativeName('a.example.org', 'example.com'), /not inside zone/);
  assert.throws(() => relativeName('badexample.com', 'example.com'), /not inside zone/);
  assert.equal(absoluteName('@', 'example.com'), 'example.com');
  assert.equal(absoluteName('_acme-challenge', 'example.com.'), '_acme-challenge.example.com');
  assert.equal(unquoteTxt('"abc"'), 'abc');
  assert.equal(unquoteTxt('abc'), 'abc');
  assert.equal(unquoteTxt('"'), '"');
});
