import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import {
  compareCodePoints, hmacHex, parseQuery, rfc3986, sha256Hex, v1Params, v1StringToSign, v2CanonicalQuery, v2StringToSign,
} from '../../src/gate/canonical.js';

const vectors = JSON.parse(fs.readFileSync(new URL('../../../shared/signing-vectors.json', import.meta.url), 'utf8'));

test('every shared vector reproduces byte for byte', () => {
  for (const v of vectors.v1) {
    const raw = JSON.stringify(v.params);
    const s = v1StringToSign(v.method, v.path, v1Params([], { raw, parsed: JSON.parse(raw) }), v.timestamp, v.nonce);
    assert.equal(s, v.string_to_sign);
    assert.equal(hmacHex(v.secret, s), v.signature);
  }
  for (const v of vectors.v2) {
    assert.equal(sha256Hex(v.body), v.content_sha256);
    const s = v2StringToSign(v.method, v.path, v2CanonicalQuery(v.query), v.content_sha256, v.timestamp, v.nonce);
    assert.equal(s, v.string_to_sign);
    assert.equal(hmacHex(v.secret, s), v.signature);
  }
});

test('v1 PARAMS: numbers keep their JSON text, booleans are true/false, nested members are left out', () => {
  const raw = '{"b": 1.50, "a": true, "n": null, "o": {"x": 2, "s": "}\\"{"}, "l": [3, 4], "e": -2.5e+3, "s": "x\\"y", "f": false}';
  assert.equal(v1Params([], { raw, parsed: JSON.parse(raw) }), 'a=true&b=1.50&e=-2.5e+3&f=false&s=x"y');
});

test('v1 PARAMS: query values are percent-decoded ("+" is a space), merged and sorted with body members', () => {
  const query = parseQuery('target_lang=en&source_lang=zh&note=a+b%26c');
  assert.deepEqual(query, [['target_lang', 'en'], ['source_lang', 'zh'], ['note', 'a b&c']]);
  const raw = '{"text":"混元"}';
  assert.equal(v1Params(query, { raw, parsed: JSON.parse(raw) }), 'note=a b&c&source_lang=zh&target_lang=en&text=混元');
  assert.equal(v1Params([]), '');
});

test('v1 sorts by Unicode code point, not UTF-16 unit', () => {
  // U+FF5E is above the surrogate range but below U+1F600 (a surrogate pair starting 0xD83D).
  const names = ['\u{1F600}', '\uFF5E', 'a'];
  assert.deepEqual([...names].sort(compareCodePoints), ['a', '\uFF5E', '\u{1F600}']);
  assert.deepEqual([...names].sort(), ['a', '\u{1F600}', '\uFF5E']);
  const raw = JSON.stringify({ '\u{1F600}': '1', '\uFF5E': '2' });
  assert.equal(v1Params([], { raw, parsed: JSON.parse(raw) }), '\uFF5E=2&\u{1F600}=1');
});

test('code point order holds for every pair of short strings over ASCII, BMP, surrogate and astral units', () => {
  const byCodePoint = (a: string, b: string) => {
    const [x, y] = [[...a].map((c) => c.codePointAt(0)!), [...b].map((c) => c.codePointAt(0)!)];
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return Math.sign(x[i]! - y[i]!);
    return Math.sign(x.length - y.length);
  };
  // Lone surrogates as well as pairs: JSON bodies can carry either.
  const units = [0x41, 0x7a, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xff5e, 0xffff];
  const strings = [''];
  for (const u of units) {
    strings.push(String.fromCharCode(u));
    for (const v of units) strings.push(String.fromCharCode(u, v), String.fromCharCode(0x61, u, v));
  }
  for (const a of strings) {
    for (const b of strings) assert.equal(Math.sign(compareCodePoints(a, b)), byCodePoint(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

test('v1 PARAMS: numbers under escaped member names keep their JSON text too', () => {
  const raw = '{"a\\"b": 1.0, "\\u0063": 2.50, "d": 3, "plain": "x"}';
  assert.equal(v1Params([], { raw, parsed: JSON.parse(raw) }), 'a"b=1.0&c=2.50&d=3&plain=x');
});

test('v2 canonical query: RFC 3986 encoding, sorted by encoded name then value', () => {
  assert.equal(rfc3986("a b&c=d!'()*~-._"), "a%20b%26c%3Dd%21%27%28%29%2A~-._");
  assert.equal(v2CanonicalQuery([['b', '2'], ['a', 'z'], ['a', 'y'], ['é', '1']]), '%C3%A9=1&a=y&a=z&b=2'); // '%' (0x25) sorts before letters
  assert.equal(v2CanonicalQuery([]), '');
});
