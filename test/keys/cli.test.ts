import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksum as checksumOf } from '../../src/keys/token.js';
import { runCli, tempDir } from '../helpers/cli.js';

const DAY = 86_400_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

async function createKey(home: string, extra: string[] = [], now = () => T0) {
  const run = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'acme', '--tier', 'pro', ...extra], { now });
  assert.equal(run.code, 0, run.stderr + run.stdout);
  return run.json<{ id: string; secret: string; [k: string]: unknown }>();
}

/** Every file in home except the master key, as one buffer (the db, and its WAL if one is left). */
function storeBytes(home: string): Buffer {
  return Buffer.concat(fs.readdirSync(home).filter((f) => f !== 'master.key').map((f) => fs.readFileSync(path.join(home, f))));
}

test('create prints the secret once; list, show and the db never contain it', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const human = await runCli(['--home', home, 'keys', 'create', '--name', 'acme corp', '--tier', 'pro']);
  assert.equal(human.code, 0, human.stderr);
  const secret = /secret: (gs_\w+)/.exec(human.stdout)?.[1];
  const id = /id: +(gk_\w+)/.exec(human.stdout)?.[1];
  assert.ok(secret && id, human.stdout);
  assert.match(human.stdout, /will not be shown again/);

  const created = await createKey(home);
  assert.match(created.secret, /^gs_/);
  assert.deepEqual(
    Object.keys(created).sort(),
    ['allow_bearer', 'allow_ips', 'burst', 'concurrency', 'created_at', 'daily', 'expires_at', 'id', 'models', 'name', 'rate', 'secret', 'tier'],
  );
  assert.equal(created.expires_at, null);

  for (const args of [['keys', 'list'], ['--json', 'keys', 'list'], ['keys', 'show', id], ['--json', 'keys', 'show', created.id]]) {
    const run = await runCli(['--home', home, ...args]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes(id) || run.stdout.includes(created.id));
    for (const s of [secret, created.secret]) assert.ok(!run.stdout.includes(s) && !run.stderr.includes(s), `${args.join(' ')} leaked a secret`);
  }
  const bytes = storeBytes(home);
  assert.ok(bytes.length > 0);
  for (const s of [secret, created.secret]) assert.equal(bytes.indexOf(s), -1, 'plain secret found in the key store files');
});

test('home is 0700, master key and db are 0600', async (t) => {
  const home = path.join(tempDir(t), 'home');
  await createKey(home);
  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  assert.equal(mode(home), 0o700);
  assert.equal(mode(path.join(home, 'master.key')), 0o600);
  assert.equal(mode(path.join(home, 'keys.db')), 0o600);
  for (const f of ['keys.db-wal', 'keys.db-shm']) if (fs.existsSync(path.join(home, f))) assert.equal(mode(path.join(home, f)), 0o600);
  assert.match(fs.readFileSync(path.join(home, 'master.key'), 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
});

test('a mistyped or truncated key id is rejected by its checksum before any lookup', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const { id } = await createKey(home);
  const last = id.at(-1)!;
  const typo = id.slice(0, -1) + (last === 'a' ? 'b' : 'a');
  for (const bad of [typo, id.slice(0, -2)]) {
    const run = await runCli(['--home', home, '--json', 'keys', 'show', bad]);
    assert.equal(run.code, 1);
    assert.equal(run.json().error.code, 'GUARD_E_TOKEN');
  }
  const human = await runCli(['--home', home, 'keys', 'revoke', typo]);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /checksum does not match/);
  const unknown = await runCli(['--home', home, '--json', 'keys', 'show', 'gk_' + 'A'.repeat(16) + checksumOf('gk_' + 'A'.repeat(16))]);
  assert.equal(unknown.json().error.code, 'GUARD_E_KEY_NOT_FOUND');
  assert.match(unknown.json().error.hint, /guardctl keys list/);
});

