/**
 * The whole lifecycle against real servers: Pebble validating DNS-01 through a real BIND that the rfc2136
 * provider updates with a TSIG key. issue (apex + wildcard: two values at one name) -> chain checked against
 * Pebble's root -> renew --force (new serial, old kept in previous/) -> revoke -> a CNAME-delegated name.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startBind } from '../helpers/bind.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { startPebble } from '../helpers/pebble.js';
import { startResolver } from './resolver.js';

test('issue, verify, renew, revoke and a CNAME-delegated name with BIND + rfc2136', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  // Pebble validates through a recursive resolver in front of BIND, as a real CA does (CNAMEs across zones).
  const resolver = await startResolver(t, bind.port);
  const pebble = await startPebble(t, { dnsServer: `127.0.0.1:${resolver.port}` });
  if (!pebble) return;
  const home = tempDir(t);
  const deployDir = path.join(tempDir(t), 'nginx-ssl');
  const reloadLog = path.join(home, 'reloads.log');
  const env = { ...pebble.cliEnv(), ...bind.rfc2136Env() };
  const cli = (args: string[]) => runCli(['--home', home, '--json', 'cert', ...args], { env });
  const dns = ['--dns', 'rfc2136', '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '0.2', '--dns-timeout', '120'];

  const issued = await cli(['issue', '-d', 'example.test', '-d', '*.example.test', '--server', pebble.directory, '--agree-tos', '--email', 'ops@example.test',
    ...dns, '--deploy-dir', deployDir, '--reload-cmd', `echo "$GUARDCTL_LINEAGE" >> ${reloadLog}`]);
  assert.equal(issued.code, 0, issued.stderr + issued.stdout);
  const first = issued.json<{ lineage: string; serial: string; names: string[]; dir: string; deployed: string[] }>();
  assert.equal(first.lineage, 'example.test');
  assert.deepEqual(first.names, ['example.test', '*.example.test']);
  assert.equal(issued.stderr.includes(bind.tsig.secret), false, 'the TSIG secret never reaches the output');

  // The chain verifies against Pebble's root, read from the management API.
  const dir = first.dir;
  const leaf = new X509Certificate(fs.readFileSync(path.join(dir, 'cert.pem')));
  const intermediate = new X509Certificate(fs.readFileSync(path.join(dir, 'chain.pem')));
  const root = new X509Certificate(await pebble.root());
  assert.ok(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey));
  assert.ok(intermediate.checkIssued(root) && intermediate.verify(root.publicKey));
  assert.equal(intermediate.fingerprint256, new X509Certificate(await pebble.intermediate()).fingerprint256);
  assert.match(leaf.subjectAltName ?? '', /DNS:\*\.example\.test/);
  assert.equal(fs.statSync(path.join(dir, 'privkey.pem')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(await bind.dig('_acme-challenge.example.test', 'TXT'), [], 'both challenge values were removed');
  assert.equal(fs.readFileSync(path.join(deployDir, 'fullchain.pem'), 'utf8'), fs.readFileSync(path.join(dir, 'fullchain.pem'), 'utf8'));
  assert.equal(fs.readFileSync(reloadLog, 'utf8'), 'example.test\n');

  // Not due yet: nothing happens.
  const idle = await cli(['renew', '--all']);
  assert.equal(idle.code, 0, idle.stderr);
  assert.equal(idle.json<{ results: Array<{ status: string }> }>().results[0]!.status, 'not-due');

  const renewed = await cli(['renew', 'example.test', '--force']);
  assert.equal(renewed.code, 0, renewed.stderr + renewed.stdout);
  const r = renewed.json<{ results: Array<{ status: string; serial: string; previousSerial: string }> }>().results[0]!;
  assert.equal(r.status, 'renewed');
  assert.notEqual(r.serial, first.serial);
  assert.equal(r.previousSerial, first.serial);
  assert.equal(new X509Certificate(fs.readFileSync(path.join(dir, 'previous', 'cert.pem'))).serialNumber.toLowerCase(), first.serial);
  assert.equal(new X509Certificate(fs.readFileSync(path.join(deployDir, 'cert.pem'))).serialNumber.toLowerCase(), r.serial);
  assert.equal(fs.readFileSync(reloadLog, 'utf8'), 'example.test\nexample.test\n');

  // Rollback swaps the two versions (and deploys); twice is back to the renewed one.
  const back = await cli(['rollback', 'example.test']);
  assert.equal(back.code, 0, back.stderr + back.stdout);
  assert.equal(back.json<{ serial: string }>().serial, first.serial);
  assert.equal(new X509Certificate(fs.readFileSync(path.join(deployDir, 'cert.pem'))).serialNumber.toLowerCase(), first.serial);
  assert.equal((await cli(['rollback', 'example.test'])).json<{ serial: string }>().serial, r.serial);

  const revoked = await cli(['revoke', 'example.test', '--reason', 'superseded']);
  assert.equal(revoked.code, 0, revoked.stderr + revoked.stdout);
  assert.equal((await pebble.certStatus(r.serial)).Status, 'Revoked');
  const listed = (await cli(['list'])).json<{ certificates: Array<{ name: string; revoked_at: string | null }> }>();
  assert.ok(listed.certificates[0]!.revoked_at);
  // A revoked certificate is due: --dry-run says so and changes nothing.
  const metaBefore = fs.readFileSync(path.join(dir, 'meta.json'), 'utf8');
  const dry = await cli(['renew', '--all', '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(dry.json<{ results: Array<{ status: string; reason: string }> }>().results.map((x) => [x.status, x.reason]), [['would-renew', 'the certificate was revoked']]);
  assert.equal(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'), metaBefore);

  // _acme-challenge.cname.example.test is a CNAME into delegated.test: the record is written there.
  const delegated = await cli(['issue', '-d', 'cname.example.test', '--server', pebble.directory, ...dns]);
  assert.equal(delegated.code, 0, delegated.stderr + delegated.stdout);
  assert.deepEqual(await bind.dig('_acme-challenge.cname.delegated.test', 'TXT'), []);
  const names = (await cli(['list'])).json<{ certificates: Array<{ name: string }> }>().certificates.map((c) => c.name);
  assert.deepEqual(names, ['cname.example.test', 'example.test']);
});
