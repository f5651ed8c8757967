import { randomBytes } from 'node:crypto';
import { hmacHex, parseQuery, sha256Hex, v1Params, v1StringToSign, v2CanonicalQuery, v2StringToSign } from './canonical.js';
import { v1Problem, type V1Problem } from './v1-coverage.js';

/** The client side of ../shared/signing.md, used by `guardctl sign`, `guardctl request`, the web page's tests and the benchmarks. */
export interface SignInput {
  method: string;
  /** Absolute URL or a path with an optional query string. */
  url: string;
  /** The exact body text that will be sent (JSON for version 1's PARAMS to include its members). */
  body?: string;
  /** The body's exact bytes, when they may not be UTF-8 text (version 2 hashes these instead of `body`). */
  bodyBytes?: Uint8Array;
  keyId: string;
  secret: string;
  version?: 1 | 2;
  /** Unix seconds; now by default. */
  timestamp?: string;
  /** A fresh random nonce by default. */
  nonce?: string;
}

export interface SignedRequest {
  headers: Record<string, string>;
  stringToSign: string;
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function signRequest(input: SignInput): SignedRequest {
  const url = new URL(input.url, 'http://signing.invalid');
  const method = input.method.toUpperCase();
  const timestamp = input.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? newNonce();
  const query = parseQuery(url.search.slice(1));
  const headers: Record<string, string> = { 'X-API-Key': input.keyId, 'X-Timestamp': timestamp, 'X-Nonce': nonce };
  let stringToSign: string;
  if (input.version === 2) {
    const contentSha = sha256Hex(input.bodyBytes ?? input.body ?? '');
    stringToSign = v2StringToSign(method, url.pathname, v2CanonicalQuery(query), contentSha, timestamp, nonce);
    headers['X-Signature-Version'] = '2';
    headers['X-Content-SHA256'] = contentSha;
  } else {
    const parsed = input.body ? tryJson(input.body) : undefined;
    const params = v1Params(query, parsed === undefined ? undefined : { raw: input.body!, parsed });
    stringToSign = v1StringToSign(method, url.pathname, params, timestamp, nonce);
  }
  headers['X-Signature'] = hmacHex(input.secret, stringToSign);
  return { headers, stringToSign };
}

/**
 * Why the daemon would refuse this request signed with version 1 (v1_unsigned_member, v1_ambiguous_param), or
 * undefined. The client does not know which names a route reads, so any `&NAME=` counts (the cautious reading).
 */
export function v1Refusal(input: Pick<SignInput, 'url' | 'body'>): V1Problem | undefined {
  const url = new URL(input.url, 'http://signing.invalid');
  const present = input.body !== undefined && input.body !== '';
  return v1Problem(parseQuery(url.search.slice(1)), { json: present ? tryJson(input.body!) : undefined, present });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
