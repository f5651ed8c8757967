import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { renderProvidersDoc } from '../../src/dns/doc.js';
import { acceptedNames } from '../../src/dns/env.js';
import { HTTP_ENV } from '../../src/dns/http.js';
import { findProvider, getProvider, providerMetadata, providerNames, PROVIDERS } from '../../src/dns/registry.js';

test('the registry lists every provider once, with usable metadata', () => {
  assert.deepEqual(providerNames(), ['aliyun', 'cloudflare', 'dnspod', 'pdns', 'rfc2136', 'exec', 'manual']);
  const spellings = new Set<string>();
  for (const m of providerMetadata()) {
    assert.match(m.name, /^[a-z0-9]+$/);
    assert.ok(m.description.length > 10, `${m.name} has a description`);
    assert.match(m.docs, /^https:\/\//, `${m.name} links its API documentation`);
    assert.ok(m.propagationTimeoutSec >= m.pollIntervalSec && m.pollIntervalSec > 0);
    for (const v of m.env) {
      assert.ok(v.description.length > 5, `${m.name} ${v.name} is described`);
      for (const n of acceptedNames(v)) {
        assert.ok(!spellings.has(n), `${n} is accepted by two providers or twice`);
        spellings.add(n);
      }
    }
  }
  assert.equal(findProvider(' CloudFlare '), PROVIDERS[1]);
});

test('getProvider builds the named provider; an unknown name is a usage error listing the known ones', () => {
  const p = getProvider('manual', { env: {}, log: () => {} });
  assert.equal(p.name, 'manual');
  assert.throws(() => getProvider('route53', { env: {}, log: () => {} }), (err: GuardError) => {
    assert.equal(err.code, 'GUARD_E_USAGE');
    assert.equal(err.message, 'unknown DNS provider "route53"');
    assert.equal(err.hint, 'use one of: aliyun, cloudflare, dnspod, pdns, rfc2136, exec, manual');
    return true;
  });
});

test('every provider reports its name, and missing credentials fail at create with GUARD_E_DNS_PROVIDER', () => {
  for (const f of PROVIDERS) {
    if (f.meta.env.some((v) => v.required)) {
      assert.throws(() => f.create({ env: {}, log: () => {} }), (err: GuardError) => err.code === 'GUARD_E_DNS_PROVIDER' && err.message.startsWith(`${f.meta.name}: `));
    } else {
      assert.equal(f.create({ env: {}, log: () => {} }).name, f.meta.name);
    }
  }
});

test('docs/providers.md is generated from the metadata (node --import tsx scripts/providers-doc.mjs > docs/providers.md)', () => {
  const doc = fs.readFileSync(new URL('../../docs/providers.md', import.meta.url), 'utf8');
  assert.equal(doc, renderProvidersDoc(providerMetadata(), HTTP_ENV));
  for (const m of providerMetadata()) for (const v of m.env) assert.ok(doc.includes(`\`${v.name}\``));
});
