/**
 * The order flow's sequencing, against a scripted ACME client: every value is presented before any propagation
 * wait, every wait is over before the CA is told, an apex and its wildcard are waited for together, a serial
 * provider never sees two calls at once, and cleanup always runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type acme from 'acme-client';
import { orderCertificate, type Solver } from '../../src/acme/order.js';
import type { TxtRecord } from '../../src/dns/types.js';

function fakeClient(names: Array<{ value: string; wildcard?: boolean }>, events: string[], opts: { failValidation?: string } = {}): acme.Client {
  const authzs = names.map((n, i) => ({
    url: `https://ca.test/authz/${i}`, status: 'pending', wildcard: n.wildcard ?? false, identifier: { type: 'dns', value: n.value },
    challenges: [{ type: 'http-01', url: `h${i}`, token: 't', status: 'pending' }, { type: 'dns-01', url: `https://ca.test/chall/${i}`, token: `tok${i}`, status: 'pending' }],
  }));
  const fake = {
    createOrder: async (payload: unknown) => (events.push(`order ${JSON.stringify(payload)}`), { url: 'https://ca.test/order/1', authorizations: authzs.map((a) => a.url) }),
    getAuthorizations: async () => authzs,
    getChallengeKeyAuthorization: async (ch: { token: string }) => `ka-${ch.token}`,
    completeChallenge: async (ch: { url: string }) => void events.push(`complete ${ch.url}`),
    waitForValidStatus: async (ch: { url: string }) => {
      const i = Number(ch.url.split('/').pop());
      if (authzs[i]!.identifier.value === opts.failValidation) throw new Error('Incorrect TXT record found');
    },
    deactivateAuthorization: async (a: { url: string }) => void events.push(`deactivate ${a.url}`),
    finalizeOrder: async () => (events.push('finalize'), { status: 'valid' }),
    getCertificate: async () => 'PEM',
  };
  return fake as unknown as acme.Client;
}

function solver(events: string[], parallel: boolean, failCleanup = false): Solver & { maxConcurrent: number } {
  let inFlight = 0;
  const s = {
    maxConcurrent: 0,
    parallel,
    timeoutMs: 1000,
    intervalMs: 10,
    provider: {
      name: 'fake',
      present: async (r: TxtRecord) => {
        s.maxConcurrent = Math.max(s.maxConcurrent, ++inFlight);
        await new Promise((res) => setTimeout(res, 5));
        inFlight--;
        events.push(`present ${r.fqdn} ${r.value}`);
      },
      cleanup: async (r: TxtRecord) => {
        events.push(`cleanup ${r.fqdn} ${r.value}`);
        if (failCleanup) throw new Error('cleanup broke');
      },
    },
    propagation: {
      resolveChallengeTarget: async (fqdn: string) => (fqdn === '_acme-challenge.cname.example.test' ? '_acme-challenge.cname.other.test' : fqdn),
      waitForTxt: async (o: { fqdn: string; values: string[] }) => void events.push(`wait ${o.fqdn} ${[...o.values].sort().join(',')}`),
    },
  };
  return s;
}

test('present all, then wait for all (apex + wildcard together), then tell the CA; cleanup after', async () => {
  const events: string[] = [];
  const s = solver(events, false);
  const pem = await orderCertificate(fakeClient([{ value: 'example.test' }, { value: 'example.test', wildcard: true }, { value: 'cname.example.test' }], events),
    { names: ['example.test', '*.example.test', 'cname.example.test'], csr: Buffer.from('csr'), replaces: 'aki.serial' }, s, { log: () => {} });
  assert.equal(pem, 'PEM');
  assert.equal(s.maxConcurrent, 1, 'a provider without parallel support gets one call at a time');
  const kinds = events.map((e) => e.split(' ')[0]);
  assert.deepEqual(kinds, ['order', 'present', 'present', 'present', 'wait', 'wait', 'complete', 'complete', 'complete', 'cleanup', 'cleanup', 'cleanup', 'finalize']);
  assert.match(events[0]!, /"replaces":"aki.serial"/);
  assert.ok(events.includes('wait _acme-challenge.example.test ka-tok0,ka-tok1'), 'both values at the shared name, in one wait');
  assert.ok(events.includes('present _acme-challenge.cname.other.test ka-tok2'), 'written at the CNAME target');
});

test('parallel providers get concurrent calls', async () => {
  const events: string[] = [];
  const s = solver(events, true);
  await orderCertificate(fakeClient([{ value: 'a.example.test' }, { value: 'b.example.test' }, { value: 'c.example.test' }], events),
    { names: ['a.example.test', 'b.example.test', 'c.example.test'], csr: Buffer.from('csr') }, s, { log: () => {} });
  assert.equal(s.maxConcurrent, 3);
});

test('a failed validation: every record is still removed, a failing cleanup is logged, the real error wins', async () => {
  const events: string[] = [];
  const logs: string[] = [];
  const s = solver(events, true, true);
  await assert.rejects(
    orderCertificate(fakeClient([{ value: 'a.example.test' }, { value: 'b.example.test' }], events, { failValidation: 'b.example.test' }),
      { names: ['a.example.test', 'b.example.test'], csr: Buffer.from('csr') }, s, { log: (level, m) => logs.push(`${level} ${m}`) }),
    /b\.example\.test: Incorrect TXT record found/,
  );
  assert.equal(events.filter((e) => e.startsWith('cleanup')).length, 2);
  assert.equal(events.includes('finalize'), false);
  assert.equal(logs.filter((l) => /^warn .*could not remove the TXT record.*cleanup broke/.test(l)).length, 2);
});

test('a propagation timeout: the CA is never told, authorizations are deactivated, records removed', async () => {
  const events: string[] = [];
  const s = solver(events, true);
  s.propagation.waitForTxt = async () => {
    throw new Error('TXT not served by every name server after 1s');
  };
  await assert.rejects(orderCertificate(fakeClient([{ value: 'a.example.test' }], events), { names: ['a.example.test'], csr: Buffer.from('csr') }, s, { log: () => {} }), /not served/);
  assert.deepEqual(events.filter((e) => !e.startsWith('order')).map((e) => e.split(' ')[0]), ['present', 'deactivate', 'cleanup']);
});
