import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { certIdFrom, certIdOf, certIdParts, DEFAULT_ARI_RETRY_MS, parseRenewalInfo, parseRetryAfter, updateAriState } from '../../src/acme/ari.js';
import { tempDir } from '../helpers/cli.js';

const hex = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex');

test('certID: RFC 9773 section 4.1 example', () => {
  const aki = hex('69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4');
  assert.equal(certIdFrom(aki, hex('00:87:65:43:21')), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

test('certID from a real certificate: the serial keeps its DER leading zero, the AKI is the issuer\'s key id', (t) => {
  const dir = tempDir(t);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ARI test CA']);
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=ari.example.test']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'authorityKeyIdentifier=keyid\nsubjectAltName=DNS:ari.example.test\n');
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x87654321', '-days', '1', '-extfile', 'ext.cnf', '-out', 'leaf.pem']);
  const pem = fs.readFileSync(path.join(dir, 'leaf.pem'), 'utf8');
  const caSki = run(['x509', '-in', 'ca.pem', '-noout', '-ext', 'subjectKeyIdentifier']).split('\n')[1]!.trim();
  const parts = certIdParts(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
  assert.equal(parts.serial.toString('hex'), '0087654321');
  assert.equal(parts.authorityKeyId!.toString('hex'), caSki.replace(/:/g, '').toLowerCase());
  assert.equal(certIdOf(pem), `${hex(caSki).toString('base64url')}.AIdlQyE`);
});

test('Retry-After: seconds, HTTP dates, bounds and the six-hour default', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3600', now), 3_600_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 02:00:00 GMT', now), 7_200_000);
  assert.equal(parseRetryAfter(undefined, now), DEFAULT_ARI_RETRY_MS);
  assert.equal(parseRetryAfter('soon', now), DEFAULT_ARI_RETRY_MS);
  assert.equal(parseRetryAfter('1', now), 60_000, 'never more often than once a minute');
  assert.equal(parseRetryAfter('99999999', now), 7 * 86_400_000, 'never less often than once a week');
});

test('renewalInfo: the window is validated; a moment is chosen inside it and kept while the window stays', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const info = parseRenewalInfo({ suggestedWindow: { start: '2026-02-01T00:00:00Z', end: '2026-02-03T00:00:00Z' }, explanationURL: 'https://ca.test/why' }, '21600', now);
  assert.deepEqual(info, { windowStart: Date.parse('2026-02-01T00:00:00Z'), windowEnd: Date.parse('2026-02-03T00:00:00Z'), retryAfterMs: 21_600_000, explanationUrl: 'https://ca.test/why' });
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: '2026-02-03T00:00:00Z', end: '2026-02-01T00:00:00Z' } }, undefined, now), /suggestedWindow/);
  assert.throws(() => parseRenewalInfo({}, undefined, now), /suggestedWindow/);

  const first = updateAriState(undefined, 'id.1', info, now, () => 0.5);
  assert.equal(first.selectedAt, Date.parse('2026-02-02T00:00:00Z'));
  assert.equal(first.nextCheckAt, now + 21_600_000);
  const again = updateAriState(first, 'id.1', info, now + 1000, () => 0.99);
  assert.equal(again.selectedAt, first.selectedAt, 'same window: same moment');
  const moved = updateAriState(again, 'id.1', { ...info, windowStart: now - 10, windowEnd: now - 5 }, now, () => 0);
  assert.equal(moved.selectedAt, now - 10, 'a new window (the CA pulled it forward): a new moment');
  for (let i = 0; i < 50; i++) {
    const s = updateAriState(undefined, 'x', info, now).selectedAt;
    assert.ok(s >= info.windowStart && s <= info.windowEnd);
  }
});
