import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { factory as dnspod } from '../../src/dns/providers/dnspod/index.js';
import { signedQuery, timestamp } from '../../src/dns/providers/aliyun/sign.js';
import { authorization } from '../../src/dns/providers/dnspod/sign.js';
import { startFakeAliyun } from '../helpers/fake-dns-apis/aliyun.js';
import { forwardToChalltestsrv } from '../helpers/fake-dns-apis/challtestsrv.js';
import { startFakeCloudflare } from '../helpers/fake-dns-apis/cloudflare.js';
import { startFakeDnspod } from '../helpers/fake-dns-apis/dnspod.js';
import { factory as cloudflare } from '../../src/dns/providers/cloudflare/index.js';

// The fakes must refuse what the real APIs refuse, or the contract test would pass providers that fail in production.

test('fake aliyun: a tampered parameter, a replayed nonce and a stale timestamp are refused', async (t) => {
  const fake = await startFakeAliyun({ zones: ['example.com'] });
  t.after(() => fake.close());
  const params = (over: Record<string, string> = {}) => ({
    Action: 'DescribeDomainRecords', DomainName: 'example.com', Format: 'JSON', Version: '2015-01-09', AccessKeyId: fake.env.Ali_Key!,
    SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0', SignatureNonce: crypto.randomUUID(), Timestamp: timestamp(new Date()), ...over,
  });
  const get = async (query: string) => {
    const res = await fetch(`${fake.endpoint}?${query}`);
    return { status: res.status, body: (await res.json()) as { Code?: string; TotalCount?: number } };
  };
  const once = signedQuery(params(), fake.env.Ali_Secret!);
  assert.equal((await get(once)).body.TotalCount, 0);
  assert.equal((await get(once)).body.Code, 'SignatureNonceUsed');
  const tampered = signedQuery(params(), fake.env.Ali_Secret!).replace('DomainName=example.com', 'DomainName=example.org');
  assert.deepEqual(await get(tampered).then((r) => [r.status, r.body.Code]), [400, 'SignatureDoesNotMatch']);
  const stale = signedQuery(params({ Timestamp: timestamp(new Date(Date.now() - 3_600_000)) }), fake.env.Ali_Secret!);
  assert.equal((await get(stale)).body.Code, 'InvalidTimeStamp.Expired');
  assert.equal((await get(signedQuery(params(), 'wrong'))).body.Code, 'SignatureDoesNotMatch');
});

test('fake dnspod: a tampered body, a stale timestamp and unsigned headers are refused; throttling is retried', async (t) => {
  const fake = await startFakeDnspod({ zones: ['example.com'] });
  t.after(() => fake.close());
  const post = async (body: string, signedBody = body, ts = Math.floor(Date.now() / 1000), signedHeaders = ['content-type', 'host']) => {
    const headers = { 'content-type': 'application/json; charset=utf-8', host: new URL(fake.endpoint).host };
    const auth = authorization({
      method: 'POST', headers, signedHeaders, payload: signedBody, secretId: fake.env.TENCENTCLOUD_SECRET_ID!, secretKey: fake.env.TENCENTCLOUD_SECRET_KEY!, service: 'dnspod', timestampSec: ts,
    });
    const res = await fetch(fake.endpoint, {
      method: 'POST', body,
      headers: { 'content-type': headers['content-type'], 'x-tc-action': 'DescribeRecordList', 'x-tc-timestamp': String(ts), 'x-tc-version': '2021-03-23', authorization: auth },
    });
    return ((await res.json()) as { Response: { Error?: { Code: string } } }).Response.Error?.Code;
  };
  const body = JSON.stringify({ Domain: 'example.com' });
  assert.equal(await post(body), 'ResourceNotFound.NoDataOfRecord', 'a correct request reaches the API');
  assert.equal(await post(JSON.stringify({ Domain: 'example.org' }), body), 'AuthFailure.SignatureFailure');
  assert.equal(await post(body, body, Math.floor(Date.now() / 1000) - 900), 'AuthFailure.SignatureExpire');
  assert.equal(await post(body, body, undefined, ['content-type']), 'AuthFailure.SignatureFailure');

  const logs: string[] = [];
  const p = dnspod.create({ env: { ...fake.env, GUARDCTL_DNS_HTTP_BACKOFF_MS: '1' }, log: (_l, m) => logs.push(m) });
  fake.throttleNext(2);
  await p.present({ fqdn: '_acme-challenge.example.com', value: 'v', ttl: 1 });
  assert.deepEqual(fake.values('_acme-challenge.example.com'), ['v']);
  assert.equal(logs.filter((l) => l.includes('RequestLimitExceeded') && l.includes('retrying')).length, 2);
});

test('fake cloudflare: requests without the Bearer token are refused', async (t) => {
  const fake = await startFakeCloudflare({ zones: ['example.com'] });
  t.after(() => fake.close());
  const res = await fetch(`${fake.endpoint}/zones?name=example.com`);
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { errors: Array<{ code: number }> }).errors[0]!.code, 6003);
  const wrong = await fetch(`${fake.endpoint}/zones?name=example.com`, { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 403);
});

test('onChange reports every value at a name, and forwardToChalltestsrv mirrors them into challtestsrv', async (t) => {
  const posted: string[] = [];
  const mgmt = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      posted.push(`${req.url} ${body}`);
      res.end();
    });
  });
  await new Promise<void>((r) => mgmt.listen(0, '127.0.0.1', r));
  t.after(() => mgmt.close());
  const forward = forwardToChalltestsrv(`http://127.0.0.1:${(mgmt.address() as AddressInfo).port}/`);
  const changes: Array<[string, string[]]> = [];
  const fake = await startFakeCloudflare({ zones: ['example.com'], onChange: async (fqdn, values) => { changes.push([fqdn, values]); await forward(fqdn, values); } });
  t.after(() => fake.close());
  const p = cloudflare.create({ env: fake.env, log: () => {} });
  const at = '_acme-challenge.example.com';
  await p.present({ fqdn: at, value: 'one', ttl: 60 });
  await p.present({ fqdn: at, value: 'two', ttl: 60 });
  await p.cleanup({ fqdn: at, value: 'one', ttl: 60 });
  assert.deepEqual(changes, [[at, ['one']], [at, ['one', 'two']], [at, ['two']]]);
  const host = '{"host":"_acme-challenge.example.com."';
  assert.deepEqual(posted.slice(-2), [`/clear-txt ${host}}`, `/set-txt ${host},"value":"two"}`]);
  assert.equal(posted.length, 2 + 3 + 2);
});
