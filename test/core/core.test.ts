import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeFileAtomic } from '../../src/core/atomic.js';
import { loadConfigFile, pick } from '../../src/core/config.js';
import { parseDuration, parseExpiry, parseRate } from '../../src/core/duration.js';
import { resolveLocations } from '../../src/core/paths.js';
import { tempDir } from '../helpers/cli.js';

test('locations: --home beats GUARDCTL_HOME; root uses FHS paths, others XDG', () => {
  const env = { GUARDCTL_HOME: '/env/home', HOME: '/home/u', XDG_DATA_HOME: '/xdg/data', XDG_CONFIG_HOME: '/xdg/config' };
  assert.deepEqual(resolveLocations({ homeFlag: '/flag', env }), { home: '/flag', configFile: '/flag/guardctl.yaml' });
  assert.deepEqual(resolveLocations({ env }), { home: '/env/home', configFile: '/env/home/guardctl.yaml' });
  assert.deepEqual(resolveLocations({ env: {}, uid: 0 }), { home: '/var/lib/guardctl', configFile: '/etc/guardctl/guardctl.yaml' });
  assert.deepEqual(resolveLocations({ env: { HOME: '/home/u' }, uid: 1000 }), { home: '/home/u/.local/share/guardctl', configFile: '/home/u/.config/guardctl/guardctl.yaml' });
  const { GUARDCTL_HOME: _, ...xdg } = env;
  assert.deepEqual(resolveLocations({ env: xdg, uid: 1000 }), { home: '/xdg/data/guardctl', configFile: '/xdg/config/guardctl/guardctl.yaml' });
  assert.equal(resolveLocations({ configFlag: '/c.yaml', env: { GUARDCTL_CONFIG: '/e.yaml' }, uid: 0 }).configFile, '/c.yaml');
  assert.equal(resolveLocations({ env: { GUARDCTL_CONFIG: '/e.yaml' }, uid: 0 }).configFile, '/e.yaml');
});

test('pick applies flag > env > file > default and skips empty values', () => {
  assert.equal(pick(undefined, '', 'file', 'default'), 'file');
  assert.equal(pick('flag', 'env', 'file'), 'flag');
  assert.equal(pick<string>(undefined, undefined, undefined, 'default'), 'default');
});

test('config file: missing is fine unless required; bad YAML names the line; a list is refused', (t) => {
  const dir = tempDir(t);
  assert.deepEqual(loadConfigFile(path.join(dir, 'none.yaml')), {});
  assert.throws(() => loadConfigFile(path.join(dir, 'none.yaml'), { required: true }), { code: 'GUARD_E_CONFIG' });
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'tiers:\n  free:\n    daily: [1\n');
  assert.throws(() => loadConfigFile(bad), (e: Error & { code: string }) => e.code === 'GUARD_E_CONFIG' && /line \d/.test(e.message));
  fs.writeFileSync(bad, '- a\n- b\n');
  assert.throws(() => loadConfigFile(bad), /must hold a mapping/);
});

test('atomic writes: mode 0600, whole content, and no temp file left behind on failure', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'secret.pem');
  writeFileAtomic(file, 'old');
  writeFileAtomic(file, 'new content');
  assert.equal(fs.readFileSync(file, 'utf8'), 'new content');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), ['secret.pem']);
  // Renaming onto a directory fails after the temp file was written: the old state must be untouched.
  fs.mkdirSync(path.join(dir, 'occupied'));
  assert.throws(() => writeFileAtomic(path.join(dir, 'occupied'), 'x'), { code: 'GUARD_E_HOME' });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['occupied', 'secret.pem']);
});

test('durations, expiries and rates parse, and bad ones name the value', () => {
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.throws(() => parseDuration('24 hours'), /invalid duration "24 hours"/);
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseExpiry('90d', now), now + 90 * 86_400_000);
  assert.equal(parseExpiry('2027-01-31', now), Date.UTC(2027, 0, 31));
  assert.throws(() => parseExpiry('2025-01-01', now), /in the past/);
  assert.throws(() => parseExpiry('next week', now), /invalid expiry/);
  assert.equal(parseRate('5/s'), 5);
  assert.equal(parseRate('300/m'), 5);
  assert.equal(parseRate('7'), 7);
  assert.throws(() => parseRate('0/s'), /invalid rate/);
});
