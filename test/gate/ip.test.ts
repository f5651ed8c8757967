import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientIp, normalizeIp, parseCidrList, truncateIp } from '../../src/gate/ip.js';

test('audit truncation keeps the /24 or /48 only', () => {
  assert.equal(truncateIp('203.0.113.77'), '203.0.113.0/24');
  assert.equal(truncateIp('::ffff:10.1.2.3'), '10.1.2.0/24');
  assert.equal(truncateIp('2001:db8:abcd:12::1'), '2001:db8:abcd::/48');
  assert.equal(truncateIp('2001:db8::7'), '2001:db8::/48');
  assert.equal(truncateIp('::1'), '::/48');
  assert.equal(truncateIp('garbage'), 'unknown');
});

test('CIDR lists accept IPv4, IPv6 and plain addresses and name a bad entry', () => {
  const list = parseCidrList(['10.0.0.0/8', '2001:db8::/32', '192.0.2.5']);
  assert.ok(list.has('10.255.0.1'));
  assert.ok(list.has('::ffff:10.0.0.1'));
  assert.ok(list.has('2001:db8:ffff::1'));
  assert.ok(list.has('192.0.2.5'));
  assert.ok(!list.has('192.0.2.6'));
  assert.ok(!list.has('2001:db9::1'));
  assert.throws(() => parseCidrList(['10.0.0.0/33']), /"10\.0\.0\.0\/33" is not/);
  assert.throws(() => parseCidrList(['example.com']), /"example\.com"/);
  assert.equal(normalizeIp('::FFFF:1.2.3.4'), '1.2.3.4');
});

test('X-Forwarded-For is walked from the right past trusted proxies only', () => {
  const trusted = parseCidrList(['10.0.0.0/8']);
  assert.equal(clientIp('10.0.0.1', '198.51.100.7, 10.0.0.2', trusted), '198.51.100.7');
  assert.equal(clientIp('10.0.0.1', 'forged, 198.51.100.7', trusted), '198.51.100.7');
  assert.equal(clientIp('8.8.8.8', '198.51.100.7', trusted), '8.8.8.8');
  assert.equal(clientIp('10.0.0.1', '198.51.100.7', undefined), '10.0.0.1');
  assert.equal(clientIp('10.0.0.1', '10.0.0.3', trusted), '10.0.0.3');
});
