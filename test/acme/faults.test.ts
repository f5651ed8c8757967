/**
 * Failures leave the previous good state: a provider that fails on add, a CA that rejects a name, a challenge
 * that cannot validate, an unwritable deploy location or home, a failing reload command, a held lock.
 * One BIND + Pebble for all; the flow runs in-process with wrapped providers where a fault must be injected.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configureAcmeTrust } from '../../src/acme/directory.js';
import { issueCertificate } from '../../src/acme/issue.js';
import type { LifecycleDeps } from '../../src/acme/obtain.js';
import type { Solver } from '../../src/acme/order.js';
import { httpSolver } from '../../src/acme/http01.js';
import { renewMany } from '../../src/acme/renew-all.js';
import { solverFor } from '../../src/acme/solver.js';
import type { DnsSettings } from '../../src/acme/types.js';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPebble } from '../helpers/pebble.js';

const read = (dir: string) => Object.fromEntries(['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem'].map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));

test('faults leave the previous good state', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}`, blockedDomains: ['blocked.example.test'] });
  if (!pebble) return;
  const env = {
    PATH: process.env.PATH, GUARDCTL_ACME_CA_CERTIFICATES: pebble.caFile, GUARDCTL_RENEW_JITTER: '0', GUARDCTL_ACME_POLL_MS: '200',
    RFC2136_NAMESERVER: `127.0.0.1:${bind.port}`, RFC2136_TSIG_KEY: bind.tsig.name, RFC2136_TSIG_SECRET: bind.tsig.secret,
  };
  configureAcmeTrust(env);
  const dns: DnsSettings = { provider: 'rfc2136', options: {}, intervalSec: 0.2, timeoutSec: 120, resolvers: [`127.0.0.1:${bind.port}`] };
  const flags = ['--server', pebble.directory, '--agree-tos', '--dns', 'rfc2136', '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2'];
  const logs: string[] = [];
  const deps = (home: string, wrap: (s: Solver) => Solver = (s) => s): LifecycleDeps => ({
    home, env, now: Date.now, pollMinMs: 200,
    log: (level, message) => logs.push(`${level}: ${message}`),
    solverFor: (settings) => wrap(solverFor(settings, env, () => {})),
  });
  const issue = (home: string, names: string[], wrap?: (s: Solver) => Solver) =>
    issueCertificate({ lineage: names[0]!, names, server: pebble.directory, keyType: 'ec256', agreeTos: true, dns }, deps(home, wrap));

  await t.test('the CA cannot validate a challenge: the hint names what to check for that challenge, and no lineage is written', async (st) => {
    // DNS-01: the provider says it wrote the record and writes nothing, and nothing waits for it to appear.
    const dnsHome = tempDir(st);
    const silent = await issue(dnsHome, ['silent.example.test'], (s) => ({
      ...s,
      provider: { name: 'silent', present: async () => {}, cleanup: async () => {} },
      propagation: { ...s.propagation, waitForTxt: async () => undefined },
    })).then(() => null, (e: Error & { hint?: string }) => e);
    assert.match(String(silent?.message), /could not get a certificate for silent\.example\.test/);
    assert.match(String(silent?.hint), /did not see the right TXT record/);
    // HTTP-01: Pebble fetches the token from a port nothing listens on.
    const httpHome = tempDir(st);
    const webroot = tempDir(st);
    const unfetched = await issue(httpHome, ['unfetched.example.test'], () => httpSolver({ provider: 'http', options: { webroot }, intervalSec: 0, timeoutSec: 0 } as DnsSettings))
      .then(() => null, (e: Error & { hint?: string }) => e);
    assert.match(String(unfetched?.message), /could not get a certificate for unfetched\.example\.test/);
    assert.match(String(unfetched?.hint), /could not fetch the challenge file over http:\/\/NAME\/\.well-known\/acme-challenge\//);
    for (const home of [dnsHome, httpHome]) assert.deepEqual(fs.readdirSync(path.join(home, 'certs')), []);
  });

  await t.test('the provider fails on add: the other value is removed, no lineage is written', async (st) => {
    const home = tempDir(st);
    const cleaned: string[] = [];
    const err = await issue(home, ['a.example.test', 'b.example.test'], (s) => ({
      ...s,
      provider: {
        name: 'flaky',
        present: async (r) => (r.fqdn.startsWith('_acme-challenge.b.') ? Promise.reject(new Error('flaky: the API said no')) : s.provider.present(r)),
        cleanup: async (r) => {
          cleaned.push(r.fqdn);
          if (r.fqdn.startsWith('_acme-challenge.b.')) throw new Error('flaky: nothing to remove');
          return s.provider.cleanup(r);
        },
      },
    })).then(() => null, (e: Error) => e);
    assert.match(String(err?.message), /the API said no/, 'the real error, not the cleanup\'s');
    assert.deepEqual(cleaned.sort(), ['_acme-challenge.a.example.test', '_acme-challenge.b.example.test']);
    assert.ok(logs.some((l) => /^warn: b\.example\.test: could not remove the TXT record.*nothing to remove/.test(l)), 'the failed cleanup is logged');
    assert.deepEqual(await bind.dig('_acme-challenge.a.example.test', 'TXT'), []);
    assert.deepEqual(fs.readdirSync(path.join(home, 'certs')), []);
  });

  await t.test('the CA rejects a name: exit 1 with its reason, nothing written', async (st) => {
    const home = tempDir(st);
    const r = await runCli(['--home', home, 'cert', 'issue', '-d', 'blocked.example.test', ...flags], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: could not get a certificate for blocked\.example\.test: .*(rejectedIdentifier|blocked|policy)/i);
    assert.deepEqual(fs.readdirSync(path.join(home, 'certs')), []);
  });

  await t.test('a challenge that cannot validate (wrong TXT) on renewal: TXT removed, certificate untouched, hook run', async (st) => {
    const home = tempDir(st);
    await issue(home, ['wrong.example.test']);
    const dir = path.join(home, 'certs', 'wrong.example.test');
    const before = read(dir);
    const metaBefore = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    // A name never validated before joins the lineage, so the CA cannot reuse a valid authorization for it.
    const fresh = `fresh-${Date.now().toString(36)}.example.test`;
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...metaBefore, names: [...metaBefore.names, fresh] }));
    const hookOut = path.join(home, 'hook.txt');
    const report = await renewMany(['wrong.example.test'], { force: true, onFailure: `printf '%s|%s' "$GUARDCTL_LINEAGE" "$GUARDCTL_ERROR" > ${hookOut}` }, deps(home, (s) => ({
      ...s,
      provider: { name: 'liar', present: (r) => s.provider.present({ ...r, value: 'not-the-key-authorization' }), cleanup: (r) => s.provider.cleanup({ ...r, value: 'not-the-key-authorization' }) },
      propagation: { ...s.propagation, waitForTxt: async () => undefined },
    })));
    assert.equal(report.failures.length, 1);
    assert.match(report.failures[0]!.message, /example\.test: .*(Correct value not found|incorrect|unauthorized)/i);
    assert.deepEqual(await bind.dig('_acme-challenge.wrong.example.test', 'TXT'), []);
    assert.deepEqual(await bind.dig(`_acme-challenge.${fresh}`, 'TXT'), []);
    assert.deepEqual(read(dir), before);
    const metaAfter = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    assert.deepEqual(metaAfter.cert, metaBefore.cert);
    assert.deepEqual(metaAfter.names, [...metaBefore.names, fresh]);
    assert.match(metaAfter.lastError.message, /Correct value not found|incorrect|unauthorized/i);
    assert.equal(fs.existsSync(path.join(dir, 'previous')), false);
    const [lineage, error] = fs.readFileSync(hookOut, 'utf8').split('|');
    assert.equal(lineage, 'wrong.example.test');
    assert.equal(error, report.failures[0]!.message);
    const listed = await runCli(['--home', home, 'cert', 'list'], { env });
    assert.match(listed.stdout, /wrong\.example\.test .*Correct value not found|wrong\.example\.test[\s\S]*incorrect/i);
  });

  await t.test('an unwritable deploy location or home: a clear error before any order, nothing half-written', async (st) => {
    const home = tempDir(st);
    const blocker = path.join(tempDir(st), 'not-a-dir');
    fs.writeFileSync(blocker, '');
    const r = await runCli(['--home', home, 'cert', 'issue', '-d', 'deploy.example.test', ...flags, '--deploy-dir', path.join(blocker, 'ssl')], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: cannot write to the deploy location .*not-a-dir\/ssl/);
    assert.match(r.stderr, /hint: make the deploy location writable/);
    assert.deepEqual(fs.readdirSync(path.join(home, 'certs')), []);
    assert.equal(fs.existsSync(path.join(home, 'acme')), false, 'not even an account was registered');

    // A home whose certs folder cannot be made: read-only for a normal user; root ignores modes, so a file
    // stands where the folder should be.
    const badHome = tempDir(st);
    if (process.getuid?.() === 0) fs.writeFileSync(path.join(badHome, 'certs'), '');
    else fs.chmodSync(badHome, 0o500);
    const h = await runCli(['--home', badHome, 'cert', 'issue', '-d', 'home.example.test', ...flags], { env });
    assert.equal(h.code, 1);
    assert.match(h.stderr, /error: cannot create directory .*\/certs: (EEXIST|EACCES)/);
    assert.match(h.stderr, /hint: .*--home/);
    assert.equal(fs.existsSync(path.join(badHome, 'acme')), false);
  });

  await t.test('a failing reload command: exit 1, and the next renew deploys again once it works', async (st) => {
    const home = tempDir(st);
    const deployDir = path.join(tempDir(st), 'ssl');
    const flag = path.join(home, 'reload-ok');
    const r = await runCli(['--home', home, '--json', 'cert', 'issue', '-d', 'reload.example.test', ...flags, '--deploy-dir', deployDir, '--reload-cmd', `test -f ${flag} || { echo "nginx: config broken" >&2; exit 3; }`], { env });
    assert.equal(r.code, 1);
    assert.equal(r.json<{ error: { code: string; message: string } }>().error.code, 'GUARD_E_DEPLOY');
    assert.match(r.stdout, /reload command exited with 3: nginx: config broken/);
    const meta = JSON.parse(fs.readFileSync(path.join(home, 'certs', 'reload.example.test', 'meta.json'), 'utf8'));
    assert.equal(meta.deployedSerial, undefined);
    fs.writeFileSync(flag, '');
    const again = await runCli(['--home', home, '--json', 'cert', 'renew', 'reload.example.test'], { env });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(again.json<{ results: Array<{ status: string }> }>().results[0]!.status, 'redeployed');
    assert.equal(JSON.parse(fs.readFileSync(path.join(home, 'certs', 'reload.example.test', 'meta.json'), 'utf8')).deployedSerial, meta.cert.serial);
  });

  await t.test('renew --all: a failure stops the run, unless --keep-going', async (st) => {
    const home = tempDir(st);
    await issue(home, ['a-broken.example.test']);
    await issue(home, ['b-fine.example.test']);
    // a-broken's CA is now unreachable.
    const metaFile = path.join(home, 'certs', 'a-broken.example.test', 'meta.json');
    const m = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    fs.writeFileSync(metaFile, JSON.stringify({ ...m, server: 'https://127.0.0.1:9/dir' }));
    type Report = { results: Array<{ lineage: string; status: string }>; failures: Array<{ lineage: string; error: string }>; skipped: string[] };
    const stop = await runCli(['--home', home, '--json', 'cert', 'renew', '--all', '--force'], { env });
    assert.equal(stop.code, 1);
    const r1 = stop.json<Report>();
    assert.deepEqual([r1.failures.map((f) => f.lineage), r1.results, r1.skipped], [['a-broken.example.test'], [], ['b-fine.example.test']]);
    const go = await runCli(['--home', home, '--json', 'cert', 'renew', '--all', '--force', '--keep-going'], { env });
    assert.equal(go.code, 1);
    const r2 = go.json<Report>();
    assert.deepEqual(r2.failures.map((f) => f.lineage), ['a-broken.example.test']);
    assert.deepEqual(r2.results.map((r) => [r.lineage, r.status]), [['b-fine.example.test', 'renewed']]);
    const text = await runCli(['--home', home, 'cert', 'renew', '--all', '--dry-run'], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /b-fine\.example\.test\s+not-due/);
  });

  await t.test('a lock held by a live process refuses; a stale one is taken over', async (st) => {
    const home = tempDir(st);
    await issue(home, ['lock.example.test']);
    const holder = spawn('sleep', ['30']);
    st.after(() => holder.kill('SIGKILL'));
    fs.writeFileSync(path.join(home, 'certs', '.lock.example.test.lock'), `${holder.pid}\n`);
    const busy = await runCli(['--home', home, '--json', 'cert', 'renew', 'lock.example.test', '--force'], { env });
    assert.equal(busy.code, 1);
    assert.equal(busy.json<{ error: { code: string } }>().error.code, 'GUARD_E_CERT_BUSY');
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    const ok = await runCli(['--home', home, '--json', 'cert', 'renew', 'lock.example.test', '--force'], { env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(fs.existsSync(path.join(home, 'certs', '.lock.example.test.lock')), false);
  });
});
