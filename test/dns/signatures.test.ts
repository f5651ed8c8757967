import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalQuery, percentEncode, signature as aliSignature, signedQuery, stringToSign as aliStringToSign, timestamp } from '../../src/dns/providers/aliyun/sign.js';
import { authorization, canonicalRequest, signature as tc3Signature, stringToSign as tc3StringToSign, utcDate } from '../../src/dns/providers/dnspod/sign.js';

// Alibaba Cloud's signature-mechanism page for Alidns (help doc 29747): DescribeDomainRecords for example.com,
// AccessKeyId testid, AccessKeySecret testsecret.
const ALI_PARAMS = {
  Format: 'XML',
  AccessKeyId: 'testid',
  Action: 'DescribeDomainRecords',
  SignatureMethod: 'HMAC-SHA1',
  DomainName: 'example.com',
  SignatureNonce: 'f59ed6a9-83fc-473b-9cc6-99c95df3856e',
  SignatureVersion: '1.0',
  Version: '2015-01-09',
  Timestamp: '2016-03-24T16:41:54Z',
};

test('aliyun: the published DescribeDomainRecords example signs to uRpHwaSEt3J+6KQD//svCh/x+pI=', () => {
  assert.equal(
    aliStringToSign('GET', ALI_PARAMS),
    'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDomainRecords%26DomainName%3Dexample.com%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Df59ed6a9-83fc-473b-9cc6-99c95df3856e%26SignatureVersion%3D1.0%26Timestamp%3D2016-03-24T16%253A41%253A54Z%26Version%3D2015-01-09',
  );
  assert.equal(aliSignature('GET', ALI_PARAMS, 'testsecret'), 'uRpHwaSEt3J+6KQD//svCh/x+pI=');
  // The signature travels percent-encoded too: + / = are not left bare in the query.
  assert.ok(signedQuery(ALI_PARAMS, 'testsecret').endsWith('&Signature=uRpHwaSEt3J%2B6KQD%2F%2FsvCh%2Fx%2BpI%3D'));
});

test('aliyun: percent-encoding follows RFC 3986, not form encoding', () => {
  assert.equal(percentEncode('a b*c~d/é+=!\'()'), 'a%20b%2Ac~d%2F%C3%A9%2B%3D%21%27%28%29');
  assert.equal(percentEncode('-_.~AZaz09'), '-_.~AZaz09');
  // Sorted by name, case-sensitive (upper case first), Signature itself excluded.
  assert.equal(canonicalQuery({ b: '1', B: '2', a: 'x y', Signature: 'zzz' }), 'B=2&a=x%20y&b=1');
  assert.equal(timestamp(new Date(Date.UTC(2016, 2, 24, 16, 41, 54, 789))), '2016-03-24T16:41:54Z');
});

// Tencent Cloud's "Signature v3" page: CVM DescribeInstances, timestamp 1551113065 (2019-02-26 00:44:25 in UTC+8,
// so the credential date is the UTC 2019-02-25). The page has been published with two spellings of the example
// SecretKey, each with its own signature; both are reproduced.
const TC3_PAYLOAD = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}';
const TC3_HEADERS = { 'content-type': 'application/json; charset=utf-8', host: 'cvm.tencentcloudapi.com' };
const TC3_CANONICAL = [
  'POST', '/', '', 'content-type:application/json; charset=utf-8', 'host:cvm.tencentcloudapi.com', '', 'content-type;host',
  '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064',
].join('\n');
const TC3_TO_SIGN = 'TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031';

test('dnspod: the published TC3 DescribeInstances example, step by step', () => {
  const canonical = canonicalRequest({ method: 'POST', headers: TC3_HEADERS, signedHeaders: ['content-type', 'host'], payload: TC3_PAYLOAD });
  assert.equal(canonical, TC3_CANONICAL);
  assert.equal(utcDate(1551113065), '2019-02-25');
  assert.equal(tc3StringToSign(1551113065, 'cvm', canonical), TC3_TO_SIGN);
  assert.equal(tc3Signature('Gu5t9xGARNpq86cd98joQYCN3*******', 1551113065, 'cvm', TC3_TO_SIGN), '2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c');
  assert.equal(tc3Signature('Gu5t9xGARNpq86cd98joQYCN3EXAMPLE', 1551113065, 'cvm', TC3_TO_SIGN), '72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168');
});

test('dnspod: the Authorization header of the published example', () => {
  const auth = authorization({
    method: 'POST', headers: TC3_HEADERS, signedHeaders: ['host', 'content-type'], payload: TC3_PAYLOAD,
    secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE', secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE', service: 'cvm', timestampSec: 1551113065,
  });
  assert.equal(auth, 'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168');
});

test('dnspod: header values are lower-cased and trimmed; extra signed headers take part', () => {
  const base = { method: 'post', signedHeaders: ['Content-Type', 'Host', 'X-TC-Action'], payload: '{}' };
  const a = canonicalRequest({ ...base, headers: { 'content-type': ' application/json; charset=utf-8 ', host: 'H.example', 'x-tc-action': 'CreateRecord' } });
  assert.match(a, /^POST\n\/\n\ncontent-type:application\/json; charset=utf-8\nhost:h.example\nx-tc-action:createrecord\n\ncontent-type;host;x-tc-action\n/);
});