test('wrong master key is refused at open with GUARD_E_MASTER_KEY and exit 1', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const keyA = Buffer.alloc(32, 1).toString('base64');
  const keyB = Buffer.alloc(32, 2).toString('hex');
  const made = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'a', '--tier', 'free'], { env: { GUARDCTL_MASTER_KEY: keyA } });
  assert.equal(made.code, 0, made.stdout);
  assert.ok(!fs.existsSync(path.join(home, 'master.key')), 'an env key must not also create a key file');
  const ok = await runCli(['--home', home, '--json', 'keys', 'list'], { env: { GUARDCTL_MASTER_KEY: keyA } });
  assert.equal(ok.json().keys.length, 1);
  const wrong = await runCli(['--home', home, '--json', 'keys', 'list'], { env: { GUARDCTL_MASTER_KEY: keyB } });
  assert.equal(wrong.code, 1);
  assert.equal(wrong.json().error.code, 'GUARD_E_MASTER_KEY');
  assert.ok(!wrong.stdout.includes(keyB) && !wrong.stdout.includes(keyA));
  // With no env key, a store that exists must not get a fresh (useless) master.key.
  const none = await runCli(['--home', home, '--json', 'keys', 'list']);
  assert.equal(none.json().error.code, 'GUARD_E_MASTER_KEY');
  assert.ok(!fs.existsSync(path.join(home, 'master.key')));
});

