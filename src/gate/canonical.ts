import { createHash, createHmac } from 'node:crypto';
import { topLevelScalars } from './json-members.js';

/**
 * The strings to sign of ../shared/signing.md, shared by the gate (server) and `guardctl sign` (client) so that
 * both always agree byte for byte.
 */
export type Pair = [name: string, value: string];

export const V2_ALGORITHM = 'GUARD2-HMAC-SHA256';

/** Splits a raw query string (without '?') into decoded pairs, form-style ('+' is a space, as Python's requests sends it). */
export function parseQuery(rawQuery: string): Pair[] {
  if (rawQuery === '') return [];
  const pairs: Pair[] = [];
  for (const [name, value] of new URLSearchParams(rawQuery)) pairs.push([name, value]);
  return pairs;
}

/** Compares by Unicode code point (String's default sort compares UTF-16 units, which differs for astral characters). */
export function compareCodePoints(a: string, b: string): number {
  // Fast path: below the surrogates a UTF-16 unit is its code point, and names are mostly ASCII.
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  const ua = i < a.length ? a.charCodeAt(i) : -1;
  const ub = i < b.length ? b.charCodeAt(i) : -1;
  if (ua < 0xd800 && ub < 0xd800) return ua === ub ? 0 : ua < ub ? -1 : 1;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

export class DuplicateParamError extends Error {
  constructor(readonly param: string) {
    super(`parameter "${param}" appears in both the query and the body`);
  }
}

/**
 * Version 1 PARAMS: query pairs (decoded) plus the JSON object body's top-level scalars, sorted by name,
 * `name=value` joined with '&', no encoding. `body` is the raw text and its parsed value (or undefined).
 */
export function v1Params(query: Pair[], body?: { raw: string; parsed: unknown }): string {
  const pairs: Pair[] = [...query];
  if (body && body.parsed !== null && typeof body.parsed === 'object' && !Array.isArray(body.parsed)) {
    const queryNames = query.length ? new Set(query.map(([n]) => n)) : undefined;
    for (const member of topLevelScalars(body.raw, body.parsed as Record<string, unknown>)) {
      if (queryNames?.has(member[0])) throw new DuplicateParamError(member[0]);
      pairs.push(member);
    }
  }
  // Stable sort: repeated query names keep their request order.
  pairs.sort(byName);
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

function byName(a: Pair, b: Pair): number {
  return compareCodePoints(a[0], b[0]);
}

export function v1StringToSign(method: string, path: string, params: string, timestamp: string, nonce: string): string {
  return `${method.toUpperCase()}\n${path}\n${params}\n${timestamp}\n${nonce}`;
}

/** RFC 3986 percent-encoding: only A-Z a-z 0-9 - . _ ~ stay literal, upper-case hex. */
export function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function v2CanonicalQuery(query: Pair[]): string {
  const encoded = query.map(([n, v]): Pair => [rfc3986(n), rfc3986(v)]);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([n, v]) => `${n}=${v}`).join('&');
}

export function sha256Hex(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('hex');
}

export function v2StringToSign(
  method: string, path: string, canonicalQuery: string, contentSha256: string, timestamp: string, nonce: string,
): string {
  return `${V2_ALGORITHM}\n${method.toUpperCase()}\n${path}\n${canonicalQuery}\n${contentSha256}\n${timestamp}\n${nonce}`;
}

export function hmacHex(secret: string | Buffer, message: string): string {
  return hmac(secret, message).toString('hex');
}

export function hmac(secret: string | Buffer, message: string): Buffer {
  return createHmac('sha256', secret).update(message, 'utf8').digest();
}
