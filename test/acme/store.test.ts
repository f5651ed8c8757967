import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Bundle } from '../../src/acme/certinfo.js';
import { CertStore } from '../../src/acme/store.js';
import type { LineageMeta } from '../../src/acme/types.js';
import { tempDir } from '../helpers/cli.js';

const bundle = (v: string): Bundle => ({ cert: `cert ${v}\n`, chain: `chain ${v}\n`, fullchain: `cert ${v}\nchain ${v}\n`, privkey: `key ${v}\n` });
const meta = (serial: string): LineageMeta => ({
  version: 1, lineage: 'site', names: ['site.example.test'], server: 'https://ca.test/dir', keyType: 'ec256', dns: { provider: 'manual', options: {} },
  cert: { serial, issuer: 'CA', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-04-01T00:00:00.000Z', issuedAt: '2026-01-01T00:00:00.000Z', certId: null },
  nextRenewalAt: '2026-03-01T00:00:00.000Z',
});
const mode = (p: string) => fs.statSync(p).mode & 0o777;

test('install: private folders and keys; the version before a renewal is kept in previous/', (t) => {
  const store = new CertStore(tempDir(t));
  store.install('site', bundle('1'), meta('01'));
  const dir = store.lineageDir('site');
  assert.equal(mode(store.dir), 0o700);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(path.join(dir, 'privkey.pem')), 0o600);
  assert.equal(mode(path.join(dir, 'meta.json')), 0o600);
  assert.equal(mode(path.join(dir, 'cert.pem')), 0o644);
  assert.deepEqual(store.list(), ['site']);
  assert.equal(fs.readdirSync(store.dir).filter((e) => e.startsWith('.new-')).length, 0);

  store.install('site', bundle('2'), meta('02'));
  assert.equal(store.readMeta('site').cert.serial, '02');
  assert.deepEqual(store.readBundle('site'), bundle('2'));
  assert.deepEqual(store.readBundle('site', 'previous'), bundle('1'));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'previous', 'meta.json'), 'utf8')).cert.serial, '01');
  assert.equal(fs.existsSync(path.join(dir, '.next')), false);

  store.rollback('site');
  assert.deepEqual(store.readBundle('site'), bundle('1'));
  assert.equal(store.readMeta('site').cert.serial, '01');
  assert.deepEqual(store.readBundle('site', 'previous'), bundle('2'), 'a rollback swaps: the newer version is kept aside');
  assert.throws(() => new CertStore(tempDir(t)).rollback('none'), /no previous version/);
});

test('recovery: an install killed before its commit mark leaves the old version; after it, the new one', (t) => {
  const store = new CertStore(tempDir(t));
  store.install('site', bundle('1'), meta('01'));
  const dir = store.lineageDir('site');
  const next = path.join(dir, '.next');

  // Died while writing .next (no .complete): swept, the old version stays.
  fs.mkdirSync(next);
  fs.writeFileSync(path.join(next, 'cert.pem'), 'cert 2\n');
  fs.mkdirSync(path.join(dir, '.previous.tmp'));
  fs.mkdirSync(path.join(store.dir, '.new-site.dead'));
  store.recover('site');
  assert.deepEqual(store.readBundle('site'), bundle('1'));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json', 'privkey.pem']);
  assert.deepEqual(fs.readdirSync(store.dir), ['site']);

  // Died half-way through moving a committed .next into place (key already new, cert still old): rolled forward.
  fs.mkdirSync(next);
  for (const [f, v] of Object.entries(bundle('2'))) fs.writeFileSync(path.join(next, `${f}.pem`), v);
  fs.writeFileSync(path.join(next, 'meta.json'), JSON.stringify(meta('02')));
  fs.writeFileSync(path.join(next, '.complete'), '');
  fs.renameSync(path.join(next, 'privkey.pem'), path.join(dir, 'privkey.pem'));
  store.recover('site');
  assert.deepEqual(store.readBundle('site'), bundle('2'));
  assert.equal(store.readMeta('site').cert.serial, '02');
  assert.equal(fs.existsSync(next), false);
});

test('the lock: one holder at a time; a dead holder\'s lock is taken over', async (t) => {
  const store = new CertStore(tempDir(t));
  store.install('site', bundle('1'), meta('01'));
  let inside = 0;
  // The first holder keeps the lock until the second attempt has been refused, however long that takes.
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  let entered = () => {};
  const holding = new Promise<void>((r) => (entered = r));
  const slow = store.locked('site', async () => {
    inside++;
    entered();
    await held;
  });
  await holding;
  await assert.rejects(store.locked('site', async () => inside++), (err: Error & { code?: string }) => err.code === 'GUARD_E_CERT_BUSY' && /another guardctl \(pid \d+\)/.test(err.message));
  release();
  await slow;
  assert.equal(inside, 1);

  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  fs.writeFileSync(path.join(store.dir, '.site.lock'), `${child.pid}\n`);
  await store.locked('site', async () => inside++);
  assert.equal(inside, 2);
  assert.equal(fs.existsSync(path.join(store.dir, '.site.lock')), false);
});

test('a lineage that does not exist is named in the error', (t) => {
  const home = tempDir(t);
  const store = new CertStore(home);
  assert.deepEqual(store.list(), []);
  assert.throws(() => store.readMeta('nope'), (err: Error & { code?: string }) => err.code === 'GUARD_E_CERT_NOT_FOUND' && err.message.includes('"nope"'));
});
