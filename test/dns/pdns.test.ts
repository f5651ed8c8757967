import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGuardError } from '../../src/core/errors.js';
import { baseUrl, factory, quoteTxt } from '../../src/dns/providers/pdns/index.js';
import { freeLoopbackPort } from '../helpers/bind.js';
import { startPdns, type PdnsServer } from '../helpers/pdns.js';
import { runProviderContract } from './contract.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';
import { waitForTxt } from '../../src/acme/propagation.js';

const FQDN = '_acme-challenge.example.test';
const logs: string[] = [];
const log = (level: string, message: string) => void logs.push(`${level} ${message}`);
const envFor = (pdns: PdnsServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: pdns.apiKey, GUARDCTL_DNS_HTTP_TRIES: '1', ...extra,
});

interface Zone {
  rrsets: Array<{ name: string; type: string; ttl: number; records: Array<{ content: string }> }>;
}
const txtRRset = async (pdns: PdnsServer, zone: string, name: string) =>
  ((await pdns.api('GET', `/zones/${zone}.`)) as Zone).rrsets.find((r) => r.type === 'TXT' && r.name === `${name}.`);

test('settings: the API URL is normalised, TXT content quoted, missing settings named', () => {
  assert.equal(baseUrl('http://127.0.0.1:8081/'), 'http://127.0.0.1:8081');
  assert.equal(baseUrl('https://pdns.example.com/api/v1'), 'https://pdns.example.com');
  assert.equal(baseUrl('http://h:8081/prefix/api'), 'http://h:8081/prefix');
  assert.throws(() => baseUrl('pdns:8081'), /PDNS_API_URL "pdns:8081" is not an http\(s\) URL/);
  assert.throws(() => baseUrl('not a url'), /is not a URL/);
  assert.equal(quoteTxt('a"b\\c'), '"a\\"b\\\\c"');
  assert.throws(() => factory.create({ env: {}, log }), /pdns: missing settings: set PDNS_API_URL \(or PDNS_Url\) and PDNS_API_KEY/);
});

test('present and cleanup against PowerDNS: values merge into one RRset, cleanup removes only its own value', async (t) => {
  const pdns = await startPdns(t);
  if (!pdns) return;
  await pdns.api('PATCH', '/zones/example.test.', {
    rrsets: [{ name: `${FQDN}.`, type: 'TXT', ttl: 300, changetype: 'REPLACE', records: [{ content: '"someone-else"', disabled: false }] }],
  });
  // The URL as operators often copy it, with /api/v1; the server id through lego's variable name.
  const provider = factory.create({ env: envFor(pdns, { PDNS_API_URL: `${pdns.apiUrl}/api/v1/`, PDNS_SERVER_NAME: 'localhost' }), log });
  await provider.present({ fqdn: FQDN, value: 'apex-value', ttl: 60 });
  await provider.present({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 });
  await provider.present({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 }); // idempotent
  assert.deepEqual((await pdns.dig(FQDN, 'TXT')).sort(), ['apex-value', 'someone-else', 'wildcard-value']);
  assert.equal((await txtRRset(pdns, 'example.test', FQDN))?.records.length, 3);
  await provider.cleanup({ fqdn: FQDN, value: 'apex-value', ttl: 60 });
  assert.deepEqual((await pdns.dig(FQDN, 'TXT')).sort(), ['someone-else', 'wildcard-value']);
  await provider.cleanup({ fqdn: FQDN, value: 'someone-else-not', ttl: 60 }); // not there: not an error
  await provider.cleanup({ fqdn: FQDN, value: 'someone-else', ttl: 60 });
  await provider.cleanup({ fqdn: FQDN, value: 'wildcard-value', ttl: 60 });
  // The last value gone: the RRset is deleted, not left empty.
  assert.deepEqual(await pdns.dig(FQDN, 'TXT'), []);
  assert.equal(await txtRRset(pdns, 'example.test', FQDN), undefined);
});

test('the zone is found by walking the suffixes: the most specific zone of the server wins', async (t) => {
  const pdns = await startPdns(t, { zones: ['sub.example.test'] });
  if (!pdns) return;
  const provider = factory.create({ env: envFor(pdns), log });
  const deep = '_acme-challenge.www.sub.example.test';
  await provider.present({ fqdn: `${deep}.`, value: 'deep', ttl: 60 });
  assert.ok(await txtRRset(pdns, 'sub.example.test', deep));
  assert.equal(await txtRRset(pdns, 'example.test', deep), undefined);
  await provider.cleanup({ fqdn: deep, value: 'deep', ttl: 60 });
  assert.equal(await txtRRset(pdns, 'sub.example.test', deep), undefined);
  await assert.rejects(provider.present({ fqdn: '_acme-challenge.other.invalid', value: 'v', ttl: 60 }),
    (err: unknown) => isGuardError(err) && err.code === 'GUARD_E_DNS_PROVIDER' && /^pdns: no zone in this account holds _acme-challenge\.other\.invalid/.test(err.message));
});