test('world-readable key files and malformed GUARDCTL_MASTER_KEY are refused without printing the value', async (t) => {
  const dir = tempDir(t);
  const home = path.join(dir, 'home');
  await createKey(home);
  fs.chmodSync(path.join(home, 'master.key'), 0o644);
  const loose = await runCli(['--home', home, 'keys', 'list']);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /readable by other users/);
  assert.match(loose.stderr, new RegExp(`hint: chmod 600 ${path.join(home, 'master.key').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

  const keyFile = path.join(dir, 'mk');
  fs.writeFileSync(keyFile, Buffer.alloc(32, 7).toString('base64'), { mode: 0o640 });
  const env = { GUARDCTL_MASTER_KEY_FILE: keyFile };
  const looseFile = await runCli(['--home', path.join(dir, 'h2'), '--json', 'keys', 'create', '--name', 'x', '--tier', 'free'], { env });
  assert.equal(looseFile.json().error.code, 'GUARD_E_MASTER_KEY');
  assert.equal(looseFile.json().error.hint, `chmod 600 ${keyFile}`);
  fs.chmodSync(keyFile, 0o600);
  assert.equal((await runCli(['--home', path.join(dir, 'h2'), '--json', 'keys', 'create', '--name', 'x', '--tier', 'free'], { env })).code, 0);

  const bad = 'not-a-key-c2VjcmV0';
  const malformed = await runCli(['--home', path.join(dir, 'h3'), 'keys', 'create', '--name', 'x', '--tier', 'free'], { env: { GUARDCTL_MASTER_KEY: bad } });
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /GUARDCTL_MASTER_KEY is malformed/);
  assert.ok(!malformed.stderr.includes(bad));
  const short = Buffer.alloc(16, 3).toString('base64');
  const shortRun = await runCli(['--home', path.join(dir, 'h3'), '--json', 'keys', 'list'], { env: { GUARDCTL_MASTER_KEY: short } });
  // list on a missing store answers without touching the key; create must refuse it.
  assert.equal(shortRun.code, 0);
  const shortCreate = await runCli(['--home', path.join(dir, 'h3'), '--json', 'keys', 'create', '--name', 'x', '--tier', 'free'], { env: { GUARDCTL_MASTER_KEY: short } });
  assert.equal(shortCreate.json().error.code, 'GUARD_E_MASTER_KEY');
  assert.ok(!shortCreate.stdout.includes(short));
});

test('revoke, rotate and expiry through the CLI; events are recorded', async (t) => {
  const home = path.join(tempDir(t), 'home');
  let now = T0;
  const clock = () => now;
  const { id, secret } = await createKey(home, ['--expires', '30d'], clock);
  const rotated = await runCli(['--home', home, '--json', 'keys', 'rotate', id], { now: clock });
  assert.equal(rotated.code, 0, rotated.stdout);
  assert.notEqual(rotated.json().secret, secret);
  assert.equal(rotated.json().previous_valid_until, new Date(T0 + DAY).toISOString());
  const zero = await runCli(['--home', home, '--json', 'keys', 'rotate', id, '--grace', '0'], { now: clock });
  assert.equal(zero.json().previous_valid_until, null);

  now = T0 + 31 * DAY;
  const listed = await runCli(['--home', home, '--json', 'keys', 'list'], { now: clock });
  assert.equal(listed.json().keys[0].status, 'expired');
  const table = await runCli(['--home', home, 'keys', 'list'], { now: clock });
  assert.match(table.stdout, /expired/);
  assert.match(table.stdout, /2030-01-31T00:00:00.000Z/);
  now = T0 + DAY;

  const revoked = await runCli(['--home', home, '--json', 'keys', 'revoke', id], { now: clock });
  assert.equal(revoked.code, 0);
  assert.equal(revoked.json().revoked_at, new Date(T0 + DAY).toISOString());
  const again = await runCli(['--home', home, '--json', 'keys', 'revoke', id], { now: clock });
  assert.equal(again.code, 1);
  assert.equal(again.json().error.code, 'GUARD_E_KEY_STATE');
  const rotateRevoked = await runCli(['--home', home, '--json', 'keys', 'rotate', id], { now: clock });
  assert.equal(rotateRevoked.json().error.code, 'GUARD_E_KEY_STATE');

  const shown = (await runCli(['--home', home, '--json', 'keys', 'show', id], { now: clock })).json();
  assert.equal(shown.status, 'revoked');
  assert.deepEqual(shown.events.map((e: { action: string }) => e.action), ['create', 'rotate', 'rotate', 'revoke']);
  assert.equal(shown.events[1].detail.graceMs, DAY);
  assert.equal(shown.events[2].detail.graceMs, 0);
  assert.equal(shown.events[0].detail.tier, 'pro');
  assert.ok(!JSON.stringify(shown).includes('gs_'), 'no secret in show output');
});

test('per-key overrides win over the tier; config can redefine tiers and add custom ones', async (t) => {
  const home = path.join(tempDir(t), 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  fs.writeFileSync(path.join(home, 'guardctl.yaml'), 'tiers:\n  free:\n    daily: 7\n  gold:\n    models: ["guard-*"]\n    rate: "120/m"\n');
  const tiers = (await runCli(['--home', home, '--json', 'keys', 'tiers'])).json().tiers;
  const byName = Object.fromEntries(tiers.map((x: { name: string }) => [x.name, x]));
  assert.equal(byName.free.daily, 7);
  assert.equal(byName.free.concurrency, 2, 'unmentioned fields keep the built-in value');
  assert.deepEqual(byName.gold, { name: 'gold', models: ['guard-*'], concurrency: null, daily: null, rate: 2, burst: null });

  const key = (await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'g', '--tier', 'free', '--rate', '100/s', '--daily', 'unlimited', '--models', 'guard-*,size:large'])).json();
  assert.equal(key.rate, 100);
  assert.equal(key.daily, null);
  assert.equal(key.concurrency, 2);
  assert.deepEqual(key.models, ['guard-*', 'size:large']);
  const shown = (await runCli(['--home', home, '--json', 'keys', 'show', key.id])).json();
  assert.deepEqual(shown.limits, { models: ['guard-*', 'size:large'], concurrency: 2, daily: null, rate: 100, burst: 10 });
  assert.deepEqual(shown.overrides, { models: ['guard-*', 'size:large'], rate: 100, daily: null });

  const gold = await runCli(['--home', home, '--json', 'keys', 'create', '--name', 'g2', '--tier', 'gold']);
  assert.equal(gold.code, 0, gold.stdout);
  assert.equal(gold.json().rate, 2);
});

test('bad input exits 1 or 2 naming the bad value, and creates nothing', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const run = (...args: string[]) => runCli(['--home', home, 'keys', 'create', '--name', 'n', ...args]);
  const tier = await run('--tier', 'platinum');
  assert.equal(tier.code, 1);
  assert.match(tier.stderr, /unknown tier "platinum"/);
  assert.match(tier.stderr, /free, pro, enterprise/);
  const cidr = await run('--tier', 'pro', '--allow-ip', '10.0.0.0/8', '--allow-ip', '10.1.2.300/24');
  assert.equal(cidr.code, 2);
  assert.match(cidr.stderr, /"10\.1\.2\.300\/24"/);
  const v6 = await run('--tier', 'pro', '--allow-ip', '2001:db8::/129');
  assert.match(v6.stderr, /"2001:db8::\/129"/);
  const expires = await run('--tier', 'pro', '--expires', 'next-tuesday');
  assert.equal(expires.code, 2);
  assert.match(expires.stderr, /invalid expiry "next-tuesday"/);
  const past = await run('--tier', 'pro', '--expires', '2001-01-01');
  assert.match(past.stderr, /in the past/);
  const models = await run('--tier', 'pro', '--models', 'size:huge');
  assert.equal(models.code, 1);
  assert.match(models.stderr, /size:huge/);
  const rate = await run('--tier', 'pro', '--rate', 'fast');
  assert.match(rate.stderr, /invalid rate "fast"/);
  const missing = await runCli(['--home', home, 'keys', 'create', '--tier', 'pro']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--name/);
  assert.ok(!fs.existsSync(home), 'bad input must not create the data directory');

  const good = await run('--tier', 'pro', '--allow-ip', '10.0.0.0/8,2001:db8::1', '--allow-ip', '192.0.2.7');
  assert.equal(good.code, 0, good.stderr);
  const list = (await runCli(['--home', home, '--json', 'keys', 'list'])).json();
  assert.deepEqual(list.keys[0].allow_ips, ['10.0.0.0/8', '2001:db8::1', '192.0.2.7']);
});

test('keys --help lists the subcommands; list on an empty home says how to start', async (t) => {
  const home = path.join(tempDir(t), 'home');
  const help = await runCli(['keys', '--help']);
  assert.equal(help.code, 0);
  for (const sub of ['create', 'list', 'show', 'revoke', 'rotate', 'tiers']) assert.match(help.stdout, new RegExp(`\\b${sub}\\b`));
  const empty = await runCli(['--home', home, 'keys', 'list']);
  assert.equal(empty.code, 0);
  assert.match(empty.stdout, /No keys yet/);
  assert.ok(!fs.existsSync(home), 'listing must not create a store');
});

test('an empty keys.db is refused by keys and serve with exit 1 and a hint naming the backup; nothing overwrites it', async (t) => {
  const home = path.join(tempDir(t), 'home');
  await createKey(home);
  const file = path.join(home, 'keys.db');
  for (const f of fs.readdirSync(home)) if (f.startsWith('keys.db')) fs.rmSync(path.join(home, f));
  fs.writeFileSync(file, '', { mode: 0o600 });
  for (const args of [['keys', 'list'], ['keys', 'create', '--name', 'b', '--tier', 'pro'], ['serve', '--host', '127.0.0.1', '--port', '0']]) {
    const run = await runCli(['--home', home, '--json', ...args]);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    const { error } = run.json();
    assert.equal(error.code, 'GUARD_E_KEYSTORE', args.join(' '));
    assert.match(error.message, /the file is empty/);
    assert.match(error.hint, /restore .*keys\.db from a backup/);
    assert.equal(fs.statSync(file).size, 0, `${args.join(' ')} wrote to the empty store`);
  }
  const human = await runCli(['--home', home, 'keys', 'list']);
  assert.equal(human.code, 1);
  assert.doesNotMatch(human.stdout, /No keys yet/);
  assert.match(human.stderr, /backup/);
});
