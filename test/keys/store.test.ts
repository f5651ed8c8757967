import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { GuardError } from '../../src/core/errors.js';
import { decodeMasterKey, loadMasterKey } from '../../src/keys/master-key.js';
import { open, seal } from '../../src/keys/seal.js';
import { createStore } from '../../src/keys/schema.js';
import { KeyStore, keyStatus } from '../../src/keys/store.js';
import { effectiveLimits, loadTiers } from '../../src/keys/tiers.js';
import { tempDir } from '../helpers/cli.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

function storeAt(t: Parameters<typeof tempDir>[0], clock: { now: number }, extra: Partial<Parameters<typeof KeyStore.open>[0]> = {}) {
  const home = path.join(tempDir(t), 'home');
  const store = KeyStore.open({ home, env: {}, now: () => clock.now, ...extra });
  t.after(() => store.close());
  return { home, store };
}

const code = (c: string) => (err: unknown) => err instanceof GuardError && err.code === c;
const secretsOf = (store: KeyStore, id: string) => store.credentials(id)?.secrets.map((s) => [s.value.toString('utf8'), s.notAfter]);

test('seal/open round-trips, binds to the AAD and the key, and uses a fresh IV each time', () => {
  const key = Buffer.alloc(32, 9);
  const a = seal(key, 'gs_hello', 'gk_1');
  assert.notEqual(a, seal(key, 'gs_hello', 'gk_1'));
  assert.match(a, /^v1\./);
  assert.ok(!a.includes('gs_hello'));
  assert.equal(open(key, a, 'gk_1'), 'gs_hello');
  assert.throws(() => open(key, a, 'gk_2'), code('GUARD_E_MASTER_KEY'));
  assert.throws(() => open(Buffer.alloc(32, 8), a, 'gk_1'), /does not open the key store/);
  const parts = a.split('.');
  parts[2] = Buffer.from('gs_hellp').toString('base64url');
  assert.throws(() => open(key, parts.join('.'), 'gk_1'), code('GUARD_E_MASTER_KEY'));
  assert.throws(() => open(key, 'v9.x.y.z', 'gk_1'), code('GUARD_E_KEYSTORE'));
});

test('master key: hex and base64 accepted, created once 0600, second load returns the same key', (t) => {
  const hex = 'ab'.repeat(32);
  assert.deepEqual(decodeMasterKey(hex, 'x'), Buffer.from(hex, 'hex'));
  assert.deepEqual(decodeMasterKey(`${Buffer.alloc(32, 5).toString('base64')}\n`, 'x'), Buffer.alloc(32, 5));
  assert.throws(() => decodeMasterKey(Buffer.alloc(31).toString('base64'), 'SRC'), (e: unknown) => e instanceof GuardError && e.code === 'GUARD_E_MASTER_KEY' && /SRC/.test(e.message));
  const home = path.join(tempDir(t), 'h');
  const first = loadMasterKey({ home, env: {} });
  assert.equal(first.length, 32);
  assert.deepEqual(loadMasterKey({ home, env: {} }), first);
  assert.equal(fs.statSync(path.join(home, 'master.key')).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(home), ['master.key'], 'no staging files left behind');
  assert.throws(() => loadMasterKey({ home: path.join(home, 'other'), env: {}, create: false }), code('GUARD_E_MASTER_KEY'));
});

test('rotation grace: old secret verifies until the grace ends, then disappears; grace 0 ends it at once', (t) => {
  const clock = { now: T0 };
  const { store } = storeAt(t, clock);
  const { record, secret: s1 } = store.create({ name: 'a', tier: 'pro' });
  assert.deepEqual(secretsOf(store, record.id), [[s1, null]]);

  const { secret: s2, record: r2 } = store.rotate(record.id, 2 * HOUR);
  assert.notEqual(s2, s1);
  assert.equal(r2.previousValidUntil, T0 + 2 * HOUR);
  assert.deepEqual(secretsOf(store, record.id), [[s2, null], [s1, T0 + 2 * HOUR]]);
  clock.now = T0 + 2 * HOUR - 1;
  assert.equal(secretsOf(store, record.id)?.length, 2);
  clock.now = T0 + 2 * HOUR;
  assert.deepEqual(secretsOf(store, record.id), [[s2, null]]);

  const { secret: s3, record: r3 } = store.rotate(record.id, 0);
  assert.equal(r3.previousValidUntil, null);
  assert.deepEqual(secretsOf(store, record.id), [[s3, null]]);
  const events = store.events(record.id);
  assert.deepEqual(events.map((e) => [e.action, e.detail?.graceMs]), [['create', undefined], ['rotate', 2 * HOUR], ['rotate', 0]]);
  assert.ok(!JSON.stringify(events).includes('gs_'));
});

