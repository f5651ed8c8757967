import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideRenewal, jitterMs, lifetimeRenewalAt, nextRenewalAt } from '../../src/acme/renewal.js';
import type { LineageMeta } from '../../src/acme/types.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T00:00:00Z');

function meta(lifetimeDays: number, extra: Partial<LineageMeta> = {}): LineageMeta {
  return {
    version: 1, lineage: 'x', names: ['x.example.test'], server: 'https://ca.test/dir', keyType: 'ec256', dns: { provider: 'manual', options: {} },
    cert: { serial: '01', issuer: 'CA', notBefore: new Date(T0).toISOString(), notAfter: new Date(T0 + lifetimeDays * DAY).toISOString(), issuedAt: new Date(T0).toISOString(), certId: 'aki.serial' },
    nextRenewalAt: '', ...extra,
  };
}

test('without ARI: renew when a third of the lifetime remains, half of it under 10 days', () => {
  assert.equal(lifetimeRenewalAt(T0, T0 + 90 * DAY), T0 + 60 * DAY);
  assert.equal(lifetimeRenewalAt(T0, T0 + 6 * DAY), T0 + 3 * DAY);
  assert.equal(lifetimeRenewalAt(T0, T0 + 10 * DAY), Math.floor(T0 + 10 * DAY - (10 * DAY) / 3));
  const m = meta(90);
  assert.equal(decideRenewal(m, T0 + 59 * DAY).due, false);
  assert.match(decideRenewal(m, T0 + 59 * DAY).reason, /not before 2026-04-30/);
  assert.equal(decideRenewal(m, T0 + 60 * DAY).due, true);
  assert.equal(decideRenewal(m, T0 + DAY, true).due, true, '--force');
  assert.equal(decideRenewal(m, T0 + 91 * DAY).reason, 'the certificate has expired');
});

test('with ARI: the moment chosen inside the CA\'s window decides, for the certificate it was asked about', () => {
  const ari = { certId: 'aki.serial', windowStart: T0 + 10 * DAY, windowEnd: T0 + 12 * DAY, selectedAt: T0 + 11 * DAY, nextCheckAt: T0 + DAY };
  const m = meta(90, { ari });
  assert.equal(nextRenewalAt(m), T0 + 11 * DAY);
  assert.equal(decideRenewal(m, T0 + 10.5 * DAY).due, false, 'inside the window, before the chosen moment');
  const due = decideRenewal(m, T0 + 11 * DAY);
  assert.equal(due.due, true);
  assert.match(due.reason, /ARI/);
  assert.equal(decideRenewal(m, T0 + 5 * DAY).due, false, 'before the window');
  // ARI state about another certificate (the one before a renewal) is ignored.
  assert.equal(nextRenewalAt(meta(90, { ari: { ...ari, certId: 'old' } })), T0 + 60 * DAY);
});

test('a revoked certificate is due at once', () => {
  const m = meta(90, { revokedAt: new Date(T0 + DAY).toISOString() });
  assert.equal(decideRenewal(m, T0 + 2 * DAY).due, true);
  assert.match(decideRenewal(m, T0 + 2 * DAY).reason, /revoked/);
});

test('jitter stays inside its bound and is off at 0', () => {
  assert.equal(jitterMs(0), 0);
  assert.equal(jitterMs(600_000, () => 0.5), 300_000);
  for (let i = 0; i < 100; i++) assert.ok(jitterMs(1000) < 1000);
});