test('a wrong API key and a wrong server id: clear errors that never show the key', async (t) => {
  const pdns = await startPdns(t);
  if (!pdns) return;
  const wrong = 'a-wrong-api-key-0123456789';
  await assert.rejects(factory.create({ env: envFor(pdns, { PDNS_API_KEY: wrong }), log }).present({ fqdn: FQDN, value: 'v', ttl: 60 }), (err: unknown) => {
    assert.ok(isGuardError(err));
    assert.match(err.message, /^pdns: look up zone _acme-challenge\.example\.test failed: HTTP 401/);
    assert.match(err.hint ?? '', /PDNS_API_KEY/);
    assert.ok(!JSON.stringify({ m: err.message, h: err.hint, d: err.details }).includes(wrong));
    return true;
  });
  // PowerDNS answers 404 alike for a missing zone and an unknown server id: the provider tells them apart.
  await assert.rejects(factory.create({ env: envFor(pdns, { PDNS_SERVER_ID: 'nope' }), log }).present({ fqdn: FQDN, value: 'v', ttl: 60 }),
    (err: unknown) => isGuardError(err) && err.message === `pdns: the API at ${pdns.apiUrl} has no server "nope"` && /PDNS_SERVER_ID/.test(err.hint ?? ''));
  assert.deepEqual(await pdns.dig(FQDN, 'TXT'), []);
});

test('an unreachable API: a clear error naming the action', async () => {
  const port = await freeLoopbackPort();
  const provider = factory.create({ env: { PDNS_API_URL: `http://127.0.0.1:${port}`, PDNS_API_KEY: 'k-secret-value', GUARDCTL_DNS_HTTP_TRIES: '1' }, log });
  await assert.rejects(provider.present({ fqdn: FQDN, value: 'v', ttl: 60 }), (err: unknown) => {
    assert.ok(isGuardError(err));
    assert.match(err.message, /^pdns: look up zone _acme-challenge\.example\.test failed after 1 try: network error: ECONNREFUSED/);
    assert.ok(!err.message.includes('k-secret-value'));
    return true;
  });
});

test('pdns passes the shared provider contract against PowerDNS', async (t) => {
  const pdns = await startPdns(t, { zones: ['sub.example.test'] });
  if (!pdns) return;
  await runProviderContract(t, {
    factory,
    env: { PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: pdns.apiKey },
    secrets: [pdns.apiKey],
    zone: 'example.test',
    nestedZone: 'sub.example.test',
    values: async (fqdn, zone) => {
      if (zone === undefined) return pdns.dig(fqdn, 'TXT');
      const rrset = await txtRRset(pdns, zone, fqdn);
      return (rrset?.records ?? []).map((r) => JSON.parse(r.content) as string);
    },
    seed: async (fqdn, value) => {
      const zone = fqdn.endsWith('.sub.example.test') ? 'sub.example.test' : 'example.test';
      const current = (await txtRRset(pdns, zone, fqdn))?.records.map((r) => r.content) ?? [];
      await pdns.api('PATCH', `/zones/${zone}.`, {
        rrsets: [{ name: `${fqdn}.`, type: 'TXT', ttl: 60, changetype: 'REPLACE', records: [...current, `"${value}"`].map((content) => ({ content, disabled: false })) }],
      });
    },
    badEnv: { PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: 'not-the-api-key' },
  });
});

test('a value written through the API is seen by the propagation check against PowerDNS', async (t) => {
  const pdns = await startPdns(t);
  if (!pdns) return;
  const provider = factory.create({ env: envFor(pdns), log });
  await provider.present({ fqdn: FQDN, value: 'propagated', ttl: 60 });
  const auth = await waitForTxt({ fqdn: FQDN, values: ['propagated'], resolvers: [{ host: '127.0.0.1', port: pdns.dnsPort }], timeoutMs: HANG_BOUND_MS, intervalMs: 100, log });
  assert.deepEqual([auth.zone, auth.nameservers.map((n) => n.name)], ['example.test', ['ns1.example.test']]);
});