test('revoke: no secret verifies, a second revoke and a rotate are refused, the event is recorded', (t) => {
  const clock = { now: T0 };
  const { store } = storeAt(t, clock);
  const { record } = store.create({ name: 'a', tier: 'free' });
  store.rotate(record.id, HOUR);
  const revoked = store.revoke(record.id);
  assert.equal(revoked.status, 'revoked');
  assert.equal(revoked.revokedAt, T0);
  assert.deepEqual(store.credentials(record.id)?.secrets, []);
  assert.equal(store.credentials(record.id)?.record.status, 'revoked');
  assert.throws(() => store.revoke(record.id), code('GUARD_E_KEY_STATE'));
  assert.throws(() => store.rotate(record.id, 0), code('GUARD_E_KEY_STATE'));
  assert.deepEqual(store.events(record.id).map((e) => e.action), ['create', 'rotate', 'revoke']);
  assert.equal(store.health().active, 0);
});

test('expiry is derived from expiresAt and the clock, not stored', (t) => {
  const clock = { now: T0 };
  const { store } = storeAt(t, clock);
  const { record } = store.create({ name: 'a', tier: 'free', expiresAt: T0 + HOUR });
  assert.equal(keyStatus(record, clock.now), 'active');
  assert.equal(store.credentials(record.id)?.secrets.length, 1);
  clock.now = T0 + HOUR;
  const later = store.get(record.id);
  assert.equal(later.status, 'active', 'the stored status does not change');
  assert.equal(keyStatus(later, clock.now), 'expired');
  assert.deepEqual(store.credentials(record.id)?.secrets, []);
  assert.throws(() => store.rotate(record.id, 0), code('GUARD_E_KEY_STATE'));
  assert.deepEqual(store.health(), { ok: true, keys: 1, active: 0, path: store.path });
  assert.throws(() => store.create({ name: 'b', tier: 'free', expiresAt: T0 }), code('GUARD_E_USAGE'));
});

test('overrides win over the tier field by field; custom tiers from config are accepted', (t) => {
  const tiers = loadTiers({ silver: { models: ['guard-*'], rate: 3 } });
  const { store } = storeAt(t, { now: T0 }, { tiers });
  const { record } = store.create({ name: 'a', tier: 'pro', overrides: { daily: 5, concurrency: null } });
  assert.deepEqual(effectiveLimits(record, tiers), { models: ['size:small', 'size:large'], concurrency: null, daily: 5, rate: 50, burst: 100 });
  const silver = store.create({ name: 'b', tier: 'silver' }).record;
  assert.deepEqual(effectiveLimits(silver, tiers), { models: ['guard-*'], concurrency: null, daily: null, rate: 3, burst: null });
  assert.throws(() => store.create({ name: 'c', tier: 'gold' }), (e: unknown) => e instanceof GuardError && e.code === 'GUARD_E_TIER' && /silver/.test(e.hint ?? ''));
});

test('input validation names the bad value and writes nothing', (t) => {
  const { store } = storeAt(t, { now: T0 });
  assert.throws(() => store.create({ name: 'a', tier: 'pro', allowIps: ['10.0.0.1', 'fe80::/200'] }), /"fe80::\/200"/);
  assert.throws(() => store.create({ name: 'a', tier: 'pro', allowIps: ['example.com'] }), /"example.com"/);
  assert.throws(() => store.create({ name: '', tier: 'pro' }), code('GUARD_E_USAGE'));
  assert.throws(() => store.create({ name: 'x'.repeat(65), tier: 'pro' }), code('GUARD_E_USAGE'));
  assert.throws(() => store.create({ name: 'bell\u0007', tier: 'pro' }), code('GUARD_E_USAGE'));
  assert.throws(() => store.create({ name: 'a', tier: 'pro', overrides: { daily: 1.5 } }), /daily/);
  assert.deepEqual(store.list(), []);
  const ok = store.create({ name: 'ünïcode name', tier: 'pro', allowIps: [' 10.0.0.0/8 ', '::1', '10.0.0.0/8'] });
  assert.deepEqual(ok.record.allowIps, ['10.0.0.0/8', '::1']);
});

test('a damaged database and a wrong master key fail at open with clear codes', (t) => {
  const clock = { now: T0 };
  const { home, store } = storeAt(t, clock);
  store.create({ name: 'a', tier: 'pro' });
  store.close();
  assert.throws(() => KeyStore.open({ home, env: { GUARDCTL_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } }), code('GUARD_E_MASTER_KEY'));
  const ro = KeyStore.open({ home, env: {}, readonly: true });
  assert.equal(ro.list().length, 1);
  ro.close();

  const broken = path.join(tempDir(t), 'broken');
  fs.mkdirSync(broken, { mode: 0o700 });
  fs.copyFileSync(path.join(home, 'master.key'), path.join(broken, 'master.key'));
  fs.writeFileSync(path.join(broken, 'keys.db'), Buffer.alloc(8192, 0x41), { mode: 0o600 });
  assert.throws(() => KeyStore.open({ home: broken, env: {} }), (e: unknown) => e instanceof GuardError && e.code === 'GUARD_E_KEYSTORE' && /backup/.test(e.hint ?? ''));
  assert.throws(() => KeyStore.open({ home: path.join(broken, 'none'), env: {}, readonly: true }), code('GUARD_E_KEYSTORE'));
});

test('a store that exists but holds no schema is refused like a damaged one and left as found', (t) => {
  const { home, store } = storeAt(t, { now: T0 });
  store.close();
  const file = path.join(home, 'keys.db');
  const refused = (e: unknown) => e instanceof GuardError && e.code === 'GUARD_E_KEYSTORE' && /no key store schema/.test(e.message)
    && e.hint!.includes(`restore ${file} from a backup`);
  // A 0-byte file (what a failed copy or `: > keys.db` leaves) and a valid SQLite file with no tables.
  for (const make of [() => fs.writeFileSync(file, ''), () => new Database(file).exec('CREATE TABLE other (a)').close()]) {
    for (const f of fs.readdirSync(home)) if (f.startsWith('keys.db')) fs.rmSync(path.join(home, f));
    make();
    const before = fs.readFileSync(file);
    assert.throws(() => KeyStore.open({ home, env: {} }), refused);
    assert.throws(() => KeyStore.open({ home, env: {}, readonly: true }), refused);
    assert.deepEqual(fs.readFileSync(file), before, 'the refused file must not be initialised or changed');
    assert.deepEqual(fs.readdirSync(home).sort(), ['keys.db', 'master.key']);
  }
});

test('a first run that loses the race to create the store uses the winner\'s store and never replaces it', (t) => {
  const home = path.join(tempDir(t), 'home');
  const winner = KeyStore.open({ home, env: {}, now: () => T0 });
  t.after(() => winner.close());
  const { record } = winner.create({ name: 'a', tier: 'pro' });
  // What the loser does after seeing no file: build its own store, then fail to link it over the winner's.
  createStore(path.join(home, 'keys.db'), loadMasterKey({ home, env: {}, create: false }));
  const loser = KeyStore.open({ home, env: {}, now: () => T0 });
  t.after(() => loser.close());
  assert.deepEqual(loser.list().map((r) => r.id), [record.id]);
  assert.deepEqual(fs.readdirSync(home).filter((f) => f.startsWith('.')), [], 'no staging file is left behind');
  assert.equal(fs.statSync(path.join(home, 'keys.db')).mode & 0o777, 0o600);
});
